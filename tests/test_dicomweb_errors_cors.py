"""The DICOMweb cases about CORS on errors and on the frame preflight.

Cases dicomweb-01 (items 1, 2 and 4; item 3 needs authentication, which
dicomhub does not offer yet) and dicomweb-02, on the DICOMweb cases' [cors]
table (cases/dicomweb/conventions.md).
"""

from __future__ import annotations

import httpx
import pytest
from pydicom.dataset import Dataset

from .conftest import Server
from .dicomdata import fresh, stow

VIEWER = "http://viewer.example"


@pytest.fixture(scope="module")
def ct(dicomweb_server: Server) -> Dataset:
    ds = fresh("CT_small.dcm")
    assert stow(dicomweb_server.root, [ds]).status_code == 200
    return ds


def _frame_url(server: Server, ds: Dataset) -> str:
    return (
        f"{server.root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1"
    )


def _items(value: str) -> set[str]:
    """Header names: compared case-insensitively."""
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def _methods(value: str) -> set[str]:
    """Method tokens: compared case-sensitively (Fetch, CORS-preflight fetch)."""
    return {item.strip() for item in value.split(",") if item.strip()}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (
            "/studies/1.2.3/series/4.5.6/metadata",
            {"Accept": "application/dicom+json"},
            404,
        ),
        ("/studies?StudyDate=2024-01-01", {}, 400),
    ],
)
def test_dicomweb_01_cors_on_error_responses(
    dicomweb_server: Server, path: str, headers: dict[str, str], status: int
) -> None:
    """dicomweb-01-cors-on-error-responses.md, items 1 and 2."""
    response = httpx.get(
        dicomweb_server.root + path, headers={"Origin": VIEWER, **headers}
    )

    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == VIEWER


def test_dicomweb_01_cors_on_406(dicomweb_server: Server, ct: Dataset) -> None:
    """dicomweb-01-cors-on-error-responses.md, item 4."""
    response = httpx.get(
        _frame_url(dicomweb_server, ct),
        headers={"Origin": VIEWER, "Accept": 'multipart/related; type="image/gif"'},
    )

    assert response.status_code == 406
    assert response.headers["access-control-allow-origin"] == VIEWER


def test_dicomweb_02_frames_preflight_accept(
    dicomweb_server: Server, ct: Dataset
) -> None:
    """dicomweb-02-frames-preflight-accept.md, item 1."""
    response = httpx.options(
        _frame_url(dicomweb_server, ct),
        headers={
            "Origin": VIEWER,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept,authorization",
        },
    )

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == VIEWER
    assert "GET" in _methods(response.headers["access-control-allow-methods"])
    assert {"accept", "authorization"} <= _items(
        response.headers["access-control-allow-headers"]
    )
    assert response.headers["access-control-max-age"] == "600"


def test_dicomweb_02_stow_preflight(dicomweb_server: Server) -> None:
    """dicomweb-02-frames-preflight-accept.md, item 2."""
    response = httpx.options(
        f"{dicomweb_server.root}/studies",
        headers={
            "Origin": VIEWER,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )

    assert 200 <= response.status_code < 300
    assert "POST" in _methods(response.headers["access-control-allow-methods"])
    assert "content-type" in _items(response.headers["access-control-allow-headers"])
