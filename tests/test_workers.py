"""``dicomhub serve --workers N``: several processes on one port, one index.

Each worker logs with its process id (``INFO [pid] dicomhub.access: ...``), so
the log shows which worker answered which request. Requests are sent on fresh
connections from several threads at once: the kernel hands each connection to
whichever worker accepts it first, so both get some. Deadlines only bound the
waiting; no time is asserted.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from .conftest import Server, ServerFailed, start_server
from .dicomdata import fresh, stow
from .test_admin_api import CONFIG, NEW, N, V, put

STARTED = re.compile(r"Started server process \[(\d+)\]")
PARENT = re.compile(r"Started parent process \[(\d+)\]")
LOGGED_BY = re.compile(r" \[(\d+)\] ")
ACCESS = re.compile(r'\[(\d+)\] dicomhub\.access: \S+ "(\S+) (\S+)" (\d+)')

Start = Callable[..., Server]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start ``dicomhub serve`` with extra flags; all are stopped afterwards."""
    started: list[Server] = []

    def starter(
        config: str = "", env: dict[str, str] | None = None, *args: str
    ) -> Server:
        server = start_server(
            tmp_path / f"srv{len(started)}", config, env, extra_args=list(args)
        )
        started.append(server)
        return server

    yield starter
    for server in started:
        server.stop()


def worker_pids(server: Server, count: int) -> list[int]:
    """The workers' process ids, once `count` of them have logged their start."""
    deadline = time.monotonic() + 30
    while True:
        pids = [int(pid) for pid in STARTED.findall(server.log())]
        if len(pids) >= count or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def answered_by(server: Server, method: str, path: str) -> dict[int, list[int]]:
    """Status codes of the requests for `path`, by the process that answered."""
    by_pid: dict[int, list[int]] = {}
    for pid, logged_method, logged_path, status in ACCESS.findall(server.log()):
        if logged_method == method and logged_path == path:
            by_pid.setdefault(int(pid), []).append(int(status))
    return by_pid


def spread(
    server: Server, method: str, path: str, headers: dict[str, str], count: int = 24
) -> list[httpx.Response]:
    """`count` requests on fresh connections, eight at a time."""

    def one(_: int) -> httpx.Response:
        return httpx.request(method, server.url + path, headers=headers, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def spread_until_both_answer(
    server: Server, method: str, path: str, headers: dict[str, str]
) -> tuple[list[httpx.Response], dict[int, list[int]]]:
    """Send batches until the log shows two processes answering `path`."""
    responses: list[httpx.Response] = []
    for _ in range(20):
        responses += spread(server, method, path, headers)
        by_pid = answered_by(server, method, path)
        if len(by_pid) >= 2:
            break
    return responses, by_pid


def logged_by(line: str) -> int:
    """The process id a log line names."""
    found = LOGGED_BY.search(line)
    assert found, line
    return int(found.group(1))


def parent_of(pid: int) -> int:
    # proc(5): the fourth field of /proc/PID/stat, after "(comm)", is the PPID.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def test_two_workers_store_search_and_share_the_port(start: Start) -> None:
    server = start(CONFIG, None, "--workers", "2")
    workers = worker_pids(server, 2)

    assert len(set(workers)) == 2
    assert PARENT.findall(server.log()) == [str(server.process.pid)]
    assert all(parent_of(pid) == server.process.pid for pid in workers)

    datasets = [fresh("CT_small.dcm"), fresh("MR_small.dcm"), fresh("CT_small.dcm")]
    assert stow(server.root, datasets).status_code == 200

    # Whichever worker answers, it finds what the other one stored.
    uids = sorted({d.StudyInstanceUID for d in datasets})
    query = "/v2/studies?StudyInstanceUID=" + ",".join(uids)
    responses, by_pid = spread_until_both_answer(server, "GET", "/v2/studies", {})
    for response in responses:
        assert response.status_code == 200
    assert set(by_pid) == set(workers)
    found = spread(server, "GET", query, {"Accept": "application/dicom+json"})
    for response in found:
        assert response.status_code == 200
        assert sorted(s["0020000D"]["Value"][0] for s in response.json()) == uids

    # The index was migrated once, before the workers started, by the process
    # that checked the settings: neither the parent nor a worker.
    lines = server.log().splitlines()
    upgrades = [n for n, line in enumerate(lines) if "Running upgrade" in line]
    first_start = min(n for n, line in enumerate(lines) if STARTED.search(line))
    assert upgrades and max(upgrades) < first_start
    checker = {logged_by(lines[n]) for n in upgrades}
    assert len(checker) == 1
    assert not checker & {server.process.pid, *workers}

    # Stopping the parent stops its workers.
    server.stop()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.1)


def test_workers_from_the_file(start: Start) -> None:
    server = start(CONFIG + "\n[server]\nworkers = 2\n")

    assert len(set(worker_pids(server, 2))) == 2


def test_auto_workers_from_the_environment(start: Start) -> None:
    server = start(CONFIG, {"DICOMHUB_SERVER_WORKERS": "auto"})
    count = os.cpu_count() or 1

    if count == 1:
        assert STARTED.findall(server.log()) == []
    else:
        assert len(set(worker_pids(server, count))) == count


