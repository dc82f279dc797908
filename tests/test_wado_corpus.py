"""Every clean sample stored through STOW-RS, then read back through WADO-RS:
metadata, every frame, and a rendered image."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import pack_bits

from .conftest import DICOMWEB_CORS, Server
from .dicomdata import sample_files, stow
from .test_wado import check_json_ok, instance_url, parse_multipart

A1 = "multipart/related; type=application/octet-stream; transfer-syntax=*"
A3 = 'multipart/related; type="application/octet-stream"'
BIG_ENDIAN = "1.2.840.10008.1.2.2"

CLEAN = sample_files("clean")


@pytest.fixture(scope="module")
def corpus(dicomweb_server: Server) -> Server:
    """The server, with every clean sample stored as it is."""
    for start in range(0, len(CLEAN), 20):
        batch = [path.read_bytes() for path in CLEAN[start : start + 20]]
        response = stow(dicomweb_server.root, batch)
        # 202 only for coercion warnings (B000): ExplVR_BigEnd.dcm and
        # color-pl.dcm date and time in the ACR-NEMA form, indexed as V3.
        assert response.status_code in (200, 202), response.text
        assert "00081198" not in response.json(), response.text
        for item in response.json()["00081199"]["Value"]:
            assert item.get("00081196", {"Value": [0xB000]})["Value"] == [0xB000]
    return dicomweb_server


def expected_frames(ds: Dataset) -> list[bytes]:
    """The frames the standard asks for: compressed as stored, native ones
    little endian in the layout the header describes."""
    count = int(ds.get("NumberOfFrames") or 1)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return list(generate_frames(ds.PixelData, number_of_frames=count))

    bits_allocated = int(ds.BitsAllocated)
    if bits_allocated == 1 or ds.file_meta.TransferSyntaxUID == BIG_ENDIAN:
        frames = list(ds.pixel_array) if count > 1 else [ds.pixel_array]
        out = []
        for frame in frames:
            if bits_allocated == 1:
                out.append(pack_bits(frame, pad=False))
                continue
            if frame.ndim == 3 and int(ds.get("PlanarConfiguration") or 0) == 1:
                frame = frame.transpose(2, 0, 1)
            kind = "i" if int(ds.PixelRepresentation) else "u"
            out.append(frame.astype(f"<{kind}{bits_allocated // 8}").tobytes())
        return out

    size = len(ds.PixelData) // count
    return [bytes(ds.PixelData[i * size : (i + 1) * size]) for i in range(count)]


def decoded_size(ds: Dataset) -> int:
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits_allocated = int(ds.BitsAllocated)
    if bits_allocated == 1:
        return (rows * columns * samples + 7) // 8
    return rows * columns * samples * bits_allocated // 8


@pytest.mark.parametrize("path", CLEAN, ids=lambda path: path.name)
def test_metadata_of_every_sample(corpus: Server, path: Path) -> None:
    ds = pydicom.dcmread(path, stop_before_pixels=True)

    response = httpx.get(instance_url(corpus.root, ds) + "/metadata")

    (item,) = check_json_ok(response)
    assert item["00080018"]["Value"] == [ds.SOPInstanceUID]


@pytest.mark.parametrize("path", CLEAN, ids=lambda path: path.name)
def test_every_frame_of_every_sample(corpus: Server, path: Path) -> None:
    ds = pydicom.dcmread(path)
    url = instance_url(corpus.root, ds) + "/frames/"
    if "PixelData" not in ds:
        assert httpx.get(url + "1", headers={"Accept": A1}).status_code == 404
        return

    expected = expected_frames(ds)
    numbers = ",".join(str(n) for n in range(1, len(expected) + 1))
    response = httpx.get(url + numbers, headers={"Accept": A1}, timeout=60)
    assert response.status_code == 200, response.text
    parts = parse_multipart(response)
    assert [content for _, content in parts] == expected

    decoded = httpx.get(url + "1", headers={"Accept": A3}, timeout=60)
    assert decoded.status_code == 200, decoded.text
    ((headers, content),) = parse_multipart(decoded)
    assert headers["content-type"].endswith("transfer-syntax=1.2.840.10008.1.2.1")
    assert len(content) == decoded_size(ds)


@pytest.mark.parametrize("path", CLEAN, ids=lambda path: path.name)
def test_rendered_every_sample(corpus: Server, path: Path) -> None:
    ds = pydicom.dcmread(path, stop_before_pixels=True)

    response = httpx.get(instance_url(corpus.root, ds) + "/rendered", timeout=60)

    if response.status_code != 200:
        # Only instances without an image may refuse, and with a clear 4xx.
        assert 400 <= response.status_code < 500, response.text
        assert "PixelData" not in pydicom.dcmread(path)
        return
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.size == (int(ds.Columns), int(ds.Rows))


def test_ugly_samples_never_answer_500(server_factory: Callable[..., Server]) -> None:
    """Whatever of samples/dicom/ugly STOW-RS accepts, WADO-RS answers with a
    proper status: the file is read, or refused with a reason."""
    server = server_factory(DICOMWEB_CORS)
    requests = [
        ("/metadata", None),
        ("/frames/1", A1),
        ("/frames/1", A3),
        ("/rendered", None),
        ("", None),
        ("/bulkdata/7FE00010", None),
    ]
    stored = 0
    for path in sample_files("ugly"):
        response = stow(server.root, [path.read_bytes()])
        # 202 is stored with warnings (badVR.dcm, bad_sequence.dcm).
        if response.status_code not in (200, 202):
            continue
        stored += 1
        url = response.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
        for suffix, accept in requests:
            headers = {"Accept": accept} if accept else {}
            answer = httpx.get(url + suffix, headers=headers, timeout=60)
            assert answer.status_code < 500, (path.name, suffix, answer.text)
            if answer.status_code >= 400:
                assert answer.text, (path.name, suffix)
    assert stored
