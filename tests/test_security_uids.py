"""UIDs from URLs and from stored files are checked (PS3.5 §9.1) before they
touch a storage path or a query: a bad one is a 400 (or, in a STOW-RS part,
a 43264 failure) that names the parameter and the rule, and leaves no file
and no index row behind. Against a real server."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.uid import generate_uid

from dicomhub.errors import BadRequest
from dicomhub.uids import check_uid, is_valid_uid, uid_problem

from .conftest import Server, start_server
from .dicomdata import blob_files, fresh, stow, temporary_files, to_bytes
from .test_stow import index_rows

# Raw request targets: what a client can put in a path segment, percent-
# encoded or not (httpx would normalise some of them, so they go as raw bytes).
BAD_SEGMENTS = [
    "%2e%2e",
    "..%2f..%2fetc",
    "..%252f",
    "1.2%2f..",
    "1.2%00",
    "1.2%0a",
    "1.2%0d%0aX-Injected:%201",
    "%d9%a1.2",  # '١' (ARABIC-INDIC DIGIT ONE), which str.isdigit takes
    "%ef%bc%91.2",  # '１' (FULLWIDTH DIGIT ONE)
    "%c2%b2.2",  # '²'
    "1.02",
    "1..2",
    ".1.2",
    "1.2.",
    "-1.2",
    "1.2e3",
    "1" * 65,
    "1." * 5000 + "1",
    "%20%201.2",
]

# pydicom warns while the test writes the bad values on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")

WHERE = [
    "/studies/{bad}",
    "/studies/{bad}/metadata",
    "/studies/{good}/series/{bad}",
    "/studies/{good}/series/{bad}/metadata",
    "/studies/{good}/series/{good}/instances/{bad}",
    "/studies/{good}/series/{good}/instances/{bad}/frames/1",
    "/studies/{good}/series/{good}/instances/{bad}/rendered",
    "/studies/{good}/series/{good}/instances/{bad}/thumbnail",
    "/studies/{good}/series/{good}/instances/{bad}/bulkdata/7FE00010",
    "/studies/{bad}/series",
    "/studies/{bad}/instances",
    "/studies/{good}/series/{bad}/instances",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("uids"))
    yield server
    server.stop()


def raw_get(server: Server, target: str, method: str = "GET") -> httpx.Response:
    """`target` sent exactly as written (no normalisation of '..' or '%')."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        request = client.build_request(method, server.url)
        request.url = request.url.copy_with(raw_path=target.encode("ascii"))
        return client.send(request)


def stored_files(server: Server) -> list[Path]:
    return blob_files(server.data_dir / "blobs")


def test_uid_rules() -> None:
    for good in ["0", "1.2.3", "1.2.840.10008.1.2.1", "2.25." + "9" * 39]:
        assert is_valid_uid(good), good
        assert uid_problem(good) is None
    for bad, rule in [
        ("", "empty"),
        ("1.2.3\n", "character"),
        ("١.2", "character"),
        ("1.2\x00", "character"),
        ("1.02", "starts with 0"),
        ("1..2", "empty component"),
        ("1" * 65, "over the 64"),
    ]:
        assert not is_valid_uid(bad), repr(bad)
        assert rule in (uid_problem(bad) or ""), repr(bad)


def test_message_names_the_parameter_and_caps_the_echo() -> None:
    with pytest.raises(BadRequest) as caught:
        check_uid("9" * 500 + "\r\nSet-Cookie: x", "SeriesInstanceUID")
    message = caught.value.message
    assert message.startswith("SeriesInstanceUID ")
    assert "PS3.5 §9.1" in message
    assert "\r" not in message and "\n" not in message
    assert "9" * 65 not in message
    assert "Set-Cookie" not in message


