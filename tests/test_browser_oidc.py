"""OpenID Connect bearer tokens from a page's script, in headless Chromium.

Three real servers on loopback: a minimal OpenID provider (discovery document
and JWK Set, its RSA key made at test time; tests/test_oidc.py), dicomhub
trusting it with a [cors] table that lists the page's origin, and origin A,
a static server holding the page and a small CT file. The page's script calls
dicomhub with ``fetch``, so Chromium itself applies the Fetch standard's CORS
check, and reports only what a script could read.

What a signed-in viewer relies on:

- a token in ``Authorization`` makes the request non-simple, so the browser
  sends a preflight first, without the token (Fetch, #cors-preflight-fetch),
  and dicomhub must pass it although it carries no credentials;
- a refusal (401 without or with a bad token, 403 for a missing role) carries
  the CORS headers and exposes ``WWW-Authenticate`` (RFC 6750 §3), so the
  script can tell "fetch a new token" (invalid_token) from "this user may not"
  (insufficient_scope) instead of seeing an opaque network error;
- a writer's token stores a real DICOM file with STOW-RS (PS3.18 §10.5).
"""

from __future__ import annotations

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
from .conftest import Server, start_server
from .test_oidc import AUDIENCE, RSA_KEY, Issuer, _jwk, _serve_issuer

pytestmark = pytest.mark.browser

DICOM_JSON = "application/dicom+json"

# The page on origin A. Each function answers what its script could read:
# the status, the challenge, the parsed JSON body, or the error fetch threw
# when the browser withheld the answer.
PAGE = """<!doctype html>
<title>origin A: a signed-in viewer</title>
<link rel="icon" href="data:,">
<script>
async function readable(response) {
    const text = await response.text();
    let json = null;
    try { json = JSON.parse(text); } catch (error) { json = null; }
    return {
        status: response.status,
        challenge: response.headers.get("WWW-Authenticate"),
        json: json,
        text: text,
    };
}

function bearer(token) {
    return token ? {Authorization: "Bearer " + token} : {};
}

// QIDO-RS: search for studies (PS3.18 §10.6).
window.searchStudies = async (root, token) => {
    try {
        const response = await fetch(root + "/studies", {
            headers: {Accept: "application/dicom+json", ...bearer(token)},
        });
        return await readable(response);
    } catch (error) {
        return {error: String(error)};
    }
};

// STOW-RS: store the CT file this origin serves, as one part of a
// multipart/related body (PS3.18 §10.5.1.1).
window.storeInstance = async (root, token) => {
    try {
        const file = await (await fetch("/ct.dcm")).arrayBuffer();
        const boundary = "page-boundary-" + Math.random().toString(16).slice(2);
        const body = new Blob([
            "--" + boundary + "\\r\\nContent-Type: application/dicom\\r\\n\\r\\n",
            file,
            "\\r\\n--" + boundary + "--\\r\\n",
        ]);
        const response = await fetch(root + "/studies", {
            method: "POST",
            headers: {
                "Content-Type": 'multipart/related; type="application/dicom"; '
                    + "boundary=" + boundary,
                Accept: "application/dicom+json",
                ...bearer(token),
            },
            body: body,
        });
        return await readable(response);
    } catch (error) {
        return {error: String(error)};
    }
};
</script>
"""


@dataclass
class Setup:
    issuer: Issuer
    server: Server
    page_origin: str
    ct: Dataset

    def token(self, *roles: str, **claims: Any) -> str:
        return self.issuer.token({"roles": list(roles), **claims})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The issuer, origin A (page and CT file) and dicomhub trusting both."""
    issuer = _serve_issuer([_jwk(RSA_KEY, "rsa-1")])

    site = tmp_path_factory.mktemp("origin-a")
    (site / "index.html").write_text(PAGE)
    ct = dicomdata.fresh("CT_small.dcm")
    (site / "ct.dcm").write_bytes(dicomdata.to_bytes(ct))
    page_server = static_server.make_server(port=0, directory=site, quiet=True)
    static_server.serve_in_thread(page_server)
    page_origin = static_server.origin(page_server)

    # Content-Type and Accept need no listing (docs/configuration.md, [cors]
    # headers); Authorization does, being never safelisted.
    config = f"""
    [cors]
    origins = ["{page_origin}"]
    headers = ["Authorization"]
    methods = ["GET", "HEAD", "POST"]
    allow_credentials = false

    [auth]
    issuer = "{issuer.url}"
    audience = "{AUDIENCE}"
    """
    server = start_server(tmp_path_factory.mktemp("dicomhub"), config)
    try:
        yield Setup(issuer, server, page_origin, ct)
    finally:
        server.stop()
        page_server.shutdown()
        page_server.server_close()
        assert issuer.httpd is not None
        issuer.httpd.shutdown()


@dataclass
class OpenPage:
    page: Page
    console: Console
    network: NetworkLog

    def search(self, root: str, token: str | None) -> dict[str, Any]:
        return self.page.evaluate(
            "([root, token]) => window.searchStudies(root, token)", [root, token]
        )

    def store(self, root: str, token: str | None) -> dict[str, Any]:
        return self.page.evaluate(
            "([root, token]) => window.storeInstance(root, token)", [root, token]
        )


@pytest.fixture
def open_page(browser: Browser, setup: Setup) -> Iterator[Callable[[], OpenPage]]:
    """Origin A's page in a fresh context (no preflight cached from before)."""
    contexts = []

    def open_() -> OpenPage:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        console = Console.attach(page)
        network = NetworkLog.attach(page)
        page.goto(setup.page_origin + "/")
        return OpenPage(page, console, network)

    yield open_
    for context in contexts:
        context.close()