def test_the_flag_wins_and_one_worker_runs_in_process(start: Start) -> None:
    server = start(CONFIG + "\n[server]\nworkers = 2\n", None, "--workers", "1")
    assert httpx.get(server.url + "/health").status_code == 200

    log = server.log()
    assert "Started parent process" not in log
    assert STARTED.findall(log) == [str(server.process.pid)]


@pytest.mark.parametrize(
    ("config", "env", "args", "shown"),
    [
        ("", {}, ["--workers", "0"], "server.workers = '0'"),
        ("", {"DICOMHUB_SERVER_WORKERS": "-2"}, [], "server.workers = -2"),
        ('[server]\nworkers = "many"\n', {}, [], "server.workers = 'many'"),
        ("[server]\nworkers = 1.5\n", {}, [], "server.workers = 1.5"),
    ],
)
def test_invalid_workers_stop_the_start_with_one_message(
    tmp_path: Path, config: str, env: dict[str, str], args: list[str], shown: str
) -> None:
    with pytest.raises(ServerFailed) as failed:
        start_server(tmp_path, config, env, extra_args=args)

    output = failed.value.output
    assert failed.value.returncode == 2
    assert output.count("dicomhub: invalid setting: ") == 1
    assert f'{shown}: must be a positive integer, or "auto"' in output
    assert "Traceback" not in output
    assert "Started" not in output


def test_a_config_error_is_reported_once_by_the_parent(tmp_path: Path) -> None:
    # The workers count is valid, the CORS table is not: the parent finds it
    # while building its application, before any worker starts.
    config = '[cors]\norigins = ["*"]\nallow_credentials = true\n'
    with pytest.raises(ServerFailed) as failed:
        start_server(tmp_path, config, extra_args=["--workers", "2"])

    output = failed.value.output
    assert failed.value.returncode == 2
    assert output.count("invalid setting: cors.allow_credentials") == 1
    assert "Started" not in output


def test_a_cors_change_reaches_every_worker(start: Start) -> None:
    server = start(CONFIG, None, "--workers", "2")
    workers = worker_pids(server, 2)
    preflight = {"Origin": N, "Access-Control-Request-Method": "DELETE"}

    # Before: the configured settings refuse the new origin on both workers.
    before = "/v2/studies/1.2.826.0.1.3680043.10.1"
    responses, by_pid = spread_until_both_answer(server, "OPTIONS", before, preflight)
    assert set(by_pid) == set(workers)
    assert {r.status_code for r in responses} == {403}

    # The PUT lands on one worker; the other follows within about a second
    # (docs/admin.md, Replicas).
    assert put(server, NEW).status_code == 200

    # Each worker in turn answers 204 to the origin the PUT allowed...
    after = "/v2/studies/1.2.826.0.1.3680043.10.2"
    deadline = time.monotonic() + 30
    while True:
        spread(server, "OPTIONS", after, preflight)
        followed = {
            pid
            for pid, statuses in answered_by(server, "OPTIONS", after).items()
            if 204 in statuses
        }
        if followed == set(workers) or time.monotonic() > deadline:
            break
    assert followed == set(workers)

    # ... and from then on every answer, on either worker, is the new one.
    settled = "/v2/studies/1.2.826.0.1.3680043.10.3"
    responses, by_pid = spread_until_both_answer(server, "OPTIONS", settled, preflight)
    assert set(by_pid) == set(workers)
    for response in responses:
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == N


def test_a_worker_that_dies_is_replaced_with_the_same_settings(
    start: Start,
) -> None:
    server = start(CONFIG, None, "--workers", "2")
    first, second = worker_pids(server, 2)
    # Workers never reread the file: the replacement runs with the settings
    # the parent checked at the start, as its sibling does.
    (server.data_dir.parent / "dicomhub.toml").write_text("[cors]\norigins = 1\n")

    os.kill(first, signal.SIGKILL)
    *_, replacement = worker_pids(server, 3)

    assert replacement not in (first, second)
    assert parent_of(replacement) == server.process.pid
    preflight = {"Origin": V, "Access-Control-Request-Method": "GET"}
    responses, by_pid = spread_until_both_answer(
        server, "OPTIONS", "/v2/studies", preflight
    )
    assert set(by_pid) == {second, replacement}
    for response in responses:
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == V


MIGRATE = """
import sys
from dicomhub.index.migrate import upgrade
from dicomhub.index.sql import make_engine
upgrade(make_engine(sys.argv[1]))
"""


def test_processes_starting_at_once_migrate_one_at_a_time(tmp_path: Path) -> None:
    # Without the lock, two Alembic runs on a fresh file both find no schema
    # and the later one fails on "table ... already exists".
    database = tmp_path / "index.sqlite3"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, f"sqlite:///{database}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output.decode(errors="replace")

    with closing(sqlite3.connect(database)) as connection:
        (versions,) = connection.execute(
            "SELECT count(*) FROM alembic_version"
        ).fetchone()
    assert versions == 1
