"""Bearer-token mode, credentialed mode and the preflight cache, in Chromium.

Origin A is a blank page served by the demo's static server on a free port;
origin B is a dicomhub started with the [cors] table under test. The page runs
``fetch`` against B's QIDO-RS search (PS3.18 §10.6), so Chromium itself decides,
by the Fetch standard's CORS check, whether the script may read the answer.
The DevTools protocol (tests/browser.py, NetworkLog) shows the preflights and
the headers as sent; the server's access log has one line per request, so it
counts the preflights that reached the server.

- Bearer-token mode: a viewer that signs its users in sends
  ``Authorization: Bearer ...``. That header is never safelisted, so every
  such request is preflighted, and passes only when [cors] headers names it
  (or is ``*``: dicomhub then echoes the names, since a ``*`` in ACAH never
  covers Authorization; docs/cors.md, D6). The server has no authentication
  yet: the token is not checked, it only causes the preflight.
- Credentialed mode: ``credentials: 'include'`` sends the cookies of B's host
  (cookies ignore ports, so one set for 127.0.0.1 goes to B from A). The
  answer is readable only with ACAO equal to A and ``ACAC: true``
  (allow_credentials = true; docs/cors.md, D7).
- Preflight cache: Chromium keeps a passed preflight for Access-Control-Max-Age
  seconds (docs/cors.md §3, D8), per origin, URL and credentials mode. Chromium
  caps the value at 7200 s; that cap is the browser's and is not tested here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from pydicom.dataset import Dataset

from demo import static_server

from . import dicomdata
from .browser import Console, NetworkLog, launch_chromium
from .conftest import Server

pytestmark = pytest.mark.browser

DICOM_JSON = "application/dicom+json"
BEARER = {"Accept": DICOM_JSON, "Authorization": "Bearer not-checked-yet"}
BLANK_PAGE = '<!doctype html><title>origin A</title><link rel="icon" href="data:,">'

# Runs in the page: one fetch, and what the script could read of its answer.
FETCH = """async ([url, init]) => {
    try {
        const response = await fetch(url, init);
        return {status: response.status, body: await response.text()};
    } catch (error) {
        return {error: String(error)};
    }
}"""

# Runs in the page: the same fetch `count` times, one after the other.
FETCH_SEVERAL = """async ([url, init, count]) => {
    const statuses = [];
    for (let i = 0; i < count; i++) {
        try {
            statuses.push((await fetch(url, init)).status);
        } catch (error) {
            statuses.push(String(error));
        }
    }
    return statuses;
}"""


def cors_table(
    origins: list[str],
    headers: list[str],
    max_age: int = 600,
    allow_credentials: bool = False,
) -> str:
    return f"""
    [cors]
    origins = {json.dumps(origins)}
    headers = {json.dumps(headers)}
    methods = ["GET", "HEAD", "POST"]
    max_age = {max_age}
    allow_credentials = {json.dumps(allow_credentials)}
    """


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Origin A: a blank page, so that only the test's own fetches go out."""
    site = tmp_path_factory.mktemp("origin-a")
    (site / "index.html").write_text(BLANK_PAGE)
    server = static_server.make_server(port=0, directory=site, quiet=True)
    static_server.serve_in_thread(server)
    yield static_server.origin(server)
    server.shutdown()
    server.server_close()


@dataclass
class OpenPage:
    page: Page
    console: Console
    network: NetworkLog

    def fetch(self, url: str, **init: Any) -> dict[str, Any]:
        return self.page.evaluate(FETCH, [url, init])

    def fetch_several(self, url: str, count: int, **init: Any) -> list[Any]:
        return self.page.evaluate(FETCH_SEVERAL, [url, init, count])


@pytest.fixture
def open_page(browser: Browser, page_origin: str) -> Iterator[Callable[..., OpenPage]]:
    """Origin A's page in a new context; `cookie` is set for 127.0.0.1 first."""
    contexts = []

    def open_(cookie: str | None = None, network: bool = True) -> OpenPage:
        context = browser.new_context()
        contexts.append(context)
        if cookie:
            name, value = cookie.split("=", 1)
            context.add_cookies(
                [{"name": name, "value": value, "domain": "127.0.0.1", "path": "/"}]
            )
        page = context.new_page()
        console = Console.attach(page)
        log = NetworkLog.attach(page) if network else NetworkLog()
        page.goto(page_origin + "/")
        return OpenPage(page, console, log)

    yield open_
    for context in contexts:
        context.close()


def store_ct(server: Server) -> Dataset:
    ct = dicomdata.fresh("CT_small.dcm")
    response = dicomdata.stow(server.root, [ct])
    assert response.status_code == 200, response.text
    return ct


