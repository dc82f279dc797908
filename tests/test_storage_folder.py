"""The folder store shared by several processes (workers, replicas): a process
starting never removes what another is still writing, and removes what an
ended one left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dicomhub.storage.folder import FolderStore

from .dicomdata import temporary_files

WRITER = """
import sys
from pathlib import Path
from dicomhub.storage.folder import FolderStore

store = FolderStore(Path(sys.argv[1]))
(store.temp_dir() / "part").write_bytes(b"half an instance")
print(store.temp_dir(), flush=True)
sys.stdin.read()
"""


def test_a_starting_process_keeps_a_live_ones_files(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        its_folder = Path(writer.stdout.readline().strip())

        # A second process starts while the first is writing.
        other = FolderStore(tmp_path)
        assert (its_folder / "part").read_bytes() == b"half an instance"
        assert other.temp_dir() != its_folder
        other.check()
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(timeout=10)

    # The first has ended: the next process to start removes its leftovers.
    FolderStore(tmp_path)
    assert not its_folder.exists()
    assert temporary_files(tmp_path) == []


def test_loose_files_of_the_older_layout_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".incoming").mkdir()
    (tmp_path / ".incoming" / "tmpabc.part").write_bytes(b"x")

    FolderStore(tmp_path)

    assert temporary_files(tmp_path) == []
