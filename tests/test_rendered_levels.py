"""Rendered studies, series and frame lists, cropping viewports and burned-in
annotations over a real server (PS3.18 §10.4.1.1.3, §8.3.5.1)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image, ImageOps
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomhub.dicom.frames import can_decode

from .conftest import Server
from .dicomdata import fresh, multipart_parts, read, shared_samples, stow

JPEG_PARTS = 'multipart/related; type="image/jpeg"'
PNG_PARTS = 'multipart/related; type="image/png"'


# Data --------------------------------------------------------------------------


def _shared(name: str) -> Path | None:
    root = shared_samples()
    path = root / "clean" / name if root else None
    return path if path is not None and path.is_file() else None


def multi_frame() -> Dataset:
    """emri_small.dcm (10 frames of 64 x 64) from the sample corpus, else three
    64 x 64 frames made from CT_small's pixels."""
    path = _shared("emri_small.dcm")
    if path is not None:
        return pydicom.dcmread(path)
    ds = read("CT_small.dcm")
    pixels = ds.pixel_array[::2, ::2]
    ds.PixelData = np.stack([pixels, pixels[::-1], pixels[:, ::-1]]).tobytes()
    ds.Rows, ds.Columns = pixels.shape
    ds.NumberOfFrames = 3
    return ds


