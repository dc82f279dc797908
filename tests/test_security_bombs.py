"""Decompression and rendering bombs: instances whose pixel data claims far
more than it holds are stored (storing is not decoding) and sent as stored,
but decoding them (rendered, thumbnail, transcoded frames and instances) is
refused with a 4xx and a reason before anything is allocated. A deflated data
set that inflates past the limit is refused when stored. The server's peak
memory is checked after each attack. Against a real server, with files
crafted with pydicom."""

from __future__ import annotations

import io
import re
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

from dicomhub.dicom.frames import (
    MAX_DECODED_FRAME_BYTES,
    MAX_INFLATED_BYTES,
    codestream_size,
)
from dicomhub.dicom.render import MAX_RENDER_PIXELS

from . import dicomdata
from .conftest import Server, start_server
from .dicomdata import stow, temporary_files, to_bytes

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
OCTET = 'multipart/related; type="application/octet-stream"'

# The server's peak resident memory after every attack: well under what any
# of these files would make a decoder allocate (4 GiB and more).
PEAK_LIMIT_KIB = 512 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("bombs"))
    yield server
    server.stop()


def peak_kib(server: Server) -> int:
    """VmHWM of the server process (Linux), in KiB."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def assert_no_server_error(server: Server) -> None:
    """No answer was a 5xx and no exception escaped to the ASGI server. (A
    decoder refusing a codestream logs its own traceback through pydicom's
    logger; the request still gets its 406.)"""
    log = server.log()
    assert "Exception in ASGI application" not in log
    for line in log.splitlines():
        if "dicomhub.access" in line:
            assert not re.search(r'" 5\d\d ', line), line


def index_count(server: Server) -> int:
    with sqlite3.connect(server.data_dir / "index.sqlite3") as db:
        return db.execute("SELECT count(*) FROM instance").fetchone()[0]


def blob_files(server: Server) -> list[Path]:
    return dicomdata.blob_files(server.data_dir / "blobs")


def image(syntax: str, rows: int, columns: int, **attributes: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.PatientID = "BOMB"
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def url_of(server: Server, ds: Dataset) -> str:
    return (
        f"{server.root}/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )


def lying_jpeg(size: int = 32) -> bytes:
    """A real JPEG Baseline codestream of `size` x `size` whose frame header
    (SOF0, ISO 10918-1 B.2.2) claims 65535 x 65535."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), 128, np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65535, 65535)
    return bytes(data)


def stored(server: Server, ds: Dataset | bytes) -> str:
    response = stow(server.root, [ds])
    assert response.status_code == 200, response.text
    return response.json()["00081199"]["Value"][0]["00081190"]["Value"][0]


