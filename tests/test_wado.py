"""WADO-RS over a real server: retrieve, metadata, frames, bulk data, rendered
(PS3.18 §10.4), and the DICOMweb cases 11 to 17."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from .conftest import DICOMWEB_CORS, Server
from .dicomdata import (
    PERSON_NAME_OBJECTS,
    fresh,
    read,
    sample_files,
    sample_path,
    stow,
    to_bytes,
)

A1 = "multipart/related; type=application/octet-stream; transfer-syntax=*"
A3 = 'multipart/related; type="application/octet-stream"'
EXPLICIT_LE = "1.2.840.10008.1.2.1"


# Helpers -------------------------------------------------------------------


def parse_multipart(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related answer, checking its framing strictly
    (RFC 2046 §5.1.1): it opens with the delimiter, every part ends with CRLF
    before the next one, and it closes with ``--boundary--``."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related"), content_type
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    body = response.content
    assert body.startswith(delimiter + b"\r\n")
    assert body.endswith(delimiter + b"--\r\n") or body.endswith(delimiter + b"--")

    sections = (b"\r\n" + body).split(b"\r\n" + delimiter)
    assert sections[0] == b""
    assert sections[-1].startswith(b"--")
    parts = []
    for section in sections[1:-1]:
        assert section.startswith(b"\r\n")
        head, separator, content = section[2:].partition(b"\r\n\r\n")
        assert separator
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


def check_json_ok(response: httpx.Response) -> list[dict[str, Any]]:
    """ "JSON OK" of cases/dicomweb/conventions.md."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    payload = response.json()
    assert isinstance(payload, list)

    def check(node: dict[str, Any]) -> None:
        for key, attribute in node.items():
            assert re.fullmatch(r"[0-9A-F]{8}", key), key
            assert "vr" in attribute, key
            assert attribute.get("Value") not in ([], [None], [""]), key
            if attribute["vr"] == "SQ":
                for item in attribute.get("Value", []):
                    check(item)

    for item in payload:
        check(item)
    return payload


def sample(name: str) -> Path:
    for path in sample_files("clean"):
        if path.name == name:
            return path
    pytest.skip(f"clean/{name} is not in the sample corpus")


