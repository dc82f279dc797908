"""The index seam: SQLite by default, PostgreSQL for several replicas."""

from __future__ import annotations

from typing import Protocol

from .records import InstanceRecord, StoredInstance


class DuplicateInstance(Exception):
    """The SOP Instance UID is already stored (Azure failure reason 45070)."""


class IndexConflict(Exception):
    """The instance contradicts what is stored, e.g. its series is in another study."""


class Index(Protocol):
    def add_instance(self, record: InstanceRecord) -> None:
        """Index a stored instance; DuplicateInstance if its SOP UID is known."""

    def find_instances(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[StoredInstance]:
        """The instances under a study, series or instance, in series and
        instance number order; empty when nothing matches."""

    def delete(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> list[StoredInstance]:
        """Remove the instances (and emptied series and study); return them."""

    def check(self) -> None:
        """Raise if the index cannot be read (for /health)."""
