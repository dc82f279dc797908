"""The index: what is stored, searchable without opening any instance."""

from .base import DuplicateInstance, Index, IndexConflict, Indexed
from .changes import ChangeEntry
from .records import InstanceRecord, StoredInstance, build_record
from .sql import SqlIndex

__all__ = [
    "ChangeEntry",
    "DuplicateInstance",
    "Index",
    "IndexConflict",
    "Indexed",
    "InstanceRecord",
    "SqlIndex",
    "StoredInstance",
    "build_record",
]
