"""The admin API, /admin/cors, against real servers (docs/admin.md).

GET returns the policy in force in the Azure DICOM service's JSON shape; PUT
replaces it after the validator that checks the [cors] table, effective on the
next request; DELETE hands the settings back to the configuration file. Every
change and every refusal leaves one line on the ``dicomhub.audit`` logger.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, ServerFailed, start_server

V = "https://viewer.example.org"
N = "https://new.example.org"
E = "https://evil.example.net"

CONFIG = f"""
[cors]
origins = ["{V}"]
headers = ["Authorization"]
methods = ["GET", "HEAD"]
max_age = 600
"""

CONFIGURED = {
    "origins": [V],
    "headers": ["authorization"],
    "methods": ["GET", "HEAD"],
    "maxAge": 600,
    "allowCredentials": False,
    "exposeHeaders": [
        "Content-Location",
        "Location",
        "ETag",
        "Warning",
        "WWW-Authenticate",
        "Content-Range",
        "Accept-Ranges",
    ],
    "allowPrivateNetwork": False,
}

NEW = {
    "origins": [V, N],
    "headers": ["authorization", "x-request-id"],
    "methods": ["GET", "HEAD", "DELETE"],
    "maxAge": 60,
    "allowCredentials": True,
    "exposeHeaders": ["Location"],
    "allowPrivateNetwork": True,
}


def shared_index(tmp_path: Path, cors: str = CONFIG) -> str:
    """A config whose index and blobs sit outside any one server's data dir."""
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    return f"""
    [index]
    url = "sqlite:///{shared / "index.sqlite3"}"

    [storage]
    path = "{shared / "blobs"}"
    {cors}
    """


def put(server: Server, body: Any, **headers: str) -> httpx.Response:
    return httpx.put(
        server.url + "/admin/cors",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )


def get(server: Server) -> httpx.Response:
    response = httpx.get(server.url + "/admin/cors")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response


def preflight(server: Server, origin: str, method: str = "GET") -> httpx.Response:
    return httpx.options(
        server.url + "/v2/studies",
        headers={"Origin": origin, "Access-Control-Request-Method": method},
    )


def audit_lines(server: Server) -> list[str]:
    return [line for line in server.log().splitlines() if "dicomhub.audit" in line]


