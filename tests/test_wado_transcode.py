"""Transcoding on WADO-RS retrieve (PS3.18 §8.7.3, §10.4): instances and frames
encoded into native, RLE, JPEG-LS, JPEG 2000 and JPEG Baseline syntaxes, over a
real server with pydicom's bundled files."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import UID

from .conftest import Server
from .dicomdata import fresh, stow, to_bytes
from .test_wado import parse_multipart

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
RLE = "1.2.840.10008.1.2.5"

NATIVE = (EXPLICIT, IMPLICIT)
COMPRESSED = (BASELINE, JPEG_LS, J2K_LOSSLESS, J2K, RLE)
LOSSY = {BASELINE: "ISO_10918_1", J2K: "ISO_15444_1"}

# The frame media type of each compressed syntax (PS3.18 Table 8.7.3-5).
MEDIA_TYPE = {
    BASELINE: "image/jpeg",
    JPEG_LS: "image/jls",
    J2K_LOSSLESS: "image/jp2",
    J2K: "image/jp2",
    RLE: "image/dicom-rle",
}

# Colour once encoded (PS3.5 §8.2.1, §8.2.4): decoded colour is RGB.
COLOUR = {BASELINE: "YBR_FULL_422", J2K_LOSSLESS: "YBR_RCT", J2K: "YBR_ICT"}

# pydicom's bundled files, and the targets each cannot become (PS3.5 §8.2).
ALL_COMPRESSED = frozenset(COMPRESSED)
SOURCES: dict[str, frozenset[str]] = {
    # 16-bit signed MONOCHROME2, native.
    "CT_small.dcm": frozenset({BASELINE}),
    # Explicit VR Big Endian.
    "MR_small_bigendian.dcm": frozenset({BASELINE}),
    "MR_small_RLE.dcm": frozenset({BASELINE}),
    "MR_small_jpeg_ls_lossless.dcm": frozenset({BASELINE}),
    # Lossy JPEG 2000 (.91).
    "JPEG2000.dcm": frozenset({BASELINE}),
    # 8-bit RGB, native.
    "examples_rgb_color.dcm": frozenset(),
    # 30 frames of JPEG Baseline YBR_FULL_422.
    "examples_ybr_color.dcm": frozenset(),
    # JPEG 2000 Lossless, YBR_RCT.
    "examples_jpeg2k.dcm": frozenset(),
    # Two RGB frames, RLE.
    "SC_rgb_rle_2frame.dcm": frozenset(),
    # Lossy compression of palette indices is not allowed.
    "examples_palette.dcm": frozenset({BASELINE, J2K}),
    # 15 frames of 32-bit samples.
    "rtdose.dcm": ALL_COMPRESSED,
    # 1-bit samples.
    "liver_1frame.dcm": ALL_COMPRESSED,
    # No Pixel Data: relabelled in any syntax.
    "rtplan.dcm": frozenset(),
}
IMAGES = [name for name in SOURCES if name != "rtplan.dcm"]


@pytest.fixture(scope="module")
def stored(dicomweb_server: Server) -> dict[str, Dataset]:
    """Every source, stored once with fresh UIDs."""
    datasets = {name: fresh(name) for name in SOURCES}
    response = stow(dicomweb_server.root, datasets.values())
    assert response.status_code == 200, response.text
    return datasets


def instance_url(server: Server, ds: Dataset) -> str:
    return (
        f"{server.root}/studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )


def dicom_accept(*syntaxes: str) -> str:
    accept = 'multipart/related; type="application/dicom"'
    return accept + "".join(f"; transfer-syntax={syntax}" for syntax in syntaxes)


def frames_accept(media_type: str, *syntaxes: str) -> str:
    accept = f'multipart/related; type="{media_type}"'
    return accept + "".join(f"; transfer-syntax={syntax}" for syntax in syntaxes)


def frames_of(ds: Dataset) -> np.ndarray:
    """All frames of `ds`, decoded by pydicom, frame axis first."""
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames") or 1) == 1:
        pixels = pixels[np.newaxis]
    return pixels.astype(np.float64)


def assert_pixels(expected: np.ndarray, got: np.ndarray, target: str) -> None:
    assert got.shape == expected.shape
    if target in LOSSY:
        # Lossy: close, a mean error within 2% of the value range.
        span = max(float(np.ptp(expected)), 1.0)
        assert np.abs(got - expected).mean() / span < 0.02
    else:
        assert np.array_equal(got, expected)


def decode_frame(codestream: bytes, source: Dataset, target: str) -> np.ndarray:
    """One frame part decoded by pydicom, with the source's Image Pixel
    attributes and the Photometric Interpretation the target gives colour."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(target)
    for keyword in (
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PhotometricInterpretation",
    ):
        if keyword in source:
            setattr(ds, keyword, source[keyword].value)
    if source.SamplesPerPixel == 3:
        ds.PhotometricInterpretation = COLOUR.get(target, "RGB")
        ds.PlanarConfiguration = 0
    ds.PixelData = encapsulate([codestream])
    return ds.pixel_array.astype(np.float64)


