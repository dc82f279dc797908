"""The CORS settings set at run time, stored with the index.

The admin API writes the policy into the index's ``setting`` table (row
``cors``), so that every process sharing the index (replicas behind one load
balancer, today several ``dicomhub serve`` on one SQLite file) reads the same
value. Each write increments the row's ``version``; a process compares that one
integer, about once a second, to learn that the settings changed.

``value`` holds the policy in the admin API's JSON shape (`CorsPolicy.
to_azure_json`, already normalised), or JSON ``null`` once the settings were
handed back to the configuration file (``DELETE /admin/cors``). The row is never
removed, so versions only grow: a process can tell a newer value from an older
one, even when two changes follow each other within one poll.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..index.schema import setting

NAME = "cors"

# Two writers on different processes may race; each attempt re-reads the row.
_WRITE_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class StoredSetting:
    """One version of the row: `value` is the decoded JSON, None = no override."""

    value: Any
    version: int
    updated_at: datetime | None


class SettingConflict(RuntimeError):
    """Other writers kept changing the row; nothing was written."""


class CorsSettingStore:
    """Reads and writes the ``cors`` row of the ``setting`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def version(self) -> int:
        """The row's version, 0 when it was never written: one primary-key read."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(setting.c.version).where(setting.c.name == NAME)
            ).scalar()
        return int(found or 0)

    def read(self) -> StoredSetting | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(setting.c.value, setting.c.version, setting.c.updated_at).where(
                    setting.c.name == NAME
                )
            ).first()
        if row is None:
            return None
        try:
            value = json.loads(row.value)
        except ValueError:
            # Not JSON (written by hand): kept as text, which the validator
            # then refuses like any other unusable value.
            value = row.value
        return StoredSetting(value, int(row.version), _utc(row.updated_at))

    def write(
        self, value: dict[str, Any] | None
    ) -> tuple[StoredSetting | None, StoredSetting]:
        """Store `value` as the next version; return the replaced row and the new.

        Optimistic: the update applies only to the version just read, so of two
        writers racing on different processes one retries, and the replaced
        value returned (for the audit log) is exactly the one overwritten.
        """
        text = json.dumps(value, separators=(",", ":"))
        for _ in range(_WRITE_ATTEMPTS):
            old = self.read()
            now = datetime.now(UTC)
            try:
                with self.engine.begin() as conn:
                    if old is None:
                        conn.execute(
                            insert(setting).values(
                                name=NAME, value=text, version=1, updated_at=now
                            )
                        )
                        written = 1
                    else:
                        result = conn.execute(
                            update(setting)
                            .where(setting.c.name == NAME)
                            .where(setting.c.version == old.version)
                            .values(value=text, version=old.version + 1, updated_at=now)
                        )
                        if result.rowcount != 1:
                            continue
                        written = old.version + 1
            except IntegrityError:
                # Another process inserted the first version meanwhile.
                continue
            return old, StoredSetting(value, written, now)
        raise SettingConflict(
            "the CORS settings kept changing while this change was written; "
            "read them again and repeat the change"
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # SQLite keeps no time zone; the values written here are UTC.
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
