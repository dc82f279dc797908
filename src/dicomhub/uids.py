"""UID syntax checks (PS3.5 §9.1), done before a UID touches a path or a query."""

from __future__ import annotations

import re

from starlette.requests import Request

from .errors import BadRequest

# PS3.5 §9.1: components of digits separated by '.', no leading zero in a
# multi-digit component, at most 64 characters in all.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(value: str) -> bool:
    return len(value) <= 64 and _UID.match(value) is not None


def check_uid(value: str, name: str) -> str:
    """Return `value` if it is a valid UID, else raise 400 naming the parameter."""
    if not is_valid_uid(value):
        raise BadRequest(
            f"{name} is not a valid UID (PS3.5 §9.1: digits and dots, at most "
            "64 characters); check the URL"
        )
    return value


def path_uids(request: Request) -> tuple[str, str | None, str | None]:
    """The study, series and SOP instance UIDs of a DICOMweb URL, each checked."""
    params = request.path_params
    study = check_uid(params["study"], "StudyInstanceUID")
    series = params.get("series")
    sop = params.get("instance")
    if series is not None:
        check_uid(series, "SeriesInstanceUID")
    if sop is not None:
        check_uid(sop, "SOPInstanceUID")
    return study, series, sop
