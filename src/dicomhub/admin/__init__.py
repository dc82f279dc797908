"""Administration: the CORS settings changed while the server runs.

`LiveCorsSettings` keeps the policy in force in step with the index (every
process sharing it follows a change within about a second); ``api`` serves
``/admin/cors``, ``page`` the form at ``/admin/``, ``audit`` logs each change.
docs/admin.md describes all of it.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import api, page
from .live import LiveCorsSettings

__all__ = ["LiveCorsSettings", "admin_routes"]


def admin_routes() -> list[BaseRoute]:
    return [*api.routes, *page.routes]
