"""Blobs as files in a local folder.

A part is written to a temporary file in ``<root>/.incoming``, fsynced, then
renamed into place and its directory fsynced, so a crash leaves either the
whole instance or none of it (rename is atomic on POSIX file systems).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class FolderStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._incoming = self.root / ".incoming"
        self._incoming.mkdir(exist_ok=True)

        # Parts left behind by a crash were never indexed; they are garbage.
        for leftover in self._incoming.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key

    def put_file(self, key: str, source: Path) -> int:
        target = self.path(key)
        with open(source, "rb+") as f:
            os.fsync(f.fileno())

        # A concurrent delete() may remove the emptied series folder between
        # mkdir and rename; a few attempts settle that race.
        for attempt in range(3):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(source, target)
                break
            except FileNotFoundError:
                if attempt == 2 or not source.exists():
                    raise
        _fsync_dir(target.parent)
        return target.stat().st_size

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open(key) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)

        # Drop the series and study folders once they are empty.
        for parent in (path.parent, path.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break

    def temp_dir(self) -> Path:
        return self._incoming

    def check(self) -> None:
        probe = self._incoming / ".health"
        probe.write_bytes(b"ok")
        probe.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
