"""Faults found by attacking the live CORS administration.

Each test reproduces one fault against a real server process; its docstring
cites the promise that was broken (docs/admin.md, docs/cors.md, an RFC or
Fetch) and describes the fault as found. Both are fixed outside the admin
package (the Host allow-list, the authorisation layer's audit line). The
faults of the admin API itself moved, as tests of the fixed behaviour, to
tests/test_admin_api.py (deep JSON, Warning fields, forwarding headers, the
lost row, the unreadable row) and tests/test_admin_replicas.py (the ETag).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from .conftest import Server

CONFIG = """
[cors]
origins = ["https://viewer.example.org"]
headers = ["Authorization"]
methods = ["GET", "POST"]
max_age = 600
"""

JSON = {"Content-Type": "application/json"}


def put(server: Server, body: object, **headers: str) -> httpx.Response:
    return httpx.put(
        server.url + "/admin/cors",
        content=json.dumps(body),
        headers={**JSON, **headers},
    )


def preflight(server: Server, origin: str) -> int:
    return httpx.options(
        server.url + "/v2/studies",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    ).status_code


def test_dns_rebinding_cannot_change_the_settings(
    server_factory: Callable[..., Server],
) -> None:
    """docs/admin.md: the admin API is protected "against other web sites", and
    the server listens on loopback for lack of authentication. After a DNS
    rebinding, a page on http://evil.example:PORT reaches 127.0.0.1:PORT as a
    same-origin request: Host and Origin both name evil.example and the browser
    sends Sec-Fetch-Site: same-origin. Nothing checks the Host header, so the
    page can store origins = ["*"], which survives the rebinding and restarts
    and lets every web site read the archive afterwards."""
    server = server_factory(CONFIG)
    port = urlsplit(server.url).port
    evil = f"evil.example:{port}"

    answer = put(
        server,
        {"origins": ["*"], "methods": ["*"]},
        Host=evil,
        Origin=f"http://{evil}",
        **{"Sec-Fetch-Site": "same-origin"},
    )

    assert answer.status_code != 200, answer.text
    assert preflight(server, "https://anyone.example") == 403


def test_unauthenticated_admin_change_is_audited(
    server_factory: Callable[..., Server],
) -> None:
    """docs/admin.md, Audit log: "Every change and every refused change through
    the API ... writes one INFO line on the logger dicomhub.audit". A PUT with a
    wrong API key is refused with 401 by the authorisation layer before the
    admin route runs, so no audit line is written: attempts to guess a key
    for the admin API leave no trace in the audit log (only the access log)."""
    server = server_factory(
        CONFIG + '\n[auth.api_keys]\nops = "an-admin-key-0123456789"\n'
    )

    answer = put(
        server,
        {"origins": ["*"]},
        Authorization="Bearer a-wrong-key-0123456789",
    )

    assert answer.status_code == 401
    assert "dicomhub.audit" in server.log()
