"""Where instance bytes live: the BlobStore interface and its implementations."""

from .base import BlobStore
from .folder import FolderStore

__all__ = ["BlobStore", "FolderStore"]
