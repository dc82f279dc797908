"""The ASGI application: the layers around the DICOMweb routes.

From the outside in (docs/cors.md §6):

1. access log: one line for every request, preflights included;
   then the Host check, which refuses names of other servers (DNS rebinding);
   then the security headers (nosniff; CSP on the admin page);
2. CORS: answers preflights before routing and authentication, and puts the
   policy's headers on every other response, errors and 500s included; just
   inside it, the cookie check against cross-site forms (dicomhub.csrf);
3. Starlette's server-error layer: an unhandled exception becomes a plain 500;
4. authorisation: the one place that decides who may do what;
5. the routes, whose DicomhubError exceptions become 4xx answers.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pydicom.config
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from .accesslog import AccessLogMiddleware
from .admin import LiveCorsSettings, admin_routes
from .auth import (
    AuthorizationMiddleware,
    Authorizer,
    OpenAccess,
    authorizer_from_settings,
)
from .config import ConfigError, ServerSettings, Settings
from .cors import CORSMiddleware, PolicyHolder, parse_cors_settings
from .cors.store import CorsSettingStore
from .csrf import CSRFMiddleware
from .errors import DicomhubError
from .hosts import HostCheckMiddleware, allowed_hosts, is_loopback_address
from .index import SqlIndex
from .secheaders import SecurityHeadersMiddleware
from .services import changefeed, delete, qido, stow, wado
from .storage import FolderStore
from .web import Services, bounded, services

logger = logging.getLogger(__name__)


async def health(request: Request) -> Response:
    svc = services(request)
    try:
        svc.index.check()
        svc.store.check()
    except Exception as exc:  # any failure means "not healthy"
        logger.warning("health check failed: %s", type(exc).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def dicomhub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DicomhubError)
    return PlainTextResponse(exc.message, status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = (
            "dicomhub serves no resource at this path; DICOMweb resources are "
            "under /v2 (or /v1), as listed in docs/dicomweb.md"
        )
    elif exc.status_code == 405:
        message = f"{request.method} is not supported on this resource"
    else:
        message = str(exc.detail)
    return PlainTextResponse(message, status_code=exc.status_code, headers=exc.headers)


def quiet_pydicom() -> None:
    """Keep attribute values out of the log.

    pydicom reports odd values (with the value itself) through its logger and
    the warnings module; a stored value may be a patient's name. The server
    keeps bytes as received, so it reads without value validation. A decoder
    that rejects a frame logs its traceback at ERROR before pydicom raises;
    dicomhub answers that error itself (a 406 naming only the exception's
    type), so pydicom's logger is silenced at every level.
    """
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")


def dicomweb_routes() -> list[Route]:
    """The transactions' routes, one per path (PS3.18 §10 resources).

    STOW, QIDO, WADO and DELETE share paths such as ``/studies/{study}``; a path
    served by several modules becomes one route that dispatches on the method,
    so the router's 405 answer lists every method the path allows.
    """
    by_path: dict[str, list[Route]] = {}
    for route in [
        *stow.routes,
        *qido.routes,
        *wado.routes,
        *delete.routes,
        *changefeed.routes,
    ]:
        # Every transaction refuses an oversized query string first
        # (dicomhub.web.check_query), a route added later included.
        checked = Route(route.path, bounded(route.endpoint), methods=route.methods)
        by_path.setdefault(route.path, []).append(checked)
    return [
        group[0] if len(group) == 1 else _dispatching(path, group)
        for path, group in by_path.items()
    ]


def _dispatching(path: str, group: list[Route]) -> Route:
    handlers: dict[str, Any] = {}
    for route in group:
        for method in route.methods or ():
            handlers[method] = route.endpoint

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return Route(path, dispatch, methods=sorted(handlers))


def listens_on_loopback(host: str) -> bool:
    """Whether `host`, the address to listen on, is reachable from this
    machine only (127.0.0.0/8, ::1, "localhost")."""
    return is_loopback_address(
        host.strip().lower().removeprefix("[").removesuffix("]")
    )


def check_open_access(server: ServerSettings, authorizer: Authorizer) -> None:
    """Refuse to listen beyond loopback without authentication, unless asked to.

    Without [auth] every client that reaches the port may read, store, delete
    and reconfigure; on loopback that is this machine's users, elsewhere it is
    the network. Raises ConfigError, which ``dicomhub serve`` turns into exit 2.
    """
    if not isinstance(authorizer, OpenAccess) or listens_on_loopback(server.host):
        return

    if not server.allow_open_access:
        raise ConfigError(
            "server.host",
            server.host,
            "not a loopback address, and [auth] configures no authentication, so "
            "anyone who reaches the port could read, store and delete; configure "
            "[auth] (api_keys or issuer, docs/configuration.md), or, to run open "
            "on purpose, set [server] allow_open_access = true "
            "(DICOMHUB_SERVER_ALLOW_OPEN_ACCESS=true, or "
            "'dicomhub serve --allow-open-access')",
        )
    logger.warning(
        "open access on %s: [auth] configures no authentication and "
        "allow_open_access is true, so anyone who reaches the port can read, "
        "store and delete every instance, and change the CORS settings; "
        "configure [auth] to require tokens",
        server.host,
    )


def create_app(settings: Settings, authorizer: Authorizer | None = None) -> ASGIApp:
    """Build the application; raises ConfigError on an invalid setting."""
    quiet_pydicom()
    if authorizer is None:
        authorizer = authorizer_from_settings(settings.auth)
        if not isinstance(authorizer, OpenAccess):
            logger.info(
                "authentication is on: requests need 'Authorization: Bearer <token>'"
            )
    check_open_access(settings.server, authorizer)
    policy, warnings = parse_cors_settings(settings.cors)
    for warning in warnings:
        logger.warning("%s", warning)
    holder = PolicyHolder(policy)

    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    svc = Services(
        settings=settings,
        index=SqlIndex(settings.index_url),
        store=FolderStore(settings.blob_dir),
    )

    # Settings stored through the admin API win over the [cors] table; the
    # lifespan task follows later changes made on any process (docs/admin.md).
    live = LiveCorsSettings(holder, policy, CorsSettingStore(svc.index.engine))
    live.load()

    routes = dicomweb_routes()
    app = Starlette(
        routes=[
            Route("/health", health),
            *admin_routes(),
            Mount("/v2", routes=routes),
            Mount("/v1", routes=routes),
        ],
        middleware=[Middleware(AuthorizationMiddleware, authorizer=authorizer)],
        exception_handlers={DicomhubError: dicomhub_error, HTTPException: http_error},
        lifespan=live.lifespan,
    )
    app.state.services = svc
    app.state.cors = holder
    app.state.cors_settings = live
    hosts = allowed_hosts(settings.server)
    if hosts is None:
        logger.warning(
            "listening on %s with no allowed_hosts: any Host header is accepted; "
            "list this server's names in [server] allowed_hosts to refuse DNS "
            "rebinding",
            settings.server.host,
        )
    # Outermost first: the access log (unless turned off), the Host check
    # (none when any Host is accepted: one layer less for every request), the
    # security headers, CORS, then the cookie check (docs/security.md).
    inner: ASGIApp = CSRFMiddleware(app, holder, settings.server.public_base_url)
    inner = CORSMiddleware(inner, holder)
    inner = SecurityHeadersMiddleware(inner)
    if hosts is not None:
        inner = HostCheckMiddleware(inner, hosts)
    if not settings.server.access_log:
        return inner
    return AccessLogMiddleware(inner)
