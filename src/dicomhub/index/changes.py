"""The change feed's rows: written with each index change, read by the feed.

The Azure DICOM service's change feed keeps, for every instance created or
deleted, an entry with a growing ``Sequence``, the three UIDs, the ``Action``
and a ``State`` that follows the instance: ``current`` while it is stored,
``deleted`` once it is gone, ``replaced`` for the entries of an instance that
was deleted and then stored again under the same SOP Instance UID.

Known limit: on PostgreSQL, sequence numbers are handed out before commit, so
a reader may briefly see a higher number before a lower one commits; the
SQLite default serialises writers and has no such gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from .records import InstanceRecord, StoredInstance
from .schema import change_feed, instance, series, study

CREATE = "create"
DELETE = "delete"
CURRENT = "current"
REPLACED = "replaced"
DELETED = "deleted"

# Keeps each IN (...) list well under every database's parameter limit.
_BATCH = 500


@dataclass(frozen=True)
class ChangeEntry:
    """One row of the change feed, with the instance's attributes when asked."""

    sequence: int
    timestamp: datetime
    action: str
    state: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    metadata: dict[str, Any] | None = None


def _now() -> datetime:
    # Stored as UTC without a zone, so SQLite and PostgreSQL compare alike.
    return datetime.now(UTC).replace(tzinfo=None)


def record_create(conn: Any, record: InstanceRecord) -> None:
    """Note a stored instance; earlier entries of its SOP UID are replaced."""
    conn.execute(
        update(change_feed)
        .where(change_feed.c.sop_instance_uid == record.sop_instance_uid)
        .values(state=REPLACED)
    )
    conn.execute(
        insert(change_feed).values(
            timestamp=_now(),
            action=CREATE,
            state=CURRENT,
            study_instance_uid=record.study_instance_uid,
            series_instance_uid=record.series_instance_uid,
            sop_instance_uid=record.sop_instance_uid,
        )
    )


def record_deletes(conn: Any, removed: Sequence[StoredInstance]) -> None:
    """Note deleted instances; every entry of theirs becomes ``deleted``."""
    sops = [item.sop_instance_uid for item in removed]
    for start in range(0, len(sops), _BATCH):
        conn.execute(
            update(change_feed)
            .where(change_feed.c.sop_instance_uid.in_(sops[start : start + _BATCH]))
            .values(state=DELETED)
        )

    timestamp = _now()
    conn.execute(
        insert(change_feed),
        [
            {
                "timestamp": timestamp,
                "action": DELETE,
                "state": DELETED,
                "study_instance_uid": item.study_instance_uid,
                "series_instance_uid": item.series_instance_uid,
                "sop_instance_uid": item.sop_instance_uid,
            }
            for item in removed
        ],
    )


def _entry(row: Any) -> ChangeEntry:
    return ChangeEntry(
        sequence=row.sequence,
        timestamp=row.timestamp.replace(tzinfo=UTC),
        action=row.action,
        state=row.state,
        study_instance_uid=row.study_instance_uid,
        series_instance_uid=row.series_instance_uid,
        sop_instance_uid=row.sop_instance_uid,
    )


def read_changes(
    conn: Any,
    start: datetime | None,
    end: datetime | None,
    offset: int,
    limit: int,
) -> list[ChangeEntry]:
    """Entries with ``start <= Timestamp < end``, in sequence order, paged."""
    query = select(change_feed).order_by(change_feed.c.sequence)
    if start is not None:
        query = query.where(change_feed.c.timestamp >= _naive_utc(start))
    if end is not None:
        query = query.where(change_feed.c.timestamp < _naive_utc(end))
    rows = conn.execute(query.offset(offset).limit(limit))
    return [_entry(row) for row in rows]


def read_latest(conn: Any) -> ChangeEntry | None:
    row = conn.execute(
        select(change_feed).order_by(change_feed.c.sequence.desc()).limit(1)
    ).first()
    return _entry(row) if row is not None else None


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def instance_metadata(conn: Any, sops: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The DICOM JSON the index keeps of each stored instance, by SOP UID.

    The study, series and instance levels' attributes merged, in tag order;
    bulk data the index leaves out (PS3.18 §F.2) is not there.
    """
    wanted = sorted(set(sops))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _BATCH):
        rows = conn.execute(
            select(
                instance.c.sop_instance_uid,
                study.c.attrs.label("study_attrs"),
                series.c.attrs.label("series_attrs"),
                instance.c.attrs.label("instance_attrs"),
            )
            .select_from(
                study.join(series, series.c.study_pk == study.c.pk).join(
                    instance, instance.c.series_pk == series.c.pk
                )
            )
            .where(instance.c.sop_instance_uid.in_(wanted[start : start + _BATCH]))
        )
        for row in rows:
            merged = {
                **json.loads(row.study_attrs),
                **json.loads(row.series_attrs),
                **json.loads(row.instance_attrs),
            }
            found[row.sop_instance_uid] = dict(sorted(merged.items()))
    return found
