"""QIDO-RS: search for studies, series and instances (PS3.18 §10.6).

All six resources answer, under /v2 and /v1 alike: /studies, /series,
/instances, /studies/{study}/series, /studies/{study}/instances and
/studies/{study}/series/{series}/instances. The answer is DICOM JSON
(PS3.18 Annex F); a search without matches is ``200 []``, which every client
reads as "nothing found" (PS3.18 §8.3.4.4.1 allows 204, which some do not).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import BadRequest, NotAcceptable
from ..index.query import run_search
from ..qido.keys import Level
from ..qido.params import parse_search
from ..qido.results import build_item, return_fields
from ..qido.warning import search_warnings
from ..web import (
    DICOM_JSON,
    base_url,
    dicom_json_response,
    dicomweb_root,
    services,
)

# Media ranges under which application/dicom+json is acceptable; the XML
# representation (multipart/related; type="application/dicom+xml") is not
# offered.
_ACCEPTABLE = frozenset({DICOM_JSON, "application/json", "application/*", "*/*"})


def _quality(params: list[str]) -> float:
    """The q weight of a media range (RFC 9110 §12.4.2); 1 when absent."""
    for param in params:
        name, _, weight = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(weight)
            except ValueError:
                return 1.0
    return 1.0


def _check_accept(request: Request) -> None:
    """406 unless the client takes DICOM JSON (PS3.18 §8.7.5, §10.6.3.2)."""
    ranges = [request.headers.get("accept", "")]
    ranges += request.query_params.getlist("accept")
    offered = [item for value in ranges for item in value.split(",") if item.strip()]
    if not offered:
        return
    for item in offered:
        media_type, *params = (part.strip() for part in item.split(";"))
        if media_type.lower() in _ACCEPTABLE and _quality(params) > 0:
            return
    raise NotAcceptable(
        "search results are offered as application/dicom+json only; "
        "send Accept: application/dicom+json"
    )


# includefield values in one search, repeated or comma-separated (PS3.18
# §8.3.4.3); a viewer names a dozen, and "all" is one.
MAX_INCLUDEFIELD = 256


def _check_includefield(items: list[tuple[str, str]]) -> None:
    count = sum(
        len([item for item in value.split(",") if item.strip()])
        for name, value in items
        if name == "includefield"
    )
    if count > MAX_INCLUDEFIELD:
        raise BadRequest(
            f"includefield names {count} attributes, over the limit of "
            f"{MAX_INCLUDEFIELD} (dicomhub.services.qido.MAX_INCLUDEFIELD); "
            "use includefield=all for every attribute the index keeps"
        )


def _warning_agent(request: Request) -> str:
    return urlsplit(base_url(request)).netloc


def _searcher(level: Level) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of the search resources whose results are `level` entities."""

    async def search(request: Request) -> Response:
        _check_accept(request)
        items = request.query_params.multi_items()
        _check_includefield(items)
        query = parse_search(
            level,
            request.path_params.get("study"),
            request.path_params.get("series"),
            items,
        )
        fields = return_fields(query)
        page = await run_in_threadpool(
            run_search,
            services(request).index.engine,
            query,
            study_aggregates=fields.study_aggregates,
            series_aggregates=fields.series_aggregates,
        )

        root = dicomweb_root(request)
        items = [build_item(found, fields, page, root) for found in page.found]

        # PS3.18 §8.3.4: what was asked for but not done is said in a Warning,
        # one warning-value each, in one comma-separated field (RFC 9110 §5.3).
        texts = search_warnings(query, fields)
        if page.more:
            # PS3.18 §8.3.4.4.1: matches remain past this page (because of
            # the limit or the server's cap); the client pages on with offset.
            texts.append("There are additional results that can be requested")
        agent = _warning_agent(request)
        headers = {}
        if texts:
            headers["Warning"] = ", ".join(f'299 {agent}: "{text}"' for text in texts)
        return dicom_json_response(items, headers=headers)

    search.__name__ = f"search_for_{level}"
    return search


routes = [
    Route("/studies", _searcher("study"), methods=["GET"]),
    Route("/series", _searcher("series"), methods=["GET"]),
    Route("/instances", _searcher("instance"), methods=["GET"]),
    Route("/studies/{study}/series", _searcher("series"), methods=["GET"]),
    Route("/studies/{study}/instances", _searcher("instance"), methods=["GET"]),
    Route(
        "/studies/{study}/series/{series}/instances",
        _searcher("instance"),
        methods=["GET"],
    ),
]
