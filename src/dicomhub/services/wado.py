"""wado endpoints (filled in by its own module work)."""

from starlette.routing import Route

routes: list[Route] = []
