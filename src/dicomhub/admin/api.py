"""``/admin/cors``: read, replace and hand back the CORS settings (docs/admin.md).

The body is the Azure DICOM service's CORS JSON (`CorsPolicy.to_azure_json`):
``origins``, ``headers``, ``methods``, ``maxAge``, ``allowCredentials``, plus
our ``exposeHeaders`` and ``allowPrivateNetwork``; nothing else, so that a
client can PUT back what it read. What is not a setting travels in headers:

- ``ETag: "N"``: the version of the stored settings (0: never set here);
- ``Last-Modified``: when that version was written;
- ``Dicomhub-Cors-Source``: ``admin`` (set through this API) or ``config``
  (the configuration file and environment);
- ``Warning: 299 dicomhub "..."``: one per validator warning on a PUT
  (RFC 9111 §5.5 syntax; non-ASCII characters as ``\\xNN``/``\\uNNNN``).

Refusals of PUT and DELETE are JSON ``{"message": ...}``; a setting the
validator refuses adds ``key``, ``value`` and ``rule``.
"""

from __future__ import annotations

import json
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
from ..web import base_url
from . import audit
from .live import LiveCorsSettings

WHAT = "CORS settings"

T = TypeVar("T")

# The largest settings body accepted; a few hundred origins fit easily.
MAX_BODY_BYTES = 64 * 1024


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

    audit.changed(request, WHAT, old, policy.to_azure_json(), new.version)
    return _settings_response(live, warnings)


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
    own = urlsplit(base_url(request))
    try:
        return normalise_origin(origin) == normalise_origin(
            f"{own.scheme}://{own.netloc}"
        )
    except OriginError:
        return False


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
    try:
        return json.loads(
            bytes(body), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None


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


def _settings_response(
    live: LiveCorsSettings, warnings: Sequence[str] = ()
) -> Response:
    body = json.dumps(live.policy.to_azure_json(), ensure_ascii=False)
    response = Response(body.encode("utf-8"), media_type="application/json")
    response.headers["ETag"] = f'"{live.version}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Dicomhub-Cors-Source"] = "admin" if live.from_admin else "config"
    if live.updated_at is not None:
        response.headers["Last-Modified"] = format_datetime(
            live.updated_at, usegmt=True
        )
    for warning in warnings:
        response.headers.append("Warning", f"299 dicomhub {_quoted(warning)}")
    return response


def _quoted(text: str) -> str:
    """An RFC 9110 §5.6.4 quoted-string of `text`, in ASCII."""
    ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = ascii_text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_BY_METHOD = {"GET": get_cors, "HEAD": get_cors, "PUT": put_cors, "DELETE": delete_cors}


async def cors_settings(request: Request) -> Response:
    return await _BY_METHOD[request.method](request)


# One route for the path, so that the router's 405 lists every method.
routes = [Route("/admin/cors", cors_settings, methods=["GET", "PUT", "DELETE"])]
