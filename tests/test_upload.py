"""``dicomhub upload``: files and folders to a real server over STOW-RS."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Server, free_port
from .dicomdata import fresh, to_bytes
from .test_ugly_corpus import check_data_dir

PATIENT = "Secretname^Patient"


def run_upload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicomhub", "upload", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def write(folder: Path, name: str, source: str = "CT_small.dcm", **attrs: Any) -> str:
    """A fresh copy of `source` at folder/name; its SOP Instance UID."""
    ds = fresh(source, PatientName=PATIENT, **attrs)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_bytes(ds))
    return str(ds.SOPInstanceUID)


def stored_sops(server: Server) -> set[str]:
    with sqlite3.connect(server.data_dir / "index.sqlite3") as db:
        return {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instance")}


def stow_requests(server: Server) -> int:
    return server.log().count('"POST /v2/studies"')


def test_upload_folders_then_again(server_factory: Any, tmp_path: Path) -> None:
    """A folder tree is stored in batches; a second upload finds every file
    already there and still succeeds; non-DICOM files and the DICOMDIR found
    in folders are skipped."""
    server: Server = server_factory()
    folder = tmp_path / "export"
    sops = {write(folder, f"series1/img{i}.dcm") for i in range(12)}
    sops |= {write(folder, f"series2/deeper/mr{i}", "MR_small.dcm") for i in range(3)}
    (folder / "README.txt").write_text("exported by a PACS\n")
    dicomdir = fresh("CT_small.dcm")
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    (folder / "DICOMDIR").write_bytes(to_bytes(dicomdir))
    single = tmp_path / "single.dcm"
    sops.add(write(tmp_path, "single.dcm"))

    first = run_upload(str(folder), str(single), "--url", server.root)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "stored: 16" in first.stdout
    assert "skipped (not DICOM instances): 2" in first.stdout
    assert stored_sops(server) == sops
    assert stow_requests(server) == 2  # 16 files, at most 10 per request

    second = run_upload(str(folder), "--url", server.root, "--batch-files", "4")

    assert second.returncode == 0, second.stdout + second.stderr
    assert "stored: 0" in second.stdout
    assert "already stored: 15" in second.stdout
    assert stow_requests(server) == 2 + 4
    check_data_dir(server.data_dir)


def test_upload_reports_failures_without_patient_data(
    server_factory: Any, tmp_path: Path
) -> None:
    server: Server = server_factory()
    good = write(tmp_path, "good.dcm")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a DICOM file" * 100)
    other_study = fresh("CT_small.dcm")
    write(tmp_path, "conflict.dcm", series=other_study.SeriesInstanceUID)
    (tmp_path / "first.dcm").write_bytes(to_bytes(other_study))

    result = run_upload(
        str(tmp_path / "first.dcm"),
        str(tmp_path / "good.dcm"),
        str(junk),
        str(tmp_path / "conflict.dcm"),
        "--url",
        server.root,
    )

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "stored: 2" in result.stdout
    assert "failed: 2" in result.stdout
    assert f"{junk}: not a readable DICOM PS3.10 file" in result.stdout
    assert "conflict.dcm: the SeriesInstanceUID is already stored in another" in output
    assert good in stored_sops(server)
    assert "Secretname" not in output
    assert "PID-" not in output


def test_upload_server_down(tmp_path: Path) -> None:
    write(tmp_path, "a.dcm")
    write(tmp_path, "b.dcm")
    url = f"http://127.0.0.1:{free_port()}/v2"

    result = run_upload(str(tmp_path), "--url", url, "--batch-files", "1")

    assert result.returncode == 1
    assert "failed: 2" in result.stdout
    assert "cannot connect" in result.stdout
    assert "not sent" in result.stdout


def test_upload_errors_in_arguments(server_factory: Any, tmp_path: Path) -> None:
    server: Server = server_factory()

    missing = run_upload(str(tmp_path / "nope"), "--url", server.root)
    empty = run_upload(str(tmp_path), "--url", server.root)

    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    assert empty.returncode == 1
    assert "no DICOM files found" in empty.stderr
