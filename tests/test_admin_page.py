"""The admin page, /admin/, in headless Chromium (docs/admin.md).

The page is served by dicomhub and edits the CORS settings through
GET and PUT /admin/cors. Each test drives the form as a person would and then
checks the server itself: the settings GET /admin/cors returns and a real
preflight's answer. Chromium is launched by tests/browser.py, as for the
other browser tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, Page

from .browser import Console, launch_chromium
from .conftest import Server
from .test_admin_api import CONFIG, NEW, N, V, get, preflight, put

pytestmark = pytest.mark.browser

SETTLED = ("ready", "saved", "refused", "failed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@dataclass
class AdminPage:
    page: Page
    console: Console
    requests: list[str] = field(default_factory=list)

    def wait(self, *states: str) -> str:
        """Wait until #status is in one of `states` (any settled one if none)."""
        wanted = list(states or SETTLED)
        self.page.wait_for_function(
            "states => states.includes(document.querySelector('#status')"
            ".dataset.state)",
            arg=wanted,
        )
        return self.state()

    def state(self) -> str:
        return self.page.locator("#status").get_attribute("data-state") or ""

    def method(self, name: str) -> str:
        return f'input[name="method"][value="{name}"]'

    def checked_methods(self) -> list[str]:
        boxes = self.page.locator('input[name="method"]')
        return [
            boxes.nth(i).get_attribute("value") or ""
            for i in range(boxes.count())
            if boxes.nth(i).is_checked()
        ]

    def save(self) -> str:
        self.page.click("#save")
        return self.wait("saved", "refused", "failed")

    def errors(self) -> list[str]:
        return [
            line
            for line in self.console.lines
            if line.startswith(("error", "pageerror"))
        ]


@pytest.fixture
def open_admin(browser: Browser) -> Iterator[Callable[[Server], AdminPage]]:
    contexts = []

    def open_page(server: Server) -> AdminPage:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        admin = AdminPage(page, Console.attach(page))
        page.on("request", lambda r: admin.requests.append(r.url))
        page.goto(server.url + "/admin/")
        assert admin.wait() == "ready", page.locator("#status").inner_text()
        return admin

    yield open_page
    for context in contexts:
        context.close()


def test_admin_page_saves_origins_and_methods(
    server_factory: Callable[..., Server], open_admin: Callable[[Server], AdminPage]
) -> None:
    server = server_factory(CONFIG)
    admin = open_admin(server)
    page = admin.page
    assert page.locator("#origins").input_value() == V
    assert admin.checked_methods() == ["GET", "HEAD"]
    assert page.locator("#max-age").input_value() == "600"
    assert "configuration file" in page.locator("#source").inner_text()

    page.fill("#origins", f"{V}\n\n  {N}  \nhttps://BÜCHER.example\n")
    page.check(admin.method("DELETE"))
    page.fill("#max-age", "9000")
    assert admin.state() == "changed"

    assert admin.save() == "saved", page.locator("#message").inner_text()
    warnings = page.locator("#warnings li").all_inner_texts()
    assert len(warnings) == 2, warnings
    assert (
        "'https://BÜCHER.example' was normalised to 'https://xn--bcher-kva"
        in (warnings[0])
    )
    assert "Chromium caches preflights for at most 7200 s" in warnings[1]
    assert "version 1" in page.locator("#source").inner_text()
    assert page.locator("#origins").input_value() == (
        f"{V}\n{N}\nhttps://xn--bcher-kva.example"
    )

    settings = get(server).json()
    assert settings["origins"] == [V, N, "https://xn--bcher-kva.example"]
    assert settings["methods"] == ["DELETE", "GET", "HEAD"]
    assert settings["maxAge"] == 9000
    assert settings["headers"] == ["authorization"]
    allowed = preflight(server, N, "DELETE")
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == N
    assert "DELETE" in allowed.headers["access-control-allow-methods"]
    assert admin.errors() == [], admin.console.lines
    # Everything the page loaded or called came from dicomhub itself.
    assert admin.requests
    assert all(url.startswith(server.url + "/admin/") for url in admin.requests)


