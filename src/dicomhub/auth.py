"""The one place where requests are authorised.

Every request that reaches routing passes `AuthorizationMiddleware`, which maps
it to an action of the Azure DICOM service's data roles (read, write, delete)
or to admin, and asks the configured `Authorizer`. Preflights never get here:
the CORS layer answers them first, since they carry no credentials (Fetch,
#cors-protocol-and-credentials).
"""

from __future__ import annotations

import enum
from typing import Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import DicomhubError


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"
    PUBLIC = "public"


def action_for(method: str, path: str) -> Action:
    if path == "/health":
        return Action.PUBLIC
    if path.startswith("/admin"):
        return Action.ADMIN
    if method in ("POST", "PUT"):
        return Action.WRITE
    if method == "DELETE":
        return Action.DELETE
    return Action.READ


def subject(request: Request) -> str:
    """Who sent `request`, as the audit log names them.

    There is no authentication yet, so everyone is "anonymous"; once there is,
    this returns the authenticated subject (a token's ``sub``, an API key's
    name), and the audit log follows without a change.
    """
    return "anonymous"


class Authorizer(Protocol):
    def authorize(self, request: Request, action: Action) -> None:
        """Return if allowed; raise Unauthorized (401) or Forbidden (403)."""


class OpenAccess:
    """No authentication: every request may do everything. The server listens
    on loopback by default for that reason."""

    def authorize(self, request: Request, action: Action) -> None:
        return None


class AuthorizationMiddleware:
    def __init__(self, app: ASGIApp, authorizer: Authorizer):
        self.app = app
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request = Request(scope)
        try:
            self.authorizer.authorize(
                request, action_for(request.method, scope["path"])
            )
        except DicomhubError as exc:
            response = PlainTextResponse(
                exc.message, status_code=exc.status, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
