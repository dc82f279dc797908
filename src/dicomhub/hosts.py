"""Refuse requests whose ``Host`` names another server (DNS rebinding).

A web page on ``evil.example`` can re-point its own DNS name at 127.0.0.1; the
browser then sends the page's requests to dicomhub as same-origin requests,
with ``Host: evil.example``, and CORS never applies. Checking the Host header
against the names the server answers to closes that door (RFC 9110 §7.2,
§15.5.20: 421 Misdirected Request).

Loopback names (``localhost``, 127.0.0.0/8, ``::1``) are always accepted. A
server listening on loopback accepts only those, the host of
``public_base_url`` and ``allowed_hosts``; one listening on another address
accepts any Host unless ``allowed_hosts`` lists its names.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import ServerSettings

# Host values (raw bytes, port included) already found acceptable; a browser
# sends the same one on every request. Bounded: loopback names alone allow
# millions of spellings (127.0.0.0/8, any port, *.localhost).
ACCEPTED_HOSTS_MAX = 64


def host_name(header: str) -> str:
    """The name part of a Host value: no port, brackets kept off, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, _, port = header.rpartition(":")
    return name if name and port.isdigit() else header


def is_loopback_address(name: str) -> bool:
    """Whether `name` is "localhost" or a loopback address (127.0.0.0/8, ::1),
    exactly as given."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback(name: str) -> bool:
    """A Host name that reaches this machine only: also any name under
    ".localhost" (RFC 6761 §6.3)."""
    return name.endswith(".localhost") or is_loopback_address(name)


def allowed_hosts(settings: ServerSettings) -> frozenset[str] | None:
    """The Host names accepted besides loopback ones; None means any."""
    names = {name.lower() for name in settings.allowed_hosts}
    if settings.public_base_url:
        names.add((urlsplit(settings.public_base_url).hostname or "").lower())
    if names or is_loopback(settings.host):
        return frozenset(names)
    return None


class HostCheckMiddleware:
    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None):
        self.app = app
        self.allowed = allowed
        self._accepted: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allowed is None:
            await self.app(scope, receive, send)
            return

        # The first Host field; ASGI servers give lower-case names.
        header = b""
        for key, value in scope["headers"]:
            if key == b"host":
                header = value
                break
        if header in self._accepted:
            await self.app(scope, receive, send)
            return

        name = host_name(header.decode("latin-1"))
        if is_loopback(name) or name in self.allowed:
            if len(self._accepted) < ACCEPTED_HOSTS_MAX:
                self._accepted.add(header)
            await self.app(scope, receive, send)
            return

        response = PlainTextResponse(
            f"this server does not answer to the host name {name[:100]!r}; "
            "add it to allowed_hosts in the [server] table if it is this server's",
            status_code=421,
        )
        await response(scope, receive, send)
