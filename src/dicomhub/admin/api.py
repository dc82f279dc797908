"""``/admin/cors``: read, replace and hand back the CORS settings (docs/admin.md).

The body is the Azure DICOM service's CORS JSON (`CorsPolicy.to_azure_json`):
``origins``, ``headers``, ``methods``, ``maxAge``, ``allowCredentials``, plus
our ``exposeHeaders`` and ``allowPrivateNetwork``; nothing else, so that a
client can PUT back what it read. What is not a setting travels in headers:

- ``ETag: "N"``: the version of the settings in force in this process (0:
  the configured ones, as at a start);
- ``Last-Modified``: when that version was written;
- ``Dicomhub-Cors-Source``: ``admin`` (set through this API) or ``config``
  (the configuration file and environment);
- ``Dicomhub-Cors-Stored: invalid``: the index holds settings that cannot be
  used and are not in force (a ``Warning`` says why);
- ``Warning: 299 dicomhub "..."``: the validator's warnings on a PUT, each
  distinct one once and at most `MAX_WARNING_FIELDS` fields (RFC 9111 §5.5
  syntax; non-ASCII characters as ``\\xNN``/``\\uNNNN``); the audit line
  lists them all.

Refusals of PUT and DELETE are JSON ``{"message": ...}``; a setting the
validator refuses adds ``key``, ``value`` and ``rule``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Awaitable, Sequence
from email.utils import format_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..cors import CorsConfigError, CorsPolicy
from ..cors.origin import OriginError, normalise_origin
from ..cors.store import SettingConflict
from ..errors import (
    BadRequest,
    Conflict,
    DicomhubError,
    Forbidden,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from ..mediatypes import parse_media_type
from ..web import services
from . import audit, openapi
from .live import LiveCorsSettings

WHAT = "CORS settings"

T = TypeVar("T")

# The largest settings body accepted; a few hundred origins fit easily.
MAX_BODY_BYTES = 64 * 1024

# The settings are an object of lists of strings; deeper nesting is a mistake,
# and the JSON parser and the validator are recursive.
MAX_DEPTH = 8

# Warning fields on one answer, and characters of text in each: the whole
# header block stays under 4 KiB, the smallest limit in common use (nginx's
# default proxy_buffer_size for an upstream's header on 4 KiB pages).
MAX_WARNING_FIELDS = 10
MAX_WARNING_CHARS = 300


def live_settings(request: Request) -> LiveCorsSettings:
    return request.app.state.cors_settings


async def get_cors(request: Request) -> Response:
    return _settings_response(live_settings(request))


async def put_cors(request: Request) -> Response:
    """Replace the settings (all of them: a key left out takes its default)."""
    live = live_settings(request)
    try:
        _refuse_other_sites(request)
        data = await _json_body(request)
        policy, warnings = CorsPolicy.from_azure_json(data)
        old, new = await _stored(live.replace(policy))
    except CorsConfigError as exc:
        return _refusal(request, _invalid(exc))
    except DicomhubError as exc:
        return _refusal(request, exc)

    distinct = _distinct(warnings)
    audit.changed(
        request, WHAT, old, policy.to_azure_json(), new.version, warnings=distinct
    )
    return _settings_response(live, distinct)


async def delete_cors(request: Request) -> Response:
    """Hand the settings back to the configuration file and environment."""
    live = live_settings(request)
    try:
        _refuse_other_sites(request)
        old, new = await _stored(live.reset())
    except DicomhubError as exc:
        return _refusal(request, exc)

    audit.changed(request, WHAT, old, live.configured.to_azure_json(), new.version)
    return _settings_response(live)


async def _stored(change: Awaitable[T]) -> T:
    """Await a write to the index, its failures turned into answers."""
    try:
        return await change
    except SettingConflict as exc:
        raise Conflict(str(exc)) from None
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"the index did not answer ({type(exc).__name__}); the settings were "
            "not changed; try again when GET /health answers 200"
        ) from None


def _refuse_other_sites(request: Request) -> None:
    """Changes come from this server's own page or from outside a browser.

    A page on another site could otherwise change the settings through the
    visitor's browser whenever the CORS settings let it send a PUT (with
    ``origins = ["*"]`` and ``methods = ["*"]``, for instance). Browsers say
    where a request comes from in ``Sec-Fetch-Site`` (Fetch Metadata) and, for
    a PUT or DELETE, in ``Origin``; scripts and curl send neither.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None:
        if site in ("same-origin", "none"):
            return
    elif origin is None or _same_origin(origin, request):
        return
    raise Forbidden(
        "the admin API takes changes only from this server's own page "
        f"(/admin/) or from outside a browser; this request came from "
        f"{'another site' if origin is None else repr(origin[:200])}"
    )


def _same_origin(origin: str, request: Request) -> bool:
    try:
        return normalise_origin(origin) == normalise_origin(_own_origin(request))
    except OriginError:
        return False


