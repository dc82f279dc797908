"""QIDO-RS never drops what it was asked for unannounced: a parameter it
accepts but cannot honour in full gets a ``Warning: 299`` (PS3.18 §8.3.4,
§8.3.4.2, §8.3.4.5, §8.3.4.6, §10.6.3.3), and one it cannot understand is a
400 that names it without echoing its value."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from .conftest import Server
from .dicomdata import fresh, stow
from .test_qido_cases import assert_json_ok, search, value

WARNING_VALUE = re.compile(r'299 (\S+): "([^"]*)"')


@pytest.fixture(scope="module")
def two_studies(dicomweb_server: Server) -> list[Dataset]:
    studies = [
        fresh(
            "CT_small.dcm",
            PatientName="Warner^Wanda",
            StudyDescription="Warnings head",
            AccessionNumber="WARN-1",
        ),
        fresh(
            "CT_small.dcm",
            PatientName="Warner^Walter",
            StudyDescription="Warnings chest",
            AccessionNumber="WARN-2",
        ),
    ]
    response = stow(dicomweb_server.root, studies)
    assert response.status_code == 200, response.text
    return studies


def warnings_of(server: Server, response: httpx.Response) -> list[str]:
    """The warn-texts of the answer; each warning-value is well formed, ASCII
    and names this server as its agent."""
    header = response.headers.get("warning")
    if header is None:
        return []
    assert header.isascii(), header
    found = WARNING_VALUE.findall(header)
    assert ", ".join(f'299 {a}: "{t}"' for a, t in found) == header
    agent = server.url.removeprefix("http://")
    assert {a for a, _ in found} == {agent}
    return [text for _, text in found]


def results_and_warnings(
    server: Server, path: str, query: str
) -> tuple[list[dict[str, Any]], list[str]]:
    response = search(server, path, query)
    return assert_json_ok(response), warnings_of(server, response)


def patient_ids(studies: list[Dataset]) -> str:
    return "\\".join(ds.PatientID for ds in studies)


def test_a_plain_search_has_no_warning(
    dicomweb_server: Server, two_studies: list[Dataset]
) -> None:
    """Fuzzy matching on a name alongside UIDs, dates and includefield
    attributes of the level: everything asked for is done."""
    uids = ",".join(ds.StudyInstanceUID for ds in two_studies)
    results, warnings = results_and_warnings(
        dicomweb_server,
        "/studies",
        f"StudyInstanceUID={uids}&fuzzymatching=true&PatientName=warner"
        "&StudyDate=19000101-&includefield=StudyDescription,PatientWeight",
    )
    assert len(results) == 2
    assert warnings == []


def test_fuzzymatching_on_other_text_is_literal_and_said(
    dicomweb_server: Server, two_studies: list[Dataset]
) -> None:
    results, warnings = results_and_warnings(
        dicomweb_server,
        "/studies",
        "fuzzymatching=true&StudyDescription=Warnings&AccessionNumber=WARN-*",
    )
    # "Warnings" is no whole StudyDescription: a literal match finds nothing.
    assert results == []
    assert len(warnings) == 1
    assert "fuzzymatching applies to person names only" in warnings[0]
    assert "StudyDescription (00081030)" in warnings[0]
    assert "AccessionNumber (00080050)" in warnings[0]
    assert "WARN" not in warnings[0]


@pytest.mark.parametrize(
    ("parameter", "text"),
    [
        (
            "emptyvaluematching",
            "The emptyvaluematching parameter is not supported. "
            "Empty Value Matching has not been performed.",
        ),
        (
            "multiplevaluematching",
            "The multiplevaluematching parameter is not supported. "
            "Multiple Value Matching has not been performed.",
        ),
    ],
)
def test_unperformed_matching_flags_get_the_standard_warning(
    dicomweb_server: Server, two_studies: list[Dataset], parameter: str, text: str
) -> None:
    """PS3.18 §8.3.4.5 and §8.3.4.6 give the warning's text."""
    query = f"PatientID={patient_ids(two_studies)}"
    results, warnings = results_and_warnings(
        dicomweb_server, "/studies", f"{query}&{parameter}=true"
    )
    assert len(results) == 2
    assert warnings == [text]

    results, warnings = results_and_warnings(
        dicomweb_server, "/studies", f"{query}&{parameter}=false"
    )
    assert len(results) == 2
    assert warnings == []


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        # OHIF's study list sends Modality as an includefield.
        ("/studies", "includefield=00080060", "Modality (00080060)"),
        ("/studies", "Modality=", "Modality (00080060)"),
        ("/studies", "includefield=SOPClassUID", "SOPClassUID (00080016)"),
        ("/series", "includefield=InstanceNumber", "InstanceNumber (00200013)"),
        (
            "/studies",
            "includefield=NumberOfSeriesRelatedInstances",
            "NumberOfSeriesRelatedInstances (00201209)",
        ),
    ],
)
def test_lower_level_attributes_are_not_returned_and_said(
    dicomweb_server: Server,
    two_studies: list[Dataset],
    path: str,
    query: str,
    named: str,
) -> None:
    """PS3.18 §10.6.3.3: a search returns no attributes of lower levels."""
    tag = named[-9:-1]
    results, warnings = results_and_warnings(
        dicomweb_server,
        path,
        f"StudyInstanceUID={two_studies[0].StudyInstanceUID}&{query}",
    )
    assert len(results) == 1
    assert tag not in results[0]
    assert len(warnings) == 1
    assert "does not return" in warnings[0]
    assert named in warnings[0]


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/instances", "includefield=PixelData", "PixelData (7FE00010)"),
        ("/instances", "includefield=00020010", "TransferSyntaxUID (00020010)"),
        (
            "/studies",
            "includefield=NumberOfPatientRelatedStudies",
            "NumberOfPatientRelatedStudies (00201200)",
        ),
        ("/studies", "includefield=SOPClassesInStudy", "SOPClassesInStudy (00080062)"),
    ],
)
def test_attributes_the_index_does_not_keep_are_said(
    dicomweb_server: Server,
    two_studies: list[Dataset],
    path: str,
    query: str,
    named: str,
) -> None:
    results, warnings = results_and_warnings(
        dicomweb_server,
        path,
        f"StudyInstanceUID={two_studies[0].StudyInstanceUID}&{query}",
    )
    assert len(results) == 1
    assert named[-9:-1] not in results[0]
    assert len(warnings) == 1
    assert "not returned: " + named in warnings[0]


