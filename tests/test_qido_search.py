"""QIDO-RS beyond the cases: every resource under /v2 and /v1, matching across
levels, ModalitiesInStudy, literal wildcard metacharacters, TM ranges, content
negotiation and the 400s, against a real server fed through STOW-RS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from .conftest import Server
from .dicomdata import fresh, stow
from .test_qido_cases import assert_json_ok, search, value


@dataclass
class Archive:
    """Two studies: one CT series of two instances, and a study with a CT
    and an MR series."""

    ct: list[Dataset]
    mixed: list[Dataset]


@pytest.fixture(scope="module")
def archive(dicomweb_server: Server) -> Archive:
    first = fresh("CT_small.dcm", PatientID="AB_CD", StudyTime="071500")
    second = fresh(
        "CT_small.dcm",
        study=first.StudyInstanceUID,
        series=first.SeriesInstanceUID,
        PatientID="AB_CD",
        StudyTime="071500",
        InstanceNumber=2,
    )
    ct = fresh("CT_small.dcm", PatientID="A[B]C%", StudyTime="101010.5")
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID, PatientID="A[B]C%")
    mr.StudyTime = ct.StudyTime
    response = stow(dicomweb_server.root, [first, second, ct, mr])
    assert response.status_code == 200, response.text
    return Archive(ct=[first, second], mixed=[ct, mr])


def search_url(url: str) -> httpx.Response:
    return httpx.get(url, headers={"Accept": "application/dicom+json"}, timeout=30)


def uids(results: list[dict[str, Any]], tag: str) -> list[str]:
    return [value(item, tag) for item in results]


@pytest.mark.parametrize("prefix", ["/v2", "/v1"])
def test_every_search_resource_answers(
    dicomweb_server: Server, archive: Archive, prefix: str
) -> None:
    ct, mr = archive.mixed
    study = ct.StudyInstanceUID
    base = dicomweb_server.url + prefix

    def get(path: str, query: str = "") -> list[dict[str, Any]]:
        url = base + path + (f"?{query}" if query else "")
        return assert_json_ok(search_url(url))

    results = get("/studies", f"StudyInstanceUID={study}")
    assert uids(results, "0020000D") == [study]
    assert value(results[0], "00081190") == f"{base}/studies/{study}"

    results = get(f"/studies/{study}/series")
    assert sorted(uids(results, "0020000E")) == sorted(
        [ct.SeriesInstanceUID, mr.SeriesInstanceUID]
    )
    assert {value(r, "00080060") for r in results} == {"CT", "MR"}

    results = get("/series", f"StudyInstanceUID={study}&Modality=MR")
    assert uids(results, "0020000E") == [mr.SeriesInstanceUID]
    assert value(results[0], "00081190") == (
        f"{base}/studies/{study}/series/{mr.SeriesInstanceUID}"
    )

    results = get(f"/studies/{study}/instances")
    assert sorted(uids(results, "00080018")) == sorted(
        [ct.SOPInstanceUID, mr.SOPInstanceUID]
    )

    results = get(f"/studies/{study}/series/{mr.SeriesInstanceUID}/instances")
    assert uids(results, "00080018") == [mr.SOPInstanceUID]
    assert value(results[0], "00081190") == (
        f"{base}/studies/{study}/series/{mr.SeriesInstanceUID}"
        f"/instances/{mr.SOPInstanceUID}"
    )

    results = get("/instances", f"SOPInstanceUID={ct.SOPInstanceUID}")
    assert uids(results, "00080018") == [ct.SOPInstanceUID]


def test_series_and_instances_match_on_higher_levels(
    dicomweb_server: Server, archive: Archive
) -> None:
    """PS3.18 §10.6.1: a series search may match on study attributes, an
    instance search on study and series ones."""
    ct, mr = archive.mixed
    results = assert_json_ok(search(dicomweb_server, "/series", "PatientID=A[B]C%"))
    assert sorted(uids(results, "0020000E")) == sorted(
        [ct.SeriesInstanceUID, mr.SeriesInstanceUID]
    )

    results = assert_json_ok(
        search(dicomweb_server, "/instances", "PatientID=A[B]C%&Modality=MR")
    )
    assert uids(results, "00080018") == [mr.SOPInstanceUID]

    results = assert_json_ok(
        search(
            dicomweb_server,
            f"/studies/{ct.StudyInstanceUID}/instances",
            "00080060=CT&InstanceNumber=1",
        )
    )
    assert uids(results, "00080018") == [ct.SOPInstanceUID]


def test_spanning_resources_return_higher_level_defaults(
    dicomweb_server: Server, archive: Archive
) -> None:
    """PS3.18 §10.6.3.3.2-3: All Series carries the study attributes, a
    study's series do not unless asked for."""
    ct = archive.mixed[0]
    all_series = assert_json_ok(
        search(dicomweb_server, "/series", f"SeriesInstanceUID={ct.SeriesInstanceUID}")
    )
    assert value(all_series[0], "00100020") == ct.PatientID
    assert value(all_series[0], "00201208") == 2

    study_series = assert_json_ok(
        search(dicomweb_server, f"/studies/{ct.StudyInstanceUID}/series")
    )
    assert all("00100020" not in item for item in study_series)

    asked = assert_json_ok(
        search(
            dicomweb_server,
            f"/studies/{ct.StudyInstanceUID}/series",
            "includefield=PatientID&includefield=00081030",
        )
    )
    assert {value(item, "00100020") for item in asked} == {ct.PatientID}
    assert all(item["00081030"]["vr"] == "LO" for item in asked)


