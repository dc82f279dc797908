"""The whole sample corpus through a real server: store, retrieve, search, metadata.

Every file of ``samples/dicom/clean`` is stored with STOW-RS, then retrieved
byte-identical (``transfer-syntax=*``: as stored, PS3.18 §8.7.3.5.2), found by
its own UIDs and PatientID, and described by its metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from .conftest import DICOMWEB_CORS, Server, start_server
from .dicomdata import multipart_body, multipart_parts, sample_files

CLEAN = sample_files("clean")
AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("corpus"), DICOMWEB_CORS)
    try:
        body, content_type = multipart_body(path.read_bytes() for path in CLEAN)
        response = httpx.post(
            server.root + "/studies",
            content=body,
            headers={"Content-Type": content_type},
            timeout=120,
        )
        # 202 only for coercion warnings (B000): ExplVR_BigEnd.dcm and
        # color-pl.dcm date and time in the ACR-NEMA form, indexed as V3.
        assert response.status_code in (200, 202), response.text
        stored = response.json()["00081199"]["Value"]
        assert len(stored) == len(CLEAN)
        warned = [item for item in stored if "00081196" in item]
        assert all(item["00081196"]["Value"] == [0xB000] for item in warned)
        assert (response.status_code == 202) is bool(warned)
        yield server
    finally:
        server.stop()


def _uids(path: Path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


@pytest.mark.parametrize("path", CLEAN, ids=[p.name for p in CLEAN])
def test_retrieve_is_byte_identical(loaded: Server, path: Path) -> None:
    study, series, sop = _uids(path)
    url = f"{loaded.root}/studies/{study}/series/{series}/instances/{sop}"
    response = httpx.get(url, headers={"Accept": AS_STORED}, timeout=60)

    assert response.status_code == 200
    parts = multipart_parts(response)
    assert len(parts) == 1
    assert parts[0][1] == path.read_bytes()


@pytest.mark.parametrize("path", CLEAN, ids=[p.name for p in CLEAN])
def test_found_by_its_attributes(loaded: Server, path: Path) -> None:
    study, series, sop = _uids(path)
    patient_id = pydicom.dcmread(path, stop_before_pixels=True).get("PatientID")

    found = httpx.get(f"{loaded.root}/studies", params={"StudyInstanceUID": study})
    assert [item["0020000D"]["Value"] for item in found.json()] == [[study]]

    found = httpx.get(
        f"{loaded.root}/studies/{study}/series", params={"SeriesInstanceUID": series}
    )
    assert [item["0020000E"]["Value"] for item in found.json()] == [[series]]

    found = httpx.get(f"{loaded.root}/instances", params={"SOPInstanceUID": sop})
    assert [item["00080018"]["Value"] for item in found.json()] == [[sop]]

    if patient_id:
        found = httpx.get(f"{loaded.root}/studies", params={"PatientID": patient_id})
        assert study in [item["0020000D"]["Value"][0] for item in found.json()]


@pytest.mark.parametrize("path", CLEAN, ids=[p.name for p in CLEAN])
def test_metadata_describes_the_instance(loaded: Server, path: Path) -> None:
    study, series, sop = _uids(path)
    url = f"{loaded.root}/studies/{study}/series/{series}/instances/{sop}/metadata"
    response = httpx.get(url, headers={"Accept": "application/dicom+json"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    (item,) = response.json()
    assert item["00080018"]["Value"] == [sop]
    assert item["0020000D"]["Value"] == [study]
