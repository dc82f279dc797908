"""Security headers on every answer, in one place.

``X-Content-Type-Options: nosniff`` goes on every answer, preflights and
errors included: a browser then takes ``Content-Type`` as given and never runs
a stored DICOM file or a text/plain error as a script or a page (Fetch,
"X-Content-Type-Options" header; "should response to request be blocked due
to nosniff?").

The admin page and its files (``/admin/`` and ``/admin/static/...``) are
the only HTML dicomhub serves, so only they get a Content Security Policy (W3C
CSP Level 3) that allows scripts, styles, images and connections from this
server alone, no ``<base>``, no form submission and no framing
(``frame-ancestors 'none'``, with ``X-Frame-Options: DENY`` for browsers
without CSP, RFC 7034), and ``Referrer-Policy: no-referrer`` (W3C Referrer
Policy §3.1). DICOMweb answers are data, not pages, and get nosniff only.

The header tuples are built once; a request costs one path test and one list
copy. A preflight answered by the CORS layer passes through here too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]

ADMIN_PAGE = "/admin/"
ADMIN_STATIC = "/admin/static/"

ADMIN_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

EVERY_ANSWER: tuple[Header, ...] = ((b"x-content-type-options", b"nosniff"),)
ADMIN_ANSWER: tuple[Header, ...] = (
    *EVERY_ANSWER,
    (b"content-security-policy", ADMIN_CSP.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def headers_for(path: str) -> tuple[Header, ...]:
    """The security headers of an answer to `path`."""
    if path == ADMIN_PAGE or path.startswith(ADMIN_STATIC):
        return ADMIN_ANSWER
    return EVERY_ANSWER


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        extra = headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Appended, not merged: no inner layer sets these fields (they
                # are set here only), so none is ever sent twice.
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
