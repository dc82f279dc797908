"""The Python dicomweb-client, used as a user would, against a real server."""

from __future__ import annotations

import pytest
from dicomweb_client.api import DICOMwebClient

from .conftest import Server
from .dicomdata import fresh


@pytest.fixture
def client(dicomweb_server: Server) -> DICOMwebClient:
    return DICOMwebClient(url=dicomweb_server.root)


def test_store_search_retrieve_delete(client: DICOMwebClient) -> None:
    ct = fresh("CT_small.dcm")
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID)

    result = client.store_instances([ct, mr])
    assert len(result.ReferencedSOPSequence) == 2

    studies = client.search_for_studies(
        search_filters={"StudyInstanceUID": ct.StudyInstanceUID}
    )
    assert len(studies) == 1
    series = client.search_for_series(ct.StudyInstanceUID)
    assert {s["0020000E"]["Value"][0] for s in series} == {
        ct.SeriesInstanceUID,
        mr.SeriesInstanceUID,
    }
    instances = client.search_for_instances(
        ct.StudyInstanceUID, search_filters={"Modality": "CT"}
    )
    assert [i["00080018"]["Value"][0] for i in instances] == [ct.SOPInstanceUID]

    retrieved = client.retrieve_instance(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
    )
    assert retrieved.SOPInstanceUID == ct.SOPInstanceUID
    assert retrieved.PixelData == ct.PixelData

    metadata = client.retrieve_series_metadata(
        ct.StudyInstanceUID, ct.SeriesInstanceUID
    )
    assert metadata[0]["00080018"]["Value"] == [ct.SOPInstanceUID]

    (frame,) = client.retrieve_instance_frames(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, frame_numbers=[1]
    )
    assert frame == ct.PixelData

    study = client.retrieve_study(ct.StudyInstanceUID)
    assert {ds.SOPInstanceUID for ds in study} == {ct.SOPInstanceUID, mr.SOPInstanceUID}

    client.delete_study(ct.StudyInstanceUID)
    assert (
        client.search_for_studies(
            search_filters={"StudyInstanceUID": ct.StudyInstanceUID}
        )
        == []
    )


def test_paging_until_an_empty_page(client: DICOMwebClient) -> None:
    """dicomweb-client pages on its own until a page comes back empty."""
    stored = [fresh("CT_small.dcm") for _ in range(5)]
    client.store_instances(stored)

    found = client.search_for_studies(get_remaining=True, limit=2)
    uids = [item["0020000D"]["Value"][0] for item in found]
    assert len(uids) == len(set(uids))
    assert {ds.StudyInstanceUID for ds in stored} <= set(uids)
