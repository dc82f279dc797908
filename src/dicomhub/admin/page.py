"""The admin page, ``/admin/``: static HTML, JavaScript and CSS, no build step.

The files live in ``dicomhub/static/admin`` and load nothing from elsewhere;
the page talks to ``/admin/cors`` only. Its answers carry a Content Security
Policy that allows exactly that (W3C CSP Level 3) and refuse being framed by
other pages, so no other site can overlay the form and trick a click on Save;
those headers are set with every other security header in
`dicomhub.secheaders`.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent.parent / "static" / "admin"

PAGE_HEADERS = {
    # Revalidate, so that a newer dicomhub's page is never mixed with old files.
    "Cache-Control": "no-cache",
}


async def admin_page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


class _WithPageHeaders:
    """Adds `PAGE_HEADERS` to every answer of the wrapped application."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in PAGE_HEADERS.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), *self.extra],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)


routes: list[BaseRoute] = [
    Route("/admin/", admin_page, methods=["GET"]),
    Mount("/admin/static", app=_WithPageHeaders(StaticFiles(directory=STATIC))),
]
