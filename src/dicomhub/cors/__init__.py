"""CORS as the Azure DICOM service configures it (placeholder, being written)."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


class PolicyHolder:
    def __init__(self, policy: Any):
        self.current = policy

    def replace(self, policy: Any) -> None:
        self.current = policy


def parse_cors_settings(raw: dict[str, Any]) -> tuple[Any, list[str]]:
    return dict(raw), []


class CORSMiddleware:
    def __init__(self, app: ASGIApp, holder: PolicyHolder):
        self.app = app
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
