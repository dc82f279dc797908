"""Fixtures: real dicomhub processes on real sockets, fed real DICOM files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# The DICOMweb cases' [cors] table (cases/dicomweb/conventions.md).
DICOMWEB_CORS = """
[cors]
origins = ["http://viewer.example"]
headers = ["Authorization"]
methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
max_age = 600
allow_credentials = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def root(self) -> str:
        return self.url + "/v2"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ServerFailed(Exception):
    """The server exited before it answered /health; `output` is its log."""

    def __init__(self, returncode: int | None, output: str):
        super().__init__(f"dicomhub exited with {returncode}:\n{output}")
        self.returncode = returncode
        self.output = output


def start_server(
    workdir: Path,
    config: str = "",
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Server:
    """Start ``dicomhub serve`` with `config` as its TOML file; wait until healthy."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "dicomhub.toml"
    config_path.write_text(textwrap.dedent(config))
    data_dir = workdir / "data"
    log_path = workdir / "server.log"
    port = free_port()
    command = [
        sys.executable, "-m", "dicomhub", "serve",
        "--config", str(config_path),
        "--port", str(port),
        "--data-dir", str(data_dir),
        *(extra_args or []),
    ]  # fmt: skip
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMHUB_")}
    full_env.update(env or {})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=full_env
        )
    server = Server(f"http://127.0.0.1:{port}", data_dir, log_path, process)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(process.returncode, server.log())
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise ServerFailed(None, server.log())


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with a given config; all are stopped after the test."""
    started: list[Server] = []

    def factory(
        config: str = "", env: dict[str, str] | None = None, name: str = "srv"
    ) -> Server:
        server = start_server(tmp_path / f"{name}{len(started)}", config, env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def dicomweb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module with the DICOMweb cases' configuration."""
    server = start_server(tmp_path_factory.mktemp("dicomweb"), DICOMWEB_CORS)
    yield server
    server.stop()
