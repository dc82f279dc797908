"""The blob-store seam: a local folder today, object storage (S3, Azure Blob) later.

Keys are built only from validated UIDs (``study/series/instance.dcm``), so no
implementation has to guard against path traversal on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobStore(Protocol):
    def put_file(self, key: str, source: Path) -> int:
        """Move the finished temporary file `source` under `key`, durably.

        Returns the size in bytes. When this returns, the blob survives a crash.
        """

    def place(self, key: str, source: Path) -> None:
        """Move the finished temporary file `source`, whose bytes its writer
        has already synced, under `key`; durable once `make_durable` names it.

        Several instances then cost one directory sync, not one each."""

    def make_durable(self, keys: Iterable[str]) -> None:
        """Make the blobs `place` put under `keys` survive a crash."""

    def open(self, key: str) -> BinaryIO:
        """A readable, seekable file object for `key`; FileNotFoundError if absent."""

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in chunks, without reading it whole."""

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    def temp_dir(self) -> Path:
        """A folder for incoming parts, on the same file system as the blobs."""

    def check(self) -> None:
        """Raise if the store cannot be written (for /health)."""
