"""The index: what is stored, searchable without opening any instance."""

from .base import DuplicateInstance, Index, IndexConflict
from .changes import ChangeEntry
from .records import InstanceRecord, StoredInstance, build_record
from .sql import SqlIndex

__all__ = [
    "ChangeEntry",
    "DuplicateInstance",
    "Index",
    "IndexConflict",
    "InstanceRecord",
    "SqlIndex",
    "StoredInstance",
    "build_record",
]
