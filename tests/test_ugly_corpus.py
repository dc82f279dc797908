"""The broken-input corpus (samples/dicom/ugly) through STOW-RS: each file is
stored or refused with a clear 4xx, never a 500 or a crash, and the data
folder never holds a half-written file or an index row without its file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import DICOMWEB_CORS, Server, start_server
from .dicomdata import multipart_body, sample_files, temporary_files

UGLY = sample_files("ugly")

# FailureReasons a refused instance may carry (PS3.18 §10.5.3, Azure codes):
# invalid DICOM, and a SOP instance or series already stored.
REFUSALS = {43264, 45070, 45071}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("ugly"), DICOMWEB_CORS)
    yield server
    server.stop()


def check_data_dir(data_dir: Path) -> None:
    """No temporary file left; index rows and blobs match one to one."""
    blobs = data_dir / "blobs"
    assert temporary_files(blobs) == []
    with sqlite3.connect(data_dir / "index.sqlite3") as db:
        keys = {key for (key,) in db.execute("SELECT blob_key FROM instance")}
    files = {
        str(path.relative_to(blobs))
        for path in blobs.rglob("*")
        if path.is_file() and ".incoming" not in path.relative_to(blobs).parts
    }
    assert files == keys


def check_answer(response: httpx.Response) -> None:
    """200 with the instance stored, 202 with it stored with warnings (a
    searchable value failed its VR's rules: badVR.dcm's NumberOfFrames "1A",
    bad_sequence.dcm's 64-character StudyID), or 409 with a reason for each
    failure (PS3.18 §10.5.3)."""
    assert response.status_code in (200, 202, 409), response.text
    assert response.headers["content-type"] == "application/dicom+json"
    payload = response.json()
    if response.status_code in (200, 202):
        assert "00081198" not in payload
        (item,) = payload["00081199"]["Value"]
        warned = response.status_code == 202
        assert ("00081196" in item) is warned and ("00741048" in item) is warned
        return
    failed = payload["00081198"]["Value"]
    assert len(failed) == 1
    assert failed[0]["00081197"]["Value"][0] in REFUSALS


@pytest.mark.parametrize("path", UGLY, ids=[path.name for path in UGLY])
def test_ugly_file_as_multipart(server: Server, path: Path) -> None:
    body, content_type = multipart_body([path.read_bytes()])

    response = httpx.post(
        f"{server.root}/studies",
        content=body,
        headers={"Content-Type": content_type},
        timeout=60,
    )

    check_answer(response)
    assert server.process.poll() is None
    check_data_dir(server.data_dir)


@pytest.mark.parametrize("path", UGLY, ids=[path.name for path in UGLY])
def test_ugly_file_as_single_part(server: Server, path: Path) -> None:
    response = httpx.post(
        f"{server.root}/studies",
        content=path.read_bytes(),
        headers={"Content-Type": "application/dicom"},
        timeout=60,
    )

    check_answer(response)
    assert server.process.poll() is None
    check_data_dir(server.data_dir)


def test_ugly_corpus_in_one_request(server_factory: object) -> None:
    """All of them in one body on an empty server: a status per PS3.18
    §10.5.3 and one response item per part."""
    fresh_server: Server = server_factory(DICOMWEB_CORS)  # type: ignore[operator]
    body, content_type = multipart_body([path.read_bytes() for path in UGLY])

    response = httpx.post(
        f"{fresh_server.root}/studies",
        content=body,
        headers={"Content-Type": content_type},
        timeout=120,
    )

    assert response.status_code in (200, 202, 409), response.text
    payload = response.json()
    stored = payload.get("00081199", {}).get("Value", [])
    failed = payload.get("00081198", {}).get("Value", [])
    assert len(stored) + len(failed) == len(UGLY)
    assert {item["00081197"]["Value"][0] for item in failed} <= REFUSALS
    check_data_dir(fresh_server.data_dir)
