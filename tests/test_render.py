"""Rendered images on files: dicomhub.dicom.render."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from dicomhub.dicom.frames import StoredPixels
from dicomhub.dicom.render import (
    PNG,
    Region,
    RenderOptions,
    Viewport,
    Window,
    apply_window,
    parse_quality,
    parse_viewport,
    parse_window,
    render,
    to_8bit,
)
from dicomhub.errors import BadRequest

from . import dicomdata
from .dicomdata import read, sample_files, to_bytes


def sample(name: str) -> Path:
    for path in sample_files("clean"):
        if path.name == name:
            return path
    pytest.skip(f"clean/{name} is not in the sample corpus")


def rendered(ds_bytes: bytes, options: RenderOptions, index: int = 0) -> Image.Image:
    pixels = StoredPixels(io.BytesIO(ds_bytes))
    frame = pixels.frame_array(index)
    image = Image.open(io.BytesIO(render(frame, pixels.header, index, options)))
    image.load()
    return image


def test_parse_window() -> None:
    assert parse_window("40,400") == Window(40.0, 400.0, "LINEAR")
    assert parse_window("40,400,linear-exact") == Window(40.0, 400.0, "LINEAR_EXACT")
    assert parse_window(" -600 , 1500 , SIGMOID ") == Window(-600.0, 1500.0, "SIGMOID")
    for bad in ("40", "40,0", "a,b", "40,400,cubic", "40,0.5,linear"):
        with pytest.raises(BadRequest, match="window"):
            parse_window(bad)


def test_parse_viewport_and_quality() -> None:
    assert parse_viewport("64,32") == Viewport(64, 32)
    assert parse_viewport("64,64,0,0,10,10") == Viewport(64, 64, Region(0, 0, 10, 10))
    assert parse_viewport("64,64,,2.6,-10,") == Viewport(
        64, 64, Region(0, 3, 10, None, flip_x=True)
    )
    for bad in ("0,10", "64,64,0,0", "64,64,-1,0,10,10", "64,64,0,0,0,10"):
        with pytest.raises(BadRequest, match="vw,vh,sx,sy,sw,sh"):
            parse_viewport(bad)
    assert parse_quality("75") == 75
    with pytest.raises(BadRequest, match="quality"):
        parse_quality("101")


def test_linear_window_follows_ps3_3() -> None:
    """PS3.3 C.11.2.1.2.1: below c-0.5-(w-1)/2 is black, above c-0.5+(w-1)/2
    white, the middle value grey."""
    values = np.array([-1000.0, 39.5, 1000.0, -161.0, 240.0])

    out = apply_window(values, Window(40, 400))

    assert out[0] == 0 and out[2] == 255
    assert out[1] == pytest.approx(127.5)
    assert out[3] == 0 and out[4] == 255


def test_window_from_the_instance_and_from_the_query() -> None:
    ds = read("CT_small.dcm")
    ds.WindowCenter, ds.WindowWidth = 1000, 1

    narrow = rendered(to_bytes(ds), RenderOptions(media_type=PNG))
    wide = rendered(to_bytes(ds), RenderOptions(media_type=PNG, window=Window(0, 5000)))

    assert set(np.unique(np.asarray(narrow))) <= {0, 255}
    assert len(np.unique(np.asarray(wide))) > 10


def test_monochrome1_is_inverted() -> None:
    ds = read("CT_small.dcm")
    mono2 = np.asarray(rendered(to_bytes(ds), RenderOptions(media_type=PNG)))
    ds.PhotometricInterpretation = "MONOCHROME1"
    mono1 = np.asarray(rendered(to_bytes(ds), RenderOptions(media_type=PNG)))

    assert np.array_equal(mono1, 255 - mono2)


def test_colour_is_kept() -> None:
    image = rendered(sample("SC_rgb_jpeg_dcmtk.dcm").read_bytes(), RenderOptions(PNG))
    expected = pydicom.dcmread(sample("SC_rgb_jpeg_dcmtk.dcm")).pixel_array

    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), expected)


def test_palette_colour_goes_through_its_tables() -> None:
    image = rendered(sample("OBXXXX1A_rle.dcm").read_bytes(), RenderOptions(PNG))

    assert image.mode == "RGB"
    assert image.size == (800, 600)


def test_viewport_bounds_the_size_and_keeps_the_aspect() -> None:
    image = rendered(
        dicomdata.sample_path("JPEG2000.dcm").read_bytes(),
        RenderOptions(viewport=Viewport(128, 128)),
    )

    assert image.format == "JPEG"
    assert image.size == (32, 128)


def test_enhanced_frames_use_their_functional_groups() -> None:
    path = sample("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    pixels = StoredPixels(io.BytesIO(path.read_bytes()))

    grey = to_8bit(pixels.frame_array(1), ds, 1, None)

    assert grey.dtype == np.uint8 and grey.shape == (512, 512)
    assert grey.min() < grey.max()


def test_every_decodable_clean_sample_renders() -> None:
    for path in sample_files("clean"):
        try:
            pixels = StoredPixels(io.BytesIO(path.read_bytes()))
        except Exception:
            continue
        frame = pixels.frame_array(0)
        image = Image.open(io.BytesIO(render(frame, pixels.header, 0, RenderOptions())))
        image.load()
        assert image.format == "JPEG", path.name
