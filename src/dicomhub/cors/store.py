"""The CORS settings set at run time, stored with the index.

The admin API writes the policy into the index's ``setting`` table (row
``cors``), so that every process sharing the index (replicas behind one load
balancer, today several ``dicomhub serve`` on one SQLite file) reads the same
value. Each write stores a higher ``version``; a process compares that one
integer with the one it last saw, about once a second, to learn that the
settings changed.

``value`` holds the policy in the admin API's JSON shape (`CorsPolicy.
to_azure_json`, already normalised), or JSON ``null`` once the settings were
handed back to the configuration file (``DELETE /admin/cors``). The API never
removes the row. A row written by hand may be unreadable (a version that is
not a whole number, a time that is not a time): `read` reports it as such
instead of failing, and `write` replaces it like any other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Text, cast, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..index.schema import setting

NAME = "cors"

# Two writers on different processes may race; each attempt re-reads the row.
_WRITE_ATTEMPTS = 20

_VERSION = re.compile(r"[1-9][0-9]{0,17}")

# Columns are read as text and parsed here, so that a value of the wrong type
# (SQLite keeps whatever it is given) is reported rather than raised.
_VERSION_TEXT = cast(setting.c.version, Text)
_UPDATED_TEXT = cast(setting.c.updated_at, Text)


@dataclass(frozen=True, slots=True)
class StoredSetting:
    """One version of the row.

    `value` is the decoded JSON (None: no override; text when it is not JSON);
    `version` is None when the row's version is not a positive whole number;
    `problem` says why the row cannot be used as it is (None: it can).
    """

    value: Any
    version: int | None
    updated_at: datetime | None
    problem: str | None = None


class SettingConflict(RuntimeError):
    """Other writers kept changing the row; nothing was written."""


class CorsSettingStore:
    """Reads and writes the ``cors`` row of the ``setting`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def version(self) -> int | None:
        """The row's version: one primary-key read.

        0 when there is no row, None when its version is unreadable.
        """
        with self.engine.connect() as conn:
            found = conn.execute(
                select(_VERSION_TEXT).where(setting.c.name == NAME)
            ).first()
        if found is None:
            return 0
        return _version(found[0])

    def read(self) -> StoredSetting | None:
        with self.engine.connect() as conn:
            found = _read(conn)
        return None if found is None else found[0]

    def write(
        self, value: dict[str, Any] | None, after: int = 0
    ) -> tuple[StoredSetting | None, StoredSetting]:
        """Store `value`; return the replaced row and the new one.

        The new version is above both the stored one and `after` (the highest
        this process knows of), so that it is taken as the newest even when the
        row was removed or an older index restored meanwhile. Optimistic: the
        update applies only to the row just read, so of two writers racing on
        different processes one retries, and the replaced row returned (for
        the audit log) is exactly the one overwritten.
        """
        text = json.dumps(value, separators=(",", ":"))
        for _ in range(_WRITE_ATTEMPTS):
            with self.engine.connect() as conn:
                found = _read(conn)
            now = datetime.now(UTC)
            try:
                with self.engine.begin() as conn:
                    if found is None:
                        old = None
                        written = after + 1
                        conn.execute(
                            insert(setting).values(
                                name=NAME, value=text, version=written, updated_at=now
                            )
                        )
                    else:
                        old, version_text = found
                        written = max(old.version or 0, after) + 1
                        result = conn.execute(
                            update(setting)
                            .where(setting.c.name == NAME)
                            .where(_VERSION_TEXT == version_text)
                            .values(value=text, version=written, updated_at=now)
                        )
                        if result.rowcount != 1:
                            continue
            except IntegrityError:
                # Another process inserted the row meanwhile.
                continue
            return old, StoredSetting(value, written, now)
        raise SettingConflict(
            "the CORS settings kept changing while this change was written; "
            "read them again and repeat the change"
        )


def _read(conn: Connection) -> tuple[StoredSetting, str] | None:
    """The row, and its version as the text the optimistic update compares."""
    row = conn.execute(
        select(setting.c.value, _VERSION_TEXT, _UPDATED_TEXT).where(
            setting.c.name == NAME
        )
    ).first()
    if row is None:
        return None
    value_text, version_text, updated_text = row

    problems = []
    version = _version(version_text)
    if version is None:
        problems.append(
            f"its version {_shown(version_text)} is not a positive whole number"
        )
    updated_at = _time(updated_text)
    if updated_text is not None and updated_at is None:
        problems.append(f"its updated_at {_shown(updated_text)} is not a time")
    try:
        value = json.loads(value_text)
    except (TypeError, ValueError, RecursionError):
        # Not JSON (written by hand): kept as text, which the validator then
        # refuses like any other unusable value.
        value = value_text
    problem = "; ".join(problems) or None
    return StoredSetting(value, version, updated_at, problem), version_text


def _version(text: str | None) -> int | None:
    if text is None or not _VERSION.fullmatch(text):
        return None
    return int(text)


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        # SQLite keeps no time zone; the values written here are UTC.
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _shown(text: str) -> str:
    """`text` for a log line: short, and quoted so that it stays on one line."""
    return repr(text if len(text) <= 40 else text[:40] + "...")