def study_uids(answer: dict[str, Any]) -> list[str]:
    return [item["0020000D"]["Value"][0] for item in answer["json"]]


def params(challenge: str) -> dict[str, str]:
    """The auth-params of a Bearer challenge (RFC 6750 §3), by name."""
    scheme, _, rest = challenge.partition(" ")
    assert scheme == "Bearer", challenge
    found = {}
    for item in rest.split('", '):
        name, _, value = item.partition("=")
        found[name.strip()] = value.strip().strip('"')
    return found


def test_reader_token_searches_after_a_tokenless_preflight(
    setup: Setup, open_page: Callable[[], OpenPage]
) -> None:
    """a) The preflight goes out without the token and passes; the search
    with it answers 200 and the script reads the JSON."""
    ct = dicomdata.fresh("CT_small.dcm")
    writer = {"Authorization": f"Bearer {setup.token('writer')}"}
    assert dicomdata.stow(setup.server.root, [ct], headers=writer).status_code == 200
    url = setup.server.root + "/studies"
    opened = open_page()

    answer = opened.search(setup.server.root, setup.token("reader"))

    assert answer.get("status") == 200, answer
    assert ct.StudyInstanceUID in study_uids(answer)
    [preflight] = opened.network.wait_for(opened.page, url, "Preflight")
    assert preflight.status == 204
    assert "authorization" not in preflight.request_headers
    assert preflight.request_headers["access-control-request-headers"] == (
        "authorization"
    )
    assert preflight.response_headers["access-control-allow-origin"] == (
        setup.page_origin
    )
    [search] = opened.network.wait_for(opened.page, url, "Fetch")
    assert search.request_headers["authorization"].startswith("Bearer ")
    assert opened.console.cors_errors() == [], opened.console.lines


def test_no_token_gets_a_readable_challenge(
    setup: Setup, open_page: Callable[[], OpenPage]
) -> None:
    """b) No token: 401, and the script reads the status, the bare challenge
    and the reason, so it knows to sign the user in (RFC 6750 §3)."""
    opened = open_page()

    answer = opened.search(setup.server.root, None)

    assert answer.get("status") == 401, answer
    assert answer["challenge"] == 'Bearer realm="dicomhub"'
    assert setup.issuer.url in answer["text"]
    # Accept is safelisted: without Authorization no preflight is needed.
    assert opened.network.to(setup.server.root, "Preflight") == []
    assert opened.console.cors_errors() == [], opened.console.lines


def test_expired_token_gets_invalid_token(
    setup: Setup, open_page: Callable[[], OpenPage]
) -> None:
    """c) An expired token: 401 with error="invalid_token" (RFC 6750 §3.1),
    the cue for the script to refresh its token and try again."""
    expired = setup.token("reader", exp=int(time.time()) - 3600)
    opened = open_page()

    answer = opened.search(setup.server.root, expired)

    assert answer.get("status") == 401, answer
    challenge = params(answer["challenge"])
    assert challenge["error"] == "invalid_token"
    assert "expired" in challenge["error_description"]
    assert "expired" in answer["text"]
    assert opened.console.cors_errors() == [], opened.console.lines


def test_reader_token_cannot_store(
    setup: Setup, open_page: Callable[[], OpenPage]
) -> None:
    """d) A reader's token on STOW-RS: 403 with error="insufficient_scope"
    (RFC 6750 §3.1) naming the role, readable by the script; nothing stored."""
    opened = open_page()
    reader = setup.token("reader")
    before = opened.search(setup.server.root, reader)

    answer = opened.store(setup.server.root, reader)

    assert answer.get("status") == 403, answer
    challenge = params(answer["challenge"])
    assert challenge["error"] == "insufficient_scope"
    assert "needs the role 'writer'" in challenge["error_description"]
    assert "needs the role 'writer'" in answer["text"]
    assert opened.search(setup.server.root, reader)["json"] == before["json"]
    assert opened.console.cors_errors() == [], opened.console.lines


def test_writer_token_stores_a_dicom_file(
    setup: Setup, open_page: Callable[[], OpenPage]
) -> None:
    """e) A writer's token stores the CT file the page fetched from its own
    origin; a reader's token then finds the study."""
    opened = open_page()
    writer = setup.token("writer")

    answer = opened.store(setup.server.root, writer)

    assert answer.get("status") == 200, answer
    # PS3.18 §10.5.3: ReferencedSOPSequence (0008,1199) lists what was stored.
    [stored] = answer["json"]["00081199"]["Value"]
    assert stored["00081155"]["Value"] == [setup.ct.SOPInstanceUID]
    url = setup.server.root + "/studies"
    [preflight] = opened.network.wait_for(opened.page, url, "Preflight")
    assert preflight.status == 204
    assert "authorization" not in preflight.request_headers

    found = opened.search(setup.server.root, setup.token("reader"))

    assert found.get("status") == 200, found
    assert setup.ct.StudyInstanceUID in study_uids(found)
    # RFC 6750 §1.2: whoever holds a bearer token may use it; never logged.
    assert writer not in setup.server.log()
    assert opened.console.cors_errors() == [], opened.console.lines

