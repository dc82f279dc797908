"""The change feed, in the shape of the Azure DICOM service's API v2.

``GET /changefeed`` lists the instances created and deleted, oldest first;
``GET /changefeed/latest`` gives the newest entry (JSON ``null`` when nothing
was ever stored). Query parameters, matched without regard to case as ASP.NET
does:

- ``startTime`` (inclusive) and ``endTime`` (exclusive): ISO 8601 date-times,
  UTC when they carry no offset; the window the entries' ``Timestamp`` falls in.
- ``offset``: entries of that window to skip (0 by default);
- ``limit``: entries per page, 1 to 200 (100 by default); past 200 is a 400,
  as in the Azure service;
- ``includeMetadata``: ``true`` (default) or ``false``.

``/v1`` answers the same (the v2 shape): there ``offset`` counts entries too,
which is what the Azure v1 clients' ``offset={entries read}`` loop expects
while nothing is filtered by time.

Each entry: ``Sequence``, ``StudyInstanceUid``, ``SeriesInstanceUid``,
``SopInstanceUid``, ``Action`` (``create`` / ``delete``), ``Timestamp``
(ISO 8601, UTC), ``State`` (``current`` / ``replaced`` / ``deleted``) and,
with ``includeMetadata``, ``Metadata``: the instance's DICOM JSON (PS3.18
§F.2) from the index when it is still stored, else ``null``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import BadRequest
from ..index import ChangeEntry
from ..web import services

DEFAULT_LIMIT = 100
MAX_LIMIT = 200

_DIGITS = re.compile(r"[0-9]+")
_FEED_PARAMETERS = ("startTime", "endTime", "offset", "limit", "includeMetadata")
_LATEST_PARAMETERS = ("includeMetadata",)


def _parameters(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters by lower-cased name; the last value wins."""
    known = {name.lower() for name in allowed}
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        key = name.lower()
        if key not in known:
            raise BadRequest(
                f"this change feed resource takes no parameter named "
                f"{_shown(name)}; it takes {', '.join(allowed)}"
            )
        found[key] = value
    return found


def _shown(name: str) -> str:
    if len(name) <= 64 and name.isprintable():
        return f"'{name}'"
    return "an over-long or unprintable name"


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(text) or len(text) > 4 or not 1 <= int(text) <= 200:
        raise BadRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, as in the Azure "
            "DICOM service's change feed; page on with offset"
        )
    return int(text)


def _offset(text: str | None) -> int:
    if text is None:
        return 0
    if not _DIGITS.fullmatch(text) or len(text) > 18:
        raise BadRequest("offset must be a whole number of entries to skip, 0 or more")
    return int(text)


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(
            f"{name} must be an ISO 8601 date-time such as "
            "2024-05-01T12:00:00Z (UTC when no offset is given)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # An offset moved it past the calendar's first or last day in UTC
        # (0001-01-01T00:00:00+01:00): every entry is after or before it.
        earliest = moment.year == 1
        return (datetime.min if earliest else datetime.max).replace(tzinfo=UTC)


def _include_metadata(text: str | None) -> bool:
    if text is None:
        return True
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise BadRequest("includeMetadata must be true or false")
    return value == "true"


def _json(entry: ChangeEntry, include_metadata: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "Sequence": entry.sequence,
        "StudyInstanceUid": entry.study_instance_uid,
        "SeriesInstanceUid": entry.series_instance_uid,
        "SopInstanceUid": entry.sop_instance_uid,
        "Action": entry.action,
        "Timestamp": entry.timestamp.isoformat(),
        "State": entry.state,
    }
    if include_metadata:
        answer["Metadata"] = entry.metadata
    return answer


async def change_feed(request: Request) -> Response:
    given = _parameters(request, _FEED_PARAMETERS)
    start = _moment(given.get("starttime"), "startTime")
    end = _moment(given.get("endtime"), "endTime")
    if start is not None and end is not None and start >= end:
        raise BadRequest("startTime must be earlier than endTime")
    offset = _offset(given.get("offset"))
    limit = _limit(given.get("limit"))
    include_metadata = _include_metadata(given.get("includemetadata"))

    entries = await run_in_threadpool(
        services(request).index.changes,
        start,
        end,
        offset,
        limit,
        include_metadata,
    )
    return JSONResponse([_json(entry, include_metadata) for entry in entries])


async def latest_change(request: Request) -> Response:
    given = _parameters(request, _LATEST_PARAMETERS)
    include_metadata = _include_metadata(given.get("includemetadata"))
    entry = await run_in_threadpool(
        services(request).index.latest_change, include_metadata
    )
    if entry is None:
        return JSONResponse(None)
    return JSONResponse(_json(entry, include_metadata))


routes = [
    Route("/changefeed", change_feed, methods=["GET"]),
    Route("/changefeed/latest", latest_change, methods=["GET"]),
]