def _own_origin(request: Request) -> str:
    """This server's origin (RFC 6454 §4) as the browser addressed it.

    ``public_base_url`` when configured; otherwise the scheme of the connection
    and the ``Host`` header (RFC 9110 §7.2). Never ``Forwarded`` nor
    ``X-Forwarded-*``: a page may send those through a passing preflight, and
    a browser on this machine connects from loopback, a trusted proxy.
    """
    public = services(request).settings.server.public_base_url
    if public:
        own = urlsplit(public)
        return f"{own.scheme}://{own.netloc}"
    host = request.headers.get("host") or request.url.netloc
    return f"{request.url.scheme}://{host}"


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type")
    if content_type is None or parse_media_type(content_type).type != (
        "application/json"
    ):
        raise UnsupportedMediaType(
            f"the body must be application/json, not {content_type or 'untyped'}: "
            "send the settings as GET /admin/cors returns them"
        )

    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"the settings body is over {MAX_BODY_BYTES} bytes; list fewer "
                "origins or headers"
            )
    too_deep = BadRequest(
        f"the body nests lists or objects more than {MAX_DEPTH} deep; the settings "
        "are one JSON object whose values are lists of strings, numbers or booleans"
    )
    try:
        data = json.loads(
            bytes(body),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise too_deep from None
    if _depth(data) > MAX_DEPTH:
        raise too_deep

    # RFC 8259 §8.2: a lone surrogate escape ("\ud800") names no character;
    # Python keeps it, and no answer could repeat it in UTF-8.
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "the body is not JSON text of Unicode characters: a \\uD800-\\uDFFF "
            "escape stands alone; send each character whole"
        ) from None
    return data


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (0 for a scalar), without
    recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in item)
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 §4 leaves duplicate names to the reader; refusing is safest.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the name {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    # RFC 8259 §6 leaves out numbers beyond the double range; Python makes them
    # infinite, which no answer could carry.
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number is beyond the range of a double")
    return value


class _Invalid(BadRequest):
    """A setting the validator refused: key, value and rule kept apart."""

    def __init__(self, key: str, value: Any, rule: str):
        super().__init__(f"{key} = {_json_text(value)}: {rule}")
        self.fields = {"key": key, "value": value, "rule": rule}


def _invalid(exc: CorsConfigError) -> _Invalid:
    return _Invalid(exc.key, exc.value, exc.rule)


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _refusal(request: Request, exc: DicomhubError) -> Response:
    audit.refused(request, WHAT, exc.status, exc.message)
    body: dict[str, Any] = {"message": exc.message}
    if isinstance(exc, _Invalid):
        body.update(exc.fields)
    return JSONResponse(
        body,
        status_code=exc.status,
        headers={**exc.headers, "Cache-Control": "no-store"},
    )


def _distinct(warnings: Sequence[str]) -> list[str]:
    """Each warning once, in order, with how often it was given."""
    counts = Counter(warnings)
    return [
        text if counts[text] == 1 else f"{text} ({counts[text]} times)"
        for text in dict.fromkeys(warnings)
    ]


def _settings_response(
    live: LiveCorsSettings, warnings: Sequence[str] = ()
) -> Response:
    """The settings in force here; the headers describe them (module docstring)."""
    body = json.dumps(live.policy.to_azure_json(), ensure_ascii=False)
    response = Response(body.encode("utf-8"), media_type="application/json")
    response.headers["ETag"] = f'"{live.version}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Dicomhub-Cors-Source"] = "admin" if live.from_admin else "config"
    if live.updated_at is not None:
        response.headers["Last-Modified"] = format_datetime(
            live.updated_at, usegmt=True
        )

    notes = list(warnings)
    if live.stored_problem is not None:
        response.headers["Dicomhub-Cors-Stored"] = "invalid"
        notes.insert(
            0,
            f"the settings stored in the index (version {_label(live.seen)}) are "
            f"not valid and not in force ({live.stored_problem}); a PUT or DELETE "
            "replaces them",
        )
    if len(notes) > MAX_WARNING_FIELDS:
        more = len(notes) - MAX_WARNING_FIELDS + 1
        notes[MAX_WARNING_FIELDS - 1 :] = [
            f"... and {more} more warnings; the audit log lists them all"
        ]
    for note in notes:
        response.headers.append("Warning", f"299 dicomhub {_quoted(note)}")
    return response


def _label(version: int | None) -> str:
    return "unreadable" if version is None else str(version)


def _quoted(text: str) -> str:
    """An RFC 9110 §5.6.4 quoted-string of `text`, in ASCII, of at most
    `MAX_WARNING_CHARS` characters between the quotes ("..." where cut)."""
    pieces = [
        char.encode("ascii", "backslashreplace")
        .decode("ascii")
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        for char in text
    ]
    if sum(map(len, pieces)) > MAX_WARNING_CHARS:
        # Cut between characters, so that no escape sequence is split.
        kept: list[str] = []
        size = 0
        for piece in pieces:
            if size + len(piece) > MAX_WARNING_CHARS - 3:
                break
            kept.append(piece)
            size += len(piece)
        pieces = [*kept, "..."]
    return '"' + "".join(pieces) + '"'


_BY_METHOD = {"GET": get_cors, "HEAD": get_cors, "PUT": put_cors, "DELETE": delete_cors}


async def cors_settings(request: Request) -> Response:
    return await _BY_METHOD[request.method](request)


# One route for the path, so that the router's 405 lists every method.
routes = [
    Route("/admin/cors", cors_settings, methods=["GET", "PUT", "DELETE"]),
    # This API's OpenAPI 3.0 description (admin/openapi.py).
    Route("/admin/openapi.json", openapi.openapi_json, methods=["GET"]),
]
