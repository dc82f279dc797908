"""Conditional requests and byte ranges on WADO-RS over a real server: the
metadata ETag and 304 (RFC 9110 §13.1.2, §15.4.5), and Range on single-part
bulk data (RFC 9110 §14, §15.3.7, §15.5.17)."""

from __future__ import annotations

import httpx
import pytest
from pydicom.dataset import Dataset

from .conftest import Server
from .dicomdata import fresh, stow

VIEWER = "http://viewer.example"
OCTET = "application/octet-stream"


def series_url(root: str, ds: Dataset) -> str:
    return f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"


def instance_url(root: str, ds: Dataset) -> str:
    return f"{series_url(root, ds)}/instances/{ds.SOPInstanceUID}"


def store(server: Server, *datasets: Dataset) -> None:
    response = stow(server.root, list(datasets))
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def ct(dicomweb_server: Server) -> Dataset:
    ds = fresh("CT_small.dcm")
    store(dicomweb_server, ds)
    return ds


# Metadata ETag -----------------------------------------------------------------


def test_metadata_etag_is_stable_and_answers_if_none_match(
    dicomweb_server: Server,
) -> None:
    first = fresh("CT_small.dcm")
    second = fresh("CT_small.dcm", study=first.StudyInstanceUID)
    second.SeriesInstanceUID = first.SeriesInstanceUID
    store(dicomweb_server, first, second)
    url = series_url(dicomweb_server.root, first) + "/metadata"

    one, two = httpx.get(url), httpx.get(url)
    assert one.status_code == two.status_code == 200
    etag = one.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert two.headers["etag"] == etag
    assert one.headers["cache-control"] == "no-cache"
    assert len(one.json()) == 2

    for condition in (etag, "*", f'"stale", {etag}', f"W/{etag}"):
        answer = httpx.get(url, headers={"If-None-Match": condition})
        assert answer.status_code == 304, condition
        assert answer.content == b""
        assert answer.headers["etag"] == etag
        assert answer.headers["cache-control"] == "no-cache"

    answer = httpx.get(url, headers={"If-None-Match": '"stale", W/"other"'})
    assert answer.status_code == 200
    assert answer.json() == one.json()

    # Every level has its own tag.
    study = httpx.get(
        f"{dicomweb_server.root}/studies/{first.StudyInstanceUID}/metadata"
    )
    instance = httpx.get(instance_url(dicomweb_server.root, first) + "/metadata")
    assert study.headers["etag"] == etag  # the same two instances, same root
    assert instance.headers["etag"] not in (etag, None)


def test_metadata_etag_changes_when_the_series_changes(
    dicomweb_server: Server,
) -> None:
    first = fresh("CT_small.dcm")
    store(dicomweb_server, first)
    url = series_url(dicomweb_server.root, first) + "/metadata"
    before = httpx.get(url).headers["etag"]

    added = fresh("CT_small.dcm", study=first.StudyInstanceUID)
    added.SeriesInstanceUID = first.SeriesInstanceUID
    store(dicomweb_server, added)
    answer = httpx.get(url, headers={"If-None-Match": before})
    assert answer.status_code == 200
    assert len(answer.json()) == 2
    after_store = answer.headers["etag"]
    assert after_store != before

    deleted = httpx.delete(instance_url(dicomweb_server.root, added))
    assert deleted.status_code == 204
    answer = httpx.get(url, headers={"If-None-Match": after_store})
    assert answer.status_code == 200
    assert len(answer.json()) == 1
    assert answer.headers["etag"] != after_store


def test_metadata_etag_depends_on_the_public_root(
    dicomweb_server: Server, ct: Dataset
) -> None:
    """BulkDataURIs are built from the root, so another root is another answer."""
    url = instance_url(dicomweb_server.root, ct) + "/metadata"
    direct = httpx.get(url).headers["etag"]
    proxied = httpx.get(url, headers={"X-Forwarded-Host": "pacs.example.org"})
    assert proxied.status_code == 200
    assert proxied.headers["etag"] != direct


