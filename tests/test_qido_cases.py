"""QIDO-RS cases dicomweb-04 to -10 and the search parts of -11 to -14
(cases/dicomweb/), against a real server fed through STOW-RS.

The seven "Patients" studies A-G of cases/dicomweb/conventions.md are stored
once per module; every expected value is read from the datasets uploaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from .conftest import Server
from .dicomdata import fresh, read, sample_path, stow

DICOM_JSON = "application/dicom+json"
TAG = re.compile(r"^[0-9A-F]{8}$")


@dataclass
class Patients:
    """The studies A-G: their StudyInstanceUIDs, and the datasets stored."""

    study: dict[str, str]
    datasets: dict[str, list[Dataset]]

    def letters(self, results: list[dict[str, Any]]) -> set[str]:
        """Which of A-G a list of study results holds (others are ignored)."""
        by_uid = {uid: letter for letter, uid in self.study.items()}
        uids = [value(item, "0020000D") for item in results]
        return {by_uid[uid] for uid in uids if uid in by_uid}

    def item(self, results: list[dict[str, Any]], letter: str) -> dict[str, Any]:
        found = [r for r in results if value(r, "0020000D") == self.study[letter]]
        assert len(found) == 1
        return found[0]


def patient_study(letter: str, name: str, date: str, **attrs: Any) -> Dataset:
    """A Patients study from CT (cases/dicomweb/conventions.md)."""
    ds = fresh("CT_small.dcm")
    if "StudyDescription" in ds:
        del ds.StudyDescription
    ds.Modality = "CT"
    ds.PatientBirthDate = "19700101"
    ds.AccessionNumber = f"ACC{letter}"
    ds.StudyDate = date
    for keyword, attr_value in attrs.items():
        setattr(ds, keyword, attr_value)
    ds.PatientName = name
    ds.ReferringPhysicianName = name
    return ds


def build_patients() -> dict[str, list[Dataset]]:
    studies = {
        "A": [patient_study("A", "Doe^John", "20240101")],
        "B": [patient_study("B", "DOE^JANE", "20240615")],
        "C": [patient_study("C", "Harrison^Ford", "20241231")],
        "D": [
            patient_study(
                "D",
                "George^Harrison",
                "20230301",
                StudyDescription="Study D for includefield",
                PatientSex="M",
            )
        ],
        "E": [patient_study("E", "", "20220510", AccessionNumber="")],
        "F": [
            patient_study(
                "F", "Гусева^Анна", "20250704", SpecificCharacterSet="ISO_IR 192"
            )
        ],
        "G": [patient_study("G", "Nodate^Gina", "")],
    }

    # D's second series: an MR instance of the same patient and study.
    ct = studies["D"][0]
    mr = fresh("MR_small.dcm", study=ct.StudyInstanceUID)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "ReferringPhysicianName",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyDescription",
        "StudyID",
    ):
        setattr(mr, keyword, ct.get(keyword, ""))
    mr.Modality = "MR"
    studies["D"].append(mr)
    return studies


def value(item: dict[str, Any], tag: str) -> Any:
    """The first value of an attribute of a result, None if it has none."""
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


def assert_json_ok(response: httpx.Response) -> list[dict[str, Any]]:
    """'JSON OK' of cases/dicomweb/conventions.md; returns the results."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DICOM_JSON
    body = response.json()
    assert isinstance(body, list)
    for item in body:
        assert_dataset(item)
    return body


def assert_dataset(dataset: dict[str, Any]) -> None:
    for tag, attr in dataset.items():
        assert TAG.match(tag), tag
        assert "vr" in attr, tag
        assert attr.get("Value") not in ([], [None], [""]), tag
        if attr["vr"] == "SQ":
            for item in attr.get("Value", []):
                assert_dataset(item)


def search(
    server: Server, path: str, query: str = "", **headers: str
) -> httpx.Response:
    """GET `path` with `query` sent exactly as written (no re-encoding)."""
    url = f"{server.root}{path}" + (f"?{query}" if query else "")
    return httpx.get(url, headers={"Accept": DICOM_JSON, **headers}, timeout=30)


