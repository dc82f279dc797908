"""The index on SQLAlchemy Core: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    create_engine,
    delete,
    event,
    exists,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .base import DuplicateInstance, IndexConflict, Indexed
from .changes import (
    ChangeEntry,
    instance_metadata,
    read_changes,
    read_latest,
    record_create,
    record_deletes,
)
from .migrate import upgrade
from .records import InstanceRecord, StoredInstance
from .schema import instance, instance_document, series, study

# The columns of a StoredInstance, in its field order, and the join they need.
STORED_COLUMNS = (
    study.c.study_instance_uid,
    series.c.series_instance_uid,
    instance.c.sop_instance_uid,
    instance.c.sop_class_uid,
    instance.c.transfer_syntax_uid,
    instance.c.blob_key,
    instance.c.size,
    instance.c.number_of_frames,
)
STUDY_SERIES_INSTANCE = study.join(series, series.c.study_pk == study.c.pk).join(
    instance, instance.c.series_pk == series.c.pk
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one writer commits. FULL syncs the WAL at
    # each commit: NORMAL survives a crash of the server but may lose the last
    # commits to a crash of the machine, and an instance STOW-RS acknowledged
    # must survive both. STOW-RS commits once per request (or per
    # `STOW_BATCH` instances), so this costs one sync per request. Foreign
    # keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class SqlIndex:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        upgrade(self.engine)

        # SQLite allows one writer at a time; serialising writers here avoids
        # "database is locked" retries under concurrent STOW requests.
        self._write_lock = threading.Lock() if self.is_sqlite else None

    def _locked(self) -> Any:
        return self._write_lock or _NoLock()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction, holding SQLite's write lock from its start.

        Python's sqlite3 begins a transaction only at the first INSERT, UPDATE
        or DELETE, so the SELECTs that check a record before it is written
        would each see the database as it is at that moment, and another
        process (a worker, a replica) could commit in between: the study read
        as missing, then its series found under the other process's new study.
        BEGIN IMMEDIATE takes the lock first (SQLite, "BEGIN TRANSACTION"), so
        the checks and the writes see one state; other writers wait up to the
        busy timeout. Other databases get no such lock here.
        """
        with self._locked(), self.engine.begin() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def add_instance(self, record: InstanceRecord) -> None:
        (indexed,) = self.add_instances([record])
        if indexed.refusal is not None:
            raise indexed.refusal

    def replace_instance(self, record: InstanceRecord) -> StoredInstance | None:
        (indexed,) = self.add_instances([record], replace=True)
        if indexed.refusal is not None:
            raise indexed.refusal
        return indexed.replaced

    def add_instances(
        self, records: Sequence[InstanceRecord], replace: bool = False
    ) -> list[Indexed]:
        try:
            with self._writing() as conn:
                return [self._index(conn, item, replace) for item in records]
        except IntegrityError:
            # On PostgreSQL a concurrent writer may have committed one of
            # these UIDs first: the batch is rolled back, and each record is
            # indexed on its own.
            pass
        return [self._index_alone(item, replace) for item in records]

    def _index_alone(self, record: InstanceRecord, replace: bool) -> Indexed:
        # A second attempt finds what the concurrent writer committed.
        for attempt in range(2):
            try:
                with self._writing() as conn:
                    return self._index(conn, record, replace)
            except IntegrityError:
                if attempt == 1:
                    break
        return Indexed(refusal=DuplicateInstance(record.sop_instance_uid))

    def _index(self, conn: Any, record: InstanceRecord, replace: bool) -> Indexed:
        """One record in the open transaction; a refusal writes nothing."""
        try:
            if replace:
                return Indexed(replaced=self._replace(conn, record))
            self._insert(conn, record)
        except (DuplicateInstance, IndexConflict) as refusal:
            return Indexed(refusal=refusal)
        return Indexed()

    def _insert(self, conn: Any, record: InstanceRecord) -> None:
        # Everything that refuses the record is checked before anything is
        # written, so a refusal leaves the transaction as it was.
        taken = conn.execute(
            select(study.c.study_instance_uid, series.c.series_instance_uid)
            .select_from(STUDY_SERIES_INSTANCE)
            .where(instance.c.sop_instance_uid == record.sop_instance_uid)
        ).first()
        if taken is not None:
            if tuple(taken) == (record.study_instance_uid, record.series_instance_uid):
                raise DuplicateInstance(record.sop_instance_uid)
            raise IndexConflict(
                "the SOPInstanceUID is already stored in another study or series"
            )

        study_pk = conn.execute(
            select(study.c.pk).where(
                study.c.study_instance_uid == record.study_instance_uid
            )
        ).scalar()
        row = conn.execute(
            select(series.c.pk, series.c.study_pk).where(
                series.c.series_instance_uid == record.series_instance_uid
            )
        ).first()
        if row is not None and row.study_pk != study_pk:
            raise IndexConflict(
                "the SeriesInstanceUID is already stored in another study"
            )

        # The first instance of a study or series defines its attributes.
        if study_pk is None:
            study_pk = conn.execute(
                insert(study).values(
                    study_instance_uid=record.study_instance_uid,
                    attrs=json.dumps(record.study_attrs),
                    **record.study_columns,
                )
            ).inserted_primary_key[0]

        if row is None:
            series_pk = conn.execute(
                insert(series).values(
                    study_pk=study_pk,
                    series_instance_uid=record.series_instance_uid,
                    attrs=json.dumps(record.series_attrs),
                    **record.series_columns,
                )
            ).inserted_primary_key[0]
        else:
            series_pk = row.pk

        instance_pk = conn.execute(
            insert(instance).values(
                series_pk=series_pk,
                sop_instance_uid=record.sop_instance_uid,
                transfer_syntax_uid=record.transfer_syntax_uid,
                blob_key=record.blob_key,
                size=record.size,
                attrs=json.dumps(record.instance_attrs),
                **record.instance_columns,
            )
        ).inserted_primary_key[0]
        _write_document(conn, instance_pk, record.metadata_document)

        # Same transaction: the feed lists the instance exactly when it is
        # indexed (the Azure DICOM service's change feed guarantee).
        record_create(conn, record)

    def _replace(self, conn: Any, record: InstanceRecord) -> StoredInstance | None:
        row = conn.execute(
            select(instance.c.pk, series.c.pk, study.c.pk, *STORED_COLUMNS)
            .select_from(STUDY_SERIES_INSTANCE)
            .where(instance.c.sop_instance_uid == record.sop_instance_uid)
        ).first()
        if row is None:
            self._insert(conn, record)
            return None

        # Moving an instance would leave the old study or series with stale
        # attributes; the Azure service refuses such a store with 45071 too.
        if (row.study_instance_uid, row.series_instance_uid) != (
            record.study_instance_uid,
            record.series_instance_uid,
        ):
            raise IndexConflict(
                "the SOPInstanceUID is already stored in another study or series"
            )

        instance_pk, series_pk, study_pk = row[:3]
        conn.execute(
            update(instance)
            .where(instance.c.pk == instance_pk)
            .values(
                transfer_syntax_uid=record.transfer_syntax_uid,
                blob_key=record.blob_key,
                size=record.size,
                attrs=json.dumps(record.instance_attrs),
                **record.instance_columns,
            )
        )
        conn.execute(
            delete(instance_document).where(
                instance_document.c.instance_pk == instance_pk
            )
        )
        _write_document(conn, instance_pk, record.metadata_document)

        # A replacement is a correction: its series and study attributes
        # become those of the series and study, as the Azure DICOM service's
        # "latest wins", so that QIDO-RS matches and returns the new values.
        conn.execute(
            update(series)
            .where(series.c.pk == series_pk)
            .values(attrs=json.dumps(record.series_attrs), **record.series_columns)
        )
        conn.execute(
            update(study)
            .where(study.c.pk == study_pk)
            .values(attrs=json.dumps(record.study_attrs), **record.study_columns)
        )

        # The feed's earlier entries for this SOP UID become "replaced", as
        # for a store after a delete, and the new file gets a "create" entry.
        record_create(conn, record)
        return StoredInstance(*row[3:])

    def _select_instances(
        self, study_uid: str, series_uid: str | None, sop_uid: str | None
    ) -> Any:
        conditions = [study.c.study_instance_uid == study_uid]
        if series_uid is not None:
            conditions.append(series.c.series_instance_uid == series_uid)
        if sop_uid is not None:
            conditions.append(instance.c.sop_instance_uid == sop_uid)
        return (
            select(*STORED_COLUMNS)
            .select_from(STUDY_SERIES_INSTANCE)
            .where(and_(*conditions))
            .order_by(
                series.c.series_number,
                series.c.pk,
                instance.c.instance_number,
                instance.c.pk,
            )
        )

    def find_instances(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[StoredInstance]:
        with self.engine.connect() as conn:
            rows = conn.execute(self._select_instances(study, series, sop))
            return [StoredInstance(*row) for row in rows]

    def find_documents(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[tuple[StoredInstance, str | None]]:
        query = self._select_instances(study, series, sop)
        query = query.add_columns(instance_document.c.document).select_from(
            STUDY_SERIES_INSTANCE.outerjoin(
                instance_document, instance_document.c.instance_pk == instance.c.pk
            )
        )
        with self.engine.connect() as conn:
            return [(StoredInstance(*row[:-1]), row[-1]) for row in conn.execute(query)]

    def keep_document(self, item: StoredInstance, document: str) -> None:
        # Only while the index still names this file, and only once: the row
        # is written from the instance row that names it, in one statement.
        source = select(instance.c.pk, literal(document)).where(
            instance.c.sop_instance_uid == item.sop_instance_uid,
            instance.c.blob_key == item.blob_key,
            ~exists().where(instance_document.c.instance_pk == instance.c.pk),
        )
        with self._writing() as conn:
            conn.execute(
                insert(instance_document).from_select(
                    ["instance_pk", "document"], source
                )
            )

    def delete(
        self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[StoredInstance]:
        with self._writing() as conn:
            found = [
                StoredInstance(*row)
                for row in conn.execute(
                    self._select_instances(study_uid, series_uid, sop_uid)
                )
            ]
            if not found:
                return []
            sops = [item.sop_instance_uid for item in found]
            for start in range(0, len(sops), 500):
                conn.execute(
                    delete(instance).where(
                        instance.c.sop_instance_uid.in_(sops[start : start + 500])
                    )
                )

            # Series and studies left without instances go too.
            conn.execute(
                delete(series).where(
                    ~exists().where(instance.c.series_pk == series.c.pk)
                )
            )
            conn.execute(
                delete(study).where(~exists().where(series.c.study_pk == study.c.pk))
            )
            record_deletes(conn, found)
            return found

    def changes(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
        include_metadata: bool = False,
    ) -> list[ChangeEntry]:
        with self.engine.connect() as conn:
            entries = read_changes(conn, start, end, offset, limit)
            if include_metadata:
                entries = self._with_metadata(conn, entries)
            return entries

    def latest_change(self, include_metadata: bool = False) -> ChangeEntry | None:
        with self.engine.connect() as conn:
            entry = read_latest(conn)
            if entry is not None and include_metadata:
                entry = self._with_metadata(conn, [entry])[0]
            return entry

    @staticmethod
    def _with_metadata(conn: Any, entries: list[ChangeEntry]) -> list[ChangeEntry]:
        # Only an instance still stored has metadata to give.
        found = instance_metadata(conn, (e.sop_instance_uid for e in entries))
        return [
            replace(entry, metadata=found.get(entry.sop_instance_uid))
            for entry in entries
        ]

    def check(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


def _write_document(conn: Any, instance_pk: int, document: str | None) -> None:
    if document is not None:
        conn.execute(
            insert(instance_document).values(instance_pk=instance_pk, document=document)
        )


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