def log_within(server: Server, words: str, seconds: float = 10) -> str:
    """Wait until the server's log holds `words`; return the log."""
    deadline = time.monotonic() + seconds
    while words not in (log := server.log()):
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    return log


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests of refused changes, which change nothing."""
    server = start_server(tmp_path_factory.mktemp("refusing"), CONFIG)
    yield server
    server.stop()


def assert_unchanged(server: Server) -> None:
    after = get(server)
    assert after.json() == CONFIGURED
    assert after.headers["etag"] == '"0"'
    assert preflight(server, V).status_code == 204


def test_get_returns_the_configured_settings(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(CONFIG)

    response = get(server)

    assert response.json() == CONFIGURED
    assert list(response.json()) == list(CONFIGURED)
    assert response.headers["etag"] == '"0"'
    assert response.headers["dicomhub-cors-source"] == "config"
    assert response.headers["cache-control"] == "no-store"
    assert "last-modified" not in response.headers


def test_put_applies_to_the_next_request(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(CONFIG)
    assert preflight(server, N, "DELETE").status_code == 403

    response = put(server, NEW)

    assert response.status_code == 200, response.text
    assert response.json() == NEW
    assert response.headers["etag"] == '"1"'
    assert response.headers["dicomhub-cors-source"] == "admin"
    assert "last-modified" in response.headers
    assert "warning" not in response.headers

    allowed = preflight(server, N, "DELETE")
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == N
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert allowed.headers["access-control-max-age"] == "60"
    assert get(server).json() == NEW
    assert get(server).headers["etag"] == '"1"'


def test_put_back_what_get_returned(server_factory: Callable[..., Server]) -> None:
    """A client can GET, edit and PUT the body: it holds only the settings."""
    server = server_factory(CONFIG)
    body = get(server).json()

    response = put(server, body)

    assert response.status_code == 200, response.text
    assert response.json() == body == CONFIGURED
    assert response.headers["etag"] == '"1"'


def test_put_leaves_out_keys_for_their_defaults(
    server_factory: Callable[..., Server],
) -> None:
    """PUT replaces the whole policy, as a [cors] table does: a key left out
    takes its default, not the value in force."""
    server = server_factory(CONFIG)

    response = put(server, {"origins": [N]})

    assert response.status_code == 200, response.text
    assert response.json() == {
        **CONFIGURED,
        "origins": [N],
        "headers": [],
        "maxAge": None,
    }


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        (
            {"origins": ["*"], "allowCredentials": True},
            "allowCredentials",
            'cannot be true while origins is ["*"]',
        ),
        ({"origins": [V + "/viewer"]}, "origins", "path"),
        ({"origins": ["*", V]}, "origins", "cannot be mixed"),
        ({"origins": [V], "methods": []}, "methods", "no method would be allowed"),
        ({"origins": [V], "methods": ["FETCH"]}, "methods", "not an HTTP method"),
        ({"origins": [V], "maxAge": -1}, "maxAge", "must not be negative"),
        ({"origins": [V], "maxAge": "600"}, "maxAge", "whole number"),
        ({"origins": [V], "exposeHeaders": ["*"]}, "exposeHeaders", "not supported"),
        ({"origins": [V], "max_age": 600}, "max_age", "did you mean maxAge?"),
        ({"origins": V}, "origins", "must be a list of strings"),
        (["https://viewer.example.org"], "cors", "must be a JSON object"),
    ],
    ids=[
        "star-with-credentials",
        "origin-with-path",
        "star-mixed",
        "no-method",
        "unknown-method",
        "negative-max-age",
        "max-age-text",
        "expose-star",
        "toml-spelling",
        "origins-not-a-list",
        "not-an-object",
    ],
)
def test_put_refused_by_the_validator(
    body: Any, key: str, words: str, refusing: Server
) -> None:
    """400 with the validator's key, value and rule; the settings stay."""
    response = put(refusing, body)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    refusal = response.json()
    assert refusal["key"] == key
    assert words in refusal["rule"]
    assert refusal["message"].startswith(f"{key} = ")
    assert words in refusal["message"]
    assert_unchanged(refusing)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"origins": [', "not JSON"),
        (b'{"origins": ["https://a.example"], "origins": []}', "appears twice"),
        (b'{"origins": [], "maxAge": NaN}', "NaN is not a JSON number"),
        (b"\xff\xfe{", "not JSON"),
    ],
    ids=["truncated", "duplicate-key", "nan", "not-utf"],
)
def test_put_body_not_json_refused(
    content: bytes, words: str, refusing: Server
) -> None:
    response = httpx.put(
        refusing.url + "/admin/cors",
        content=content,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert words in response.json()["message"]
    assert_unchanged(refusing)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded"]
)
def test_put_other_media_type_refused(
    content_type: str | None, refusing: Server
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = httpx.put(
        refusing.url + "/admin/cors", content=json.dumps(NEW).encode(), headers=headers
    )

    assert response.status_code == 415
    assert "application/json" in response.json()["message"]
    assert_unchanged(refusing)


def test_put_media_type_with_charset_accepted(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(CONFIG)

    response = put(server, NEW, **{"Content-Type": "Application/JSON; charset=UTF-8"})

    assert response.status_code == 200, response.text


def test_put_body_too_large_refused(refusing: Server) -> None:
    origins = [f"https://host{i}.example.org" for i in range(3000)]

    response = put(refusing, {"origins": origins})

    assert response.status_code == 413
    assert_unchanged(refusing)


def test_put_warnings_in_warning_headers(
    server_factory: Callable[..., Server],
) -> None:
    """The validator's warnings, one Warning field each (RFC 9111 §5.5 form)."""
    server = server_factory(CONFIG)

    response = put(
        server,
        {"origins": ["HTTPS://Viewer.Example.org:443/", "https://bücher.example"],
         "maxAge": 86400},
    )  # fmt: skip

    assert response.status_code == 200, response.text
    assert response.json()["origins"] == [V, "https://xn--bcher-kva.example"]
    warnings = response.headers.get_list("warning")
    assert len(warnings) == 3, warnings
    for field in warnings:
        assert re.fullmatch(r'299 dicomhub "([^"\\]|\\.)*"', field), field
    assert "was normalised to 'https://viewer.example.org'" in warnings[0]
    assert "b\\\\xfccher.example" in warnings[1]
    assert "Chromium caches preflights for at most 7200 s" in warnings[2]


def test_delete_returns_to_the_configured_settings(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(CONFIG)
    assert put(server, NEW).status_code == 200

    response = httpx.delete(server.url + "/admin/cors")

    assert response.status_code == 200, response.text
    assert response.json() == CONFIGURED
    assert response.headers["dicomhub-cors-source"] == "config"
    assert response.headers["etag"] == '"2"'
    assert preflight(server, N).status_code == 403
    assert preflight(server, V).status_code == 204


def test_admin_cors_methods(refusing: Server) -> None:
    response = httpx.post(refusing.url + "/admin/cors", json=NEW)

    assert response.status_code == 405
    allowed = {item.strip() for item in response.headers["allow"].split(",")}
    assert allowed == {"GET", "HEAD", "PUT", "DELETE"}
    assert httpx.head(refusing.url + "/admin/cors").status_code == 200
    assert_unchanged(refusing)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": E},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": E},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=["other-origin", "null-origin", "cross-site", "same-site"],
)
def test_changes_from_other_sites_refused(
    headers: dict[str, str], server_factory: Callable[..., Server]
) -> None:
    """A page elsewhere cannot change the settings through a visitor's browser,
    even when the CORS settings let its PUT through (docs/admin.md)."""
    server = server_factory(CONFIG.replace(f'["{V}"]', '["*"]'))
    before = get(server).json()

    response = put(server, NEW | {"origins": [E]}, **headers)
    deleted = httpx.delete(server.url + "/admin/cors", headers=headers)

    assert response.status_code == 403
    assert "own page" in response.json()["message"]
    assert deleted.status_code == 403
    assert get(server).json() == before


def test_changes_from_the_own_origin_accepted(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(CONFIG)

    same_origin = put(server, NEW, Origin=server.url)
    fetch_metadata = put(server, NEW, **{"Sec-Fetch-Site": "same-origin"})

    assert same_origin.status_code == 200, same_origin.text
    assert fetch_metadata.status_code == 200, fetch_metadata.text


def test_audit_log_lines(server_factory: Callable[..., Server]) -> None:
    """Who, old and new values for each change; the reason for each refusal."""
    server = server_factory(CONFIG)

    assert put(server, NEW).status_code == 200
    assert put(server, {"origins": ["*"], "allowCredentials": True}).status_code == 400
    assert httpx.delete(server.url + "/admin/cors").status_code == 200

    changed, refused, reset = audit_lines(server)
    compact = json.dumps(CONFIGURED, separators=(",", ":"))
    new = json.dumps(NEW, separators=(",", ":"))
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO dicomhub\.audit: ", changed
    )
    assert changed.endswith(
        "CORS settings changed (PUT /admin/cors) by anonymous from 127.0.0.1, "
        f"version 1: old={compact} new={new}"
    )
    assert refused.endswith(
        "CORS settings change refused (PUT /admin/cors) for anonymous from "
        '127.0.0.1: 400 allowCredentials = true: cannot be true while origins is ["*"]'
        ": browsers refuse '*' on credentialed requests; list the allowed origins "
        "instead"
    )
    assert reset.endswith(
        "CORS settings changed (DELETE /admin/cors) by anonymous from 127.0.0.1, "
        f"version 2: old={new} new={compact}"
    )


def test_audit_line_stays_one_line(server_factory: Callable[..., Server]) -> None:
    server = server_factory(CONFIG)

    response = put(server, {"origins\nINFO dicomhub.audit: forged": []})

    assert response.status_code == 400
    (line,) = audit_lines(server)
    assert "origins\\nINFO dicomhub.audit: forged" in line


def test_stored_settings_win_over_the_file_at_start(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """The setting lives in the index; a restart keeps it, and says so."""
    first = server_factory(shared_index(tmp_path))
    assert put(first, NEW).status_code == 200
    first.stop()

    again = server_factory(shared_index(tmp_path))

    response = get(again)
    assert response.json() == NEW
    assert response.headers["etag"] == '"1"'
    assert response.headers["dicomhub-cors-source"] == "admin"
    assert preflight(again, N).status_code == 204
    warning = [line for line in again.log().splitlines() if " WARNING " in line]
    assert len(warning) == 1, warning
    assert "set through the admin API (version 1" in warning[0]
    assert "not the [cors] settings of the configuration file" in warning[0]
    assert "DELETE /admin/cors" in warning[0]


def test_configured_settings_after_delete_survive_a_restart(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    first = server_factory(shared_index(tmp_path))
    assert put(first, NEW).status_code == 200
    assert httpx.delete(first.url + "/admin/cors").status_code == 200
    first.stop()

    again = server_factory(shared_index(tmp_path))

    response = get(again)
    assert response.json() == CONFIGURED
    assert response.headers["etag"] == '"2"'
    assert response.headers["dicomhub-cors-source"] == "config"
    assert " WARNING " not in again.log()


def test_file_table_still_checked_when_stored_settings_exist(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """An invalid [cors] table stops the server even when the index holds
    settings that would win over it."""
    first = server_factory(shared_index(tmp_path))
    assert put(first, NEW).status_code == 200
    first.stop()

    with pytest.raises(ServerFailed) as failed:
        server_factory(shared_index(tmp_path, CONFIG.replace("600", "-1")))
    assert "cors.max_age" in failed.value.output


def test_admin_page_files(server_factory: Callable[..., Server]) -> None:
    """The page is plain files served by dicomhub, under a CSP that allows only
    this server; nothing in them points elsewhere."""
    server = server_factory(CONFIG)
    elsewhere = re.compile(r"""(?:src|href|action)\s*=\s*["']?(?:[a-z]+:)?//|url\(""")

    for path, media_type in (
        ("/admin/", "text/html"),
        ("/admin/static/admin.js", "text/javascript"),
        ("/admin/static/admin.css", "text/css"),
    ):
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type), path
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert not elsewhere.search(response.text), path

    redirect = httpx.get(server.url + "/admin")
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/admin/")


def store_by_hand(tmp_path: Path, value: str, version: int) -> None:
    """Write the setting row as another program (or dicomhub version) might."""
    with sqlite3.connect(tmp_path / "shared" / "index.sqlite3") as db:
        db.execute(
            "UPDATE setting SET value = ?, version = ? WHERE name = 'cors'",
            (value, version),
        )


def test_invalid_stored_settings(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """Settings in the index that fail the validator are never put in force.

    The ETag stays the version in force (it once claimed the stored one, so
    two replicas could show one ETag over different settings), and
    Dicomhub-Cors-Stored with a Warning says the stored ones are invalid."""
    first = server_factory(shared_index(tmp_path))
    assert put(first, NEW).status_code == 200
    first.stop()
    store_by_hand(tmp_path, json.dumps({"origins": ["*"], "allowCredentials": True}), 2)

    # At start: the file's settings instead, and an ERROR.
    again = server_factory(shared_index(tmp_path))
    shown = get(again)
    assert shown.json() == CONFIGURED
    assert shown.headers["etag"] == '"0"'
    assert shown.headers["dicomhub-cors-source"] == "config"
    assert shown.headers["dicomhub-cors-stored"] == "invalid"
    assert "index (version 2) are not valid" in shown.headers["warning"]
    (error,) = [line for line in again.log().splitlines() if " ERROR " in line]
    assert "stored in the index (version 2) are not valid" in error
    assert "allowCredentials" in error

    # While running: the settings in force stay.
    written = put(again, NEW)
    assert written.status_code == 200
    assert written.headers["etag"] == '"3"'
    assert "dicomhub-cors-stored" not in written.headers
    for version, value in ((9, json.dumps({"origins": "x"})), (10, "not JSON")):
        store_by_hand(tmp_path, value, version)
        log_within(again, f"(version {version}) are not valid")
        shown = get(again)
        assert shown.json() == NEW
        assert shown.headers["etag"] == '"3"'
        assert shown.headers["dicomhub-cors-stored"] == "invalid"
        assert preflight(again, N).status_code == 204


@pytest.mark.parametrize("depth", [5000, 9], ids=["past-the-parser", "past-the-limit"])
def test_put_deeply_nested_json_refused(depth: int, refusing: Server) -> None:
    """Found by attack: 5000 nested arrays (10 KB) made json.loads raise RecursionError,
    answered 500 and left no audit line. Settings never nest beyond a list in
    an object: deeper than 8 is a 400, audited like any refusal."""
    body = '{"origins":' + "[" * depth + "]" * depth + "}"

    response = httpx.put(
        refusing.url + "/admin/cors",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert "nests lists or objects more than 8 deep" in response.json()["message"]
    assert "more than 8 deep" in audit_lines(refusing)[-1]
    assert_unchanged(refusing)


def test_put_warnings_merged_and_capped(
    server_factory: Callable[..., Server],
) -> None:
    """Found by attack: one Warning field per warning gave ~500 KB of header for 2400
    copies of one origin, which clients refuse although the change was stored.
    Each distinct warning is sent once (with its count), at most 10 fields of
    at most 300 characters; the audit line lists every distinct warning."""
    server = server_factory(CONFIG)
    origins = [f"https://H{i}.example:443" for i in range(30)]
    long_origin = "https://" + ".".join(["\u00e9" * 50] * 4) + ":443"
    body = {"origins": [*origins, *["https://A.example:443"] * 2000, long_origin]}

    response = put(server, body)

    assert response.status_code == 200, response.text
    assert len(response.json()["origins"]) == 32
    fields = response.headers.get_list("warning")
    assert len(fields) == 10, fields
    assert sum(len(field) for field in fields) < 4 * 1024 - 512
    assert "'https://H0.example:443' was normalised" in fields[0]
    assert fields[-1] == (
        '299 dicomhub "... and 24 more warnings; the audit log lists them all"'
    )
    line = audit_lines(server)[-1]
    listed = json.loads(line.split(" warnings=", 1)[1])
    assert len(listed) == 33
    assert any(text.endswith("(2000 times)") for text in listed)
    assert sum("is listed twice (1999 times)" in text for text in listed) == 1


def test_put_long_warning_shortened(server_factory: Callable[..., Server]) -> None:
    server = server_factory(CONFIG)

    response = put(server, {"origins": ["https://" + ".".join(["\u00fc" * 50] * 4)]})

    assert response.status_code == 200, response.text
    (field,) = response.headers.get_list("warning")
    assert re.fullmatch(r'299 dicomhub "([^"\\]|\\.)*\.\.\."', field), field
    assert len(field) <= len('299 dicomhub ""') + 300


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-Host": "evil.example.net", "X-Forwarded-Proto": "https"},
        {"Forwarded": "host=evil.example.net;proto=https"},
    ],
    ids=["x-forwarded", "forwarded"],
)
def test_forwarded_host_does_not_make_another_site_same_origin(
    forwarded: dict[str, str], server_factory: Callable[..., Server]
) -> None:
    """Found by attack: the server's own origin was taken from base_url(), which
    believes forwarding headers from loopback, where a browser on this machine
    connects from; with headers = ["*"] a page on another site could send
    them through a passing preflight and pass for the server's own page. The
    own origin is now public_base_url's, or the connection's scheme and Host."""
    server = server_factory(
        '[cors]\norigins = ["*"]\nheaders = ["*"]\nmethods = ["*"]\n'
    )

    response = put(server, NEW | {"origins": [E]}, Origin=E, **forwarded)
    deleted = httpx.delete(
        server.url + "/admin/cors", headers={"Origin": E, **forwarded}
    )

    assert response.status_code == 403, response.text
    assert deleted.status_code == 403, deleted.text
    assert get(server).headers["etag"] == '"0"'


def test_own_origin_is_public_base_url_when_set(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(
        '[server]\npublic_base_url = "https://pacs.example.org/dicomweb"\n' + CONFIG
    )

    public = put(server, NEW, Origin="https://pacs.example.org")
    direct = put(server, NEW, Origin=server.url)

    assert public.status_code == 200, public.text
    assert direct.status_code == 403, direct.text


def test_put_after_the_setting_row_was_lost_is_in_force(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """Found by attack: with the `setting` row gone (removed by hand, an index restored
    from a backup), the next PUT wrote version 1, which the process ignored as
    older than the one it had: 200 with the OLD settings, in force nowhere. A
    200 now means stored and in force, and the audit's old value is what was
    in force (the version written is above any this process knew, unless it
    already followed the loss back to the file's settings)."""
    server = server_factory(shared_index(tmp_path))
    assert put(server, NEW | {"origins": ["https://first.example"]}).status_code == 200
    assert put(server, NEW).status_code == 200
    with sqlite3.connect(tmp_path / "shared" / "index.sqlite3") as db:
        db.execute("DELETE FROM setting WHERE name = 'cors'")

    third = NEW | {"origins": ["https://third.example"]}
    response = put(server, third)

    assert response.status_code == 200, response.text
    assert response.json() == third
    assert response.headers["dicomhub-cors-source"] == "admin"
    assert preflight(server, "https://third.example").status_code == 204
    assert preflight(server, N).status_code == 403
    after = get(server)
    assert after.json() == third
    assert after.headers["etag"] == response.headers["etag"]
    line = audit_lines(server)[-1]
    old = json.loads(line.split(" old=", 1)[1].split(" new=", 1)[0])
    assert old in (NEW, CONFIGURED)


@pytest.mark.parametrize(
    ("column", "bad", "version"),
    [("version", "abc", None), ("updated_at", "garbage", 5)],
    ids=["version", "updated_at"],
)
def test_unreadable_setting_row(
    column: str,
    bad: str,
    version: int | None,
    tmp_path: Path,
    server_factory: Callable[..., Server],
) -> None:
    """Found by attack: a row whose version or time was not readable (written by hand
    with sqlite3) made PUT and DELETE answer 500, the poller log as if the
    index were down, and a restart fail. It is now an invalid row: one ERROR,
    the settings in force stay (the file's at a start), a PUT or DELETE
    replaces it."""
    index = tmp_path / "shared" / "index.sqlite3"
    server = server_factory(shared_index(tmp_path))
    assert put(server, NEW).status_code == 200
    with sqlite3.connect(index) as db:
        db.execute(
            f"UPDATE setting SET {column} = ?, version = coalesce(?, version)",
            (bad, version),
        )
        if column == "version":
            # What the poller reads first: the version, now not a number.
            db.execute("UPDATE setting SET version = 'abc'")

    log = log_within(server, "stored in the index (version ")
    assert f"{bad!r} is not" in log
    assert "could not read the CORS settings" not in log
    shown = get(server)
    assert shown.json() == NEW
    assert shown.headers["etag"] == '"1"'
    assert shown.headers["dicomhub-cors-stored"] == "invalid"
    assert "not valid and not in force" in shown.headers["warning"]
    assert preflight(server, N).status_code == 204
    server.stop()

    # At a start: one ERROR, and the file's settings.
    again = server_factory(shared_index(tmp_path))
    (error,) = [line for line in again.log().splitlines() if " ERROR " in line]
    assert "stored in the index (version " in error
    assert f"{bad!r} is not" in error
    shown = get(again)
    assert shown.json() == CONFIGURED
    assert shown.headers["etag"] == '"0"'
    assert shown.headers["dicomhub-cors-stored"] == "invalid"

    # A PUT replaces the row; the audit's old value is what was in force.
    written = put(again, NEW)
    assert written.status_code == 200, written.text
    expected = (version or 0) + 1
    assert written.headers["etag"] == f'"{expected}"'
    assert "dicomhub-cors-stored" not in written.headers
    assert preflight(again, N).status_code == 204
    compact = json.dumps(CONFIGURED, separators=(",", ":"))
    assert f"version {expected}: old={compact} new=" in audit_lines(again)[-1]
    deleted = httpx.delete(again.url + "/admin/cors")
    assert deleted.status_code == 200, deleted.text
    assert deleted.headers["etag"] == f'"{expected + 1}"'