def test_charset_other_than_utf8_is_said(
    dicomweb_server: Server, two_studies: list[Dataset]
) -> None:
    query = f"StudyInstanceUID={two_studies[0].StudyInstanceUID}"
    _, warnings = results_and_warnings(
        dicomweb_server, "/studies", f"{query}&charset=ISO-8859-1"
    )
    assert warnings == [
        "the answer is UTF-8, the only charset offered (PS3.18 8.3.3.2, F.2)"
    ]
    for accepted in ("utf-8", "ISO-8859-1,UTF-8"):
        _, warnings = results_and_warnings(
            dicomweb_server, "/studies", f"{query}&charset={accepted}"
        )
        assert warnings == []


def test_several_warnings_share_one_header(
    dicomweb_server: Server, two_studies: list[Dataset]
) -> None:
    results, warnings = results_and_warnings(
        dicomweb_server,
        "/studies",
        f"PatientID={patient_ids(two_studies)}&limit=1"
        "&includefield=Modality&emptyvaluematching=true",
    )
    assert len(results) == 1
    assert len(warnings) == 3
    assert warnings[-1] == "There are additional results that can be requested"


def test_tag_and_keyword_of_one_key_are_one_list(
    dicomweb_server: Server, two_studies: list[Dataset]
) -> None:
    """PatientID=a&00100020=b matches either, as PatientID=a&PatientID=b."""
    first, second = two_studies
    results, warnings = results_and_warnings(
        dicomweb_server,
        "/studies",
        f"PatientID={first.PatientID}&00100020={second.PatientID}",
    )
    assert sorted(value(r, "00100020") for r in results) == sorted(
        [first.PatientID, second.PatientID]
    )
    assert warnings == []


@pytest.mark.parametrize(
    ("query", "named"),
    [
        # Attributes the index cannot match on, or that are not attributes.
        ("PatientWeight=70.5", "PatientWeight"),
        ("00091001=secret", "00091001"),
        ("TimezoneOffsetFromUTC=+0100", "TimezoneOffsetFromUTC"),
        ("Modality=CT", "Modality"),
        ("NoSuchKeyword=1", "NoSuchKeyword"),
        ("includefield=NoSuchKeyword", "NoSuchKeyword"),
        # Parameters given twice with different values, or with bad values.
        ("limit=5&limit=6", "limit"),
        ("offset=0&offset=1", "offset"),
        ("fuzzymatching=true&fuzzymatching=false", "fuzzymatching"),
        ("emptyvaluematching=yes", "emptyvaluematching"),
        ("multiplevaluematching=1", "multiplevaluematching"),
    ],
)
def test_what_cannot_be_understood_is_400(
    dicomweb_server: Server, query: str, named: str
) -> None:
    response = search(dicomweb_server, "/studies", query)
    assert response.status_code == 400, response.text
    assert named in response.text
    for secret in ("70.5", "secret", "+0100"):
        assert secret not in response.text


def test_the_same_value_twice_is_not_a_conflict(
    dicomweb_server: Server, two_studies: list[Dataset]
) -> None:
    results, warnings = results_and_warnings(
        dicomweb_server,
        "/studies",
        f"PatientID={patient_ids(two_studies)}&limit=1&limit=1&fuzzymatching=false"
        "&fuzzymatching=false",
    )
    assert len(results) == 1
    assert warnings == ["There are additional results that can be requested"]