def test_cross_origin_304_carries_cors_headers(
    dicomweb_server: Server, ct: Dataset
) -> None:
    url = instance_url(dicomweb_server.root, ct) + "/metadata"
    etag = httpx.get(url, headers={"Origin": VIEWER}).headers["etag"]

    answer = httpx.get(url, headers={"Origin": VIEWER, "If-None-Match": etag})
    assert answer.status_code == 304
    assert answer.headers["access-control-allow-origin"] == VIEWER
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "etag" in [name.strip() for name in exposed.split(",")]
    assert "origin" in answer.headers["vary"].lower()


# Range on bulk data --------------------------------------------------------------


def test_bulkdata_range_forms_on_pixel_data(
    dicomweb_server: Server, ct: Dataset
) -> None:
    url = instance_url(dicomweb_server.root, ct) + "/bulkdata/7FE00010"
    pixels = bytes(ct.PixelData)
    size = len(pixels)

    whole = httpx.get(url, headers={"Accept": OCTET})
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(size)
    assert whole.content == pixels

    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-10": (size - 10, size - 1),
        "bytes=1000-2047": (1000, 2047),
        f"bytes=10-{size * 4}": (10, size - 1),
        f"bytes=-{size * 4}": (0, size - 1),
    }
    for header, (first, last) in cases.items():
        answer = httpx.get(url, headers={"Accept": OCTET, "Range": header})
        assert answer.status_code == 206, header
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert answer.headers["content-length"] == str(last - first + 1)
        assert answer.headers["content-type"].startswith(OCTET)
        assert answer.content == pixels[first : last + 1], header


def test_bulkdata_range_unsatisfiable_and_ignored(
    dicomweb_server: Server, ct: Dataset
) -> None:
    url = instance_url(dicomweb_server.root, ct) + "/bulkdata/7FE00010"
    pixels = bytes(ct.PixelData)
    size = len(pixels)

    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
        answer = httpx.get(url, headers={"Accept": OCTET, "Range": header})
        assert answer.status_code == 416, header
        assert answer.headers["content-range"] == f"bytes */{size}"

    # Several ranges, another unit, or a malformed header: the whole, 200.
    for header in ("bytes=0-9,20-29", "items=0-1", "bytes=9-0", "bytes=a-b"):
        answer = httpx.get(url, headers={"Accept": OCTET, "Range": header})
        assert answer.status_code == 200, header
        assert answer.content == pixels

    # If-Range: a stale tag gets the whole, the current one the range.
    etag = httpx.get(url, headers={"Accept": OCTET}).headers["etag"]
    stale = httpx.get(
        url, headers={"Accept": OCTET, "Range": "bytes=0-9", "If-Range": '"x"'}
    )
    assert stale.status_code == 200
    assert stale.content == pixels
    current = httpx.get(
        url, headers={"Accept": OCTET, "Range": "bytes=0-9", "If-Range": etag}
    )
    assert current.status_code == 206
    assert current.content == pixels[:10]

    # A multipart answer is unchanged: no range, no Accept-Ranges.
    multipart = httpx.get(url, headers={"Range": "bytes=0-9"})
    assert multipart.status_code == 200
    assert multipart.headers["content-type"].startswith("multipart/related")
    assert pixels in multipart.content
    assert "accept-ranges" not in multipart.headers


def test_bulkdata_range_on_another_value(dicomweb_server: Server) -> None:
    ds = fresh("CT_small.dcm")
    value = bytes(range(256)) * 16
    ds.add_new(0x00091010, "LO", "DICOMHUB TEST")
    ds.add_new(0x00091011, "OB", value)
    store(dicomweb_server, ds)
    url = instance_url(dicomweb_server.root, ds) + "/bulkdata/00091011"

    answer = httpx.get(url, headers={"Accept": OCTET, "Range": "bytes=256-511"})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes 256-511/{len(value)}"
    assert answer.content == value[256:512]

    etag = answer.headers["etag"]
    again = httpx.get(url, headers={"Accept": OCTET, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
