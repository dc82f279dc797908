"""Blobs as files in a local folder.

A part is written to a temporary file in ``<root>/.incoming``, fsynced, then
renamed into place and its directory fsynced, so a crash leaves either the
whole instance or none of it (rename is atomic on POSIX file systems).

Several processes may share the folder (workers, replicas): each writes its
temporary files in a folder of its own under ``.incoming``, holding an
``flock`` on a ``lock`` file in it for as long as it lives. What a process
left behind is removed by the next one to start once that lock is free, so
no process ever removes a file another is still writing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

# Held while folders are created (`_make_folders`).
_FOLDERS = threading.Lock()

# A process's folder under .incoming whose lock file is missing is one being
# made, or one whose maker died before locking it; only an old one is removed.
_UNLOCKED_GRACE = 3600.0


class FolderStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        incoming = self.root / ".incoming"
        incoming.mkdir(exist_ok=True)

        # Parts left behind by an ended process were never indexed; they are
        # garbage.
        _remove_abandoned(incoming)
        self._incoming, self._lock = _own_folder(incoming)

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


def _own_folder(incoming: Path) -> tuple[Path, int]:
    """A new folder under `incoming` and the open, locked descriptor of its
    lock file, which the process keeps until it ends."""
    while True:
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=incoming))
        fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # A starting process took it for abandoned in the instant between
            # mkdtemp and flock, and removes it: make another.
            os.close(fd)
            continue
        return folder, fd


def _remove_abandoned(incoming: Path) -> None:
    for entry in incoming.iterdir():
        if not entry.is_dir():
            # A temporary file of the layout before folders per process.
            entry.unlink(missing_ok=True)
            continue
        try:
            fd = os.open(entry / "lock", os.O_RDWR)
        except FileNotFoundError:
            if time.time() - entry.stat().st_mtime > _UNLOCKED_GRACE:
                shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its process is alive
        else:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            os.close(fd)