def values(ds: Dataset, keyword: str) -> list[object]:
    element = ds[keyword]
    return list(element.value) if element.VM > 1 else [element.value]


# Instances -------------------------------------------------------------------


@pytest.mark.parametrize("target", [*NATIVE, *COMPRESSED])
@pytest.mark.parametrize("name", list(SOURCES))
def test_instance_transcoded(
    dicomweb_server: Server, stored: dict[str, Dataset], name: str, target: str
) -> None:
    source = stored[name]
    url = instance_url(dicomweb_server, source)

    response = httpx.get(url, headers={"Accept": dicom_accept(target)}, timeout=60)

    if target in SOURCES[name]:
        assert response.status_code == 406, response.text
        assert UID(target).name in response.text or "24 bits" in response.text
        assert "transfer-syntax=*" in response.text
        assert EXPLICIT in response.text
        assert str(source.PatientID) not in response.text
        return
    assert response.status_code == 200, response.text
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"] == f"application/dicom; transfer-syntax={target}"
    ds = pydicom.dcmread(io.BytesIO(content))
    assert ds.file_meta.TransferSyntaxUID == target
    # The stored instance is unchanged, so the UID stays (conformance.md §4.2).
    assert ds.SOPInstanceUID == source.SOPInstanceUID
    assert ds.PatientID == source.PatientID
    if "PixelData" not in source:
        assert "PixelData" not in ds
        return

    assert_pixels(frames_of(source), frames_of(ds), target)
    if target in LOSSY and target != source.file_meta.TransferSyntaxUID:
        assert ds.LossyImageCompression == "01"
        assert values(ds, "LossyImageCompressionMethod")[-1] == LOSSY[target]
        assert float(values(ds, "LossyImageCompressionRatio")[-1]) > 1
    if source.SamplesPerPixel == 3 and target in COMPRESSED:
        assert ds.PhotometricInterpretation == COLOUR.get(target, "RGB")


def test_stored_syntax_comes_back_as_stored(
    dicomweb_server: Server, stored: dict[str, Dataset]
) -> None:
    source = stored["JPEG2000.dcm"]
    url = instance_url(dicomweb_server, source)

    response = httpx.get(url, headers={"Accept": dicom_accept(J2K)})

    ((_, content),) = parse_multipart(response)
    assert content == to_bytes(source)


