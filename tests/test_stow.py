"""STOW-RS (PS3.18 §10.5): media types, body framing, the response dataset and
its status codes, against a real server."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from dicomhub.mediatypes import parse_media_type
from dicomhub.multipart import MultipartReader, PartData, PartStart

from .conftest import Server
from .dicomdata import fresh, multipart_body, stow, temporary_files, to_bytes

MULTIPART = 'multipart/related; type="application/dicom"'


def post(
    server: Server, body: bytes | Iterator[bytes], content_type: str, path: str = ""
) -> httpx.Response:
    return httpx.post(
        f"{server.root}/studies{path}",
        content=body,
        headers={"Content-Type": content_type},
        timeout=120,
    )


def part(data: bytes, boundary: str, content_type: str = "application/dicom") -> bytes:
    head = f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
    return head + data + b"\r\n"


def items(response: httpx.Response, tag: str) -> list[dict[str, Any]]:
    return response.json().get(tag, {}).get("Value", [])


def reasons(response: httpx.Response) -> list[int]:
    return [item["00081197"]["Value"][0] for item in items(response, "00081198")]


def uid_of(item: dict[str, Any], tag: str) -> str:
    return item[tag]["Value"][0]


def assert_stored(response: httpx.Response, *datasets: Dataset) -> None:
    """200 with one ReferencedSOPSequence item per dataset, no failures."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    assert "00081198" not in response.json()
    referenced = items(response, "00081199")
    assert [uid_of(item, "00081155") for item in referenced] == [
        ds.SOPInstanceUID for ds in datasets
    ]
    for item, ds in zip(referenced, datasets, strict=True):
        assert uid_of(item, "00081150") == ds.SOPClassUID
        assert uid_of(item, "00081190").endswith(
            f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )


def index_rows(server: Server) -> list[tuple[str, str]]:
    """(SOPInstanceUID, blob key) of every indexed instance."""
    with sqlite3.connect(server.data_dir / "index.sqlite3") as db:
        return db.execute("SELECT sop_instance_uid, blob_key FROM instance").fetchall()


def blob_of(server: Server, sop: str) -> Path:
    keys = [key for uid, key in index_rows(server) if uid == sop]
    assert len(keys) == 1
    return server.data_dir / "blobs" / keys[0]


def incoming(server: Server) -> list[Path]:
    return temporary_files(server.data_dir / "blobs")


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (
            'multipart/related; type="application/dicom"; '
            'boundary="0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"',
            "0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1",
        ),
        (
            "multipart/related; type=application/dicom; boundary=myboundary",
            "myboundary",
        ),
        (
            'multipart/related; boundary=myboundary; type="application/dicom"',
            "myboundary",
        ),
        (
            'multipart/related; type="application/dicom"; '
            'boundary="----=_Part_0_123.456"',
            "----=_Part_0_123.456",
        ),
        ('Multipart/Related; Type="application/dicom"; Boundary=XYZ', "XYZ"),
    ],
    ids=["H1", "H2", "H3", "H4", "H5"],
)
def test_dicomweb_18_stow_content_type_variants(
    dicomweb_server: Server, content_type: str, boundary: str
) -> None:
    """cases/dicomweb/dicomweb-18-stow-content-type-variants.md"""
    ct = fresh("CT_small.dcm")
    body = part(to_bytes(ct), boundary) + f"--{boundary}--\r\n".encode()

    response = post(dicomweb_server, body, content_type)

    assert_stored(response, ct)


