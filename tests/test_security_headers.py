"""Security headers on every answer (src/dicomhub/secheaders.py).

Every answer carries ``X-Content-Type-Options: nosniff``; the admin page and
its files also carry a strict Content Security Policy, ``X-Frame-Options`` and
``Referrer-Policy``; DICOMweb answers, which are data, carry no CSP. The
admin page working under that policy in Chromium is tests/test_admin_page.py.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from dicomhub.secheaders import ADMIN_CSP, headers_for

from .conftest import Server
from .dicomdata import fresh, stow

V = "https://viewer.example.org"
KEY = "k3y-for-the-headers-0123456789"
CONFIG = f"""
[cors]
origins = ["{V}"]
headers = ["Authorization"]
methods = ["GET", "HEAD", "POST", "DELETE"]

[auth.api_keys]
viewer = "{KEY}"
"""
BEARER = {"Authorization": f"Bearer {KEY}"}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ADMIN_ONLY = ("content-security-policy", "x-frame-options", "referrer-policy")


def once(response: httpx.Response, name: str) -> str:
    values = response.headers.get_list(name)
    assert len(values) == 1, (name, values)
    return values[0]


def test_the_policy_is_the_one_documented() -> None:
    assert ADMIN_CSP == CSP
    assert headers_for("/admin/") == headers_for("/admin/static/admin.js")
    assert headers_for("/v2/studies") == ((b"x-content-type-options", b"nosniff"),)
    assert headers_for("/admin/cors") == headers_for("/v2/studies")
    assert headers_for("/administrator/") == headers_for("/v2/studies")


def test_every_dicomweb_answer_is_nosniff_without_page_headers(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(CONFIG)
    study = fresh("CT_small.dcm")
    assert stow(server.root, [study], headers=BEARER).status_code == 200
    url = f"{server.root}/studies/{study.StudyInstanceUID}"

    answers = {
        "health": httpx.get(server.url + "/health"),
        "search": httpx.get(server.root + "/studies", headers=BEARER),
        "metadata": httpx.get(url + "/metadata", headers=BEARER),
        "instances": httpx.get(url, headers=BEARER),
        "cors answer": httpx.get(
            server.root + "/studies", headers={**BEARER, "Origin": V}
        ),
        "401": httpx.get(server.root + "/studies"),
        "404": httpx.get(server.url + "/nothing-here", headers=BEARER),
        "preflight 204": httpx.options(
            server.root + "/studies",
            headers={"Origin": V, "Access-Control-Request-Method": "DELETE"},
        ),
        "preflight 403": httpx.options(
            server.root + "/studies",
            headers={
                "Origin": "https://evil.example.net",
                "Access-Control-Request-Method": "GET",
            },
        ),
    }

    expected = {
        "health": 200,
        "search": 200,
        "metadata": 200,
        "instances": 200,
        "cors answer": 200,
        "401": 401,
        "404": 404,
        "preflight 204": 204,
        "preflight 403": 403,
    }
    for name, response in answers.items():
        assert response.status_code == expected[name], (name, response.text)
        assert once(response, "x-content-type-options") == "nosniff", name
        for header in ADMIN_ONLY:
            assert header not in response.headers, (name, header)
    assert answers["cors answer"].headers["access-control-allow-origin"] == V


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/static/admin.js", "/admin/static/admin.css"]
)
def test_admin_page_and_files_carry_the_strict_policy(
    server_factory: Callable[..., Server], path: str
) -> None:
    server = server_factory(CONFIG)

    response = httpx.get(server.url + path)

    assert response.status_code == 200, response.text
    assert once(response, "content-security-policy") == CSP
    assert once(response, "x-frame-options") == "DENY"
    assert once(response, "referrer-policy") == "no-referrer"
    assert once(response, "x-content-type-options") == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


def test_admin_page_has_no_inline_script_or_style(
    server_factory: Callable[..., Server],
) -> None:
    """Under script-src 'self' and style-src 'self' inline code would not run."""
    server = server_factory(CONFIG)
    page = httpx.get(server.url + "/admin/").text.lower()

    assert "<style" not in page
    assert " style=" not in page
    assert "<script>" not in page
    assert " on" + "click=" not in page
    assert 'src="static/admin.js"' in page
    icon = httpx.get(server.url + "/admin/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


def test_admin_api_answers_are_data(server_factory: Callable[..., Server]) -> None:
    server = server_factory(CONFIG)

    response = httpx.get(server.url + "/admin/cors", headers=BEARER)

    assert response.status_code == 200, response.text
    assert once(response, "x-content-type-options") == "nosniff"
    assert "content-security-policy" not in response.headers
