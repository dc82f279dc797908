"""Headless Chromium for the browser tests (marker ``browser``).

Uses Debian's /usr/bin/chromium (scripts/test installs it), driven by
Playwright for Python; Playwright's own browser downloads are never used.

A test module gets a browser with a module-scoped fixture::

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Browser]:
        with launch_chromium() as chromium:
            yield chromium

and records what the page's console says with `Console`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# What Chromium's console says when the CORS check fails (Fetch, #cors-check):
# "Access to fetch at '...' from origin '...' has been blocked by CORS policy: ...".
CORS_BLOCKED = "blocked by CORS policy"


def require_chromium() -> None:
    """Skip when /usr/bin/chromium is missing; in CI (CI set) that is a failure."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing; scripts/test installs Debian's chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed when the block ends."""
    require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    """The console messages and uncaught errors of one page, as "type: text"."""

    lines: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Page) -> Console:
        console = cls()
        page.on("console", console._message)
        page.on("pageerror", lambda error: console.lines.append(f"pageerror: {error}"))
        return console

    def _message(self, message: ConsoleMessage) -> None:
        self.lines.append(f"{message.type}: {message.text}")

    def cors_errors(self) -> list[str]:
        return [line for line in self.lines if CORS_BLOCKED in line]

    def wait_for_cors_error(self, page: Page, seconds: float = 5) -> list[str]:
        """Console events arrive asynchronously; give a late one a moment."""
        for _ in range(int(seconds * 10)):
            if self.cors_errors():
                break
            page.wait_for_timeout(100)
        return self.cors_errors()


@dataclass
class Exchange:
    """One request as Chromium's network layer saw it (DevTools protocol).

    `kind` is the resource type: "Preflight" for the OPTIONS request the
    browser sends by itself (Fetch, #cors-preflight-fetch), "Fetch" or "XHR"
    for a script's request. Header names are lower case; `request_headers` are
    those sent on the wire, cookies included. `cors_error` is Chromium's reason
    when its CORS check failed, such as "PreflightInvalidStatus" or
    "InvalidAllowCredentials".
    """

    request_id: str
    method: str = ""
    url: str = ""
    kind: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    cors_error: str | None = None


@dataclass
class NetworkLog:
    """Every request of a page, preflights included, recorded through CDP.

    Playwright's own request events leave preflights out; Chromium's DevTools
    protocol reports them, with the headers actually sent and received.
    """

    exchanges: dict[str, Exchange] = field(default_factory=dict)

    @classmethod
    def attach(cls, page: Page) -> NetworkLog:
        log = cls()
        session = page.context.new_cdp_session(page)
        session.on("Network.requestWillBeSent", log._request)
        session.on("Network.requestWillBeSentExtraInfo", log._request_extra)
        session.on("Network.responseReceived", log._response)
        session.on("Network.loadingFailed", log._failed)
        session.send("Network.enable")
        return log

    def _get(self, request_id: str) -> Exchange:
        return self.exchanges.setdefault(request_id, Exchange(request_id))

    def _request(self, event: dict[str, Any]) -> None:
        exchange = self._get(event["requestId"])
        exchange.method = event["request"]["method"]
        exchange.url = event["request"]["url"]
        exchange.kind = event.get("type", "")

    def _request_extra(self, event: dict[str, Any]) -> None:
        exchange = self._get(event["requestId"])
        exchange.request_headers = _lower(event["headers"])

    def _response(self, event: dict[str, Any]) -> None:
        exchange = self._get(event["requestId"])
        exchange.kind = event.get("type", exchange.kind)
        exchange.url = exchange.url or event["response"]["url"]
        exchange.status = event["response"]["status"]
        exchange.response_headers = _lower(event["response"]["headers"])

    def _failed(self, event: dict[str, Any]) -> None:
        exchange = self._get(event["requestId"])
        status = event.get("corsErrorStatus")
        exchange.cors_error = status["corsError"] if status else None

    def to(self, url: str, kind: str) -> list[Exchange]:
        """The exchanges of `kind` whose URL starts with `url`."""
        return [
            e
            for e in self.exchanges.values()
            if e.kind == kind and e.url.startswith(url)
        ]

    def wait_for(
        self, page: Page, url: str, kind: str, count: int = 1, seconds: float = 5
    ) -> list[Exchange]:
        """Protocol events arrive asynchronously; wait until `count` are done."""
        for _ in range(int(seconds * 10)):
            done = [e for e in self.to(url, kind) if e.status or e.cors_error]
            if len(done) >= count:
                return done
            page.wait_for_timeout(100)
        return self.to(url, kind)


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
