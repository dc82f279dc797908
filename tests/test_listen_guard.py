"""No open server beyond loopback unless asked for (docs/security.md).

``dicomhub serve`` listening on a non-loopback address with no [auth] exits 2
with a message naming the fix; ``[server] allow_open_access``, its variable or
``--allow-open-access`` start it anyway, with a WARNING. Each case starts a
real server process on 0.0.0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from dicomhub.app import listens_on_loopback
from dicomhub.config import ConfigError, load_settings

from .conftest import Server, ServerFailed, start_server

KEY = "k3y-for-the-guard-0123456789"
ANY_ADDRESS = ["--host", "0.0.0.0"]
WARNING = "WARNING dicomhub.app: open access on 0.0.0.0"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(
        config: str = "",
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> Server:
        server = start_server(tmp_path / f"srv{len(started)}", config, env, args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def refused(start: Callable[[], Server]) -> ServerFailed:
    with pytest.raises(ServerFailed) as failed:
        start()
    return failed.value


@pytest.mark.parametrize("workers", ["1", "2"])
def test_open_server_on_any_address_exits_2(
    serve: Callable[..., Server], workers: str
) -> None:
    failure = refused(lambda: serve(args=[*ANY_ADDRESS, "--workers", workers]))

    assert failure.returncode == 2, failure.output
    message = failure.output
    assert "server.host = '0.0.0.0'" in message
    assert "[auth]" in message
    assert "allow_open_access = true" in message
    assert "DICOMHUB_SERVER_ALLOW_OPEN_ACCESS=true" in message
    assert "--allow-open-access" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("config", "env", "args"),
    [
        ("", {}, ["--allow-open-access"]),
        ("", {"DICOMHUB_SERVER_ALLOW_OPEN_ACCESS": "true"}, []),
        ("[server]\nallow_open_access = true\n", {}, []),
    ],
    ids=["flag", "environment", "toml"],
)
def test_allow_open_access_starts_with_a_warning(
    serve: Callable[..., Server],
    config: str,
    env: dict[str, str],
    args: list[str],
) -> None:
    server = serve(config, env, [*ANY_ADDRESS, *args])

    assert httpx.get(server.root + "/studies").status_code in (200, 204)
    log = server.log()
    assert WARNING in log, log
    assert "anyone who reaches the port can read, store and delete" in log


def test_the_flag_cannot_close_what_the_file_opened(
    serve: Callable[..., Server],
) -> None:
    """Without --allow-open-access the file's setting stands."""
    server = serve("[server]\nallow_open_access = true\n", {}, ANY_ADDRESS)
    assert WARNING in server.log()


def test_authentication_starts_without_the_setting(
    serve: Callable[..., Server],
) -> None:
    server = serve(f'[auth.api_keys]\nviewer = "{KEY}"\n', {}, ANY_ADDRESS)

    assert httpx.get(server.root + "/studies").status_code == 401
    assert "open access" not in server.log()


def test_loopback_always_starts(serve: Callable[..., Server]) -> None:
    server = serve("", {}, ["--host", "127.0.0.1"])

    assert httpx.get(server.root + "/studies").status_code in (200, 204)
    assert "open access" not in server.log()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("192.168.1.10", False),
        ("pacs.example.org", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert listens_on_loopback(host) is loopback


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False)],
)
def test_allow_open_access_from_the_environment(text: str, value: bool) -> None:
    settings = load_settings(environ={"DICOMHUB_SERVER_ALLOW_OPEN_ACCESS": text})
    assert settings.server.allow_open_access is value


@pytest.mark.parametrize("text", ["yes", "1", "on", '"maybe"'])
def test_allow_open_access_must_be_true_or_false(text: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"DICOMHUB_SERVER_ALLOW_OPEN_ACCESS": text})
    assert error.value.key == "server.allow_open_access"
    assert "true or false" in str(error.value)


def test_off_by_default() -> None:
    assert load_settings(environ={}).server.allow_open_access is False
