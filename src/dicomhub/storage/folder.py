"""Blobs as files in a local folder.

A part is written to a temporary file in ``<root>/.incoming``, fsynced, then
renamed into place and its directory fsynced, so a crash leaves either the
whole instance or none of it (rename is atomic on POSIX file systems).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

# Held while folders are created (`_make_folders`).
_FOLDERS = threading.Lock()


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

    def place(self, key: str, source: Path) -> None:
        target = self.path(key)

        # As in put_file: a concurrent delete() may remove an emptied folder.
        for attempt in range(3):
            try:
                _make_folders(target.parent, self.root)
                os.replace(source, target)
                return
            except FileNotFoundError:
                if attempt == 2 or not source.exists():
                    raise

    def make_durable(self, keys: Iterable[str]) -> None:
        # The files' bytes are synced already; their names live in their
        # folders, each synced once however many files it received.
        for folder in sorted({self.path(key).parent for key in keys}):
            _fsync_dir(folder)

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


def _make_folders(folder: Path, root: Path) -> None:
    """Create `folder` and its missing parents under `root`, each new one's
    name synced into its parent so that what is placed in it stays reachable
    after a crash. One thread at a time: a folder another thread has just
    made is used only once its name is synced."""
    with _FOLDERS:
        missing = []
        while folder != root and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            _fsync_dir(new.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
