"""Two dicomhub processes sharing one index follow each other's CORS changes.

Replicas share the index (and the blobs) and nothing else: each process keeps
its policy in memory and reads the stored setting's version about once a
second (docs/admin.md). A PUT on one must show on the other's preflights within
2 seconds; the test polls with that deadline and asserts no time beyond it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .conftest import Server
from .dicomdata import fresh, stow
from .test_admin_api import (
    CONFIG,
    CONFIGURED,
    NEW,
    N,
    get,
    preflight,
    put,
    shared_index,
    store_by_hand,
)

# docs/admin.md promises: every replica follows a change within 2 seconds.
FOLLOW_DEADLINE = 2.0


def preflight_status_within(
    server: Server, origin: str, method: str, status: int, deadline: float
) -> int:
    """Send preflights until one answers `status` or the deadline passes."""
    while True:
        answered = preflight(server, origin, method).status_code
        if answered == status or time.monotonic() > deadline:
            return answered
        time.sleep(0.05)


def test_replicas_follow_a_change_within_two_seconds(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    config = shared_index(tmp_path, CONFIG)
    a = server_factory(config, name="a")
    b = server_factory(config, name="b")
    assert a.data_dir != b.data_dir

    # They share one index: what A stores, B finds.
    ct = fresh("CT_small.dcm")
    assert stow(a.root, [ct]).status_code == 200
    found = httpx.get(b.root + f"/studies?StudyInstanceUID={ct.StudyInstanceUID}")
    assert found.status_code == 200 and ct.StudyInstanceUID in found.text
    assert preflight(b, N, "DELETE").status_code == 403

    assert put(a, NEW).status_code == 200
    deadline = time.monotonic() + FOLLOW_DEADLINE

    assert preflight_status_within(b, N, "DELETE", 204, deadline) == 204
    followed = get(b)
    assert followed.json() == NEW
    assert followed.headers["etag"] == '"1"'
    assert followed.headers["dicomhub-cors-source"] == "admin"

    # And back, the other way round.
    assert httpx.delete(b.url + "/admin/cors").status_code == 200
    deadline = time.monotonic() + FOLLOW_DEADLINE

    assert preflight_status_within(a, N, "DELETE", 403, deadline) == 403
    assert get(a).json() == CONFIGURED
    assert get(a).headers["dicomhub-cors-source"] == "config"
    assert "CORS settings version 2 from the index are in force" in a.log()


def test_replicas_keep_the_newest_of_quick_changes(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """Changes on both replicas within one poll: both end on the last one."""
    config = shared_index(tmp_path, CONFIG)
    a = server_factory(config, name="a")
    b = server_factory(config, name="b")
    last = NEW | {"origins": ["https://last.example.org"]}

    assert put(a, NEW).status_code == 200
    assert put(b, NEW | {"maxAge": 5}).status_code == 200
    response = put(a, last)
    assert response.status_code == 200
    assert response.headers["etag"] == '"3"'
    deadline = time.monotonic() + FOLLOW_DEADLINE

    for server in (a, b):
        answered = preflight_status_within(
            server, "https://last.example.org", "GET", 204, deadline
        )
        assert answered == 204, server.url
        assert get(server).json() == last


def test_replicas_etag_is_the_version_in_force(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """Found by attack: the ETag claimed the stored version even when those settings
    were invalid and not in force, so two replicas showed one ETag over
    different settings. It is the version in force on each process."""
    config = shared_index(tmp_path, CONFIG)
    a = server_factory(config, name="a")
    assert put(a, NEW).status_code == 200
    store_by_hand(tmp_path, '{"origins": "not a list"}', 2)
    deadline = time.monotonic() + 10
    while "(version 2) are not valid" not in a.log():
        assert time.monotonic() < deadline, a.log()
        time.sleep(0.1)

    b = server_factory(config, name="b")

    on_a, on_b = get(a), get(b)
    assert on_a.json() == NEW
    assert on_a.headers["etag"] == '"1"'
    assert on_b.json() == CONFIGURED
    assert on_b.headers["etag"] == '"0"'
    for answer in (on_a, on_b):
        assert answer.headers["dicomhub-cors-stored"] == "invalid"


def test_replicas_follow_a_lost_row_back_to_the_file(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    """A row removed by hand (or an older index restored) is followed like a
    change: back to the configured settings, as a restart would; the next PUT
    is in force everywhere."""
    config = shared_index(tmp_path, CONFIG)
    a = server_factory(config, name="a")
    b = server_factory(config, name="b")
    assert put(a, NEW).status_code == 200
    assert preflight_status_within(b, N, "DELETE", 204, time.monotonic() + 2) == 204

    with sqlite3.connect(tmp_path / "shared" / "index.sqlite3") as db:
        db.execute("DELETE FROM setting WHERE name = 'cors'")
    deadline = time.monotonic() + FOLLOW_DEADLINE

    for server in (a, b):
        answered = preflight_status_within(server, N, "DELETE", 403, deadline)
        assert answered == 403, server.url
        assert get(server).headers["etag"] == '"0"'
        assert "row is gone from the index" in server.log()

    last = NEW | {"origins": ["https://last.example.org"]}
    assert put(b, last).status_code == 200
    deadline = time.monotonic() + FOLLOW_DEADLINE
    answered = preflight_status_within(
        a, "https://last.example.org", "GET", 204, deadline
    )
    assert answered == 204
    assert get(a).json() == last