def test_dicomweb_19_stow_body_framing(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-19-stow-body-framing.md"""
    server = dicomweb_server
    b = "dicomhub19"
    content_type = f"{MULTIPART}; boundary={b}"

    # 1. JS style: CRLF before the first delimiter, no CRLF after the last.
    ct = fresh("CT_small.dcm")
    body = f"\r\n--{b}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    body += to_bytes(ct) + f"\r\n--{b}--".encode()
    assert_stored(post(server, body, content_type), ct)

    # 2. A preamble and an epilogue (RFC 2046 §5.1.1).
    ct = fresh("CT_small.dcm")
    body = b"preamble\r\n" + part(to_bytes(ct), b) + f"--{b}--\r\nepilogue".encode()
    assert_stored(post(server, body, content_type), ct)

    # 3. Two parts.
    ct, mr = fresh("CT_small.dcm"), fresh("MR_small.dcm")
    body = part(to_bytes(ct), b) + part(to_bytes(mr), b) + f"--{b}--\r\n".encode()
    assert_stored(post(server, body, content_type), ct, mr)


def test_dicomweb_19_near_delimiter_inside_a_value(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-19-stow-body-framing.md, request 4."""
    server = dicomweb_server
    ct = fresh("CT_small.dcm")
    block = ct.private_block(0x0011, "dicomhub test", create=True)
    block.add_new(0x01, "OB", b"\r\n--myboundarX\r\n\r\n")
    data = to_bytes(ct)

    body, content_type = multipart_body([data], boundary="myboundary")
    assert_stored(post(server, body, content_type), ct)

    # The stored file is the uploaded one, byte for byte.
    assert blob_of(server, ct.SOPInstanceUID).read_bytes() == data

    url = (
        f"{server.root}/studies/{ct.StudyInstanceUID}/series/"
        f"{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}"
    )
    response = httpx.get(
        url, headers={"Accept": f"{MULTIPART}; transfer-syntax=*"}, timeout=60
    )
    assert response.status_code == 200, response.text
    media = parse_media_type(response.headers["content-type"])
    reader = MultipartReader(media.params["boundary"])
    events = reader.feed(response.content) + reader.close()
    assert sum(isinstance(event, PartStart) for event in events) == 1
    returned = b"".join(e.data for e in events if isinstance(e, PartData))
    assert returned == data


def test_dicomweb_20_stow_status_codes(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-20-stow-status-codes.md"""
    server = dicomweb_server
    b = "dicomhub20"
    content_type = f"{MULTIPART}; boundary={b}"
    junk = b"this is not DICOM at all\r\n" * 10

    # 1. A part labelled with its transfer syntax.
    ct = fresh("CT_small.dcm")
    body = part(
        to_bytes(ct), b, "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert_stored(post(server, body + f"--{b}--".encode(), content_type), ct)

    # 2. A study in the URL that the instance is not part of.
    ct = fresh("CT_small.dcm")
    response = stow(server.root, [ct], study="9.9.9")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/dicom+json"
    failed = items(response, "00081198")
    assert len(failed) == 1
    assert uid_of(failed[0], "00081150") == ct.SOPClassUID
    assert uid_of(failed[0], "00081155") == ct.SOPInstanceUID
    assert reasons(response) == [43265]
    assert items(response, "00081199") == []

    # 3. A copy and a junk part.
    ct = fresh("CT_small.dcm")
    response = stow(server.root, [ct, junk])
    assert response.status_code == 202
    assert len(items(response, "00081199")) == 1
    assert reasons(response) == [43264]

    # 4. Junk only.
    response = stow(server.root, [junk, junk])
    assert response.status_code == 409
    assert reasons(response) == [43264, 43264]

    # 5. The study in the URL: the top-level RetrieveURL is the study's.
    ct = fresh("CT_small.dcm")
    response = stow(server.root, [ct], study=ct.StudyInstanceUID)
    assert_stored(response, ct)
    top = response.json()["00081190"]["Value"][0]
    assert top.endswith(f"/studies/{ct.StudyInstanceUID}")

    # 6. Wrong media types.
    body, _ = multipart_body([to_bytes(fresh("CT_small.dcm"))])
    response = post(server, body, "application/json")
    assert response.status_code == 415
    assert "application/dicom" in response.text
    response = post(server, body, MULTIPART)
    assert response.status_code == 400
    assert "boundary" in response.text


def test_single_part_application_dicom(dicomweb_server: Server) -> None:
    ct = fresh("CT_small.dcm")
    data = to_bytes(ct)

    response = post(dicomweb_server, data, "application/dicom")

    assert_stored(response, ct)
    assert blob_of(dicomweb_server, ct.SOPInstanceUID).read_bytes() == data


def test_chunked_body_in_small_pieces(dicomweb_server: Server) -> None:
    """A body sent chunked (no Content-Length), a few bytes at a time."""
    datasets = [fresh("CT_small.dcm"), fresh("MR_small.dcm"), fresh("CT_small.dcm")]
    body, content_type = multipart_body([to_bytes(ds) for ds in datasets])

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 997):
            yield body[start : start + 997]

    response = post(dicomweb_server, pieces(), content_type)

    assert_stored(response, *datasets)


def test_retrieve_url_follows_the_prefix_and_mixed_studies(
    dicomweb_server: Server,
) -> None:
    """RetrieveURLs use the root the request came in on; no top-level
    RetrieveURL when the instances belong to two studies."""
    a, b = fresh("CT_small.dcm"), fresh("CT_small.dcm")
    body, content_type = multipart_body([to_bytes(a), to_bytes(b)])

    response = httpx.post(
        f"{dicomweb_server.url}/v1/studies",
        content=body,
        headers={"Content-Type": content_type},
        timeout=60,
    )

    assert response.status_code == 200
    assert "00081190" not in response.json()
    for item in items(response, "00081199"):
        assert "/v1/studies/" in uid_of(item, "00081190")


def test_duplicate_fails_and_the_stored_file_stays(dicomweb_server: Server) -> None:
    """As the Azure DICOM service: a duplicate SOP instance fails with 45070
    and the stored one stays byte-identical."""
    server = dicomweb_server
    ct = fresh("CT_small.dcm")
    original = to_bytes(ct)
    assert stow(server.root, [original]).status_code == 200

    ct.StudyDescription = "a different upload of the same instance"
    response = stow(server.root, [to_bytes(ct)])

    assert response.status_code == 409
    assert reasons(response) == [45070]
    assert uid_of(items(response, "00081198")[0], "00081155") == ct.SOPInstanceUID
    assert blob_of(server, ct.SOPInstanceUID).read_bytes() == original


def test_concurrent_uploads_of_one_instance(dicomweb_server: Server) -> None:
    """Eight clients store the same SOP instance at once, each with other
    bytes: one wins, the others fail with 45070, and the stored file is the
    winner's, whole."""
    server = dicomweb_server
    ct = fresh("CT_small.dcm")
    bodies = []
    for n in range(8):
        ct.StudyDescription = f"upload {n}"
        bodies.append(multipart_body([to_bytes(ct)]))

    def send(body: tuple[bytes, str]) -> httpx.Response:
        return post(server, body[0], body[1])

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, bodies))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 7
    for response in responses:
        if response.status_code == 409:
            assert reasons(response) == [45070]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    stored = blob_of(server, ct.SOPInstanceUID).read_bytes()
    assert f"upload {winner}".encode() in stored
    assert incoming(server) == []


