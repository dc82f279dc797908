"""Schema migrations with Alembic, applied when the server starts.

Several processes may start on one index at once: the workers of one
``dicomhub serve --workers N`` (whose parent migrates before starting them),
replicas sharing a PostgreSQL index, two servers pointed at one SQLite file.
One of them migrates while the others wait, then find the schema at the newest
revision and change nothing: for SQLite an exclusive ``flock(2)`` on a file
beside the database, for PostgreSQL a transaction-level advisory lock.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"

# The key of the PostgreSQL advisory lock taken while migrating: any fixed
# 64-bit number other applications sharing the database do not use (this is
# the ASCII of "dicomhub").
ADVISORY_LOCK_KEY = 0x6469636F6D687562

# Beside a SQLite index file "index.sqlite3": "index.sqlite3.migrate-lock".
LOCK_SUFFIX = ".migrate-lock"

# Alembic names each of its plugins at INFO when it is imported; the
# migrations it runs are still logged. Hence the import in `upgrade`.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def upgrade(engine: Engine) -> None:
    """Bring the index schema to the newest revision, one process at a time."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _file_lock(engine), engine.begin() as connection:
        _advisory_lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive lock on a file beside a SQLite database file.

    SQLite's own locks cannot serialise migrations: pysqlite commits around DDL
    on its own, so two Alembic runs could both find the schema old.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return

    with open(database + LOCK_SUFFIX, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _advisory_lock(connection: Connection) -> None:
    # PostgreSQL releases a transaction-level advisory lock at commit or
    # rollback (PostgreSQL documentation, "Advisory Lock Functions"), so a
    # migrator that fails or dies never leaves the others waiting.
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )
