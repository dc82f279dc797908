"""Cross-site forms riding on a proxy's cookie (src/dicomhub/csrf.py).

With ``allow_credentials`` on, an unsafe request that carries a ``Cookie``
must come, as its ``Origin`` says, from an allowed origin or from the server
itself; otherwise 403 and nothing changes. A browser sends such a request
without a preflight only as a "simple" one, a form's POST for instance, so
the tests send what such a form would: a cookie and a foreign Origin.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from .conftest import Server
from .dicomdata import fresh, multipart_body, to_bytes
from .test_admin_api import get, put

V = "https://viewer.example.org"
E = "https://evil.example.net"
COOKIE = {"Cookie": "proxy_session=abc123"}


def config(credentials: bool, extra: str = "") -> str:
    return f"""
[cors]
origins = ["{V}"]
methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
allow_credentials = {"true" if credentials else "false"}
{extra}
"""


def post_study(server: Server, **headers: str) -> tuple[httpx.Response, str]:
    """STOW-RS one new study with `headers`; the response and its Study UID."""
    study = fresh("CT_small.dcm")
    body, content_type = multipart_body([to_bytes(study)])
    response = httpx.post(
        server.root + "/studies",
        content=body,
        headers={"Content-Type": content_type, **headers},
        timeout=60,
    )
    return response, study.StudyInstanceUID


def stored(server: Server, study: str) -> bool:
    found = httpx.get(server.root + "/studies", params={"StudyInstanceUID": study})
    assert found.status_code in (200, 204), found.text
    return found.status_code == 200 and bool(found.json())


def test_cookie_and_foreign_origin_is_refused_and_stores_nothing(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=True))

    response, study = post_study(server, **COOKIE, Origin=E)

    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert "'https://evil.example.net'" in response.text
    assert "allowed origin" in response.text
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert not stored(server, study)
    assert not list((server.data_dir / "blobs").rglob("*.dcm"))


def test_cookie_without_origin_is_refused(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=True))

    response, study = post_study(server, **COOKIE)

    assert response.status_code == 403, response.text
    assert "its Origin was none" in response.text
    assert not stored(server, study)


def test_cookie_and_opaque_origin_is_refused(
    server_factory: Callable[..., Server],
) -> None:
    """A sandboxed frame or data: document sends Origin: null."""
    server = server_factory(config(credentials=True))

    response, study = post_study(server, **COOKIE, Origin="null")

    assert response.status_code == 403, response.text
    assert not stored(server, study)


def test_cookie_from_allowed_or_own_origin_passes(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=True))

    from_viewer, study = post_study(server, **COOKIE, Origin=V)
    assert from_viewer.status_code == 200, from_viewer.text
    assert from_viewer.headers["access-control-allow-origin"] == V
    assert from_viewer.headers["access-control-allow-credentials"] == "true"
    assert stored(server, study)

    from_itself, study = post_study(server, **COOKIE, Origin=server.url)
    assert from_itself.status_code == 200, from_itself.text
    assert stored(server, study)


def test_public_base_url_is_the_servers_own_origin(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(
        config(
            credentials=True,
            extra='[server]\npublic_base_url = "https://pacs.example.org/dicomweb"\n',
        )
    )

    response, study = post_study(server, **COOKIE, Origin="https://PACS.example.org")

    assert response.status_code == 200, response.text
    assert stored(server, study)


def test_delete_with_cookie_from_foreign_origin_is_refused(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=True))
    response, study = post_study(server)
    assert response.status_code == 200, response.text

    url = f"{server.root}/studies/{study}"
    refused = httpx.delete(url, headers={**COOKIE, "Origin": E})

    assert refused.status_code == 403, refused.text
    assert stored(server, study)
    assert httpx.delete(url, headers={**COOKIE, "Origin": V}).status_code == 204
    assert not stored(server, study)


def test_requests_without_cookie_are_untouched(
    server_factory: Callable[..., Server],
) -> None:
    """Scripts and curl send no cookie; CORS alone decides what a page reads."""
    server = server_factory(config(credentials=True))

    response, study = post_study(server, Origin=E)

    assert response.status_code == 200, response.text
    assert "access-control-allow-origin" not in response.headers
    assert stored(server, study)


def test_safe_methods_with_cookie_are_untouched(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=True))

    response = httpx.get(server.root + "/studies", headers={**COOKIE, "Origin": E})

    assert response.status_code in (200, 204), response.text


def test_credentials_off_leaves_cookies_alone(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=False))

    response, study = post_study(server, **COOKIE, Origin=E)

    assert response.status_code == 200, response.text
    assert stored(server, study)


def test_an_admin_change_applies_to_the_next_request(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=False))
    assert post_study(server, **COOKIE, Origin=E)[0].status_code == 200

    settings = get(server).json()
    changed = put(server, {**settings, "allowCredentials": True})
    assert changed.status_code == 200, changed.text

    refused, study = post_study(server, **COOKIE, Origin=E)
    assert refused.status_code == 403, refused.text
    assert not stored(server, study)
    assert post_study(server, **COOKIE, Origin=V)[0].status_code == 200

    restored = put(server, settings)
    assert restored.status_code == 200, restored.text
    assert post_study(server, **COOKIE, Origin=E)[0].status_code == 200


def test_refusal_is_logged_without_the_path(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(config(credentials=True))

    post_study(server, **COOKIE, Origin=E)

    lines = [line for line in server.log().splitlines() if "dicomhub.csrf" in line]
    assert len(lines) == 1, server.log()
    assert "WARNING" in lines[0]
    assert "'https://evil.example.net'" in lines[0]