def test_modalities_in_study(dicomweb_server: Server, archive: Archive) -> None:
    """ModalitiesInStudy matches a study with any series of that modality and
    returns every modality of the study."""
    ct_study = archive.ct[0].StudyInstanceUID
    mixed = archive.mixed[0].StudyInstanceUID
    scope = f"StudyInstanceUID={ct_study},{mixed}"

    for query, expected in [
        ("ModalitiesInStudy=MR", {mixed}),
        ("ModalitiesInStudy=CT", {ct_study, mixed}),
        ("ModalitiesInStudy=XA%5CMR", {mixed}),
        ("ModalitiesInStudy=XA,MR", {mixed}),
        ("ModalitiesInStudy=M*", {mixed}),
        ("ModalitiesInStudy=mr", set()),
    ]:
        results = assert_json_ok(
            search(dicomweb_server, "/studies", f"{scope}&{query}")
        )
        assert set(uids(results, "0020000D")) == expected, query

    results = assert_json_ok(
        search(dicomweb_server, "/studies", f"StudyInstanceUID={mixed}")
    )
    assert results[0]["00080061"]["Value"] == ["CT", "MR"]
    assert value(results[0], "00201206") == 2


def test_wildcard_metacharacters_are_literal(
    dicomweb_server: Server, archive: Archive
) -> None:
    """Only * and ? are wildcards (PS3.4 C.2.2.2.4); SQL's %, _ and [ are
    plain characters, and text other than names matches case-sensitively."""
    ct_study = archive.ct[0].StudyInstanceUID
    mixed = archive.mixed[0].StudyInstanceUID
    for query, expected in [
        ("PatientID=AB_CD", {ct_study}),
        ("PatientID=AB_*", {ct_study}),
        ("PatientID=A%25*", set()),
        ("PatientID=A[B]C%25", {mixed}),
        ("PatientID=A[B]*", {mixed}),
        ("PatientID=A?B?C*", {mixed}),
        ("PatientID=ab_cd", set()),
        ("PatientID=*_*", {ct_study}),
    ]:
        results = assert_json_ok(search(dicomweb_server, "/studies", query))
        found = set(uids(results, "0020000D")) & {ct_study, mixed}
        assert found == expected, query


def test_time_ranges(dicomweb_server: Server, archive: Archive) -> None:
    """TM range matching (PS3.4 C.2.2.2.5): partial times stand for their
    whole hour or minute."""
    ct_study = archive.ct[0].StudyInstanceUID  # 071500
    mixed = archive.mixed[0].StudyInstanceUID  # 101010.5
    for query, expected in [
        ("StudyTime=07-10", {ct_study, mixed}),
        ("StudyTime=0715-1010", {ct_study, mixed}),
        ("StudyTime=071501-", {mixed}),
        ("StudyTime=-1010", {ct_study, mixed}),
        ("StudyTime=-101009", {ct_study}),
        ("StudyTime=-101010", {ct_study, mixed}),
        ("StudyTime=071500", {ct_study}),
    ]:
        results = assert_json_ok(search(dicomweb_server, "/studies", query))
        found = set(uids(results, "0020000D")) & {ct_study, mixed}
        assert found == expected, query

    for query in ("StudyTime=2500", "StudyTime=10-07", "StudyTime=7:15"):
        response = search(dicomweb_server, "/studies", query)
        assert response.status_code == 400, query


