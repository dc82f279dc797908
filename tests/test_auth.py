"""API keys as bearer tokens, and how CORS behaves with authentication on.

Cases cors-06 and cors-07 (profile AUTH = LIST with authentication on),
dicomweb-01 item 3 and dicomweb-03, plus the admin page with a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from .browser import Console, launch_chromium
from .conftest import Server, ServerFailed, start_server
from .dicomdata import fresh, stow
from .test_admin_page import AdminPage

KEY = "k3y-for-the-viewer-0123456789"
V = "https://viewer.example.org"
AUTH = f"""
[cors]
origins = ["{V}", "https://admin.example.org"]
headers = ["Authorization", "X-Request-ID"]
methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
max_age = 600
allow_credentials = false

[auth.api_keys]
viewer = "{KEY}"
"""
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("auth"), AUTH)
    yield server
    server.stop()


def _items(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def test_cors_06_cors_headers_on_401(server: Server) -> None:
    """cors-06-cors-headers-on-401.md: the 401 is readable, with its challenge."""
    response = httpx.get(
        f"{server.root}/studies",
        params={"StudyInstanceUID": "1.2.3"},
        headers={"Origin": V},
    )

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == V
    assert "origin" in _items(response.headers["vary"])
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "www-authenticate" in _items(
        response.headers["access-control-expose-headers"]
    )


def test_cors_07_preflight_before_auth(server: Server) -> None:
    """cors-07-preflight-before-auth.md: no credentials, still 204."""
    response = httpx.options(
        f"{server.root}/studies",
        headers={
            "Origin": V,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == V
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "authorization" in _items(response.headers["access-control-allow-headers"])
    assert response.headers["access-control-max-age"] == "600"


def test_dicomweb_01_401_with_challenge(server: Server) -> None:
    """dicomweb-01-cors-on-error-responses.md, item 3."""
    response = httpx.get(f"{server.root}/studies", headers={"Origin": V})

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert "API key" in response.text


def test_dicomweb_03_preflight_with_auth_on(server: Server) -> None:
    """dicomweb-03-preflight-with-auth-on.md: preflight, valid key, bad key."""
    ct = fresh("CT_small.dcm")
    assert stow(server.root, [ct], headers=BEARER).status_code == 200
    frame = (
        f"{server.root}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}"
        f"/instances/{ct.SOPInstanceUID}/frames/1"
    )

    preflight = httpx.options(
        frame,
        headers={
            "Origin": V,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept,authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == V

    good = httpx.get(f"{server.root}/studies", headers={"Origin": V, **BEARER})
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == V

    bad = httpx.get(
        f"{server.root}/studies",
        headers={"Origin": V, "Authorization": "Bearer not-a-valid-token"},
    )
    assert bad.status_code == 401
    assert bad.headers["access-control-allow-origin"] == V
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_health_and_admin_page_need_no_key(server: Server) -> None:
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/admin/").status_code == 200
    assert httpx.get(server.url + "/admin/cors").status_code == 401

    # Typed without its slash, the page's address leads to it.
    typed = httpx.get(server.url + "/admin", follow_redirects=True)
    assert typed.status_code == 200
    assert str(typed.url).endswith("/admin/")


def test_the_audit_log_names_the_key(server: Server) -> None:
    current = httpx.get(server.url + "/admin/cors", headers=BEARER).json()
    response = httpx.put(server.url + "/admin/cors", json=current, headers=BEARER)

    assert response.status_code == 200
    audit = [line for line in server.log().splitlines() if "dicomhub.audit" in line]
    assert "viewer" in audit[-1]
    assert KEY not in server.log()


@pytest.mark.parametrize(
    "table",
    [
        '[auth.api_keys]\nshort = "tooshort"\n',
        '[auth]\napi_keys = ["has a space in it, long"]\n',
        '[auth]\nusers = ["x"]\n',
    ],
)
def test_bad_keys_stop_the_server(tmp_path: Path, table: str) -> None:
    with pytest.raises(ServerFailed) as info:
        start_server(tmp_path, table)

    assert info.value.returncode == 2
    assert "auth." in info.value.output
    assert "tooshort" not in info.value.output


@pytest.mark.browser
def test_admin_page_with_a_key(server: Server) -> None:
    """The page loads without a key, and reads the settings once given one."""
    with launch_chromium() as chromium:
        browser: Browser = chromium
        context = browser.new_context()
        page = context.new_page()
        admin = AdminPage(page, Console.attach(page))
        page.goto(server.url + "/admin/")
        admin.wait()
        assert page.locator("#origins").input_value() == ""

        page.fill("#api-key", KEY)
        page.click("#use-key")

        assert admin.wait("ready") == "ready"
        assert V in page.locator("#origins").input_value()
        context.close()


def test_open_access_when_no_keys(server_factory: Callable[..., Server]) -> None:
    server = server_factory("[cors]\norigins = []\n")

    assert httpx.get(f"{server.root}/studies").status_code == 200


def test_refused_admin_requests_are_audited(server: Server) -> None:
    """Guessed keys leave a trace in the audit log, never the key itself."""
    response = httpx.put(
        server.url + "/admin/cors",
        json={"origins": ["*"]},
        headers={"Authorization": "Bearer guessed-key-0123456789"},
    )

    assert response.status_code == 401
    audit = [line for line in server.log().splitlines() if "dicomhub.audit" in line]
    assert "refused PUT /admin/cors" in audit[-1]
    assert "guessed-key" not in server.log()


def test_an_oversized_token_is_refused_unread(server: Server) -> None:
    answer = httpx.get(
        server.root + "/studies", headers={"Authorization": "Bearer " + "a" * 20000}
    )

    assert answer.status_code == 401
    assert "longer than 16384 characters" in answer.text
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
