"""The one place where requests are authorised.

Every request that reaches routing passes `AuthorizationMiddleware`, which maps
it to an action of the Azure DICOM service's data roles (read, write, delete)
or to admin, and asks the configured `Authorizer`. Preflights never get here:
the CORS layer answers them first, since they carry no credentials (Fetch,
#cors-protocol-and-credentials).
"""

from __future__ import annotations

import enum
import hmac
import logging
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import ConfigError
from .errors import DicomhubError, Unauthorized

audit_logger = logging.getLogger("dicomhub.audit")


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"
    PUBLIC = "public"


def action_for(method: str, path: str) -> Action:
    # The admin page's files hold no data; the API calls they make are checked.
    if path == "/health" or path == "/admin/" or path.startswith("/admin/static/"):
        return Action.PUBLIC
    if path.startswith("/admin"):
        return Action.ADMIN
    if method in ("POST", "PUT"):
        return Action.WRITE
    if method == "DELETE":
        return Action.DELETE
    return Action.READ


SUBJECT = "dicomhub.subject"


def subject(request: Request) -> str:
    """Who sent `request`, as the audit log names them: the API key's name, or
    "anonymous" when authentication is off."""
    return request.scope.get(SUBJECT, "anonymous")


class Authorizer(Protocol):
    def authorize(self, request: Request, action: Action) -> None:
        """Return if allowed; raise Unauthorized (401) or Forbidden (403)."""


class OpenAccess:
    """No authentication: every request may do everything. The server listens
    on loopback by default for that reason."""

    def authorize(self, request: Request, action: Action) -> None:
        return None


class ApiKeys:
    """Static API keys sent as bearer tokens (RFC 6750 §2.1).

    Every valid key may do everything; roles and OpenID Connect tokens are
    not offered yet. Keys are compared in constant time.
    """

    def __init__(self, keys: dict[str, str]):
        self._keys = [(name, key.encode()) for name, key in keys.items()]

    def authorize(self, request: Request, action: Action) -> None:
        if action is Action.PUBLIC:
            return

        # RFC 6750 §3: a missing token gets a bare challenge; a wrong one says
        # invalid_token, so a browser app knows to fetch a new one.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not scheme:
            raise Unauthorized(
                "this server needs an API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="dicomhub"'},
            )
        given = token.strip().encode()
        for name, key in self._keys:
            if scheme.lower() == "bearer" and hmac.compare_digest(given, key):
                request.scope[SUBJECT] = name
                return
        raise Unauthorized(
            "the bearer token is not a valid API key of this server",
            headers={
                "WWW-Authenticate": 'Bearer realm="dicomhub", error="invalid_token"'
            },
        )


def authorizer_from_settings(raw: dict[str, Any]) -> Authorizer:
    """The authorizer the ``[auth]`` table asks for; OpenAccess when empty.

    ``api_keys`` is a table of name = key, or a list of keys (named key-1, ...).
    """
    for name in raw:
        if name != "api_keys":
            raise ConfigError(
                f"auth.{name}", raw[name], "unknown key; expected api_keys"
            )
    given = raw.get("api_keys")
    if not given:
        return OpenAccess()

    if isinstance(given, list):
        given = {f"key-{number}": key for number, key in enumerate(given, 1)}
    if not isinstance(given, dict):
        raise ConfigError("auth.api_keys", "...", "must be a table or a list of keys")
    for name, key in given.items():
        # The value is never echoed: it is a secret.
        if not isinstance(key, str) or len(key) < 16 or not key.isprintable():
            raise ConfigError(
                f"auth.api_keys.{name}",
                "(hidden)",
                "a key must be text of at least 16 printable characters",
            )
        if " " in key:
            raise ConfigError(f"auth.api_keys.{name}", "(hidden)", "no spaces in a key")
    return ApiKeys(given)


class AuthorizationMiddleware:
    def __init__(self, app: ASGIApp, authorizer: Authorizer):
        self.app = app
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request = Request(scope)
        action = action_for(request.method, scope["path"])
        try:
            self.authorizer.authorize(request, action)
        except DicomhubError as exc:
            if action is Action.ADMIN:
                # Every refused settings request is audited, guesses included.
                audit_logger.info(
                    "refused %s %s from %s: %d %s",
                    request.method,
                    scope["path"],
                    request.client.host if request.client else "-",
                    exc.status,
                    exc.message,
                )
            response = PlainTextResponse(
                exc.message, status_code=exc.status, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
