"""Cross-site request forgery, for deployments that authenticate by cookie.

dicomhub never authenticates from cookies. But with ``[cors]
allow_credentials = true`` a reverse proxy in front may do so, and a browser
attaches its cookie to any request to the proxy's site, whichever page sends
it. A page on another site cannot read the answer, but it need not: a form's
POST stores or changes before CORS has a say.

The defence is the ``Origin`` header. A page on another site can send only
"simple" requests without a preflight (Fetch standard, "CORS-safelisted
method" and "CORS-safelisted request-header"), such as a form's POST, and the
browser sets ``Origin`` on every request whose method is not GET or HEAD
(Fetch, "append a request `Origin` header"); a script cannot forge it. So an
unsafe request (RFC 9110 §9.2.1) that carries a cookie must name, in
``Origin``, an origin the policy allows or this server's own; anything else,
no ``Origin`` included, gets 403 (OWASP CSRF Prevention Cheat Sheet,
"Verifying Origin with standard headers").

Only while the policy in force allows credentials: the holder is read at each
request, as the CORS layer does, so a change through the admin API applies
to the next request. Requests without a cookie, from scripts and curl for
instance, are never touched.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .cors.middleware import PolicyHolder
from .cors.origin import OriginError, normalise_origin

logger = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
COOKIE = b"cookie"
ORIGIN = b"origin"
HOST = b"host"


class CSRFMiddleware:
    def __init__(
        self, app: ASGIApp, holder: PolicyHolder, public_base_url: str | None = None
    ):
        self.app = app
        self.holder = holder
        # With public_base_url the browser addresses the server by that name,
        # whatever Host the proxy passes on.
        self.public_origin: bytes | None = None
        if public_base_url:
            parts = urlsplit(public_base_url)
            self.public_origin = _normalised(f"{parts.scheme}://{parts.netloc}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or not self.holder.current.allow_credentials
        ):
            await self.app(scope, receive, send)
            return

        cookie = False
        origin: bytes | None = None
        host = b""
        for name, value in scope["headers"]:
            if name == COOKIE:
                cookie = True
            elif name == ORIGIN:
                origin = value if origin is None else origin + b", " + value
            elif name == HOST and not host:
                host = value
        if not cookie or self._trusted(origin, scope, host):
            await self.app(scope, receive, send)
            return

        shown = "none" if origin is None else repr(origin.decode("latin-1")[:200])
        logger.warning(
            "refused a %s with a cookie from origin %s: not an allowed origin",
            scope["method"],
            shown,
        )
        body = (
            f"a {scope['method']} request carrying a cookie must come from a page "
            "of an allowed origin ([cors] origins) or of this server, as its "
            f"Origin header says; its Origin was {shown}. Send it from an allowed "
            "origin, or without cookies (dicomhub authenticates by the "
            "Authorization header)\n"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _trusted(self, origin: bytes | None, scope: Scope, host: bytes) -> bool:
        if origin is None:
            return False
        # Browsers send the serialised origin, as the policy stores them.
        if origin in self.holder.plan.origins:
            return True

        own = scope["scheme"].encode("ascii") + b"://" + host
        if host and origin == own:
            return True
        given = _normalised(origin.decode("latin-1"))
        if given is None:
            return False
        if given == self.public_origin:
            return True
        return host != b"" and given == _normalised(own.decode("latin-1"))


def _normalised(text: str) -> bytes | None:
    try:
        return normalise_origin(text).encode("ascii")
    except (OriginError, UnicodeError):
        return None
