"""DELETE of studies, series and instances: index rows and files both go."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import Server
from .dicomdata import fresh, stow


def _blobs(server: Server) -> set[str]:
    root = server.data_dir / "blobs"
    return {
        str(path.relative_to(root))
        for path in root.rglob("*.dcm")
        if ".incoming" not in path.parts
    }


def _instances(server: Server, study: str) -> list[str]:
    response = httpx.get(f"{server.root}/studies/{study}/instances")
    return [item["00080018"]["Value"][0] for item in response.json()]


def test_delete_instance_then_series_then_study(dicomweb_server: Server) -> None:
    server = dicomweb_server
    ct = fresh("CT_small.dcm")
    ct2 = fresh("CT_small.dcm", study=ct.StudyInstanceUID, series=ct.SeriesInstanceUID)
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID)
    assert stow(server.root, [ct, ct2, mr]).status_code == 200
    study_dir = Path(ct.StudyInstanceUID)
    assert len([b for b in _blobs(server) if b.startswith(str(study_dir))]) == 3

    base = f"{server.root}/studies/{ct.StudyInstanceUID}"
    url = f"{base}/series/{ct.SeriesInstanceUID}/instances/{ct2.SOPInstanceUID}"
    assert httpx.delete(url).status_code == 204
    assert sorted(_instances(server, ct.StudyInstanceUID)) == sorted(
        [ct.SOPInstanceUID, mr.SOPInstanceUID]
    )
    assert httpx.get(url, headers={"Accept": "*/*"}).status_code == 404

    assert httpx.delete(f"{base}/series/{mr.SeriesInstanceUID}").status_code == 204
    assert _instances(server, ct.StudyInstanceUID) == [ct.SOPInstanceUID]

    assert httpx.delete(base).status_code == 204
    assert _instances(server, ct.StudyInstanceUID) == []
    assert not [b for b in _blobs(server) if b.startswith(str(study_dir))]
    assert not (server.data_dir / "blobs" / ct.StudyInstanceUID).exists()
    found = httpx.get(
        f"{server.root}/studies", params={"StudyInstanceUID": ct.StudyInstanceUID}
    )
    assert found.json() == []


def test_delete_of_nothing_is_404_with_a_reason(dicomweb_server: Server) -> None:
    response = httpx.delete(f"{dicomweb_server.root}/studies/1.2.826.0.1.3680043.9.9")

    assert response.status_code == 404
    assert "nothing" in response.text


def test_delete_refuses_a_malformed_uid(dicomweb_server: Server) -> None:
    response = httpx.delete(f"{dicomweb_server.root}/studies/1.2.abc")

    assert response.status_code == 400
    assert "StudyInstanceUID" in response.text


def test_stored_again_after_delete(dicomweb_server: Server) -> None:
    ct = fresh("CT_small.dcm")
    assert stow(dicomweb_server.root, [ct]).status_code == 200
    assert (
        httpx.delete(
            f"{dicomweb_server.root}/studies/{ct.StudyInstanceUID}"
        ).status_code
        == 204
    )

    assert stow(dicomweb_server.root, [ct]).status_code == 200


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/studies", {"GET", "HEAD", "POST", "PUT"}),
        ("/studies/1.2.3", {"DELETE", "GET", "HEAD", "POST", "PUT"}),
        ("/studies/1.2.3/series/4.5", {"DELETE", "GET", "HEAD"}),
    ],
)
def test_405_lists_every_method_of_the_path(
    dicomweb_server: Server, path: str, allowed: set[str]
) -> None:
    """RFC 9110 §15.5.6: a 405 carries Allow with the resource's methods,
    although STOW, QIDO, WADO and DELETE each serve part of them."""
    response = httpx.request("PATCH", dicomweb_server.root + path)

    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
