"""Settings from the TOML file, the environment and the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomhub.config import ConfigError, load_settings


def test_defaults_follow_the_brief() -> None:
    settings = load_settings(None, environ={})

    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.data_dir == Path("dicomhub-data")
    assert settings.index_url.startswith("sqlite:///")


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "dicomhub.toml"
    config.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[cors]\nmax_age = 5\n')
    environ = {
        "DICOMHUB_SERVER_PORT": "9001",
        "DICOMHUB_CORS_ORIGINS": "https://a.example, https://b.example",
        "DICOMHUB_CORS_MAX_AGE": "60",
        "OTHER": "ignored",
    }

    settings = load_settings(config, environ=environ, host="127.0.0.2")

    assert settings.server.port == 9001
    assert settings.server.host == "127.0.0.2"
    assert settings.cors["origins"] == ["https://a.example", "https://b.example"]
    assert settings.cors["max_age"] == 60


def test_environment_lists_may_be_json() -> None:
    environ = {"DICOMHUB_CORS_ORIGINS": '["https://a.example"]'}

    settings = load_settings(None, environ=environ)

    assert settings.cors["origins"] == ["https://a.example"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nport = 'eighty'\n", "server.port"),
        ("[server]\ncolour = 'blue'\n", "server.colour"),
        ("[nonsense]\na = 1\n", "nonsense"),
        # A misspelt path would put the instances somewhere else unannounced.
        ("[storage]\npaht = '/elsewhere'\n", "storage.paht"),
        ("[index]\nurll = 'sqlite:///x'\n", "index.urll"),
        ("[server\n", "--config"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "dicomhub.toml"
    config.write_text(text)

    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})

    assert info.value.key == key
    assert key in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_api_keys_from_the_environment_may_be_comma_separated() -> None:
    environ = {"DICOMHUB_AUTH_API_KEYS": "first-key-0123456789, second-key-0123456789"}

    settings = load_settings(None, environ=environ)

    assert settings.auth["api_keys"] == [
        "first-key-0123456789",
        "second-key-0123456789",
    ]


def test_one_worker_by_default() -> None:
    assert load_settings(None, environ={}).server.workers == 1


def test_workers_from_file_environment_and_flag(tmp_path: Path) -> None:
    config = tmp_path / "dicomhub.toml"
    config.write_text("[server]\nworkers = 3\n")

    assert load_settings(config, environ={}).server.workers == 3
    environ = {"DICOMHUB_SERVER_WORKERS": "2"}
    assert load_settings(config, environ=environ).server.workers == 2
    assert load_settings(config, environ=environ, workers="4").server.workers == 4


@pytest.mark.parametrize("value", ["auto", "AUTO", " auto "])
def test_auto_workers_are_one_per_cpu_core(value: str) -> None:
    environ = {"DICOMHUB_SERVER_WORKERS": value}

    assert load_settings(None, environ=environ).server.workers == os.cpu_count()


@pytest.mark.parametrize(
    "text", ["0", "-1", "2.5", "true", "many", "", '"2 workers"', "[2]"]
)
def test_invalid_workers_name_the_key_and_the_rule(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"DICOMHUB_SERVER_WORKERS": text})

    assert caught.value.key == "server.workers"
    assert str(caught.value).startswith("server.workers = ")
    assert 'must be a positive integer, or "auto" for one per CPU core' in str(
        caught.value
    )


def test_invalid_workers_in_the_file(tmp_path: Path) -> None:
    config = tmp_path / "dicomhub.toml"
    config.write_text("[server]\nworkers = 0\n")

    with pytest.raises(ConfigError, match=r"server\.workers = 0: must be"):
        load_settings(config, environ={})