def instance_url(root: str, ds: Dataset) -> str:
    return (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def store(server: Server, *datasets: Dataset) -> None:
    response = stow(server.root, list(datasets))
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def ct(dicomweb_server: Server) -> Dataset:
    ds = fresh("CT_small.dcm")
    store(dicomweb_server, ds)
    return ds


@pytest.fixture(scope="module")
def j2k(dicomweb_server: Server) -> Dataset:
    ds = fresh("JPEG2000.dcm")
    store(dicomweb_server, ds)
    return ds


def metadata_of(server: Server, ds: Dataset, **kwargs: Any) -> dict[str, Any]:
    response = httpx.get(instance_url(server.root, ds) + "/metadata", **kwargs)
    (item,) = check_json_ok(response)
    return item


# DICOM JSON cases --------------------------------------------------------------


def test_dicomweb_11_empty_values_json(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-11-empty-values-json.md (metadata, item 1 and 3)."""
    ds = fresh(
        "CT_small.dcm",
        AccessionNumber="",
        DerivationDescription="",
        ImageType=["ORIGINAL", "", "AXIAL"],
    )
    store(dicomweb_server, ds)

    item = metadata_of(dicomweb_server, ds)

    assert item["00080050"] == {"vr": "SH"}
    assert item["00082111"] == {"vr": "ST"}
    assert item["00080008"]["Value"] == ["ORIGINAL", None, "AXIAL"]


def test_dicomweb_12_numbers_in_json(dicomweb_server: Server, ct: Dataset) -> None:
    """cases/dicomweb/dicomweb-12-numbers-in-json.md (metadata, item 1)."""
    item = metadata_of(dicomweb_server, ct)

    (number,) = item["00200013"]["Value"]
    assert isinstance(number, int) and number == int(ct.InstanceNumber)
    spacing = item["00280030"]["Value"]
    assert all(isinstance(value, int | float) for value in spacing)
    assert spacing == [float(value) for value in ct.PixelSpacing]


@pytest.mark.parametrize(("name", "expected"), PERSON_NAME_OBJECTS)
def test_dicomweb_13_person_name_json(
    dicomweb_server: Server, name: str, expected: dict[str, str]
) -> None:
    """cases/dicomweb/dicomweb-13-person-name-json.md (metadata)."""
    ds = fresh(name)
    store(dicomweb_server, ds)

    item = metadata_of(dicomweb_server, ds)

    assert item["00100010"]["Value"] == [expected]


@pytest.mark.parametrize(
    "name",
    [
        "chrGerm.dcm",
        "chrFren.dcm",
        "chrRuss.dcm",
        "chrGreek.dcm",
        "chrArab.dcm",
        "chrHbrw.dcm",
        "chrX2.dcm",
        "chrH32.dcm",
    ],
)
def test_dicomweb_14_character_sets(dicomweb_server: Server, name: str) -> None:
    """cases/dicomweb/dicomweb-14-character-sets.md (its metadata part)."""
    ds = fresh(name)
    expected = read(name).PatientName.alphabetic
    store(dicomweb_server, ds)

    response = httpx.get(instance_url(dicomweb_server.root, ds) + "/metadata")
    (item,) = check_json_ok(response)

    assert json.loads(response.content.decode("utf-8")) == [item]
    assert item["00100010"]["Value"][0]["Alphabetic"] == expected
    assert item.get("00080005", {"Value": ["ISO_IR 192"]})["Value"] == ["ISO_IR 192"]
    if name == "chrGerm.dcm":
        assert expected == "Äneas^Rüdiger"
    if name == "chrH32.dcm":
        assert expected == "ﾔﾏﾀﾞ^ﾀﾛｳ"


# Bulk data behind a proxy -------------------------------------------------------


def bulk_uris(payload: list[dict[str, Any]]) -> list[str]:
    found = []

    def walk(node: dict[str, Any]) -> None:
        for attribute in node.values():
            if "BulkDataURI" in attribute:
                found.append(attribute["BulkDataURI"])
            for item in attribute.get("Value", []) if attribute["vr"] == "SQ" else []:
                walk(item)

    for item in payload:
        walk(item)
    return found


def test_dicomweb_15_bulkdata_uri_behind_proxy(
    dicomweb_server: Server,
    ct: Dataset,
    server_factory: Callable[..., Server],
) -> None:
    """cases/dicomweb/dicomweb-15-bulkdata-uri-behind-proxy.md."""
    root = dicomweb_server.root
    series = f"{root}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}"
    public = instance_url("https://pacs.example.org/v2", ct) + "/"

    # 1 and 2: X-Forwarded-* and Forwarded from the loopback proxy.
    for headers in (
        {"X-Forwarded-Host": "pacs.example.org", "X-Forwarded-Proto": "https"},
        {"Forwarded": "host=pacs.example.org;proto=https"},
    ):
        uris = bulk_uris(
            check_json_ok(httpx.get(series + "/metadata", headers=headers))
        )
        assert uris and all(uri.startswith(public) for uri in uris), uris

    # 5: the PixelData BulkDataURI, sent to the server itself, gives the bytes.
    pixel_uri = next(uri for uri in uris if uri.endswith("/bulkdata/7FE00010"))
    local = pixel_uri.replace("https://pacs.example.org", dicomweb_server.url)
    response = httpx.get(local)
    assert response.status_code == 200
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"].startswith("application/octet-stream")
    assert content == ct.PixelData
    plain = httpx.get(local, headers={"Accept": "application/octet-stream"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/octet-stream")
    assert plain.content == ct.PixelData

    # 3: a configured public base URL wins over any forwarding header.
    configured = server_factory(
        DICOMWEB_CORS
        + '\n[server]\npublic_base_url = "https://pacs.example.org/dicomweb"\n'
    )
    store(configured, ct)
    url = configured.root + series.removeprefix(root) + "/metadata"
    uris = bulk_uris(
        check_json_ok(httpx.get(url, headers={"X-Forwarded-Host": "evil.example"}))
    )
    prefix = instance_url("https://pacs.example.org/dicomweb/v2", ct) + "/"
    assert uris and all(uri.startswith(prefix) for uri in uris), uris

    # 4: forwarding headers from a peer that is not a trusted proxy are ignored.
    untrusted = server_factory(
        DICOMWEB_CORS + '\n[server]\ntrusted_proxies = ["10.0.0.0/8"]\n'
    )
    store(untrusted, ct)
    url = untrusted.root + series.removeprefix(root) + "/metadata"
    headers = {"X-Forwarded-Host": "pacs.example.org", "X-Forwarded-Proto": "https"}
    uris = bulk_uris(check_json_ok(httpx.get(url, headers=headers)))
    assert uris and all(uri.startswith(untrusted.url + "/v2/") for uri in uris), uris


# Frames ------------------------------------------------------------------------


DICOMWEB_16_FORMS = {
    "A1": A1,
    "A2": 'multipart/related; type="application/octet-stream"; transfer-syntax="*"',
    "A3": A3,
    "A4": "multipart/related; type=application/octet-stream",
    "A5": "multipart/related; type=application/octet-stream; "
    "transfer-syntax=1.2.840.10008.1.2.1; transfer-syntax=*",
    "A6": 'multipart/related;type="application/octet-stream";'
    "transfer-syntax=1.2.840.10008.1.2.1",
}


@pytest.mark.parametrize("form", sorted(DICOMWEB_16_FORMS))
def test_dicomweb_16_frame_accept_forms(
    dicomweb_server: Server, ct: Dataset, form: str
) -> None:
    """cases/dicomweb/dicomweb-16-frame-accept-forms.md."""
    url = instance_url(dicomweb_server.root, ct) + "/frames/1"

    response = httpx.get(url, headers={"Accept": DICOMWEB_16_FORMS[form]})

    assert response.status_code == 200, response.text
    assert re.fullmatch(
        r'multipart/related; type="application/octet-stream"; boundary=\S+',
        response.headers["content-type"],
    )
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"] == (
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert len(content) == 128 * 128 * 1 * 16 // 8 == 32768
    assert content == ct.PixelData


def test_dicomweb_16_frame_errors(dicomweb_server: Server, ct: Dataset) -> None:
    """cases/dicomweb/dicomweb-16-frame-accept-forms.md, its errors."""
    url = instance_url(dicomweb_server.root, ct)

    for frame in ("0", "2"):
        response = httpx.get(f"{url}/frames/{frame}", headers={"Accept": A1})
        assert response.status_code == 404, response.text
        assert response.text
    for accept in ('multipart/related; type="nope"', "multipart/related; type=nope"):
        response = httpx.get(f"{url}/frames/1", headers={"Accept": accept})
        assert response.status_code == 406
        assert "application/octet-stream" in response.text
    assert httpx.get(f"{url}/frames/1", headers={"Accept": "nope"}).status_code == 406
    assert httpx.get(f"{url}/frames/x", headers={"Accept": A1}).status_code == 400


def test_dicomweb_17_compressed_frames(
    dicomweb_server: Server, ct: Dataset, j2k: Dataset
) -> None:
    """cases/dicomweb/dicomweb-17-compressed-frames.md."""
    url = instance_url(dicomweb_server.root, j2k) + "/frames/1"

    # 1: as stored, labelled with its transfer syntax.
    response = httpx.get(url, headers={"Accept": A1})
    assert response.status_code == 200
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"] == (
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.91"
    )
    assert content == next(generate_frames(j2k.PixelData, number_of_frames=1))

    # 2: Explicit VR Little Endian asked for: decoded, never compressed bytes.
    response = httpx.get(url, headers={"Accept": A3})
    assert response.status_code == 200
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"] == (
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    )
    assert len(content) == 1024 * 256 * 2 == 524288
    assert content == j2k.pixel_array.astype("<u2").tobytes()

    # 3: JPEG 2000 of an uncompressed CT is transcoded: 200, never 500.
    accept = (
        'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.90'
    )
    ct_url = instance_url(dicomweb_server.root, ct) + "/frames/1"
    response = httpx.get(ct_url, headers={"Accept": accept})
    assert response.status_code == 200
    ((headers, _),) = parse_multipart(response)
    assert headers["content-type"] == (
        "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    )

    # The J2K frame under its own image/jp2 media type.
    response = httpx.get(url, headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert response.status_code == 200
    ((headers, content),) = parse_multipart(response)
    assert (
        headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91"
    )


def test_several_frames_in_one_answer(dicomweb_server: Server) -> None:
    ds = fresh(pydicom.dcmread(sample("emri_small.dcm")))
    store(dicomweb_server, ds)
    url = instance_url(dicomweb_server.root, ds) + "/frames/3,1,10"

    parts = parse_multipart(httpx.get(url, headers={"Accept": A1}))

    frames = ds.pixel_array
    assert [content for _, content in parts] == [
        frames[i].astype("<u2").tobytes() for i in (2, 0, 9)
    ]
    response = httpx.get(url.replace("3,1,10", "1,11"), headers={"Accept": A1})
    assert response.status_code == 404
    assert "10 frame(s)" in response.text


def test_frames_of_an_instance_without_pixel_data(dicomweb_server: Server) -> None:
    ds = fresh("rtplan.dcm")
    store(dicomweb_server, ds)

    response = httpx.get(instance_url(dicomweb_server.root, ds) + "/frames/1")

    assert response.status_code == 404
    assert "no pixel data" in response.text


def test_cors_04_damaged_stored_file_answers_500(dicomweb_server: Server) -> None:
    """The precondition of cases/cors/cors-04-cors-headers-on-500.md: a stored
    file overwritten with bytes that are not DICOM makes the requests that read
    it answer 500, and the server goes on serving. Metadata is not among
    them: it is answered from the document kept at store time."""
    ds = fresh("CT_small.dcm")
    store(dicomweb_server, ds)
    (path,) = dicomweb_server.data_dir.rglob(f"{ds.SOPInstanceUID}.*")
    path.write_bytes(b"this is not DICOM; the disk returned garbage\n" * 64)
    url = instance_url(dicomweb_server.root, ds)
    origin = {"Origin": "https://viewer.example.org"}

    for resource, accept in (
        ("/frames/1", A1),
        ("/frames/1", A3),
        ("/rendered", "image/jpeg"),
        ("/thumbnail", "image/jpeg"),
        ("/bulkdata/7FE00010", A3),
    ):
        response = httpx.get(url + resource, headers={**origin, "Accept": accept})
        assert response.status_code == 500, (resource, response.status_code)

    metadata = httpx.get(url + "/metadata", headers=origin)
    assert metadata.status_code == 200
    assert httpx.get(dicomweb_server.url + "/health").status_code == 200


# Retrieve ----------------------------------------------------------------------


def test_retrieve_instance_as_stored(dicomweb_server: Server, j2k: Dataset) -> None:
    url = instance_url(dicomweb_server.root, j2k)
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'

    response = httpx.get(url, headers={"Accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"; boundary='
    )
    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"] == (
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.91"
    )
    assert headers["content-location"] == url
    assert content == to_bytes(j2k)


def test_retrieve_transcodes_to_explicit_little_endian_by_default(
    dicomweb_server: Server, j2k: Dataset
) -> None:
    for accept in (None, 'multipart/related; type="application/dicom"', "*/*"):
        headers = {"Accept": accept} if accept else {}
        response = httpx.get(instance_url(dicomweb_server.root, j2k), headers=headers)
        assert response.status_code == 200
        ((headers, content),) = parse_multipart(response)
        assert (
            headers["content-type"]
            == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
        )
        ds = pydicom.dcmread(io.BytesIO(content))
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
        assert ds.SOPInstanceUID == j2k.SOPInstanceUID
        assert (ds.pixel_array == j2k.pixel_array).all()


def test_retrieve_single_part_and_refusals(
    dicomweb_server: Server, ct: Dataset
) -> None:
    url = instance_url(dicomweb_server.root, ct)

    single = httpx.get(url, headers={"Accept": "application/dicom"})
    assert single.status_code == 200
    assert single.headers["content-type"].startswith("application/dicom")
    assert single.content == to_bytes(ct)

    # JPEG Baseline holds 8-bit samples only, and the CT has 16.
    jpeg_only = (
        'multipart/related; type="application/dicom"; '
        "transfer-syntax=1.2.840.10008.1.2.4.50"
    )
    response = httpx.get(url, headers={"Accept": jpeg_only})
    assert response.status_code == 406
    assert "transfer-syntax=*" in response.text
    assert httpx.get(url, headers={"Accept": "text/html"}).status_code == 406


def test_retrieve_series_and_study_stream_every_instance(
    dicomweb_server: Server,
) -> None:
    first = fresh("CT_small.dcm")
    second = fresh("MR_small.dcm", study=first.StudyInstanceUID)
    third = fresh("CT_small.dcm", study=first.StudyInstanceUID)
    third.SeriesInstanceUID = second.SeriesInstanceUID
    store(dicomweb_server, first, second, third)
    study = f"{dicomweb_server.root}/studies/{first.StudyInstanceUID}"
    accept = {
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'
    }

    parts = parse_multipart(httpx.get(study, headers=accept))
    assert sorted(content for _, content in parts) == sorted(
        to_bytes(ds) for ds in (first, second, third)
    )
    series = f"{study}/series/{second.SeriesInstanceUID}"
    parts = parse_multipart(httpx.get(series, headers=accept))
    assert len(parts) == 2

    study_metadata = check_json_ok(httpx.get(study + "/metadata"))
    assert len(study_metadata) == 3
    assert check_json_ok(
        httpx.get(dicomweb_server.url + "/v1" + study.split("/v2")[1] + "/metadata")
    )


def test_not_found_and_bad_uids(dicomweb_server: Server, ct: Dataset) -> None:
    root = dicomweb_server.root
    missing = f"{root}/studies/1.2.3/series/4.5.6/instances/7.8.9"

    for suffix in ("", "/metadata", "/frames/1", "/rendered", "/bulkdata/7FE00010"):
        response = httpx.get(missing + suffix)
        assert response.status_code == 404, suffix
        assert "no instance" in response.text
    assert httpx.get(f"{root}/studies/1.2.3").status_code == 404
    assert httpx.get(f"{root}/studies/1.02.x/metadata").status_code == 400


def test_metadata_accept(dicomweb_server: Server, ct: Dataset) -> None:
    url = instance_url(dicomweb_server.root, ct) + "/metadata"

    for accept in (
        "application/dicom+json",
        "application/json",
        "*/*",
        "application/*",
    ):
        assert httpx.get(url, headers={"Accept": accept}).status_code == 200, accept
    xml = httpx.get(
        url, headers={"Accept": 'multipart/related; type="application/dicom+xml"'}
    )
    assert xml.status_code == 406
    assert "application/dicom+json" in xml.text
    assert httpx.get(url + "?accept=application/dicom%2Bjson").status_code == 200


def test_metadata_names_the_stored_transfer_syntax(
    dicomweb_server: Server, j2k: Dataset
) -> None:
    item = metadata_of(dicomweb_server, j2k)

    assert item["00083002"] == {"vr": "UI", "Value": ["1.2.840.10008.1.2.4.91"]}
    assert "00020010" not in item


def test_bulkdata_of_other_values_and_bad_paths(dicomweb_server: Server) -> None:
    ds = fresh("CT_small.dcm")
    ds.add_new(0x00091010, "LO", "DICOMHUB TEST")
    ds.add_new(0x00091011, "OB", bytes(range(256)) * 16)
    store(dicomweb_server, ds)
    url = instance_url(dicomweb_server.root, ds)

    item = metadata_of(dicomweb_server, ds)
    assert item["00091011"]["BulkDataURI"] == url + "/bulkdata/00091011"
    ((_, content),) = parse_multipart(httpx.get(url + "/bulkdata/00091011"))
    assert content == bytes(range(256)) * 16

    assert httpx.get(url + "/bulkdata/00091099").status_code == 404
    assert httpx.get(url + "/bulkdata/7FE0").status_code == 400


# Rendered ----------------------------------------------------------------------


def open_image(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def test_rendered_jpeg_png_and_window(dicomweb_server: Server, ct: Dataset) -> None:
    url = instance_url(dicomweb_server.root, ct)

    jpeg = httpx.get(url + "/rendered")
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert open_image(jpeg).format == "JPEG"

    png = httpx.get(url + "/rendered", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert open_image(png).size == (128, 128)

    frame = httpx.get(url + "/frames/1/rendered?window=40,400,linear&quality=50")
    assert open_image(frame).format == "JPEG"
    assert httpx.get(url + "/rendered?window=40").status_code == 400
    assert httpx.get(url + "/frames/2/rendered").status_code == 404
    assert (
        httpx.get(url + "/rendered", headers={"Accept": "image/gif"}).status_code == 406
    )


def test_thumbnails(dicomweb_server: Server, ct: Dataset) -> None:
    plan = fresh("rtplan.dcm", study=ct.StudyInstanceUID)
    store(dicomweb_server, plan)
    study = f"{dicomweb_server.root}/studies/{ct.StudyInstanceUID}"

    for url in (
        instance_url(dicomweb_server.root, ct) + "/thumbnail",
        f"{study}/series/{ct.SeriesInstanceUID}/thumbnail",
        f"{study}/thumbnail",
        f"{study}/thumbnail?viewport=64,64",
    ):
        image = open_image(httpx.get(url))
        assert max(image.size) <= 128

    plan_url = instance_url(dicomweb_server.root, plan)
    assert httpx.get(plan_url + "/thumbnail").status_code == 404
    assert httpx.get(plan_url + "/rendered").status_code == 404


def test_single_frame_alone_and_by_accept_query(
    dicomweb_server: Server, ct: Dataset, j2k: Dataset
) -> None:
    ct_frame = instance_url(dicomweb_server.root, ct) + "/frames/1"
    j2k_frame = instance_url(dicomweb_server.root, j2k) + "/frames/1"

    plain = httpx.get(ct_frame, headers={"Accept": "application/octet-stream"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == (
        f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    )
    assert plain.content == ct.PixelData

    jp2 = httpx.get(j2k_frame, headers={"Accept": "image/jp2"})
    assert jp2.status_code == 200
    assert jp2.headers["content-type"].startswith("image/jp2")

    # The accept query parameter replaces the header (PS3.18 §8.3.3.1).
    query = httpx.get(
        j2k_frame,
        params={"accept": A1},
        headers={"Accept": "text/html"},
    )
    ((headers, _),) = parse_multipart(query)
    assert headers["content-type"].endswith("transfer-syntax=1.2.840.10008.1.2.4.91")

    several = httpx.get(
        ct_frame.replace("frames/1", "frames/1,2"),
        headers={"Accept": "application/octet-stream"},
    )
    assert several.status_code == 406


def test_compressed_pixel_data_bulk_is_one_part_per_frame(
    dicomweb_server: Server,
) -> None:
    # pydicom's bundled two-frame RLE instance: present with or without the
    # shared corpus.
    ds = fresh(pydicom.dcmread(sample_path("SC_rgb_rle_2frame.dcm")))
    store(dicomweb_server, ds)
    url = instance_url(dicomweb_server.root, ds) + "/bulkdata/7FE00010"

    parts = parse_multipart(httpx.get(url))

    assert [content for _, content in parts] == list(
        generate_frames(ds.PixelData, number_of_frames=2)
    )
    assert all(h["content-type"].endswith("1.2.840.10008.1.2.5") for h, _ in parts)
    single = httpx.get(url, headers={"Accept": "application/octet-stream"})
    assert single.status_code == 406


def test_retrieve_as_implicit_little_endian(
    dicomweb_server: Server, ct: Dataset
) -> None:
    accept = (
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2'
    )

    response = httpx.get(
        instance_url(dicomweb_server.root, ct), headers={"Accept": accept}
    )

    ((headers, content),) = parse_multipart(response)
    assert headers["content-type"].endswith("transfer-syntax=1.2.840.10008.1.2")
    result = pydicom.dcmread(io.BytesIO(content))
    assert result.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert result.PixelData == ct.PixelData
