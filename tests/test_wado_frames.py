"""Frames and transcoding on files: dicomhub.dicom.frames."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import unpack_bits

from dicomhub.dicom.frames import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    NoPixelData,
    StoredPixels,
    transcode_instance,
)
from dicomhub.errors import NotAcceptable

from . import dicomdata
from .dicomdata import read, sample_files, to_bytes

data_file = dicomdata.sample_path


def sample(kind: str, name: str) -> Path:
    for path in sample_files(kind):
        if path.name == name:
            return path
    pytest.skip(f"{kind}/{name} is not in the sample corpus")


def open_pixels(path: Path) -> StoredPixels:
    return StoredPixels(io.BytesIO(path.read_bytes()))


def test_native_frame_is_the_pixel_data() -> None:
    pixels = open_pixels(data_file("CT_small.dcm"))

    assert not pixels.encapsulated
    assert pixels.native_frame(0) == read("CT_small.dcm").PixelData
    assert len(pixels.native_frame(0)) == 128 * 128 * 2


def test_encapsulated_frame_is_generate_frames_output() -> None:
    path = data_file("JPEG2000.dcm")
    ds = pydicom.dcmread(path)
    pixels = open_pixels(path)

    expected = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert pixels.encapsulated
    assert pixels.encoded_frame(0) == expected


def test_decoded_frame_is_explicit_little_endian() -> None:
    path = data_file("JPEG2000.dcm")
    pixels = open_pixels(path)
    expected = pydicom.dcmread(path).pixel_array.astype("<u2")

    decoded = pixels.decoded_frame(0)
    assert len(decoded) == 1024 * 256 * 2
    assert decoded == expected.tobytes()


def test_multi_frame_native_offsets() -> None:
    path = sample("clean", "emri_small.dcm")
    frames = pydicom.dcmread(path).pixel_array
    pixels = open_pixels(path)

    assert pixels.number_of_frames == 10
    for index in (0, 4, 9):
        assert pixels.native_frame(index) == frames[index].astype("<u2").tobytes()


def test_multi_frame_compressed_frames() -> None:
    path = sample("variants", "emri_small_jpeg_2k_lossless.dcm")
    ds = pydicom.dcmread(path)
    expected = list(generate_frames(ds.PixelData, number_of_frames=10))
    pixels = open_pixels(path)

    assert [pixels.encoded_frame(i) for i in range(10)] == expected
    assert pixels.decoded_frame(3) == ds.pixel_array[3].astype("<u2").tobytes()


def test_one_bit_frames_not_on_byte_boundaries() -> None:
    """10 x 10 one bit frames take 12.5 bytes each (PS3.5 §8.1.1)."""
    path = sample("clean", "seg_image_sm_dots_tiled_full.dcm")
    frames = pydicom.dcmread(path).pixel_array
    pixels = open_pixels(path)

    for index in (0, 1, 7, 1249):
        packed = pixels.native_frame(index)
        assert len(packed) == 13
        assert (unpack_bits(packed)[:100].reshape(10, 10) == frames[index]).all()


@pytest.mark.parametrize(
    ("name", "twin"),
    [
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("rtdose_expb.dcm", "rtdose.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),
    ],
)
def test_big_endian_frames_come_little_endian(name: str, twin: str) -> None:
    pixels = open_pixels(sample("variants", name))
    little = open_pixels(sample("clean", twin))

    for index in range(pixels.number_of_frames):
        assert pixels.native_frame(index) == little.native_frame(index)


def test_deflated_frames() -> None:
    path = sample("clean", "image_dfl.dcm")
    pixels = open_pixels(path)

    assert pixels.native_frame(0) == pydicom.dcmread(path).PixelData


def test_no_pixel_data() -> None:
    with pytest.raises(NoPixelData):
        open_pixels(data_file("rtplan.dcm"))


def test_not_dicom_fails_before_any_frame() -> None:
    """A damaged stored file fails when opened (cases/cors/cors-04)."""
    with pytest.raises(pydicom.errors.InvalidDicomError):
        StoredPixels(io.BytesIO(b"not a DICOM file" * 100))


def test_undecodable_codestream_is_not_acceptable() -> None:
    ds = read("JPEG2000.dcm")
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51broken"])
    pixels = StoredPixels(io.BytesIO(to_bytes(ds)))

    with pytest.raises(NotAcceptable, match="transfer-syntax=\\*"):
        pixels.decoded_frame(0)


@pytest.mark.parametrize(
    "target", [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]
)
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("clean", "JPEG2000.dcm"),
        ("clean", "image_dfl.dcm"),
        ("variants", "MR_small_bigendian.dcm"),
        ("variants", "rtdose_expb.dcm"),
        ("variants", "MR_small_RLE.dcm"),
    ],
)
def test_transcode_instance(kind: str, name: str, target: str) -> None:
    path = sample(kind, name)
    original = pydicom.dcmread(path)

    with open(path, "rb") as fp:
        data = transcode_instance(fp, target)
    result = pydicom.dcmread(io.BytesIO(data))

    assert result.file_meta.TransferSyntaxUID == target
    assert result.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(result.pixel_array, original.pixel_array)


def test_invalid_image_pixel_attributes_are_not_acceptable() -> None:
    """ugly/badVR.dcm has Number of Frames '1A': its frames cannot be located."""
    path = sample("ugly", "badVR.dcm")

    with pytest.raises(NotAcceptable, match="Image Pixel attributes"):
        open_pixels(path)
