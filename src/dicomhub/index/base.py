"""The index seam: SQLite by default, PostgreSQL for several replicas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .changes import ChangeEntry
from .records import InstanceRecord, StoredInstance


class DuplicateInstance(Exception):
    """The SOP Instance UID is already stored (Azure failure reason 45070)."""


class IndexConflict(Exception):
    """The instance contradicts what is stored, e.g. its series is in another study."""


@dataclass(frozen=True)
class Indexed:
    """What the index made of one record of `Index.add_instances`: indexed,
    replacing `replaced` when not None, or refused with `refusal`."""

    replaced: StoredInstance | None = None
    refusal: DuplicateInstance | IndexConflict | None = None


class Index(Protocol):
    def add_instance(self, record: InstanceRecord) -> None:
        """Index a stored instance; DuplicateInstance if its SOP UID is known
        in the same study and series, IndexConflict if elsewhere."""

    def add_instances(
        self, records: Sequence[InstanceRecord], replace: bool = False
    ) -> list[Indexed]:
        """Index `records` in one transaction, in order: each as
        `add_instance` (or, with `replace`, `replace_instance`) would, except
        that a refused record is answered in its `Indexed` while the others
        are indexed all the same. A later record sees the earlier ones, so of
        two with one SOP Instance UID the first wins (or, with `replace`, the
        last). When the transaction commits, every indexed record is there,
        with its change feed entry; before, none is."""

    def replace_instance(self, record: InstanceRecord) -> StoredInstance | None:
        """Index `record`, replacing the instance stored under its SOP UID.

        Returns what was stored before (its blob is the caller's to remove),
        or None when the SOP UID was new and `record` was added as by
        `add_instance`. IndexConflict when the stored instance is in another
        series or study, or the series is in another study. The instance row
        changes in one transaction with a change feed ``create`` entry, and
        the series and study rows take the attributes of `record`."""

    def find_instances(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[StoredInstance]:
        """The instances under a study, series or instance, in series and
        instance number order; empty when nothing matches."""

    def find_documents(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[tuple[StoredInstance, str | None]]:
        """`find_instances` with each instance's metadata document
        (dicomhub.dicom.metadata_document), None for an instance that has
        none, in one query."""

    def keep_document(self, item: StoredInstance, document: str) -> None:
        """Keep `document` for `item`, which had none; nothing when `item` is
        no longer stored under its blob key (replaced or deleted meanwhile)."""

    def delete(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[StoredInstance]:
        """Remove the instances (and emptied series and study); return them.

        Each removed instance gets a change feed ``delete`` entry in the same
        transaction, as each added one gets a ``create`` entry."""

    def changes(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
        include_metadata: bool = False,
    ) -> list[ChangeEntry]:
        """Change feed entries with ``start <= timestamp < end``, in sequence
        order, skipping `offset` of them; with the instances' DICOM JSON when
        `include_metadata` and the instance is still stored."""

    def latest_change(self, include_metadata: bool = False) -> ChangeEntry | None:
        """The change feed's newest entry; None when nothing was ever stored."""

    def check(self) -> None:
        """Raise if the index cannot be read (for /health)."""