def test_repeated_match_key_is_a_list(
    dicomweb_server: Server, archive: Archive
) -> None:
    """dicomweb-client sends a list as a repeated parameter."""
    ct_study = archive.ct[0].StudyInstanceUID
    mixed = archive.mixed[0].StudyInstanceUID
    results = assert_json_ok(
        search(
            dicomweb_server,
            "/studies",
            f"StudyInstanceUID={ct_study}&StudyInstanceUID={mixed}",
        )
    )
    assert set(uids(results, "0020000D")) == {ct_study, mixed}


def test_series_and_instance_paging(dicomweb_server: Server, archive: Archive) -> None:
    study = archive.ct[0].StudyInstanceUID
    pages = [
        assert_json_ok(
            search(
                dicomweb_server, f"/studies/{study}/instances", f"limit=1&offset={n}"
            )
        )
        for n in range(3)
    ]
    assert [len(page) for page in pages] == [1, 1, 0]
    assert {value(page[0], "00080018") for page in pages[:2]} == {
        ds.SOPInstanceUID for ds in archive.ct
    }

    response = search(dicomweb_server, f"/studies/{study}/instances", "limit=1")
    assert response.headers["warning"].startswith("299 ")
    response = search(dicomweb_server, f"/studies/{study}/instances", "limit=2")
    assert "warning" not in response.headers


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/studies", "PatientWeight=70.5", "PatientWeight"),
        ("/studies", "00101030=70.5", "00101030"),
        ("/studies", "Modality=CT", "Modality"),
        ("/studies", "SOPInstanceUID=1.2.3", "SOPInstanceUID"),
        ("/series", "InstanceNumber=1", "InstanceNumber"),
        ("/studies", "NotAKeyword=1", "NotAKeyword"),
        ("/studies", "RequestAttributesSequence.RequestedProcedureID=1", "inside"),
        ("/studies", "StudyInstanceUID=1.2.*", "StudyInstanceUID"),
        ("/studies", "StudyInstanceUID=01.2", "StudyInstanceUID"),
        ("/instances", "InstanceNumber=one", "InstanceNumber"),
        ("/studies", "PatientBirthDate=19700231", "PatientBirthDate"),
        ("/studies", "limit=0", "limit"),
        ("/studies", "limit=1.5", "limit"),
        ("/studies", "offset=-1", "offset"),
        ("/studies", "includefield=NoSuchKeyword", "NoSuchKeyword"),
        ("/studies/1.2.x/series", "", "StudyInstanceUID"),
        ("/studies/1.2/series/x/instances", "", "SeriesInstanceUID"),
    ],
)
def test_bad_searches_are_400_naming_the_parameter(
    dicomweb_server: Server, path: str, query: str, named: str
) -> None:
    response = search(dicomweb_server, path, query)
    assert response.status_code == 400
    assert named in response.text
    for secret in ("70.5", "19700231", "one"):
        assert secret not in response.text


def test_universal_and_empty_values(dicomweb_server: Server, archive: Archive) -> None:
    """PS3.4 C.2.2.2.3: an empty value or * matches everything, and the
    attribute is returned."""
    study = archive.ct[0].StudyInstanceUID
    for query, tag in [
        ("StudyDescription=", "00081030"),
        ("StudyDescription=*", "00081030"),
        ("00321060=", "00321060"),
        ("00200010=**", "00200010"),
    ]:
        results = assert_json_ok(
            search(dicomweb_server, "/studies", f"StudyInstanceUID={study}&{query}")
        )
        assert uids(results, "0020000D") == [study], query
        assert tag in results[0], query


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/dicom+json", 200),
        ("application/json", 200),
        ("*/*", 200),
        ("text/html,application/xhtml+xml,*/*;q=0.8", 200),
        ('multipart/related; type="application/dicom+xml"', 406),
        ("application/dicom+json;q=0, application/xml", 406),
    ],
)
def test_accept(dicomweb_server: Server, accept: str, status: int) -> None:
    """PS3.18 §10.6.3.2: the results come as application/dicom+json only."""
    response = search(dicomweb_server, "/studies", "limit=1", Accept=accept)
    assert response.status_code == status
    if status == 406:
        assert "application/dicom+json" in response.text
