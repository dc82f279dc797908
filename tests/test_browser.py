"""The demo page in headless Chromium: a viewer on one origin, dicomhub on another.

Origin A serves demo/site (the demo's static server on a free port); origin B is
a dicomhub started with a given [cors] table. The page lists the studies with
QIDO-RS and loads one rendered image with ``fetch``, so the browser itself
decides, by the Fetch standard's CORS check, whether the page may read the
answers. Allowed: the study is listed, the image decodes, and the console holds
no CORS error. Blocked: the page reports the failure, and the console holds
Chromium's "blocked by CORS policy" error. With ``?token=`` the page sends an
Authorization header, which makes every request go through a preflight.

Chromium is Debian's, launched by tests/browser.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from pydicom.dataset import Dataset

from demo import samples, static_server

from . import dicomdata
from .browser import Console, launch_chromium
from .conftest import Server
from .test_demo import run_demo

pytestmark = pytest.mark.browser

SETTLED = "el => el.dataset.state === 'ready' || el.dataset.state === 'failed'"


def cors_table(
    origins: list[str], headers: tuple[str, ...] = ("Authorization",)
) -> str:
    return f"""
    [cors]
    origins = {json.dumps(origins)}
    headers = {json.dumps(list(headers))}
    methods = ["GET", "HEAD", "POST", "DELETE"]
    max_age = 600
    allow_credentials = false
    """


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """Origin A: the demo's static server on a free port."""
    server = static_server.make_server(port=0, quiet=True)
    static_server.serve_in_thread(server)
    yield static_server.origin(server)
    server.shutdown()
    server.server_close()


@dataclass
class PageRun:
    """The page after it settled: its state and what the console said."""

    page: Page
    console: Console = field(default_factory=Console)

    def state(self, selector: str) -> str | None:
        return self.page.locator(selector).get_attribute("data-state")

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def cors_errors(self) -> list[str]:
        return self.console.cors_errors()

    def wait_for_cors_error(self) -> list[str]:
        return self.console.wait_for_cors_error(self.page)


@pytest.fixture
def open_demo(browser: Browser) -> Iterator[Callable[..., PageRun]]:
    """Open the page from `origin` against a DICOMweb `root`; wait until it settled."""
    contexts: list[BrowserContext] = []

    def open_page(origin: str, root: str, query: str = "") -> PageRun:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        run = PageRun(page, Console.attach(page))
        page.goto(f"{origin}/?root={root}{query}")

        page.wait_for_function(f"({SETTLED})(document.querySelector('#status'))")
        if run.state("#status") == "ready":
            page.wait_for_function(
                f"({SETTLED})(document.querySelector('#image-status'))"
            )
        return run

    yield open_page
    for context in contexts:
        context.close()


def store_ct(server: Server) -> Dataset:
    ct = dicomdata.fresh("CT_small.dcm")
    response = dicomdata.stow(server.root, [ct])
    assert response.status_code == 200, response.text
    return ct


def assert_allowed(run: PageRun, ct: Dataset) -> None:
    assert run.state("#status") == "ready", run.text("#status")
    row = run.page.locator(f'#studies tbody tr[data-study-uid="{ct.StudyInstanceUID}"]')
    assert row.count() == 1
    assert ct.PatientID in row.inner_text()

    assert run.state("#image-status") == "ready", run.text("#image-status")
    image = run.page.locator("#image")
    assert image.get_attribute("data-study-uid") == ct.StudyInstanceUID
    size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [ct.Columns, ct.Rows]
    assert run.cors_errors() == [], run.console


@pytest.mark.parametrize("listed", ["page origin", "*"])
def test_browser_page_origin_allowed(
    listed: str,
    page_origin: str,
    server_factory: Callable[..., Server],
    open_demo: Callable[..., PageRun],
) -> None:
    """[cors] origins lists the page (or is *): the list and the image arrive."""
    origins = [page_origin] if listed == "page origin" else ["*"]
    server = server_factory(cors_table(origins))
    ct = store_ct(server)

    run = open_demo(page_origin, server.root)

    assert_allowed(run, ct)


@pytest.mark.parametrize("listed", ["another origin", "localhost for 127.0.0.1"])
def test_browser_page_origin_blocked(
    listed: str,
    page_origin: str,
    server_factory: Callable[..., Server],
    open_demo: Callable[..., PageRun],
) -> None:
    """[cors] origins misses the page: the browser withholds every answer.

    "localhost" is a different host from "127.0.0.1", so a table that lists
    http://localhost:PORT does not let a page on http://127.0.0.1:PORT in
    (origins compare as scheme, host and port; docs/cors.md §4).
    """
    port = page_origin.rsplit(":", 1)[1]
    other = "http://viewer.example" if listed == "another origin" else None
    server = server_factory(cors_table([other or f"http://localhost:{port}"]))
    ct = store_ct(server)

    # dicomhub answers, only without the header that would share the answer.
    direct = httpx.get(
        server.root + "/studies",
        headers={"Origin": page_origin, "Accept": "application/dicom+json"},
    )
    assert direct.status_code == 200
    assert ct.StudyInstanceUID in direct.text
    assert "access-control-allow-origin" not in direct.headers

    run = open_demo(page_origin, server.root)

    assert run.state("#status") == "failed"
    assert f"does not allow this page's origin, {page_origin}" in run.text("#status")
    assert run.page.locator("#studies tbody tr").count() == 0
    assert run.state("#image-status") == "idle"
    errors = run.wait_for_cors_error()
    assert errors, run.console
    assert f"from origin '{page_origin}'" in errors[0]


@pytest.mark.parametrize("headers", [("Authorization",), ()], ids=["listed", "missing"])
def test_browser_bearer_token_preflight(
    headers: tuple[str, ...],
    page_origin: str,
    server_factory: Callable[..., Server],
    open_demo: Callable[..., PageRun],
) -> None:
    """A signed-in viewer sends Authorization, so every request is preflighted.

    The header passes only when [cors] headers lists it (docs/cors.md, D6): the
    OHIF complaint about the Azure DICOM service was exactly this preflight.
    Authentication is off, so the token itself is not checked.
    """
    server = server_factory(cors_table([page_origin], headers))
    ct = store_ct(server)

    run = open_demo(page_origin, server.root, "&token=demo-token")

    if headers:
        assert_allowed(run, ct)
        return
    assert run.state("#status") == "failed"
    errors = run.wait_for_cors_error()
    assert errors, run.console
    # A refused preflight is a 403 without any Access-Control-* header (D2).
    assert "Response to preflight request doesn't pass" in errors[0]


def test_browser_demo_command(
    tmp_path: Path, open_demo: Callable[..., PageRun]
) -> None:
    """The demo as scripts/demo runs it: the page lists all samples and shows one."""
    with run_demo(tmp_path) as demo:
        run = open_demo(demo.page_origin, demo.root)

        assert run.state("#status") == "ready", run.text("#status")
        shown = {
            row.get_attribute("data-study-uid")
            for row in run.page.locator("#studies tbody tr").all()
        }
        assert shown == {s.study for s in samples.samples()}
        assert run.state("#image-status") == "ready", run.text("#image-status")
        assert run.page.locator("#image").evaluate("img => img.naturalWidth") > 0
        assert run.cors_errors() == [], run.console
