"""After a STOW-RS PUT replaces an instance, QIDO-RS matches and returns the
study and series attributes of the replacement (the Azure DICOM service's
"latest wins"), not those of the instance first stored."""

from __future__ import annotations

from typing import Any

import httpx
from pydicom.dataset import Dataset

from .conftest import Server
from .dicomdata import fresh, multipart_body, stow, to_bytes
from .test_qido_cases import assert_json_ok, search, value


def put(root: str, datasets: list[Dataset]) -> httpx.Response:
    body, content_type = multipart_body([to_bytes(ds) for ds in datasets])
    return httpx.put(
        f"{root}/studies",
        content=body,
        headers={"Content-Type": content_type},
        timeout=60,
    )


def found(server: Server, path: str, query: str) -> list[dict[str, Any]]:
    return assert_json_ok(search(server, path, query))


def name(item: dict[str, Any]) -> str:
    return value(item, "00100010")["Alphabetic"]


def test_put_corrections_reach_study_and_series_results(
    dicomweb_server: Server,
) -> None:
    before = {
        "PatientName": "Wrongly^Named",
        "StudyDescription": "Before",
        "SeriesDescription": "Series before",
        "AccessionNumber": "PUT-OLD",
    }
    first = fresh("CT_small.dcm", **before)
    second = fresh(
        "CT_small.dcm",
        study=first.StudyInstanceUID,
        series=first.SeriesInstanceUID,
        InstanceNumber=2,
        **before,
    )
    second.PatientID = first.PatientID
    response = stow(dicomweb_server.root, [first, second])
    assert response.status_code == 200, response.text
    study, series = first.StudyInstanceUID, first.SeriesInstanceUID

    # The first instance again, corrected.
    corrected = fresh(
        "CT_small.dcm",
        study=study,
        series=series,
        PatientName="Rightly^Named",
        StudyDescription="After",
        SeriesDescription="Series after",
        AccessionNumber="PUT-NEW",
    )
    corrected.SOPInstanceUID = first.SOPInstanceUID
    corrected.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID
    corrected.PatientID = first.PatientID
    response = put(dicomweb_server.root, [corrected])
    assert response.status_code == 200, response.text

    [item] = found(dicomweb_server, "/studies", f"StudyInstanceUID={study}")
    assert name(item) == "Rightly^Named"
    assert value(item, "00081030") == "After"
    assert value(item, "00080050") == "PUT-NEW"
    assert value(item, "00201206") == 1
    assert value(item, "00201208") == 2

    # Matching uses the new values, in every form, and no longer the old ones.
    for query in (
        "PatientName=rightly^named",
        "PatientName=right*",
        "PatientName=right&fuzzymatching=true",
        "AccessionNumber=PUT-NEW",
    ):
        results = found(dicomweb_server, "/studies", query)
        assert study in [value(r, "0020000D") for r in results], query
    for query in (
        "PatientName=wrongly^named",
        "PatientName=wrong&fuzzymatching=true",
        "AccessionNumber=PUT-OLD",
    ):
        results = found(dicomweb_server, "/studies", query)
        assert study not in [value(r, "0020000D") for r in results], query

    [item] = found(dicomweb_server, f"/studies/{study}/series", "")
    assert value(item, "0008103E") == "Series after"
    assert value(item, "00201209") == 2

    # Results below the study carry the new study attributes too.
    results = found(
        dicomweb_server, "/instances", f"StudyInstanceUID={study}&PatientName=Right*"
    )
    assert sorted(value(r, "00080018") for r in results) == sorted(
        [first.SOPInstanceUID, second.SOPInstanceUID]
    )
    assert {name(r) for r in results} == {"Rightly^Named"}
    query = f"SeriesDescription=Series%20after&PatientID={first.PatientID}"
    [item] = found(dicomweb_server, "/series", query)
    assert value(item, "0020000E") == series