def colour() -> Dataset:
    """US1_J2KR.dcm (640 x 480 ultrasound, JPEG 2000) when this machine decodes
    it, else color-pl.dcm, else an RGB Secondary Capture of four colour bands."""
    for name in ("US1_J2KR.dcm", "color-pl.dcm"):
        path = _shared(name)
        if path is not None:
            ds = pydicom.dcmread(path)
            if can_decode(ds.file_meta.TransferSyntaxUID):
                return ds
    ds = read("CT_small.dcm")
    rgb = np.zeros((80, 100, 3), dtype=np.uint8)
    for band, value in enumerate(
        [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    ):
        rgb[band * 20 : (band + 1) * 20] = value
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = 80, 100
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    for keyword in ("WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.PixelData = rgb.tobytes()
    return ds


@dataclass
class Study:
    uid: str
    ct: Dataset  # series A, 128 x 128 greyscale
    frames: Dataset  # series A, multi-frame greyscale
    rgb: Dataset  # series B, alone
    plan: Dataset  # series C, alone, no pixel data

    def url(self, server: Server) -> str:
        return f"{server.root}/studies/{self.uid}"

    def series_url(self, server: Server, ds: Dataset) -> str:
        return f"{self.url(server)}/series/{ds.SeriesInstanceUID}"

    def instance_url(self, server: Server, ds: Dataset) -> str:
        return f"{self.series_url(server, ds)}/instances/{ds.SOPInstanceUID}"


@pytest.fixture(scope="module")
def study(dicomweb_server: Server) -> Study:
    uid = generate_uid()
    series_a, series_b, series_c = generate_uid(), generate_uid(), generate_uid()
    found = Study(
        uid,
        ct=fresh("CT_small.dcm", study=uid, series=series_a),
        frames=fresh(multi_frame(), study=uid, series=series_a),
        rgb=fresh(colour(), study=uid, series=series_b),
        plan=fresh("rtplan.dcm", study=uid, series=series_c),
    )
    for ds in (found.ct, found.frames, found.rgb, found.plan):
        ds.PatientID = found.ct.PatientID
    response = stow(
        dicomweb_server.root, [found.ct, found.frames, found.rgb, found.plan]
    )
    assert response.status_code == 200, response.text
    return found


def get(url: str, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(url, headers=headers, timeout=60)


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(image_of(data), dtype=np.int16)


def parts(response: httpx.Response) -> Iterator[tuple[str, str, Image.Image]]:
    """(Content-Type, Content-Location, image) of each part."""
    for headers, body in multipart_parts(response):
        yield (
            headers["content-type"],
            headers.get("content-location", ""),
            image_of(body),
        )


def size_of(ds: Dataset) -> tuple[int, int]:
    return int(ds.Columns), int(ds.Rows)


# Study and series ----------------------------------------------------------------


def test_study_renders_one_part_per_instance_with_pixel_data(
    dicomweb_server: Server, study: Study
) -> None:
    response = get(study.url(dicomweb_server) + "/rendered")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(JPEG_PARTS)
    found = {location: (kind, image) for kind, location, image in parts(response)}
    # The RT Plan has no Pixel Data: three parts for four instances.
    assert len(found) == 3
    for ds in (study.ct, study.frames, study.rgb):
        kind, image = found[study.instance_url(dicomweb_server, ds) + "/rendered"]
        assert kind == "image/jpeg"
        assert image.format == "JPEG"
        # A multi-frame instance is its first frame, at the size of a frame.
        assert image.size == size_of(ds)
    rgb_image = found[study.instance_url(dicomweb_server, study.rgb) + "/rendered"][1]
    assert rgb_image.mode == "RGB"
    assert (
        found[study.instance_url(dicomweb_server, study.ct) + "/rendered"][1].mode
        == "L"
    )


def test_series_rendered(dicomweb_server: Server, study: Study) -> None:
    series_a = get(study.series_url(dicomweb_server, study.ct) + "/rendered")
    assert series_a.status_code == 200
    locations = [location for _, location, _ in parts(series_a)]
    assert sorted(locations) == sorted(
        study.instance_url(dicomweb_server, ds) + "/rendered"
        for ds in (study.ct, study.frames)
    )

    # A series of one instance is multipart by default, one image on request.
    series_b = study.series_url(dicomweb_server, study.rgb) + "/rendered"
    assert len(list(parts(get(series_b)))) == 1
    lone = get(series_b, "image/png")
    assert lone.status_code == 200
    assert lone.headers["content-type"] == "image/png"
    assert image_of(lone.content).size == size_of(study.rgb)

    # Nothing with pixel data: 404; an unknown series: 404 as well.
    plan = get(study.series_url(dicomweb_server, study.plan) + "/rendered")
    assert plan.status_code == 404
    assert "pixel data" in plan.text
    missing = get(f"{study.url(dicomweb_server)}/series/1.2.3.4/rendered")
    assert missing.status_code == 404


def test_study_parts_equal_the_instances_rendered_alone(
    dicomweb_server: Server, study: Study
) -> None:
    response = get(study.url(dicomweb_server) + "/rendered?window=40,400", PNG_PARTS)
    assert response.headers["content-type"].startswith(PNG_PARTS)

    for headers, body in multipart_parts(response):
        assert headers["content-type"] == "image/png"
        alone = get(headers["content-location"] + "?window=40,400", "image/png")
        assert np.array_equal(pixels(body), pixels(alone.content))


def test_study_accept(dicomweb_server: Server, study: Study) -> None:
    url = study.url(dicomweb_server) + "/rendered"

    assert get(url, "*/*").headers["content-type"].startswith(JPEG_PARTS)
    assert (
        get(url, 'multipart/related; type="image/*"')
        .headers["content-type"]
        .startswith(JPEG_PARTS)
    )
    # Several instances cannot be one image.
    alone = get(url, "image/jpeg")
    assert alone.status_code == 406
    assert "multipart/related" in alone.text
    assert get(url, 'multipart/related; type="image/gif"').status_code == 406


# Instances and frames -----------------------------------------------------------


def test_multi_frame_instance_and_frame_lists(
    dicomweb_server: Server, study: Study
) -> None:
    url = study.instance_url(dicomweb_server, study.frames)
    count = int(study.frames.NumberOfFrames)
    first = get(url + "/frames/1/rendered", "image/png")
    last = get(url + f"/frames/{count}/rendered", "image/png")

    instance = get(url + "/rendered", "image/png")
    assert np.array_equal(pixels(instance.content), pixels(first.content))
    assert not np.array_equal(pixels(first.content), pixels(last.content))

    listed = get(url + f"/frames/1,{count}/rendered", PNG_PARTS)
    assert listed.status_code == 200
    got = list(multipart_parts(listed))
    assert [h["content-location"] for h, _ in got] == [
        f"{url}/frames/1/rendered",
        f"{url}/frames/{count}/rendered",
    ]
    assert np.array_equal(pixels(got[0][1]), pixels(first.content))
    assert np.array_equal(pixels(got[1][1]), pixels(last.content))

    # Several frames are multipart by default and cannot be one image.
    assert (
        get(url + "/frames/1,2/rendered").headers["content-type"].startswith(JPEG_PARTS)
    )
    assert get(url + "/frames/1,2/rendered", "image/jpeg").status_code == 406
    assert get(url + f"/frames/1,{count + 1}/rendered").status_code == 404

    # The instance itself as a multipart of one part.
    one = list(parts(get(url + "/rendered", JPEG_PARTS)))
    assert [location for _, location, _ in one] == [url + "/rendered"]


def test_colour_instance_renders_in_colour(
    dicomweb_server: Server, study: Study
) -> None:
    url = study.instance_url(dicomweb_server, study.rgb)
    image = image_of(get(url + "/rendered", "image/png").content)

    assert image.mode == "RGB"
    assert image.size == size_of(study.rgb)
    if study.rgb.PhotometricInterpretation == "RGB":
        expected = pydicom.dcmread(
            io.BytesIO(get(url, "application/dicom").content)
        ).pixel_array
        assert np.array_equal(np.asarray(image), expected)


# Viewport ------------------------------------------------------------------------


def test_cropping_viewport_cuts_the_rendered_image(
    dicomweb_server: Server, study: Study
) -> None:
    url = study.instance_url(dicomweb_server, study.ct) + "/rendered"
    full = image_of(get(url, "image/png").content)
    assert full.size == (128, 128)

    def crop(viewport: str) -> Image.Image:
        response = get(f"{url}?viewport={viewport}", "image/png")
        assert response.status_code == 200, response.text
        return image_of(response.content)

    # The bottom right corner, 40 x 30, at its own size.
    corner = crop("40,30,88,98,40,30")
    assert np.array_equal(np.asarray(corner), np.asarray(full.crop((88, 98, 128, 128))))

    # Negative sw, sh mirror the region.
    region = full.crop((10, 20, 50, 50))
    mirrored = crop("40,30,10,20,-40,30")
    assert np.array_equal(np.asarray(mirrored), np.asarray(ImageOps.mirror(region)))
    flipped = crop("40,30,10,20,40,-30")
    assert np.array_equal(np.asarray(flipped), np.asarray(ImageOps.flip(region)))

    # A region is scaled to fit the viewport, keeping its aspect ratio.
    magnified = crop("100,100,10,20,40,30")
    assert magnified.size == (100, 75)
    expected = region.resize((100, 75), Image.Resampling.LANCZOS)
    assert np.abs(pixels_of(magnified) - pixels_of(expected)).max() <= 1

    # Empty values take their defaults; a region is cut at the image's edge.
    assert crop("64,64,,,,").size == (64, 64)
    assert np.array_equal(
        np.asarray(crop("28,28,100,100,50,50")),
        np.asarray(full.crop((100, 100, 128, 128))),
    )
    # The plain form is a bound and never enlarges.
    assert crop("512,512").size == (128, 128)
    assert crop("64,32").size == (32, 32)


def pixels_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_bad_viewports_say_the_form(dicomweb_server: Server, study: Study) -> None:
    url = study.instance_url(dicomweb_server, study.ct) + "/rendered"

    for bad in (
        "10",
        "10,10,1,1",
        "0,10",
        "10,9000",
        "a,b",
        "10,10,-1,0,5,5",
        "10,10,0,0,0,5",
        "10,10,x,0,5,5",
        "10,10,0,0,5,nan",
    ):
        response = get(f"{url}?viewport={bad}")
        assert response.status_code == 400, bad
        assert "vw,vh,sx,sy,sw,sh" in response.text, bad

    outside = get(f"{url}?viewport=10,10,200,0,10,10")
    assert outside.status_code == 400
    assert "outside" in outside.text


def test_study_viewport_region_leaves_out_images_it_misses(
    dicomweb_server: Server, study: Study
) -> None:
    url = study.url(dicomweb_server) + "/rendered"
    small = min(size_of(study.frames))

    # The region starts past the small multi-frame images only.
    response = get(f"{url}?viewport=20,20,{small},{small},20,20")
    assert response.status_code == 200
    locations = {location for _, location, _ in parts(response)}
    assert study.instance_url(dicomweb_server, study.frames) + "/rendered" not in (
        locations
    )
    assert len(locations) == 2
    # Each region (cut at its image's edge) is fitted into 20 x 20.
    for _, _, image in parts(response):
        assert max(image.size) == 20 and min(image.size) <= 20

    # A region that misses every image.
    assert get(f"{url}?viewport=20,20,5000,5000,20,20").status_code == 400


def test_thumbnail_takes_a_cropping_viewport(
    dicomweb_server: Server, study: Study
) -> None:
    url = study.instance_url(dicomweb_server, study.ct) + "/thumbnail"

    assert image_of(get(url).content).size == (128, 128)
    assert image_of(get(url + "?viewport=32,32,0,0,64,64").content).size == (32, 32)


# Quality and annotation ------------------------------------------------------------


def test_quality_is_for_jpeg(dicomweb_server: Server, study: Study) -> None:
    url = study.instance_url(dicomweb_server, study.ct) + "/rendered"

    low = get(url + "?quality=5")
    high = get(url + "?quality=100")
    assert len(low.content) < len(high.content)
    assert get(url + "?quality=5", "image/png").content == get(url, "image/png").content
    assert get(url + "?quality=0").status_code == 400


def test_annotation_is_burned_in(dicomweb_server: Server, study: Study) -> None:
    url = study.instance_url(dicomweb_server, study.ct) + "/rendered"
    plain = pixels(get(url, "image/png").content)

    patient = pixels(get(url + "?annotation=patient", "image/png").content)
    technique = pixels(get(url + "?annotation=technique", "image/png").content)
    both = pixels(get(url + "?annotation=patient,technique", "image/png").content)

    # Patient lines at the top left, technique lines at the bottom left.
    assert not np.array_equal(patient[:32, :64], plain[:32, :64])
    assert np.array_equal(patient[64:], plain[64:])
    assert not np.array_equal(technique[96:, :64], plain[96:, :64])
    assert np.array_equal(technique[:64], plain[:64])
    assert np.array_equal(both[:64], patient[:64])
    assert np.array_equal(both[64:], technique[64:])

    # The multipart of a study is annotated too.
    study_parts = get(study.url(dicomweb_server) + "/rendered?annotation=patient")
    assert study_parts.status_code == 200

    bad = get(url + "?annotation=patient,overlay")
    assert bad.status_code == 400
    assert "patient, technique or both" in bad.text


def test_annotation_of_names_beyond_ascii(dicomweb_server: Server) -> None:
    """Pillow's font holds ASCII: accents are dropped, other letters drawn as
    ``?``, and the name's ideographic group is left out."""
    ds = fresh("CT_small.dcm")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jérôme=山田^太郎"
    assert stow(dicomweb_server.root, [ds]).status_code == 200
    url = (
        f"{dicomweb_server.root}/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/rendered"
    )

    annotated = get(url + "?annotation=patient", "image/png")

    assert annotated.status_code == 200
    plain = pixels(get(url, "image/png").content)
    assert not np.array_equal(pixels(annotated.content), plain)