@pytest.fixture(scope="module")
def patients(dicomweb_server: Server) -> Patients:
    studies = build_patients()
    datasets = [ds for letter in "ABCDEFG" for ds in studies[letter]]
    response = stow(dicomweb_server.root, datasets)
    assert response.status_code == 200, response.text
    return Patients(
        study={letter: dss[0].StudyInstanceUID for letter, dss in studies.items()},
        datasets=studies,
    )


OHIF_INCLUDE = "includefield=00081030%2C00080060%2C00080090%2C00100030"


def test_dicomweb_04_ohif_study_list_query(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-04-ohif-study-list-query.md"""
    response = search(
        dicomweb_server,
        "/studies",
        f"limit=101&offset=0&fuzzymatching=false&{OHIF_INCLUDE}"
        "&StudyDate=19700102-20301231",
    )
    results = assert_json_ok(response)
    assert patients.letters(results) == set("ABCDEF")

    for letter in "ABCDEF":
        item = patients.item(results, letter)
        for tag in (
            "0020000D",
            "00080020",
            "00080030",
            "00080050",
            "00100010",
            "00100020",
            "00100030",
            "00080090",
            "00081030",
            "00081190",
        ):
            assert tag in item, (letter, tag)
        if letter == "D":
            assert value(item, "00081030") == "Study D for includefield"
            assert set(item["00080061"]["Value"]) == {"CT", "MR"}
        else:
            assert item["00081030"] == {"vr": "LO"}
            assert set(item["00080061"]["Value"]) == {"CT"}
        count = value(item, "00201208")
        assert isinstance(count, int) and not isinstance(count, bool)
        assert count == len(patients.datasets[letter])
        assert value(item, "00081190").endswith(f"/v2/studies/{patients.study[letter]}")

    response = search(
        dicomweb_server,
        "/studies",
        f"PatientName=*doe*&00100020=*&limit=101&offset=0&fuzzymatching=false"
        f"&{OHIF_INCLUDE}",
    )
    assert patients.letters(assert_json_ok(response)) == {"A", "B"}


@pytest.mark.parametrize(
    "query",
    [
        "includefield=00081030&includefield=00100040",
        "includefield=00081030,00100040",
        "includefield=00081030%2C00100040",
        "includefield=StudyDescription&includefield=PatientSex",
        "includefield=all",
        "includefield=all&includefield=00100040",
    ],
)
def test_dicomweb_05_includefield_forms(
    dicomweb_server: Server, patients: Patients, query: str
) -> None:
    """cases/dicomweb/dicomweb-05-includefield-forms.md"""
    d = patients.datasets["D"][0]
    response = search(
        dicomweb_server, "/studies", f"StudyInstanceUID={patients.study['D']}&{query}"
    )
    results = assert_json_ok(response)
    assert len(results) == 1
    assert value(results[0], "00081030") == d.StudyDescription
    assert value(results[0], "00100040") == d.PatientSex
    assert value(results[0], "0020000D") == d.StudyInstanceUID


def test_dicomweb_05_includefield_unknown_is_400(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-05-includefield-forms.md, last row."""
    response = search(
        dicomweb_server,
        "/studies",
        f"StudyInstanceUID={patients.study['D']}&includefield=0010004Z",
    )
    assert response.status_code == 400
    assert "0010004Z" in response.text


def test_dicomweb_06_uid_list_matching(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-06-uid-list-matching.md"""
    a, b, d = patients.study["A"], patients.study["B"], patients.study["D"]
    for separator in (",", "%2C", "%5C"):
        response = search(
            dicomweb_server, "/studies", f"StudyInstanceUID={a}{separator}{b}"
        )
        results = assert_json_ok(response)
        assert sorted(value(r, "0020000D") for r in results) == sorted([a, b])

    results = assert_json_ok(
        search(dicomweb_server, "/studies", "StudyInstanceUID=9.9.9")
    )
    assert results == []

    ct, mr = (ds.SeriesInstanceUID for ds in patients.datasets["D"])
    response = search(
        dicomweb_server, f"/studies/{d}/series", f"SeriesInstanceUID={ct},{mr}"
    )
    results = assert_json_ok(response)
    assert sorted(value(r, "0020000E") for r in results) == sorted([ct, mr])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("StudyDate=20240101-20240615", "AB"),
        ("StudyDate=-20240615", "ABDE"),
        ("StudyDate=20240615-", "BCF"),
        ("StudyDate=20240615", "B"),
        ("StudyDate=19700102-20301231", "ABCDEF"),
        ("00080020=20240101-20240615", "AB"),
    ],
)
def test_dicomweb_07_date_ranges(
    dicomweb_server: Server, patients: Patients, query: str, expected: str
) -> None:
    """cases/dicomweb/dicomweb-07-date-ranges.md"""
    results = assert_json_ok(search(dicomweb_server, "/studies", query))
    assert patients.letters(results) == set(expected)


@pytest.mark.parametrize(
    "query", ["StudyDate=20241231-20240101", "StudyDate=2024-01-01", "StudyDate=-"]
)
def test_dicomweb_07_date_ranges_invalid(
    dicomweb_server: Server, patients: Patients, query: str
) -> None:
    """cases/dicomweb/dicomweb-07-date-ranges.md: the 400 rows."""
    response = search(dicomweb_server, "/studies", query)
    assert response.status_code == 400
    assert "StudyDate" in response.text
    assert "2024" not in response.text  # the value is not echoed


def test_dicomweb_07_search_without_date_finds_g(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-07-date-ranges.md: a search without a date."""
    response = search(
        dicomweb_server, "/studies", f"StudyInstanceUID={patients.study['G']}"
    )
    results = assert_json_ok(response)
    assert patients.letters(results) == {"G"}
    assert results[0]["00080020"] == {"vr": "DA"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Doe%5EJohn", "A"),
        ("Doe^John", "A"),
        ("doe^john", "A"),
        ("*doe*", "AB"),
        ("Doe^J*", "AB"),
        ("D?e^John", "A"),
        ("*Harrison*", "CD"),
        ("%D0%93%D1%83%D1%81%D0%B5%D0%B2%D0%B0*", "F"),
        ("%D0%B3%D1%83%D1%81%D0%B5%D0%B2%D0%B0*", "F"),
        ("*", "ABCDEFG"),
        ("%3DDoe", ""),
    ],
)
def test_dicomweb_08_patient_name_wildcards(
    dicomweb_server: Server, patients: Patients, name: str, expected: str
) -> None:
    """cases/dicomweb/dicomweb-08-patient-name-wildcards.md"""
    response = search(
        dicomweb_server, "/studies", f"PatientName={name}&fuzzymatching=false"
    )
    assert patients.letters(assert_json_ok(response)) == set(expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("PatientName=joh&fuzzymatching=true", "A"),
        ("PatientName=do&fuzzymatching=true", "AB"),
        ("PatientName=jo%20do&fuzzymatching=true", "A"),
        ("PatientName=ohn&fuzzymatching=true", ""),
        ("PatientName=harris&fuzzymatching=true", "CD"),
        ("PatientName=HARRISON&fuzzymatching=true", "CD"),
        ("PatientName=joh&fuzzymatching=false", ""),
        ("ReferringPhysicianName=joh&fuzzymatching=true", "A"),
    ],
)
def test_dicomweb_09_fuzzy_matching(
    dicomweb_server: Server, patients: Patients, query: str, expected: str
) -> None:
    """cases/dicomweb/dicomweb-09-fuzzy-matching.md"""
    results = assert_json_ok(search(dicomweb_server, "/studies", query))
    assert patients.letters(results) == set(expected)