def test_duplicate_within_one_request(dicomweb_server: Server) -> None:
    ct = fresh("CT_small.dcm")

    response = stow(dicomweb_server.root, [ct, ct])

    assert response.status_code == 202
    assert len(items(response, "00081199")) == 1
    assert reasons(response) == [45070]


def test_series_already_in_another_study(dicomweb_server: Server) -> None:
    first = fresh("CT_small.dcm")
    assert stow(dicomweb_server.root, [first]).status_code == 200
    other = fresh("CT_small.dcm", series=first.SeriesInstanceUID)

    response = stow(dicomweb_server.root, [other])

    assert response.status_code == 409
    assert reasons(response) == [45071]
    rows = index_rows(dicomweb_server)
    assert other.SOPInstanceUID not in {uid for uid, _ in rows}


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_missing_or_bad_uids_are_refused(dicomweb_server: Server) -> None:
    """Required UIDs missing or not UIDs (they also name files): 43264."""
    no_series = fresh("CT_small.dcm")
    del no_series.SeriesInstanceUID
    traversal = fresh("CT_small.dcm")
    traversal.SOPInstanceUID = "../../../escape"
    no_class = fresh("CT_small.dcm")
    del no_class.SOPClassUID

    response = stow(dicomweb_server.root, [no_series, traversal, no_class])

    assert response.status_code == 409
    assert reasons(response) == [43264, 43264, 43264]
    assert not list(dicomweb_server.data_dir.rglob("escape*"))


def test_part_of_another_type_fails(dicomweb_server: Server) -> None:
    b = "other-part"
    ct = fresh("CT_small.dcm")
    body = part(to_bytes(ct), b) + part(b"{}", b, "application/dicom+json")
    body += f"--{b}--\r\n".encode()

    response = post(dicomweb_server, body, f"{MULTIPART}; boundary={b}")

    assert response.status_code == 202
    assert reasons(response) == [43264]


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom+xml"; boundary=x',
        "multipart/mixed; boundary=x",
        "image/jpeg",
        "",
    ],
)
def test_unsupported_media_types(dicomweb_server: Server, content_type: str) -> None:
    response = post(dicomweb_server, b"--x--", content_type)

    assert response.status_code == 415
    assert 'multipart/related; type="application/dicom"' in response.text


