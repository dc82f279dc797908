"""Size limits of the DICOMweb endpoints (docs/conformance.md "Limits"): each
refusal is a 400 or 413 that names the limit and the setting or constant that
sets it, and leaves no file and no index row behind. Against a real server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from dicomhub.dicom.render import MAX_VIEWPORT
from dicomhub.multipart import (
    MAX_PART_HEADER_BYTES,
    MAX_PART_HEADER_LINES,
    MAX_PARTS,
)
from dicomhub.services.qido import MAX_INCLUDEFIELD
from dicomhub.services.wado import MAX_FRAME_LIST
from dicomhub.web import MAX_QUERY_BYTES, MAX_QUERY_PARAMETERS

from . import dicomdata
from .conftest import Server, start_server
from .dicomdata import fresh, multipart_body, stow, temporary_files, to_bytes

DOCS = Path(__file__).parent.parent / "docs" / "conformance.md"
MULTIPART = 'multipart/related; type="application/dicom"'
BODY_LIMIT = 200_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("limits"),
        f"[server]\nmax_body_bytes = {BODY_LIMIT}\n",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instance(server: Server) -> str:
    """The URL of one stored CT instance."""
    ds = fresh("CT_small.dcm")
    assert stow(server.root, [ds]).status_code == 200
    return (
        f"{server.root}/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )


def index_count(server: Server) -> int:
    with sqlite3.connect(server.data_dir / "index.sqlite3") as db:
        return db.execute("SELECT count(*) FROM instance").fetchone()[0]


def blob_files(server: Server) -> list[Path]:
    return dicomdata.blob_files(server.data_dir / "blobs")


def assert_nothing_left(server: Server, files: int, rows: int) -> None:
    assert len(blob_files(server)) == files
    assert index_count(server) == rows
    assert "Traceback" not in server.log()


def post(server: Server, body: bytes | Iterator[bytes], content_type: str):
    return httpx.post(
        f"{server.root}/studies",
        content=body,
        headers={"Content-Type": content_type},
        timeout=120,
    )


# Query strings ---------------------------------------------------------------


def test_an_ohif_query_is_well_inside_the_limits(server: Server) -> None:
    # What OHIF v3 sends for its study list (and a bit more).
    query = (
        "limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060"
        "&PatientName=*Doe*&PatientID=*12*&StudyDate=20000101-20991231"
        "&AccessionNumber=*&ModalitiesInStudy=CT&StudyDescription=*head*"
    )
    response = httpx.get(f"{server.root}/studies?{query}", timeout=30)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("suffix", ["", "/metadata", "/rendered", "/frames/1"])
def test_a_long_query_string_is_400(server: Server, instance: str, suffix: str) -> None:
    query = "PatientName=" + "A" * MAX_QUERY_BYTES
    for url in [f"{server.root}/studies", instance + suffix]:
        response = httpx.get(f"{url}?{query}", timeout=30)
        assert response.status_code == 400, (url, response.text)
        assert f"limit of {MAX_QUERY_BYTES} bytes" in response.text
        assert "MAX_QUERY_BYTES" in response.text
        assert "AAAA" not in response.text


def test_too_many_parameters_is_400(server: Server, instance: str) -> None:
    query = "&".join(f"x{n}=1" for n in range(MAX_QUERY_PARAMETERS + 1))
    for url in [f"{server.root}/studies", f"{instance}/rendered"]:
        response = httpx.get(f"{url}?{query}", timeout=30)
        assert response.status_code == 400, response.text
        assert f"limit of {MAX_QUERY_PARAMETERS}" in response.text
        assert "MAX_QUERY_PARAMETERS" in response.text


def test_too_many_includefields_is_400(server: Server) -> None:
    fields = ",".join(["00100010"] * (MAX_INCLUDEFIELD + 1))
    response = httpx.get(f"{server.root}/studies?includefield={fields}", timeout=30)
    assert response.status_code == 400, response.text
    assert f"limit of {MAX_INCLUDEFIELD}" in response.text
    assert "MAX_INCLUDEFIELD" in response.text

    fields = ",".join(["00100010"] * MAX_INCLUDEFIELD)
    response = httpx.get(f"{server.root}/studies?includefield={fields}", timeout=30)
    assert response.status_code == 200, response.text


# Frame lists and paths -------------------------------------------------------


def test_a_long_frame_list_is_400(server: Server, instance: str) -> None:
    numbers = ",".join(str(n) for n in range(1, MAX_FRAME_LIST + 2))
    for suffix in ["", "/rendered"]:
        response = httpx.get(f"{instance}/frames/{numbers}{suffix}", timeout=30)
        assert response.status_code == 400, response.text
        assert f"more than {MAX_FRAME_LIST} frames" in response.text
        assert "MAX_FRAME_LIST" in response.text


@pytest.mark.parametrize(
    "frames",
    ["²", "١", "１", "1,²", "9" * 11, "9" * 5000, "1.0", "-1", "0x1", "1,,2", " "],
)
def test_odd_frame_numbers_are_400_not_500(
    server: Server, instance: str, frames: str
) -> None:
    for suffix in ["", "/rendered", "/thumbnail"]:
        response = httpx.get(f"{instance}/frames/{frames}{suffix}", timeout=30)
        assert response.status_code == 400, (frames, suffix, response.text)
        assert "frame numbers" in response.text


def test_frames_past_the_end_are_404(server: Server, instance: str) -> None:
    response = httpx.get(f"{instance}/frames/9999999999", timeout=30)
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["7FE00010/²/00000000", "..%2f..", "A" * 2000])
def test_odd_bulk_data_paths_are_400(server: Server, instance: str, path: str) -> None:
    response = httpx.get(f"{instance}/bulkdata/{path}", timeout=30)
    assert response.status_code == 400, response.text
    assert "bulk data path" in response.text


def test_viewport_is_bounded(server: Server, instance: str) -> None:
    for viewport in [
        f"{MAX_VIEWPORT + 1},10",
        f"10,{MAX_VIEWPORT + 1}",
        "99999999999999999999,1",
        "9" * 5000 + ",1",
        "0,0",
        "1,1,1e308,0,,",
    ]:
        response = httpx.get(f"{instance}/rendered?viewport={viewport}", timeout=30)
        assert response.status_code == 400, (viewport, response.text)
        assert "viewport" in response.text
    # A huge region is cut at the image's edges; the answer stays small.
    for viewport in ["64,64", "1,1,0,0,1e308,1e308"]:
        response = httpx.get(f"{instance}/rendered?viewport={viewport}", timeout=30)
        assert response.status_code == 200, response.text
        assert len(response.content) < 100_000


# Request bodies ----------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413(server: Server, instance: str) -> None:
    files, rows = len(blob_files(server)), index_count(server)

    def chunks() -> Iterator[bytes]:
        # No Content-Length: httpx sends a generator chunked.
        for _ in range(BODY_LIMIT // 10_000 + 5):
            yield b"\0" * 10_000

    response = post(server, chunks(), "application/dicom")
    assert response.status_code == 413, response.text
    assert f"limit of {BODY_LIMIT} bytes" in response.text
    assert "server.max_body_bytes" in response.text
    assert_nothing_left(server, files, rows)
    assert temporary_files(server.data_dir / "blobs") == []


def test_a_declared_length_over_the_limit_is_413(server: Server) -> None:
    body, content_type = multipart_body([b"\0" * (BODY_LIMIT + 1)])
    response = post(server, body, content_type)
    assert response.status_code == 413
    assert "server.max_body_bytes" in response.text


def test_long_part_headers_are_400(server: Server, instance: str) -> None:
    files, rows = len(blob_files(server)), index_count(server)
    data = to_bytes(fresh("CT_small.dcm"))
    head = (
        "--b\r\nContent-Type: application/dicom\r\n"
        f"X-Padding: {'p' * MAX_PART_HEADER_BYTES}\r\n\r\n"
    )
    body = head.encode() + data + b"\r\n--b--\r\n"
    response = post(server, body, f"{MULTIPART}; boundary=b")
    assert response.status_code == 400, response.text
    assert f"longer than {MAX_PART_HEADER_BYTES} bytes" in response.text
    assert "MAX_PART_HEADER_BYTES" in response.text
    assert_nothing_left(server, files, rows)


def test_many_part_header_lines_are_400(server: Server, instance: str) -> None:
    files, rows = len(blob_files(server)), index_count(server)
    data = to_bytes(fresh("CT_small.dcm"))
    lines = "".join(f"X-{n}: 1\r\n" for n in range(MAX_PART_HEADER_LINES + 1))
    head = f"--b\r\nContent-Type: application/dicom\r\n{lines}\r\n"
    body = head.encode() + data + b"\r\n--b--\r\n"
    response = post(server, body, f"{MULTIPART}; boundary=b")
    assert response.status_code == 400, response.text
    assert f"more than {MAX_PART_HEADER_LINES} header lines" in response.text
    assert_nothing_left(server, files, rows)


def test_a_long_boundary_is_400(server: Server) -> None:
    boundary = "b" * 71
    body, content_type = multipart_body([b"x"], boundary=boundary)
    response = post(server, body, content_type)
    assert response.status_code == 400
    assert "70 characters" in response.text


def test_too_many_parts_is_413(server_factory, instance: str) -> None:
    # Parts that are not application/dicom are refused without a file; the
    # count alone ends the body.
    big = server_factory("[server]\nmax_body_bytes = 100000000\n")
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    body = part * (MAX_PARTS + 1) + b"--b--\r\n"
    response = post(big, body, f"{MULTIPART}; boundary=b")
    assert response.status_code == 413, response.text[:300]
    assert f"more than {MAX_PARTS} parts" in response.text
    assert "MAX_PARTS" in response.text
    assert_nothing_left(big, 0, 0)


def test_a_real_upload_still_works(server: Server) -> None:
    study = generate_uid()
    datasets = [fresh("CT_small.dcm", study=study) for _ in range(3)]
    response = stow(server.root, datasets)
    assert response.status_code == 200, response.text


# Documentation ---------------------------------------------------------------


def test_the_limits_are_documented() -> None:
    text = DOCS.read_text()
    assert "## Limits" in text
    limits = text[text.index("## Limits") :]
    for name in [
        "server.max_body_bytes",
        "MAX_QUERY_BYTES",
        "MAX_QUERY_PARAMETERS",
        "MAX_INCLUDEFIELD",
        "MAX_FRAME_LIST",
        "MAX_PART_HEADER_BYTES",
        "MAX_PART_HEADER_LINES",
        "MAX_PARTS",
        "MAX_VIEWPORT",
        "MAX_RENDER_PIXELS",
        "MAX_DECODED_FRAME_BYTES",
        "MAX_DECODED_INSTANCE_BYTES",
        "MAX_INFLATED_BYTES",
    ]:
        assert name in limits, name
