"""The clean corpus and its transfer-syntax variants through STOW-RS.

Every clean file is a valid instance with its own SOP Instance UID, so each
is stored; every variant is a clean file's SOP instance in another transfer
syntax, so stored after its twin it is a duplicate: 409 with 45070, as the
Azure DICOM service answers, and the twin stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from .conftest import DICOMWEB_CORS, Server, start_server
from .dicomdata import sample_files
from .test_ugly_corpus import check_data_dir

CLEAN = sample_files("clean")
VARIANTS = sample_files("variants")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("corpus"), DICOMWEB_CORS)
    yield server
    server.stop()


def store_one(server: Server, path: Path) -> httpx.Response:
    boundary = "corpus-boundary"
    body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    body += path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return httpx.post(
        f"{server.root}/studies",
        content=body,
        headers={
            "Content-Type": "multipart/related; "
            f'type="application/dicom"; boundary={boundary}'
        },
        timeout=120,
    )


def sop_of(path: Path) -> str:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.SOPInstanceUID)


def test_clean_files_are_stored_then_variants_are_duplicates(server: Server) -> None:
    for path in CLEAN:
        response = store_one(server, path)
        assert response.status_code in (200, 202), f"{path.name}: {response.text}"
        referenced = response.json()["00081199"]["Value"]
        if response.status_code == 202:
            # A date or time in the ACR-NEMA form (ExplVR_BigEnd.dcm,
            # color-pl.dcm) is indexed in the V3 form: a coercion warning
            # (B000), nothing refused.
            assert referenced[0]["00081196"]["Value"] == [0xB000], path.name
        assert referenced[0]["00081155"]["Value"] == [sop_of(path)], path.name

    blobs = sorted((server.data_dir / "blobs").rglob("*.dcm"))
    before = {path: path.read_bytes() for path in blobs}

    for path in VARIANTS:
        response = store_one(server, path)
        assert response.status_code == 409, f"{path.name}: {response.text}"
        failed = response.json()["00081198"]["Value"]
        assert failed[0]["00081197"]["Value"] == [45070], path.name
        assert failed[0]["00081155"]["Value"] == [sop_of(path)], path.name

    after = sorted((server.data_dir / "blobs").rglob("*.dcm"))
    assert after == blobs
    assert all(path.read_bytes() == before[path] for path in after)
    check_data_dir(server.data_dir)