def test_single_part_instance(
    dicomweb_server: Server, stored: dict[str, Dataset]
) -> None:
    source = stored["examples_rgb_color.dcm"]
    accept = f"application/dicom; transfer-syntax={J2K_LOSSLESS}"

    response = httpx.get(
        instance_url(dicomweb_server, source), headers={"Accept": accept}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom")
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == J2K_LOSSLESS
    assert np.array_equal(ds.pixel_array, source.pixel_array)


def test_the_first_fitting_syntax_is_chosen_per_instance(
    dicomweb_server: Server,
) -> None:
    """PS3.18 §8.7.8.2: the Selected Transfer Syntax may differ per part."""
    ct = fresh("CT_small.dcm")
    colour = fresh("examples_rgb_color.dcm", study=ct.StudyInstanceUID)
    plan = fresh("rtplan.dcm", study=ct.StudyInstanceUID)
    assert stow(dicomweb_server.root, [ct, colour, plan]).status_code == 200
    study = f"{dicomweb_server.root}/studies/{ct.StudyInstanceUID}"

    # JPEG Baseline alone cannot hold the 16-bit CT: 406 for the study.
    response = httpx.get(study, headers={"Accept": dicom_accept(BASELINE)})
    assert response.status_code == 406
    assert "Bits Allocated 16" in response.text

    # Baseline or JPEG 2000 Lossless: each instance gets the first that fits.
    response = httpx.get(
        study, headers={"Accept": dicom_accept(BASELINE, J2K_LOSSLESS)}, timeout=60
    )
    assert response.status_code == 200, response.text
    syntaxes = {}
    for headers, content in parse_multipart(response):
        ds = pydicom.dcmread(io.BytesIO(content))
        assert headers["content-type"].endswith(ds.file_meta.TransferSyntaxUID)
        syntaxes[ds.SOPInstanceUID] = ds.file_meta.TransferSyntaxUID
    assert syntaxes == {
        ct.SOPInstanceUID: J2K_LOSSLESS,
        colour.SOPInstanceUID: BASELINE,
        plan.SOPInstanceUID: BASELINE,
    }

    # Two media ranges: the second is used when the first cannot be made.
    accept = f"{dicom_accept(BASELINE)}, {dicom_accept(RLE)};q=0.5"
    response = httpx.get(study, headers={"Accept": accept}, timeout=60)
    assert response.status_code == 200, response.text
    labels = {headers["content-type"] for headers, _ in parse_multipart(response)}
    assert labels == {f"application/dicom; transfer-syntax={RLE}"}


def test_undecodable_sources_are_not_acceptable(dicomweb_server: Server) -> None:
    # A syntax no installed decoder reads: JPEG 2000 Part 2.
    part2 = fresh("JPEG2000.dcm")
    part2.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.92")
    # A codestream the decoder cannot read.
    broken = fresh("JPEG2000.dcm")
    broken.PixelData = encapsulate([b"\xff\x4f\xff\x51broken"])
    assert stow(dicomweb_server.root, [part2, broken]).status_code == 200

    for ds in (part2, broken):
        url = instance_url(dicomweb_server, ds)
        for accept in (dicom_accept(J2K_LOSSLESS), dicom_accept(RLE, EXPLICIT)):
            response = httpx.get(url, headers={"Accept": accept})
            assert response.status_code == 406, response.text
            assert "decode" in response.text
            assert "transfer-syntax=*" in response.text
        frame = httpx.get(
            url + "/frames/1", headers={"Accept": frames_accept("image/jls")}
        )
        assert frame.status_code == 406, frame.text
        assert "transfer-syntax=*" in frame.text


def test_a_syntax_not_made_here(
    dicomweb_server: Server, stored: dict[str, Dataset]
) -> None:
    url = instance_url(dicomweb_server, stored["examples_rgb_color.dcm"])
    # JPEG Lossless SV1 (.70) has no encoder here.
    response = httpx.get(
        url, headers={"Accept": dicom_accept("1.2.840.10008.1.2.4.70")}
    )

    assert response.status_code == 406
    assert "not a transfer syntax this server can make" in response.text
    assert J2K_LOSSLESS in response.text


# Frames ----------------------------------------------------------------------


@pytest.mark.parametrize("target", COMPRESSED)
@pytest.mark.parametrize("name", IMAGES)
def test_frames_transcoded(
    dicomweb_server: Server, stored: dict[str, Dataset], name: str, target: str
) -> None:
    source = stored[name]
    count = int(source.get("NumberOfFrames") or 1)
    numbers = [count, 1] if count > 1 else [1]
    url = (
        instance_url(dicomweb_server, source)
        + "/frames/"
        + ",".join(str(number) for number in numbers)
    )
    expected = frames_of(source)

    for media_type in ("application/octet-stream", MEDIA_TYPE[target]):
        accept = frames_accept(media_type, target)
        response = httpx.get(url, headers={"Accept": accept}, timeout=60)

        if target in SOURCES[name]:
            assert response.status_code == 406, response.text
            assert "transfer-syntax=*" in response.text
            continue
        assert response.status_code == 200, response.text
        parts = parse_multipart(response)
        assert len(parts) == len(numbers)
        for number, (headers, content) in zip(numbers, parts, strict=True):
            assert headers["content-type"] == f"{media_type}; transfer-syntax={target}"
            got = decode_frame(content, source, target)
            assert_pixels(expected[number - 1], got, target)


@pytest.mark.parametrize(
    ("media_type", "name", "syntax"),
    [
        # PS3.18 Table 8.7.3-5 defaults, but image/jpeg: its default, JPEG
        # Lossless SV1, has no encoder here (conformance.md §4.2).
        ("image/jpeg", "examples_rgb_color.dcm", BASELINE),
        ("image/jp2", "CT_small.dcm", J2K_LOSSLESS),
        ("image/jls", "CT_small.dcm", JPEG_LS),
        ("image/dicom-rle", "examples_rgb_color.dcm", RLE),
        ("application/octet-stream", "SC_rgb_rle_2frame.dcm", EXPLICIT),
        # Frames already of the asked type come as stored.
        ("image/jpeg", "examples_ybr_color.dcm", BASELINE),
        ("image/jp2", "JPEG2000.dcm", J2K),
    ],
)
def test_frame_media_type_defaults(
    dicomweb_server: Server,
    stored: dict[str, Dataset],
    media_type: str,
    name: str,
    syntax: str,
) -> None:
    source = stored[name]
    url = instance_url(dicomweb_server, source) + "/frames/1"

    response = httpx.get(url, headers={"Accept": frames_accept(media_type)})

    assert response.status_code == 200, response.text
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"] == f"{media_type}; transfer-syntax={syntax}"
    if syntax == source.file_meta.TransferSyntaxUID:
        assert content == next(generate_frames(source.PixelData, number_of_frames=1))
    elif syntax == EXPLICIT:
        assert content == source.pixel_array[0].tobytes()
    else:
        assert_pixels(
            frames_of(source)[0], decode_frame(content, source, syntax), syntax
        )


def test_frame_refusals_name_the_reason_and_the_way_out(
    dicomweb_server: Server, stored: dict[str, Dataset]
) -> None:
    url = instance_url(dicomweb_server, stored["CT_small.dcm"]) + "/frames/1"

    jpeg = httpx.get(url, headers={"Accept": frames_accept("image/jpeg")})
    assert jpeg.status_code == 406
    assert "JPEG Baseline" in jpeg.text and "Bits Allocated 16" in jpeg.text
    assert J2K_LOSSLESS in jpeg.text and "transfer-syntax=*" in jpeg.text

    # image/jpx (JPEG 2000 Part 2) cannot be made here.
    assert (
        httpx.get(url, headers={"Accept": frames_accept("image/jpx")}).status_code
        == 406
    )
    # A syntax that is not one of the media type's (PS3.18 Table 8.7.3-5).
    wrong = httpx.get(url, headers={"Accept": frames_accept("image/jp2", RLE)})
    assert wrong.status_code == 406
    assert "image/jp2" in wrong.text

    # Another accepted type that fits is used instead.
    accept = f"{frames_accept('image/jpeg')}, {frames_accept('image/jp2')}"
    response = httpx.get(url, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    ((headers, _),) = parse_multipart(response)
    assert headers["content-type"] == f"image/jp2; transfer-syntax={J2K_LOSSLESS}"


def test_single_frame_as_a_lone_image(
    dicomweb_server: Server, stored: dict[str, Dataset]
) -> None:
    source = stored["examples_rgb_color.dcm"]
    url = instance_url(dicomweb_server, source) + "/frames/1"

    response = httpx.get(url, headers={"Accept": "image/jpeg"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"image/jpeg; transfer-syntax={BASELINE}"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    assert_pixels(frames_of(source)[0], image.astype(np.float64), BASELINE)


# dicomweb-client ---------------------------------------------------------------


def uids(ds: Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def test_dicomweb_client_asks_for_jpeg_2000_and_jpeg(
    dicomweb_server: Server, stored: dict[str, Dataset]
) -> None:
    client = DICOMwebClient(dicomweb_server.root)
    ct = stored["CT_small.dcm"]
    colour = stored["examples_rgb_color.dcm"]

    ds = client.retrieve_instance(
        *uids(ct), media_types=(("application/dicom", J2K_LOSSLESS),)
    )
    assert ds.file_meta.TransferSyntaxUID == J2K_LOSSLESS
    assert np.array_equal(ds.pixel_array, ct.pixel_array)

    (frame,) = client.retrieve_instance_frames(
        *uids(colour), frame_numbers=[1], media_types=(("image/jpeg",),)
    )
    image = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))
    assert_pixels(frames_of(colour)[0], image.astype(np.float64), BASELINE)
