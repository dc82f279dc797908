"""The servers a benchmark talks to, each one process on a free loopback port.

- ``uvicorn``: ``dicomhub serve``, as a user runs it (``--workers N`` when
  `workers` is given, otherwise the server's default);
- ``granian``: the same application under granian (bench/asgi.py ``app``);
- ``bare``: the floor, an ASGI callable answering 204 with no logic, under
  uvicorn with the options ``dicomhub serve`` passes (bench/asgi.py ``bare``);
- ``bare+cors``: the floor behind dicomhub's CORS layer alone (bench/asgi.py
  ``cors_bare``);
- ``bare+log``: the floor behind dicomhub's access-log layer, with the log
  configured as under ``dicomhub serve`` (bench/asgi.py ``logged_bare``).

Every dicomhub server gets the same CORS settings (`CORS_SETTINGS`): one
allowed origin, `authorization` allowed as a request header, so that a
viewer's preflight for a frame with a bearer token is answered 204
(docs/cors.md §2).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
GRANIAN_DIR = BENCH / ".work" / "granian"

ALLOWED_ORIGIN = "https://viewer.bench.example"
DISALLOWED_ORIGIN = "https://elsewhere.bench.example"

# The [cors] table of every dicomhub server in the bench, as environment
# variables (docs/cors.md §4): one origin in list mode, so ACAO is echoed and
# every answer varies on Origin (D4), the case that costs the most per request.
CORS_SETTINGS = {
    "origins": [ALLOWED_ORIGIN],
    "headers": ["authorization"],
    "methods": ["GET", "HEAD"],
    "max_age": 600,
}

KINDS = ("uvicorn", "unlogged", "granian", "bare", "bare+cors", "bare+log")

# The uvicorn options `dicomhub serve` uses (src/dicomhub/cli.py), so that the
# floor and dicomhub differ only in the application.
UVICORN_OPTIONS = ["--no-access-log", "--no-proxy-headers", "--no-server-header"]


@dataclass(frozen=True)
class Running:
    """A server of the bench: its name, base URL, DICOMweb root and process id
    (for its peak memory, bench/memory.py)."""

    name: str
    url: str
    root: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(
    kind: str, port: int, data_dir: Path, workers: str | None = None
) -> list[str]:
    if kind in ("uvicorn", "unlogged"):
        return [
            sys.executable, "-m", "dicomhub", "serve",
            "--port", str(port), "--data-dir", str(data_dir),
            *(["--workers", workers] if workers is not None else []),
        ]  # fmt: skip
    if kind == "granian":
        return [
            sys.executable, "-m", "granian",
            "--interface", "asgi", "--factory", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port),
            "bench.asgi:app",
        ]  # fmt: skip
    target = {
        "bare": ["bench.asgi:bare"],
        "bare+cors": ["--factory", "bench.asgi:cors_bare"],
        "bare+log": ["--factory", "bench.asgi:logged_bare"],
    }
    return [
        sys.executable, "-m", "uvicorn", *UVICORN_OPTIONS,
        "--lifespan", "off", "--host", "127.0.0.1", "--port", str(port),
        *target[kind],
    ]  # fmt: skip


def server_environment(kind: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMHUB_")}
    env["DICOMHUB_SERVER_DATA_DIR"] = str(data_dir)
    for key, value in CORS_SETTINGS.items():
        env[f"DICOMHUB_CORS_{key.upper()}"] = json.dumps(value)
    if kind == "unlogged":
        # dicomhub serve with [server] access_log = false.
        env["DICOMHUB_SERVER_ACCESS_LOG"] = "false"
    if kind not in ("uvicorn", "unlogged"):
        # bench.asgi, and granian from its own folder (not a project dependency).
        paths = [str(GRANIAN_DIR)] if kind == "granian" else []
        env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPOSITORY)])
    return env


@contextmanager
def server(kind: str, data_dir: Path, log_dir: Path) -> Iterator[str]:
    """Run one of `KINDS`; yields its URL once /health answers 2xx."""
    with started(kind, data_dir, log_dir) as running:
        yield running.url


@contextmanager
def started(
    kind: str, data_dir: Path, log_dir: Path, workers: str | None = None
) -> Iterator[Running]:
    """Run one of `KINDS`; yields it once /health answers 2xx. `workers` is
    the ``--workers`` of ``dicomhub serve`` (kind ``uvicorn`` only); its pid is
    the parent's, whose tree bench/memory.py sums."""
    if kind not in KINDS:
        raise ValueError(f"server kind {kind!r}: expected one of {', '.join(KINDS)}")
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{kind}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            server_command(kind, port, data_dir, workers),
            cwd=REPOSITORY,
            env=server_environment(kind, data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: {kind} exited; see {log_path}")
            try:
                if httpx.get(url + "/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {kind} did not get healthy; see {log_path}")
            time.sleep(0.2)
        if workers is not None:
            all_started(process, log_path, workers, deadline)
        yield Running("dicomhub", url, url + "/v2", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def all_started(
    process: subprocess.Popen[bytes], log_path: Path, workers: str, deadline: float
) -> None:
    """Wait until every worker logged its start: /health answers as soon as
    one worker is up, and the others would start during the first phase."""
    count = (os.cpu_count() or 1) if workers == "auto" else int(workers)
    if count == 1:
        return
    while log_path.read_text(errors="replace").count("startup complete") < count:
        if process.poll() is not None:
            raise SystemExit(f"bench: dicomhub exited; see {log_path}")
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: a dicomhub worker did not start; see {log_path}")
        time.sleep(0.2)
