"""Helpers every DICOMweb endpoint shares: the services, URLs and responses."""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .config import Settings
from .errors import BadRequest
from .index import SqlIndex
from .storage import FolderStore

DICOM_JSON = "application/dicom+json"

# The query string of a DICOMweb request: its length in bytes (as sent,
# percent-encoded) and its number of parameters. OHIF and dicomweb-client
# send a few hundred bytes and fewer than 15 parameters; the limits bound the
# work a crafted URL can cause (docs/conformance.md "Limits").
MAX_QUERY_BYTES = 8 * 1024
MAX_QUERY_PARAMETERS = 100

Endpoint = Callable[[Request], Awaitable[Response]]

# DICOMweb resources choose their representation by Accept (PS3.18 §8.7), so a
# cache must key on it (RFC 9110 §12.5.5); the CORS layer merges its own names.
VARY_ACCEPT = {"Vary": "Accept"}


@dataclass
class Services:
    """What the endpoints work with; one per process, on ``app.state.services``."""

    settings: Settings
    index: SqlIndex
    store: FolderStore


def services(request: Request) -> Services:
    return request.app.state.services


def _trusted(request: Request, proxies: list[str]) -> bool:
    if request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if peer in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def _forwarded(request: Request) -> tuple[str | None, str | None]:
    """Host and scheme from ``Forwarded`` (RFC 7239) or ``X-Forwarded-*``."""
    forwarded = request.headers.get("forwarded")
    if forwarded:
        first = forwarded.split(",")[0]
        pairs = dict(
            item.strip().split("=", 1) for item in first.split(";") if "=" in item
        )
        host = pairs.get("host", "").strip('"') or None
        proto = pairs.get("proto", "").strip('"') or None
        return host, proto
    host = request.headers.get("x-forwarded-host")
    proto = request.headers.get("x-forwarded-proto")
    return (
        host.split(",")[0].strip() if host else None,
        proto.split(",")[0].strip() if proto else None,
    )


def base_url(request: Request) -> str:
    """The public address of the server's root, without a trailing slash.

    A configured ``public_base_url`` wins; otherwise forwarding headers are
    honoured only from trusted proxies (loopback by default), so a client
    cannot make the server advertise somebody else's host.
    """
    settings = services(request).settings.server
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")

    scheme = request.url.scheme
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    if _trusted(request, settings.trusted_proxies):
        fwd_host, fwd_proto = _forwarded(request)
        host = fwd_host or host
        scheme = fwd_proto or scheme
    return f"{scheme}://{host}"


def dicomweb_root(request: Request) -> str:
    """The DICOMweb root the request came in on, e.g. ``https://pacs/v2``."""
    prefix = "/v1" if request.url.path.startswith("/v1/") else "/v2"
    return base_url(request) + prefix


def dicom_json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(
        payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return Response(
        body.encode("utf-8"),
        status_code=status_code,
        media_type=DICOM_JSON,
        headers={**VARY_ACCEPT, **(headers or {})},
    )


def check_query(request: Request) -> None:
    """400 when the query string is over MAX_QUERY_BYTES or holds more than
    MAX_QUERY_PARAMETERS parameters; the message names the limit."""
    query: bytes = request.scope.get("query_string", b"")
    if len(query) > MAX_QUERY_BYTES:
        raise BadRequest(
            f"the query string is {len(query)} bytes, over the limit of "
            f"{MAX_QUERY_BYTES} bytes (dicomhub.web.MAX_QUERY_BYTES); send "
            "fewer or shorter parameters"
        )
    count = len(request.query_params.multi_items())
    if count > MAX_QUERY_PARAMETERS:
        raise BadRequest(
            f"the query string holds {count} parameters, over the limit of "
            f"{MAX_QUERY_PARAMETERS} (dicomhub.web.MAX_QUERY_PARAMETERS); send "
            "fewer parameters, for example includefield values joined by commas"
        )


def bounded(endpoint: Endpoint) -> Endpoint:
    """`endpoint`, answering 400 first when the query string is over the limits
    of `check_query`."""

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        check_query(request)
        return await endpoint(request)

    return checked