def test_dicomweb_09_fuzzy_matching_invalid(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-09-fuzzy-matching.md: fuzzymatching=maybe."""
    response = search(
        dicomweb_server, "/studies", "PatientName=joh&fuzzymatching=maybe"
    )
    assert response.status_code == 400
    assert "fuzzymatching" in response.text


def test_dicomweb_10_limit_offset_paging(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-10-limit-offset-paging.md, requests 1-5."""
    first = assert_json_ok(search(dicomweb_server, "/studies", "limit=1"))
    assert len(first) == 1
    second = assert_json_ok(search(dicomweb_server, "/studies", "limit=1&offset=1"))
    assert len(second) == 1
    assert value(second[0], "0020000D") != value(first[0], "0020000D")

    def page_through() -> list[str]:
        uids: list[str] = []
        while True:
            page = assert_json_ok(
                search(dicomweb_server, "/studies", f"limit=1&offset={len(uids)}")
            )
            if not page:
                return uids
            assert len(page) == 1
            uids.append(value(page[0], "0020000D"))

    once = page_through()
    assert len(once) == len(set(once))
    assert set(patients.study.values()) <= set(once)
    assert page_through() == once

    past = search(dicomweb_server, "/studies", f"offset={len(once) + 5}")
    assert assert_json_ok(past) == []

    for query in ("limit=-1", "offset=x"):
        response = search(dicomweb_server, "/studies", query)
        assert response.status_code == 400, query


def test_dicomweb_10_limit_capped_with_warning(
    server_factory: Any,
) -> None:
    """cases/dicomweb/dicomweb-10-limit-offset-paging.md, request 6: more
    studies than the cap of 200."""
    server = server_factory()
    studies = [fresh("CT_small.dcm") for _ in range(201)]
    for ds in studies:
        del ds.PixelData  # small bodies; QIDO reads the index only
    response = stow(server.root, studies)
    assert response.status_code == 200, response.text[:500]

    response = search(server, "/studies", "limit=100000")
    results = assert_json_ok(response)
    assert len(results) == 200
    assert re.fullmatch(r'299 \S+: ".+"', response.headers["warning"])

    # The rest comes on the next page, without a warning.
    response = search(server, "/studies", "limit=100000&offset=200")
    assert len(assert_json_ok(response)) == 1
    assert "warning" not in response.headers

    # Without limit: 100 by default, and more to come.
    response = search(server, "/studies")
    assert len(assert_json_ok(response)) == 100
    assert response.headers["warning"].startswith("299 ")


def test_dicomweb_11_empty_values_json(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-11-empty-values-json.md, request 2 and 3 for
    the search answer."""
    ds = fresh(
        "CT_small.dcm",
        AccessionNumber="",
        DerivationDescription="",
        ImageType=["ORIGINAL", "", "AXIAL"],
    )
    assert stow(dicomweb_server.root, [ds]).status_code == 200

    response = search(
        dicomweb_server, "/studies", f"StudyInstanceUID={ds.StudyInstanceUID}"
    )
    results = assert_json_ok(response)
    assert len(results) == 1
    assert results[0]["00080050"] == {"vr": "SH"}

    response = search(
        dicomweb_server,
        f"/studies/{ds.StudyInstanceUID}/instances",
        "includefield=all",
    )
    results = assert_json_ok(response)
    assert len(results) == 1
    assert results[0]["00082111"] == {"vr": "ST"}
    assert results[0]["00080008"]["Value"] == ["ORIGINAL", None, "AXIAL"]


def test_dicomweb_12_numbers_in_json(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-12-numbers-in-json.md, requests 2 and 3."""
    ds = fresh("CT_small.dcm")
    assert stow(dicomweb_server.root, [ds]).status_code == 200

    def integer(item: dict[str, Any], tag: str) -> int:
        number = value(item, tag)
        assert type(number) is int, (tag, number)
        return number

    study = assert_json_ok(
        search(dicomweb_server, "/studies", f"StudyInstanceUID={ds.StudyInstanceUID}")
    )
    assert integer(study[0], "00201206") == 1
    assert integer(study[0], "00201208") == 1

    series = assert_json_ok(
        search(dicomweb_server, f"/studies/{ds.StudyInstanceUID}/series")
    )
    assert integer(series[0], "00201209") == 1
    assert integer(series[0], "00200011") == int(ds.SeriesNumber)

    instances = assert_json_ok(
        search(dicomweb_server, f"/studies/{ds.StudyInstanceUID}/instances")
    )
    assert integer(instances[0], "00200013") == int(ds.InstanceNumber)


def charset_file(name: str) -> Dataset:
    """One of pydicom's character set files."""
    return read(sample_path(name))


def person_name_object(name: PersonName) -> dict[str, str]:
    """The PS3.18 F.2.2 object of a decoded name: empty groups left out."""
    groups = {
        "Alphabetic": name.alphabetic,
        "Ideographic": name.ideographic,
        "Phonetic": name.phonetic,
    }
    return {group: text for group, text in groups.items() if text}


@pytest.mark.parametrize("name", ["chrH31", "chrI2", "chrX1"])
def test_dicomweb_13_person_name_json(dicomweb_server: Server, name: str) -> None:
    """cases/dicomweb/dicomweb-13-person-name-json.md, the search answer."""
    ds = fresh(charset_file(name))
    assert stow(dicomweb_server.root, [ds]).status_code == 200

    response = search(
        dicomweb_server, "/studies", f"StudyInstanceUID={ds.StudyInstanceUID}"
    )
    results = assert_json_ok(response)
    names = results[0]["00100010"]["Value"]
    assert all(isinstance(item, dict) for item in names)
    assert names[0] == person_name_object(ds.PatientName)


@pytest.mark.parametrize(
    "name",
    [
        "chrGerm",
        "chrFren",
        "chrRuss",
        "chrGreek",
        "chrArab",
        "chrHbrw",
        "chrX2",
        "chrH32",
    ],
)
def test_dicomweb_14_character_sets(dicomweb_server: Server, name: str) -> None:
    """cases/dicomweb/dicomweb-14-character-sets.md, request 1."""
    ds = fresh(charset_file(name))
    assert stow(dicomweb_server.root, [ds]).status_code == 200

    response = search(
        dicomweb_server, "/studies", f"StudyInstanceUID={ds.StudyInstanceUID}"
    )
    results = assert_json_ok(response)
    assert value(results[0], "00100010")["Alphabetic"] == ds.PatientName.alphabetic
    assert results[0].get("00080005", {"Value": ["ISO_IR 192"]})["Value"] == [
        "ISO_IR 192"
    ]


def test_dicomweb_14_character_sets_name_search(dicomweb_server: Server) -> None:
    """cases/dicomweb/dicomweb-14-character-sets.md, request 2."""
    ds = fresh(charset_file("chrGerm"))
    assert stow(dicomweb_server.root, [ds]).status_code == 200

    results = assert_json_ok(
        search(dicomweb_server, "/studies", "PatientName=%C3%84neas*")
    )
    assert ds.StudyInstanceUID in {value(r, "0020000D") for r in results}


def test_dicomweb_10_dicomweb_client_pages_until_empty(
    dicomweb_server: Server, patients: Patients
) -> None:
    """cases/dicomweb/dicomweb-10-limit-offset-paging.md, as the Python
    dicomweb-client does it: pages until an empty one, lists as repeated
    parameters."""
    client = DICOMwebClient(url=dicomweb_server.root)
    results = client.search_for_studies(
        search_filters={"PatientName": "*doe*"}, limit=1, get_remaining=True
    )
    assert sorted(value(r, "0020000D") for r in results) == sorted(
        [patients.study["A"], patients.study["B"]]
    )

    results = client.search_for_series(
        search_filters={"StudyInstanceUID": [patients.study["A"], patients.study["D"]]},
        fields=["PatientName"],
    )
    expected = [ds.SeriesInstanceUID for ds in patients.datasets["A"]]
    expected += [ds.SeriesInstanceUID for ds in patients.datasets["D"]]
    assert sorted(value(r, "0020000E") for r in results) == sorted(expected)
    assert all("00100010" in r for r in results)