def log_lines(server: Server, method: str, path: str) -> list[str]:
    """The access-log lines of `method` on `path`: one per request received."""
    marker = f'"{method} {path}" '
    return [line for line in server.log().splitlines() if marker in line]


def wait_for_log_lines(
    server: Server, method: str, path: str, count: int, seconds: float = 5
) -> list[str]:
    """A line is written once the answer is sent; give the last one a moment."""
    deadline = time.monotonic() + seconds
    while len(log_lines(server, method, path)) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return log_lines(server, method, path)


def study_uids(body: str) -> list[str]:
    return [item["0020000D"]["Value"][0] for item in json.loads(body)]


# Bearer-token mode -------------------------------------------------------------


@pytest.mark.parametrize("headers", [["Authorization"], ["*"]], ids=["listed", "star"])
def test_bearer_token_allowed(
    headers: list[str],
    page_origin: str,
    server_factory: Callable[..., Server],
    open_page: Callable[..., OpenPage],
) -> None:
    """Authorization listed (or headers = ["*"]): the preflight passes, and the
    search answer reaches the script.

    With ``*`` dicomhub echoes the requested names in ACAH (docs/cors.md, D6):
    the Fetch standard never lets a ``*`` there cover Authorization, so a
    server that sent ``*`` would be blocked here.
    """
    server = server_factory(cors_table([page_origin], headers))
    ct = store_ct(server)
    url = server.root + "/studies"
    opened = open_page()

    answer = opened.fetch(url, headers=BEARER)

    assert answer.get("status") == 200, answer
    assert study_uids(answer["body"]) == [ct.StudyInstanceUID]
    [preflight] = opened.network.wait_for(opened.page, url, "Preflight")
    assert preflight.status == 204
    assert preflight.request_headers["access-control-request-headers"] == (
        "authorization"
    )
    assert preflight.response_headers["access-control-allow-headers"] == (
        "authorization"
    )
    assert preflight.response_headers["access-control-allow-origin"] == page_origin
    assert len(wait_for_log_lines(server, "OPTIONS", "/v2/studies", 1)) == 1
    assert opened.console.cors_errors() == [], opened.console.lines


def test_bearer_token_blocked_when_headers_miss_authorization(
    page_origin: str,
    server_factory: Callable[..., Server],
    open_page: Callable[..., OpenPage],
) -> None:
    """headers does not name Authorization: dicomhub refuses the preflight
    (403 without Access-Control-* headers, docs/cors.md D2), so the browser
    never sends the search itself."""
    server = server_factory(cors_table([page_origin], ["X-Requested-With"]))
    store_ct(server)
    url = server.root + "/studies"
    opened = open_page()

    answer = opened.fetch(url, headers=BEARER)

    assert answer == {"error": "TypeError: Failed to fetch"}
    [preflight] = opened.network.wait_for(opened.page, url, "Preflight")
    assert preflight.status == 403
    assert not any(h.startswith("access-control-") for h in preflight.response_headers)
    errors = opened.console.wait_for_cors_error(opened.page)
    assert errors, opened.console.lines
    assert "Response to preflight request doesn't pass" in errors[0]
    assert f"from origin '{page_origin}'" in errors[0]
    assert len(wait_for_log_lines(server, "OPTIONS", "/v2/studies", 1)) == 1
    assert log_lines(server, "GET", "/v2/studies") == []
    assert "CORS preflight refused (headers)" in server.log()


# Credentialed mode -------------------------------------------------------------


@pytest.mark.parametrize(
    "request_headers",
    [{"Accept": DICOM_JSON}, BEARER],
    ids=["simple", "preflighted"],
)
def test_credentialed_request_allowed(
    request_headers: dict[str, str],
    page_origin: str,
    server_factory: Callable[..., Server],
    open_page: Callable[..., OpenPage],
) -> None:
    """allow_credentials = true, origin listed: the cookie goes out, and the
    answer carries ACAO = the page's origin (never ``*``) and ACAC: true
    (docs/cors.md, D4, D7), so the script reads it.

    The preflighted case uses headers = ["*"]: with credentials the Fetch
    standard reads a ``*`` in ACAH as a header literally named ``*``, so it
    passes only because dicomhub echoes the names (D6).
    """
    server = server_factory(cors_table([page_origin], ["*"], allow_credentials=True))
    ct = store_ct(server)
    url = server.root + "/studies"
    opened = open_page(cookie="dicomhub-session=demo")

    answer = opened.fetch(url, headers=request_headers, credentials="include")

    assert answer.get("status") == 200, answer
    assert study_uids(answer["body"]) == [ct.StudyInstanceUID]
    [search] = opened.network.wait_for(opened.page, url, "Fetch")
    assert search.request_headers.get("cookie") == "dicomhub-session=demo"
    assert search.response_headers["access-control-allow-origin"] == page_origin
    assert search.response_headers["access-control-allow-credentials"] == "true"
    preflights = opened.network.to(url, "Preflight")
    if "Authorization" in request_headers:
        [preflight] = preflights
        # A preflight never carries cookies (Fetch, #cors-preflight-fetch).
        assert "cookie" not in preflight.request_headers
        assert preflight.response_headers["access-control-allow-credentials"] == (
            "true"
        )
        assert preflight.response_headers["access-control-allow-headers"] == (
            "authorization"
        )
    else:
        assert preflights == []
    assert opened.console.cors_errors() == [], opened.console.lines