@pytest.mark.parametrize("bad", BAD_SEGMENTS)
def test_bad_uid_in_the_url_is_400(server: Server, bad: str) -> None:
    good = generate_uid()
    for pattern in WHERE:
        target = "/v2" + pattern.format(bad=bad, good=good)
        response = raw_get(server, target)
        # A segment that decodes to '/' changes the path, which then names
        # no resource (404 from the router); anything else is 400.
        assert response.status_code in (400, 404), (target, response.text)
        if response.status_code == 400:
            assert "not a valid UID" in response.text
            assert "PS3.5 §9.1" in response.text
            assert len(response.text) < 600
    assert stored_files(server) == []


def test_dot_segments_are_resolved_before_routing(server: Server) -> None:
    # RFC 3986 §5.2.4: a literal ".." segment is removed with the one before
    # it before the router sees the path, so it names another resource of
    # the API (or none), never a file; encoded, it is a bad UID (above).
    for target in [
        "/v2/studies/..",
        "/v2/studies/../../../etc/passwd",
        "/v2/studies/1.2/series/../../..",
        "/v2/studies/1.2/series/../instances",
    ]:
        response = raw_get(server, target)
        assert response.status_code < 500, target
        assert "root:" not in response.text


@pytest.mark.parametrize("bad", ["%2e%2e", "1.02", "%d9%a1.2", "1" * 65])
def test_bad_uid_in_delete_and_stow_urls_is_400(server: Server, bad: str) -> None:
    good = generate_uid()
    for target in [f"/v2/studies/{bad}", f"/v2/studies/{good}/series/{bad}"]:
        response = raw_get(server, target, "DELETE")
        assert response.status_code == 400, (target, response.text)
        assert "not a valid UID" in response.text

    with httpx.Client(base_url=server.url, timeout=30) as client:
        request = client.build_request(
            "POST",
            server.url,
            content=to_bytes(fresh("CT_small.dcm")),
            headers={"Content-Type": "application/dicom"},
        )
        request.url = request.url.copy_with(raw_path=f"/v2/studies/{bad}".encode())
        response = client.send(request)
    assert response.status_code == 400
    assert response.text.startswith("StudyInstanceUID ")
    assert stored_files(server) == []
    assert index_rows(server) == []


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("StudyInstanceUID", "../../../../tmp/escaped"),
        ("SeriesInstanceUID", "1.2.3/../../x"),
        ("SOPInstanceUID", "1.2\n.3"),
        ("SOPInstanceUID", "١.٢.٣"),
        ("StudyInstanceUID", "1.2.03"),
        ("SeriesInstanceUID", "1" * 65),
        ("SOPInstanceUID", ""),
    ],
)
def test_stow_refuses_bad_uids_inside_the_file(
    server: Server, keyword: str, value: str
) -> None:
    before = index_rows(server)
    ds = fresh("CT_small.dcm")
    if keyword == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    # pydicom writes UI values as ASCII: another one goes in as its UTF-8
    # bytes in place of a placeholder of the same length.
    raw = value.encode("utf-8")
    placeholder = "9" * len(raw)
    ds[keyword].value = value if value.isascii() else placeholder
    data = to_bytes(ds)
    if not value.isascii():
        tag = tag_for_keyword(keyword)
        assert tag is not None
        at = data.index(struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"UI", 132)
        data = data[:at] + data[at:].replace(placeholder.encode(), raw, 1)
    response = stow(server.root, [data])

    assert response.status_code == 409, response.text
    failed = response.json()["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [43264]
    assert index_rows(server) == before
    assert not any("escaped" in str(path) for path in stored_files(server))
    assert not (server.data_dir.parent / "tmp").exists()
    assert temporary_files(server.data_dir / "blobs") == []
    assert "Traceback" not in server.log()


def test_valid_uids_still_work(server: Server) -> None:
    ds = fresh("CT_small.dcm")
    assert stow(server.root, [ds]).status_code == 200
    url = (
        f"{server.root}/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/metadata"
    )
    assert httpx.get(url, timeout=30).status_code == 200
    (path,) = stored_files(server)
    assert path.resolve().is_relative_to((server.data_dir / "blobs").resolve())