def test_unreadable_bodies_store_nothing(dicomweb_server: Server) -> None:
    """Truncated or unframed bodies: 400 saying what is wrong; nothing stored
    and no temporary file left."""
    server = dicomweb_server
    ct = fresh("CT_small.dcm")
    body, content_type = multipart_body([to_bytes(ct)])

    truncated = post(server, body[: len(body) // 2], content_type)
    no_closing = post(
        server, body[: -len(b"--dicomhub-test-boundary--\r\n")], content_type
    )
    wrong_boundary = post(server, body, f"{MULTIPART}; boundary=another")
    empty = post(server, b"--dicomhub-test-boundary--\r\n", content_type)

    assert truncated.status_code == 400
    assert "truncated" in truncated.text
    assert no_closing.status_code == 400
    assert wrong_boundary.status_code == 400
    assert "boundary" in wrong_boundary.text
    assert empty.status_code == 400
    assert ct.SOPInstanceUID not in {uid for uid, _ in index_rows(server)}
    assert incoming(server) == []


def test_body_cut_short_after_whole_parts(dicomweb_server: Server) -> None:
    """Parts received whole before the break are stored, and the 400 says so;
    sending the body again stores the rest and reports the first as 45070."""
    server = dicomweb_server
    first, second = fresh("CT_small.dcm"), fresh("CT_small.dcm")
    body, content_type = multipart_body([to_bytes(first), to_bytes(second)])

    cut = post(server, body[: len(body) - 1000], content_type)

    assert cut.status_code == 400
    assert "1 instance(s)" in cut.text
    assert "45070" in cut.text
    stored = {uid for uid, _ in index_rows(server)}
    assert first.SOPInstanceUID in stored
    assert second.SOPInstanceUID not in stored
    assert incoming(server) == []

    again = post(server, body, content_type)

    assert again.status_code == 202
    assert reasons(again) == [45070]
    assert uid_of(items(again, "00081199")[0], "00081155") == second.SOPInstanceUID


def test_bad_study_in_url(dicomweb_server: Server) -> None:
    body, content_type = multipart_body([to_bytes(fresh("CT_small.dcm"))])

    response = post(dicomweb_server, body, content_type, path="/not-a-uid")

    assert response.status_code == 400


def test_body_over_the_limit(server_factory: Any) -> None:
    """413 stating the limit, by Content-Length or while a chunked body grows."""
    server = server_factory("[server]\nmax_body_bytes = 100000\n")
    small = fresh("CT_small.dcm")
    big = [fresh("CT_small.dcm") for _ in range(4)]
    body, content_type = multipart_body([to_bytes(ds) for ds in big])

    declared = post(server, body, content_type)
    assert declared.status_code == 413
    assert "100000" in declared.text

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    try:
        streamed = post(server, pieces(), content_type)
    except httpx.TransportError:
        # The server may close the connection while the client still sends.
        pass
    else:
        assert streamed.status_code == 413

    # Instances received whole before the limit may be committed (as the
    # answer says); nothing half-written is left either way.
    assert incoming(server) == []
    for _, key in index_rows(server):
        assert (server.data_dir / "blobs" / key).is_file()
    assert len(index_rows(server)) <= 2
    assert_stored(stow(server.root, [small]), small)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 400 KiB file system for the blobs; skipped where mounting is denied.
    Ask for it before `server_factory`: a server holds a lock file on it until
    it stops (dicomhub.storage.folder), so it is unmounted after."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_disk_full_fails_instances_not_the_server(
    small_disk: Path, server_factory: Any
) -> None:
    """A full disk: the parts that do not fit fail with 272 (processing
    failure), the others are stored whole, and no temporary file stays."""
    server = server_factory(f'[storage]\npath = "{small_disk}"\n')
    answers = [
        stow(server.root, [fresh("CT_small.dcm") for _ in range(3)]) for _ in range(5)
    ]

    assert answers[0].status_code == 200
    assert answers[-1].status_code == 409
    assert set(sum((reasons(a) for a in answers), [])) == {272}
    assert temporary_files(small_disk) == []
    keys = {key for _, key in index_rows(server)}
    files = {
        str(path.relative_to(small_disk))
        for path in small_disk.rglob("*.dcm")
        if ".incoming" not in path.parts
    }
    assert files == keys
    assert server.process.poll() is None


def test_failed_items_say_what_was_wrong(dicomweb_server: Server) -> None:
    """Each FailedSOPSequence item carries Error Comment (0000,0902) in words."""
    ct = fresh("CT_small.dcm")
    response = stow(dicomweb_server.root, [ct], study="1.2.826.0.1.3680043.9.77")

    assert response.status_code == 409
    (item,) = response.json()["00081198"]["Value"]
    assert item["00081197"]["Value"] == [43265]
    (comment,) = item["00000902"]["Value"]
    assert "StudyInstanceUID differs" in comment
    assert len(comment) <= 64
