"""Settings: a TOML file, then environment variables, then command-line flags.

Every key of the file can also be set as ``DICOMHUB_<TABLE>_<KEY>``, for example
``DICOMHUB_CORS_ORIGINS='["https://viewer.example.org"]'`` or
``DICOMHUB_SERVER_PORT=8080``. A value is read as JSON when it parses as JSON;
otherwise list keys split on commas and newlines, and anything else stays text.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLES = ("server", "storage", "index", "cors", "auth")
LIST_KEYS = {
    ("cors", "origins"),
    ("cors", "headers"),
    ("cors", "methods"),
    ("cors", "expose_headers"),
    ("server", "trusted_proxies"),
    ("server", "allowed_hosts"),
    ("auth", "api_keys"),
}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the key, value and rule."""

    def __init__(self, key: str, value: Any, rule: str):
        self.key = key
        self.value = value
        self.rule = rule
        super().__init__(f"{key} = {value!r}: {rule}")


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("dicomhub-data")
    # The address clients use to reach the DICOMweb root's parent, for example
    # "https://pacs.example.org/dicomweb"; when unset, URLs are built from the
    # request (and X-Forwarded-*/Forwarded from trusted proxies).
    public_base_url: str | None = None
    trusted_proxies: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Host names this server answers to besides loopback ones (DNS rebinding
    # guard, see dicomhub.hosts).
    allowed_hosts: list[str] = field(default_factory=list)
    max_body_bytes: int = 8 * 1024**3
    # Server processes sharing the port; "auto" is one per CPU core. One by
    # default: SQLite takes one writer at a time whatever the process count,
    # and every process holds its own copy of the application in memory
    # (docs/configuration.md).
    workers: int = 1
    # Listen on a non-loopback address without [auth]: anyone who reaches the
    # port may then read, store and delete. Off: such a server refuses to
    # start (docs/security.md).
    allow_open_access: bool = False
    # One line per request in the log (dicomhub.accesslog); off when a reverse
    # proxy in front already logs every request.
    access_log: bool = True


@dataclass
class Settings:
    server: ServerSettings
    storage: dict[str, Any]
    index: dict[str, Any]
    cors: dict[str, Any]
    auth: dict[str, Any]

    @property
    def blob_dir(self) -> Path:
        return Path(self.storage.get("path") or self.server.data_dir / "blobs")

    @property
    def index_url(self) -> str:
        url = self.index.get("url")
        if url:
            return str(url)
        return f"sqlite:///{(self.server.data_dir / 'index.sqlite3').resolve()}"


def _env_value(table: str, key: str, text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if value is not None:
        return value
    if (table, key) in LIST_KEYS:
        items = text.replace("\n", ",").split(",")
        return [item.strip() for item in items if item.strip()]
    return text


def read_raw(
    config_file: Path | None, environ: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The merged tables of the file and the environment, not yet checked."""
    raw: dict[str, dict[str, Any]] = {table: {} for table in TABLES}

    if config_file is not None:
        try:
            with open(config_file, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError("--config", str(config_file), "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                "--config", str(config_file), f"not TOML: {exc}"
            ) from None
        for table, values in data.items():
            if table not in TABLES or not isinstance(values, dict):
                raise ConfigError(
                    table, values, f"unknown table; expected one of {', '.join(TABLES)}"
                )
            raw[table].update(values)

    environ = os.environ if environ is None else environ
    for name, text in environ.items():
        if not name.startswith("DICOMHUB_"):
            continue
        table, _, key = name[len("DICOMHUB_") :].lower().partition("_")
        if table in TABLES and key:
            raw[table][key] = _env_value(table, key, text)
    return raw


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **server_overrides: Any,
) -> Settings:
    """Read, merge and type the settings; command-line flags win over both."""
    raw = with_overrides(read_raw(config_file, environ), **server_overrides)
    return settings_from_raw(raw)


def with_overrides(
    raw: dict[str, dict[str, Any]], **server_overrides: Any
) -> dict[str, dict[str, Any]]:
    """`raw` with the command-line flags that were given put over its [server]."""
    server = dict(raw["server"])
    server.update({k: v for k, v in server_overrides.items() if v is not None})
    return {**raw, "server": server}


def settings_from_raw(raw: Mapping[str, Mapping[str, Any]]) -> Settings:
    """Check and type merged tables (from `read_raw`, or as a parent process
    handed them to its workers)."""
    server_raw = dict(raw["server"])
    known = set(ServerSettings.__dataclass_fields__)
    for key in server_raw:
        if key not in known:
            raise ConfigError(f"server.{key}", server_raw[key], "unknown key")
    server = ServerSettings(**server_raw)
    server.data_dir = Path(server.data_dir)
    for key in ("port", "max_body_bytes"):
        try:
            setattr(server, key, int(getattr(server, key)))
        except (TypeError, ValueError):
            raise ConfigError(
                f"server.{key}", getattr(server, key), "must be an integer"
            ) from None
    server.workers = worker_count(server.workers)
    server.allow_open_access = flag(
        "server.allow_open_access", server.allow_open_access
    )
    server.access_log = flag("server.access_log", server.access_log)

    # A misspelt key would otherwise put the data somewhere else unannounced.
    for table, keys in (("storage", {"path"}), ("index", {"url"})):
        for key, value in raw[table].items():
            if key not in keys:
                expected = ", ".join(sorted(keys))
                raise ConfigError(
                    f"{table}.{key}", value, f"unknown key; expected {expected}"
                )
    return Settings(
        server,
        dict(raw["storage"]),
        dict(raw["index"]),
        dict(raw["cors"]),
        dict(raw["auth"]),
    )


def worker_count(value: Any) -> int:
    """The number of server processes `value` asks for: a positive integer, or
    "auto" for one per CPU core."""
    number: Any = value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return os.cpu_count() or 1
        number = int(text) if text.isdigit() else None
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ConfigError(
            "server.workers",
            value,
            'must be a positive integer, or "auto" for one per CPU core',
        )
    return number


def flag(key: str, value: Any) -> bool:
    """A true/false setting: a TOML or JSON boolean, or the text true or false
    (any case) as an environment variable may give it."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ConfigError(key, value, "must be true or false")
    return value
