"""The Host check: names of other servers are refused (DNS rebinding)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from dicomhub.config import ServerSettings
from dicomhub.hosts import (
    ACCEPTED_HOSTS_MAX,
    HostCheckMiddleware,
    allowed_hosts,
    host_name,
    is_loopback,
)

from .conftest import Server


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:8080", "::1"),
        ("pacs.example.org:443", "pacs.example.org"),
        ("pacs.example.org", "pacs.example.org"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_loopback_names() -> None:
    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.8.9.1", "::1"]))
    assert not any(map(is_loopback, ["evil.example", "10.0.0.1", "0.0.0.0"]))


def test_what_each_listening_address_accepts() -> None:
    assert allowed_hosts(ServerSettings()) == frozenset()
    assert allowed_hosts(ServerSettings(host="0.0.0.0")) is None
    assert allowed_hosts(
        ServerSettings(host="0.0.0.0", allowed_hosts=["PACS.example.org"])
    ) == {"pacs.example.org"}
    assert allowed_hosts(
        ServerSettings(public_base_url="https://pacs.example.org/dicomweb")
    ) == {"pacs.example.org"}


def test_a_rebound_name_is_refused(dicomweb_server: Server) -> None:
    """A page whose DNS name now points at 127.0.0.1 sends its own Host."""
    port = dicomweb_server.url.rsplit(":", 1)[1]
    evil = {"Host": f"evil.example:{port}"}

    search = httpx.get(f"{dicomweb_server.root}/studies", headers=evil)
    change = httpx.put(
        dicomweb_server.url + "/admin/cors",
        json={"origins": ["*"]},
        headers={**evil, "Origin": f"http://evil.example:{port}"},
    )

    assert search.status_code == 421
    assert "allowed_hosts" in search.text
    assert change.status_code == 421
    assert httpx.get(dicomweb_server.url + "/admin/cors").json()["origins"] == [
        "http://viewer.example"
    ]


def test_loopback_names_and_allowed_hosts_pass(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory('[server]\nallowed_hosts = ["pacs.example.org"]\n')
    port = server.url.rsplit(":", 1)[1]

    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "pacs.example.org"):
        response = httpx.get(f"{server.root}/studies", headers={"Host": host})
        assert response.status_code == 200, host


def test_accepted_host_values_are_bounded() -> None:
    """Loopback spellings are endless; the remembered ones are not."""
    answered: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        answered.append(204)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    check = HostCheckMiddleware(app, frozenset({"pacs.example.org"}))

    async def ask(host: bytes) -> int:
        headers = [(b"host", host)]
        scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
        await check(scope, receive, send)
        return answered[-1]

    async def run() -> None:
        for i in range(ACCEPTED_HOSTS_MAX * 4):
            assert await ask(f"127.0.{i // 256}.{i % 256}:8080".encode()) == 204
        assert len(check._accepted) <= ACCEPTED_HOSTS_MAX
        assert await ask(b"PACS.example.org:443") == 204
        assert await ask(b"evil.example:8080") == 421
        assert await ask(b"evil.example:8080") == 421

    asyncio.run(run())
