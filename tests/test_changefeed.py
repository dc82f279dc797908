"""The change feed in the Azure DICOM service's v2 shape (docs/dicomweb.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from .conftest import Server
from .dicomdata import fresh, stow


def _feed(root: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{root}/changefeed", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def _instance_url(root: str, ds: Any) -> str:
    return (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def test_change_feed_lists_creates_then_the_delete(server_factory: Any) -> None:
    server: Server = server_factory()
    assert httpx.get(f"{server.root}/changefeed/latest").json() is None
    assert _feed(server.root) == []

    ct = fresh("CT_small.dcm")
    ct2 = fresh("CT_small.dcm", study=ct.StudyInstanceUID, series=ct.SeriesInstanceUID)
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID)
    assert stow(server.root, [ct, ct2, mr]).status_code == 200
    assert httpx.delete(_instance_url(server.root, ct2)).status_code == 204

    feed = _feed(server.root)
    assert [e["Sequence"] for e in feed] == sorted(e["Sequence"] for e in feed)
    assert len({e["Sequence"] for e in feed}) == 4
    assert [(e["SopInstanceUid"], e["Action"], e["State"]) for e in feed] == [
        (ct.SOPInstanceUID, "create", "current"),
        (ct2.SOPInstanceUID, "create", "deleted"),
        (mr.SOPInstanceUID, "create", "current"),
        (ct2.SOPInstanceUID, "delete", "deleted"),
    ]
    assert feed[2]["SeriesInstanceUid"] == mr.SeriesInstanceUID
    assert {e["StudyInstanceUid"] for e in feed} == {ct.StudyInstanceUID}
    for entry in feed:
        assert datetime.fromisoformat(entry["Timestamp"]).utcoffset() is not None

    # Metadata is the stored instance's DICOM JSON; a deleted one has none.
    assert feed[0]["Metadata"]["00080018"]["Value"] == [ct.SOPInstanceUID]
    assert feed[0]["Metadata"]["0020000D"]["Value"] == [ct.StudyInstanceUID]
    assert feed[1]["Metadata"] is None
    assert feed[3]["Metadata"] is None
    bare = _feed(server.root, includeMetadata="false")
    assert all("Metadata" not in entry for entry in bare)
    assert [e["Sequence"] for e in bare] == [e["Sequence"] for e in feed]

    latest = httpx.get(f"{server.root}/changefeed/latest")
    assert latest.status_code == 200
    assert latest.json() == feed[-1]

    # The /v1 prefix answers the same.
    assert _feed(server.url + "/v1") == feed
    assert httpx.get(f"{server.url}/v1/changefeed/latest").json() == feed[-1]


def test_change_feed_pages_and_time_window(server_factory: Any) -> None:
    server: Server = server_factory()
    datasets = [fresh("CT_small.dcm") for _ in range(3)]
    assert stow(server.root, datasets).status_code == 200
    assert httpx.delete(_instance_url(server.root, datasets[0])).status_code == 204
    whole = _feed(server.root, includeMetadata="false")
    assert len(whole) == 4

    assert _feed(server.root, limit=2, includeMetadata="false") == whole[:2]
    assert _feed(server.root, offset=2, limit=2, includemetadata="false") == whole[2:]
    assert _feed(server.root, offset=3, includeMetadata="false") == whole[3:]
    assert _feed(server.root, offset=4) == []

    assert _feed(server.root, startTime="2999-01-01T00:00:00Z") == []
    assert _feed(server.root, endTime="2000-01-01") == []
    window = {"startTime": "2000-01-01T00:00:00+00:00", "endTime": "2999-01-01"}
    assert _feed(server.root, includeMetadata="false", **window) == whole


def test_change_feed_series_and_study_deletes_and_restore(
    server_factory: Any,
) -> None:
    server: Server = server_factory()
    ct = fresh("CT_small.dcm")
    ct2 = fresh("CT_small.dcm", study=ct.StudyInstanceUID, series=ct.SeriesInstanceUID)
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID)
    assert stow(server.root, [ct, ct2, mr]).status_code == 200
    study_url = f"{server.root}/studies/{ct.StudyInstanceUID}"
    series_url = f"{study_url}/series/{ct.SeriesInstanceUID}"
    assert httpx.delete(series_url).status_code == 204
    assert httpx.delete(study_url).status_code == 204

    feed = _feed(server.root, includeMetadata="false")
    assert [(e["Action"], e["State"]) for e in feed] == [("create", "deleted")] * 3 + [
        ("delete", "deleted")
    ] * 3
    assert {e["SopInstanceUid"] for e in feed[3:5]} == {
        ct.SOPInstanceUID,
        ct2.SOPInstanceUID,
    }
    assert feed[5]["SopInstanceUid"] == mr.SOPInstanceUID

    # Stored again under the same UIDs: the old entries are replaced.
    assert stow(server.root, [mr]).status_code == 200
    feed = _feed(server.root)
    mr_entries = [e for e in feed if e["SopInstanceUid"] == mr.SOPInstanceUID]
    assert [(e["Action"], e["State"]) for e in mr_entries] == [
        ("create", "replaced"),
        ("delete", "replaced"),
        ("create", "current"),
    ]
    assert mr_entries[-1]["Metadata"]["00080018"]["Value"] == [mr.SOPInstanceUID]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("startTime=yesterday", "startTime"),
        ("endTime=2024-13-01", "endTime"),
        ("startTime=2024-02-01&endTime=2024-01-01", "earlier"),
        ("includeMetadata=maybe", "includeMetadata"),
        ("since=5", "since"),
    ],
)
def test_change_feed_bad_parameters_are_400(
    dicomweb_server: Server, query: str, reason: str
) -> None:
    response = httpx.get(f"{dicomweb_server.root}/changefeed?{query}")
    assert response.status_code == 400
    assert reason in response.text

    latest = httpx.get(f"{dicomweb_server.url}/v1/changefeed/latest?limit=5")
    assert latest.status_code == 400
    assert "includeMetadata" in latest.text