def get(url: str, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(url, headers=headers, timeout=60)


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    for word in words:
        assert word in response.text, (word, response.text)
    assert "BOMB" not in response.text


def test_the_codestream_header_is_read() -> None:
    assert codestream_size(lying_jpeg()) == (65535, 65535, 1)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(buffer, "JPEG")
    assert codestream_size(buffer.getvalue()) == (20, 30, 1)
    assert codestream_size(b"\0" * 64) is None


def test_pillow_keeps_its_bomb_check() -> None:
    import dicomhub.dicom.render  # noqa: F401
    import dicomhub.dicom.transcode  # noqa: F401

    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS >= MAX_RENDER_PIXELS // 2


def test_a_jpeg_claiming_65535_square_is_stored_but_not_decoded(
    server: Server,
) -> None:
    ds = image(JPEGBaseline8Bit, 32, 32)
    ds.PixelData = encapsulate([lying_jpeg()])
    ds["PixelData"].VR = "OB"
    url = stored(server, ds)

    # As stored: the bytes, untouched.
    response = get(f"{url}/frames/1", f"{OCTET}; transfer-syntax=*")
    assert response.status_code == 200
    assert lying_jpeg() in response.content
    assert get(url, 'multipart/related; type="application/dicom"; '
               "transfer-syntax=*").status_code == 200  # fmt: skip

    # Decoded: refused before the decoder allocates 4 GiB.
    for response in [
        get(f"{url}/rendered"),
        get(f"{url}/thumbnail"),
        get(f"{url}/frames/1/rendered"),
        get(f"{url}/frames/1"),
        get(f"{url}/frames/1", 'multipart/related; type="image/jp2"'),
        get(url),
        get(url, 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.4.90"),  # fmt: skip
    ]:
        assert_refused(response, 406, "65535 x 65535", "Rows and Columns")
    response = get(f"{server.root}/studies/{ds.StudyInstanceUID}/rendered")
    assert_refused(response, 406, "65535 x 65535")
    assert peak_kib(server) < PEAK_LIMIT_KIB
    assert_no_server_error(server)


def test_huge_rows_and_columns_with_tiny_native_pixel_data(server: Server) -> None:
    ds = image(ExplicitVRLittleEndian, 65535, 65535, BitsAllocated=16)
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelData = b"\0" * 16
    url = stored(server, ds)

    # Stored, and sent as stored.
    assert get(url, "application/dicom").status_code == 200
    assert get(f"{url}/bulkdata/7FE00010", "application/octet-stream").content == (
        b"\0" * 16
    )
    assert get(f"{url}/metadata").status_code == 200

    for response in [
        get(f"{url}/rendered"),
        get(f"{url}/thumbnail"),
        get(f"{url}/frames/1"),
    ]:
        assert response.status_code == 413, response.text
        assert "MAX_" in response.text
    assert_refused(get(f"{url}/rendered"), 413, "MAX_RENDER_PIXELS")
    assert_refused(get(f"{url}/frames/1"), 413, "MAX_DECODED_FRAME_BYTES")
    assert_refused(
        get(url, 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.5"),  # fmt: skip
        413,
        "MAX_DECODED_INSTANCE_BYTES",
    )
    assert 65535 * 65535 * 2 > MAX_DECODED_FRAME_BYTES
    assert peak_kib(server) < PEAK_LIMIT_KIB
    assert_no_server_error(server)


def test_native_pixel_data_shorter_than_its_frames(server: Server) -> None:
    ds = image(ExplicitVRLittleEndian, 1024, 1024, NumberOfFrames=4)
    ds.PixelData = b"\x10" * 1024  # one row of one frame
    url = stored(server, ds)

    for suffix in ["/frames/1", "/frames/3", "/rendered", "/frames/2/thumbnail"]:
        assert_refused(get(url + suffix), 406, "shorter")
    assert get(url, "application/dicom").status_code == 200
    assert_no_server_error(server)


def test_rle_segments_lying_about_their_sizes(server: Server) -> None:
    # Header: 1 segment at offset 64; the segment's replicate runs expand to
    # 640 000 bytes for a 16 x 16 frame of 256 bytes (PS3.5 G.3.1).
    runs = bytes([0x81, 0x7F]) * 5000
    expanding = struct.pack("<16L", 1, 64, *([0] * 14)) + runs
    # Header: 15 segments at offsets past the fragment's end.
    scattered = struct.pack("<16L", 15, *(10**9 + n for n in range(15)))
    # Header: a segment count of 2**32 - 1.
    countless = struct.pack("<16L", 0xFFFFFFFF, *([64] * 15)) + runs[:64]

    for fragment in [expanding, scattered, countless]:
        ds = image(RLELossless, 16, 16)
        ds.PixelData = encapsulate([fragment])
        ds["PixelData"].VR = "OB"
        url = stored(server, ds)
        for suffix in ["/rendered", "/frames/1", "/thumbnail"]:
            response = get(url + suffix)
            assert response.status_code in (200, 406), (suffix, response.text)
        assert get(url, "application/dicom; transfer-syntax=*").status_code == 200

    # Rows and Columns that decode past the limit: refused before decoding.
    ds = image(RLELossless, 60000, 60000, SamplesPerPixel=3)
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.PixelData = encapsulate([expanding])
    ds["PixelData"].VR = "OB"
    url = stored(server, ds)
    for suffix in ["/rendered", "/frames/1"]:
        assert_refused(get(url + suffix), 413, "MAX_")
    assert peak_kib(server) < PEAK_LIMIT_KIB
    assert_no_server_error(server)


def test_number_of_frames_beyond_the_fragments(server: Server) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buffer, "JPEG")
    ds = image(JPEGBaseline8Bit, 16, 16, NumberOfFrames=2**31 - 1)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    url = stored(server, ds)

    assert get(f"{url}/frames/1/rendered").status_code == 200
    assert_refused(get(f"{url}/frames/2", f"{OCTET}; transfer-syntax=*"), 406,
                   "cannot be located")  # fmt: skip
    assert_refused(get(f"{url}/frames/5000/rendered"), 406, "cannot be located")
    assert_refused(get(url), 413, "MAX_DECODED_INSTANCE_BYTES")
    assert_no_server_error(server)


def deflated_bomb(inflated: int) -> bytes:
    """A Deflated Explicit VR Little Endian file (PS3.5 §A.5) whose data set
    inflates to `inflated` bytes: the UIDs, then an OB value of zeros, deflated
    piece by piece so the test never holds it whole."""
    ds = image(DeflatedExplicitVRLittleEndian, 1, 1)
    meta = io.BytesIO()
    ds.save_as(meta, enforce_file_format=True)
    # pydicom deflates the data set after the meta; the meta is kept and
    # the deflated stream made here.
    header = meta.getvalue()
    group_length = struct.unpack("<L", header[140:144])[0]
    file_meta = header[: 144 + group_length]

    small = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                    "SeriesInstanceUID", "PatientID"):  # fmt: skip
        setattr(small, keyword, ds.get(keyword))
    plain = io.BytesIO()
    small.save_as(plain, implicit_vr=False, little_endian=True)
    value = inflated - len(plain.getvalue())
    value -= value % 2
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [file_meta, deflater.compress(plain.getvalue())]
    out.append(deflater.compress(struct.pack("<HH2sHL", 0x0009, 0x1001, b"OB", 0,
                                             value)))  # fmt: skip
    zeros = b"\0" * (1 << 20)
    for _ in range(value // len(zeros)):
        out.append(deflater.compress(zeros))
    out.append(deflater.compress(b"\0" * (value % len(zeros))))
    out.append(deflater.flush())
    return b"".join(out)


def test_a_deflate_bomb_is_refused_when_stored(server: Server) -> None:
    files, rows = len(blob_files(server)), index_count(server)
    bomb = deflated_bomb(MAX_INFLATED_BYTES + (64 << 20))
    assert len(bomb) < 1 << 20

    response = stow(server.root, [bomb])
    assert response.status_code == 409, response.text
    failure = response.json()["00081198"]["Value"][0]
    assert failure["00081197"]["Value"] == [43264]
    assert len(blob_files(server)) == files
    assert index_count(server) == rows
    assert temporary_files(server.data_dir / "blobs") == []
    assert peak_kib(server) < PEAK_LIMIT_KIB
    assert_no_server_error(server)


def test_a_small_deflated_instance_is_still_stored(server: Server) -> None:
    url = stored(server, deflated_bomb(4096))
    assert get(f"{url}/metadata").status_code == 200


def test_ordinary_images_still_render(server: Server) -> None:
    ds = image(ExplicitVRLittleEndian, 64, 64)
    ds.PixelData = bytes(range(256)) * 16
    url = stored(server, ds)
    response = get(f"{url}/rendered", "image/png")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)
    assert get(f"{url}/frames/1").status_code == 200


def test_the_dataset_is_valid_dicom() -> None:
    # The crafted files are Part 10 files pydicom itself reads back.
    from pydicom import dcmread

    ds = image(ExplicitVRLittleEndian, 2, 2)
    ds.PixelData = b"\0" * 4
    assert dcmread(io.BytesIO(to_bytes(ds))).Rows == 2


def test_a_lying_second_frame_is_refused_before_the_answer_starts(
    server: Server,
) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(buffer, "JPEG")
    ds = image(JPEGBaseline8Bit, 32, 32, NumberOfFrames=2)
    ds.PixelData = encapsulate([buffer.getvalue(), lying_jpeg()], has_bot=True)
    ds["PixelData"].VR = "OB"
    url = stored(server, ds)

    assert get(f"{url}/frames/1").status_code == 200
    assert get(f"{url}/frames/1/rendered").status_code == 200
    for response in [
        get(url),
        get(f"{url}/frames/1,2"),
        get(f"{url}/frames/1,2/rendered"),
        get(f"{url}/frames/2/thumbnail"),
    ]:
        assert_refused(response, 406, "frame 2", "65535 x 65535")
    assert get(f"{url}/frames/1,2", f"{OCTET}; transfer-syntax=*").status_code == 200
    assert_no_server_error(server)