@pytest.mark.parametrize(
    "request_headers",
    [{"Accept": DICOM_JSON}, BEARER],
    ids=["simple", "preflighted"],
)
def test_credentialed_request_blocked_without_allow_credentials(
    request_headers: dict[str, str],
    page_origin: str,
    server_factory: Callable[..., Server],
    open_page: Callable[..., OpenPage],
) -> None:
    """allow_credentials = false: no ACAC, so the browser keeps the answer from
    a script that asked for credentials, although the origin is listed."""
    server = server_factory(cors_table([page_origin], ["*"], allow_credentials=False))
    store_ct(server)
    url = server.root + "/studies"
    opened = open_page(cookie="dicomhub-session=demo")

    answer = opened.fetch(url, headers=request_headers, credentials="include")

    assert answer == {"error": "TypeError: Failed to fetch"}
    errors = opened.console.wait_for_cors_error(opened.page)
    assert errors, opened.console.lines
    assert "'Access-Control-Allow-Credentials'" in errors[0]
    [search] = opened.network.wait_for(opened.page, url, "Fetch")
    if "Authorization" in request_headers:
        # Refused at the preflight: the search itself is never sent.
        assert search.cors_error == "PreflightInvalidAllowCredentials"
        assert log_lines(server, "GET", "/v2/studies") == []
    else:
        # Sent with the cookie and answered; only the script is kept out.
        assert search.cors_error == "InvalidAllowCredentials"
        assert search.request_headers.get("cookie") == "dicomhub-session=demo"
        assert len(wait_for_log_lines(server, "GET", "/v2/studies", 1)) == 1


# Preflight cache ---------------------------------------------------------------


def test_preflight_cache_honours_max_age(
    page_origin: str,
    server_factory: Callable[..., Server],
    open_page: Callable[..., OpenPage],
) -> None:
    """max_age = 3: two searches in a row share one preflight; once the 3 s
    have passed, the next search is preflighted again (docs/cors.md, D8)."""
    max_age = 3
    server = server_factory(cors_table([page_origin], ["Authorization"], max_age))
    store_ct(server)
    url = server.root + "/studies"
    # No DevTools session here: only the browser's own caching is at work.
    opened = open_page(network=False)

    assert opened.fetch_several(url, 2, headers=BEARER) == [200, 200]

    assert len(wait_for_log_lines(server, "GET", "/v2/studies", 2)) == 2
    assert len(log_lines(server, "OPTIONS", "/v2/studies")) == 1

    opened.page.wait_for_timeout((max_age + 1) * 1000)
    assert opened.fetch_several(url, 1, headers=BEARER) == [200]

    assert len(wait_for_log_lines(server, "GET", "/v2/studies", 3)) == 3
    assert len(log_lines(server, "OPTIONS", "/v2/studies")) == 2
    assert opened.console.cors_errors() == [], opened.console.lines


def test_preflight_cache_off_with_max_age_zero(
    page_origin: str,
    server_factory: Callable[..., Server],
    open_page: Callable[..., OpenPage],
) -> None:
    """max_age = 0 sends Access-Control-Max-Age: 0, so nothing is cached and
    every search is preflighted (docs/cors.md, D8)."""
    server = server_factory(cors_table([page_origin], ["Authorization"], max_age=0))
    store_ct(server)
    url = server.root + "/studies"
    opened = open_page(network=False)

    assert opened.fetch_several(url, 3, headers=BEARER) == [200, 200, 200]

    assert len(wait_for_log_lines(server, "GET", "/v2/studies", 3)) == 3
    assert len(log_lines(server, "OPTIONS", "/v2/studies")) == 3
    assert opened.console.cors_errors() == [], opened.console.lines