def test_admin_page_select_all_methods(
    server_factory: Callable[..., Server], open_admin: Callable[[Server], AdminPage]
) -> None:
    server = server_factory(CONFIG)
    admin = open_admin(server)
    page = admin.page

    page.check("#methods-all")
    assert admin.checked_methods() == [
        "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"
    ]  # fmt: skip
    assert admin.save() == "saved", page.locator("#message").inner_text()
    assert get(server).json()["methods"] == ["*"]
    assert preflight(server, V, "PATCH").status_code == 204

    page.uncheck(admin.method("PATCH"))
    assert not page.locator("#methods-all").is_checked()
    assert page.locator("#methods-all").evaluate("box => box.indeterminate")

    # A click on the half-ticked box ticks all; unticking it clears all.
    page.click("#methods-all")
    assert len(admin.checked_methods()) == 7
    page.uncheck("#methods-all")
    assert admin.checked_methods() == []
    assert admin.save() == "refused"
    assert "no method would be allowed" in page.locator("#message").inner_text()


def test_admin_page_star_disables_credentials(
    server_factory: Callable[..., Server], open_admin: Callable[[Server], AdminPage]
) -> None:
    server = server_factory(CONFIG + "allow_credentials = true\n")
    admin = open_admin(server)
    page = admin.page
    credentials = page.locator("#allow-credentials")
    note = page.locator("#credentials-note")
    assert credentials.is_checked() and credentials.is_enabled()
    assert note.is_hidden()

    page.fill("#origins", "*")

    assert credentials.is_disabled()
    assert not credentials.is_checked()
    assert note.is_visible()
    assert "browsers refuse" in note.inner_text()

    page.fill("#origins", V)
    assert credentials.is_enabled()
    page.fill("#origins", "*")
    assert admin.save() == "saved", page.locator("#message").inner_text()
    settings = get(server).json()
    assert settings["origins"] == ["*"]
    assert settings["allowCredentials"] is False
    anyone = preflight(server, "https://any.example.com")
    assert anyone.headers["access-control-allow-origin"] == "*"


def test_admin_page_shows_the_validator_message(
    server_factory: Callable[..., Server], open_admin: Callable[[Server], AdminPage]
) -> None:
    server = server_factory(CONFIG)
    admin = open_admin(server)
    page = admin.page

    page.fill("#origins", "https://viewer.example.org/viewer")

    assert admin.save() == "refused"
    message = page.locator("#message")
    assert message.is_visible()
    assert message.inner_text().startswith(
        'origins = "https://viewer.example.org/viewer": '
    )
    assert "path" in message.inner_text()
    assert page.locator("#origins").get_attribute("aria-invalid") == "true"
    assert "unchanged" in page.locator("#status").inner_text()

    settings = get(server)
    assert settings.json()["origins"] == [V]
    assert settings.headers["etag"] == '"0"'

    # Corrected, it saves, and the mark goes.
    page.fill("#origins", N)
    assert admin.save() == "saved"
    assert page.locator("#origins").get_attribute("aria-invalid") is None
    assert message.is_hidden()


def test_admin_page_returns_to_the_configuration_file(
    server_factory: Callable[..., Server], open_admin: Callable[[Server], AdminPage]
) -> None:
    server = server_factory(CONFIG)
    assert put(server, NEW).status_code == 200
    admin = open_admin(server)
    page = admin.page
    assert page.locator("#origins").input_value() == f"{V}\n{N}"
    assert page.locator("#allow-private-network").is_checked()
    assert "saved here (version 1" in page.locator("#source").inner_text()

    page.click("#reset")

    assert admin.wait("saved") == "saved"
    assert page.locator("#origins").input_value() == V
    assert "configuration file" in page.locator("#source").inner_text()
    assert get(server).headers["dicomhub-cors-source"] == "config"
    assert preflight(server, N).status_code == 403
