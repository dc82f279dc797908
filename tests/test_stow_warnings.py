"""STOW-RS "stored with warnings", as the Azure DICOM service's API v2 does.

An instance whose required attributes are valid is stored even when a
searchable attribute fails its VR's rules (PS3.5 §6.2). The answer is 202
(PS3.18 §10.5.3) and the instance's ReferencedSOPSequence item carries a
WarningReason and a FailedAttributesSequence naming each attribute and rule,
never the value. Searches do not match the instance on that attribute; the
metadata and the retrieved file keep the value as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from .conftest import DICOMWEB_CORS, Server, start_server
from .dicomdata import fresh, multipart_body, multipart_parts, stow, to_bytes

ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'

COERCED = 0xB000  # Coercion of Data Elements (PS3.4 Table B.2-1)
MISMATCH = 0xB007  # Data Set does not match SOP Class; the Azure 45063

BAD_DATE = "2020-01-01"
COLON_TIME = "07:27:30"
BAD_INTEGER = "1A"
LONG_ACCESSION = "ACCN-TOO-LONG-FOR-SH-0042"  # 25 characters, SH allows 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("warnings"), DICOMWEB_CORS)
    yield server
    server.stop()


def with_raw(ds: Dataset, **values: str) -> Dataset:
    """Set attributes to text as given, bypassing pydicom's checks, so the
    file holds exactly these (invalid) values."""
    for keyword, text in values.items():
        tag = Tag(tag_for_keyword(keyword))
        data = text.encode("ascii")
        if len(data) % 2:
            data += b" "  # even length (PS3.5 §7.1.1), trailing space padding
        ds[tag] = RawDataElement(
            tag, dictionary_VR(tag), len(data), data, 0, False, True
        )
    return ds


def ct(**values: str) -> Dataset:
    """CT_small in a study of its own, with `values` written as given."""
    return with_raw(fresh("CT_small.dcm"), **values)


def referenced(response: httpx.Response) -> list[dict[str, Any]]:
    return response.json().get("00081199", {}).get("Value", [])


def failed_attributes(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(Offending Element, Error Comment) of each FailedAttributesSequence item."""
    return [
        (entry["00000901"]["Value"][0], entry["00000902"]["Value"][0])
        for entry in item["00741048"]["Value"]
    ]


def instance_url(root: str, ds: Dataset) -> str:
    return (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def studies(root: str, **params: str) -> list[str]:
    response = httpx.get(f"{root}/studies", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return [item["0020000D"]["Value"][0] for item in response.json()]


def put(root: str, datasets: list[Dataset]) -> httpx.Response:
    body, content_type = multipart_body(to_bytes(ds) for ds in datasets)
    return httpx.put(
        f"{root}/studies",
        content=body,
        headers={"Content-Type": content_type},
        timeout=60,
    )


class Batch:
    """One POST mixing a clean instance and instances with invalid values."""

    def __init__(self, root: str):
        self.clean = ct()
        self.bad_date = ct(StudyDate=BAD_DATE)
        self.bad_integer = ct(InstanceNumber=BAD_INTEGER)
        self.colon_time = ct(StudyTime=COLON_TIME)
        self.long_accession = ct(AccessionNumber=LONG_ACCESSION)
        self.several = ct(
            StudyDate=BAD_DATE, InstanceNumber=BAD_INTEGER, StudyTime=COLON_TIME
        )
        self.sent = {name: to_bytes(ds) for name, ds in self.datasets().items()}
        self.response = stow(root, list(self.sent.values()))

    def datasets(self) -> dict[str, Dataset]:
        return {
            "clean": self.clean,
            "bad_date": self.bad_date,
            "bad_integer": self.bad_integer,
            "colon_time": self.colon_time,
            "long_accession": self.long_accession,
            "several": self.several,
        }


@pytest.fixture(scope="module")
def batch(server: Server) -> Batch:
    return Batch(server.root)


def test_a_batch_with_warnings_is_202_with_every_instance_stored(
    batch: Batch,
) -> None:
    response = batch.response

    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    payload = response.json()
    assert "00081198" not in payload
    items = referenced(response)
    assert [item["00081155"]["Value"][0] for item in items] == [
        ds.SOPInstanceUID for ds in batch.datasets().values()
    ]


def test_each_item_says_what_failed(batch: Batch) -> None:
    items = dict(zip(batch.datasets(), referenced(batch.response), strict=True))

    # The clean instance is referenced as before, with no warning.
    assert set(items["clean"]) == {"00081150", "00081155", "00081190"}

    assert items["bad_date"]["00081196"] == {"vr": "US", "Value": [MISMATCH]}
    assert failed_attributes(items["bad_date"]) == [
        ("00080020", "(0008,0020) StudyDate: not a date YYYYMMDD")
    ]
    assert items["bad_integer"]["00081196"]["Value"] == [MISMATCH]
    assert failed_attributes(items["bad_integer"]) == [
        ("00200013", "(0020,0013) InstanceNumber: not an integer (IS)")
    ]
    assert items["long_accession"]["00081196"]["Value"] == [MISMATCH]
    assert failed_attributes(items["long_accession"]) == [
        ("00080050", "(0008,0050) AccessionNumber: over 16 characters (SH)")
    ]

    # A time in the ACR-NEMA form is indexed in the V3 form: a coercion.
    assert items["colon_time"]["00081196"]["Value"] == [COERCED]
    assert failed_attributes(items["colon_time"]) == [
        ("00080030", "(0008,0030) StudyTime: indexed as HHMMSS.FFFFFF")
    ]

    # One item per failing attribute; the reason is the most serious one.
    assert items["several"]["00081196"]["Value"] == [MISMATCH]
    assert [tag for tag, _ in failed_attributes(items["several"])] == [
        "00080020",
        "00080030",
        "00200013",
    ]

    for item in items.values():
        for entry in item.get("00741048", {}).get("Value", []):
            assert entry["00000901"]["vr"] == "AT"
            assert entry["00000902"]["vr"] == "LO"
            assert len(entry["00000902"]["Value"][0]) <= 64  # LO (PS3.5 §6.2)


def test_no_value_in_the_answer_or_the_log(batch: Batch, server: Server) -> None:
    texts = (batch.response.text, server.log())
    assert "(0008,0020) StudyDate: not a date YYYYMMDD" in server.log()
    for value in (BAD_DATE, COLON_TIME, LONG_ACCESSION, LONG_ACCESSION[:16]):
        assert all(value not in text for text in texts), value
    assert f'"{BAD_INTEGER}"' not in batch.response.text


def test_searches_do_not_match_the_failed_value(batch: Batch, server: Server) -> None:
    root = server.root

    # Neither the value as sent nor what an index could make of it matches.
    assert batch.bad_date.StudyInstanceUID not in studies(root, StudyDate="20200101")
    assert batch.bad_date.StudyInstanceUID not in studies(
        root, StudyDate="20191231-20200102"
    )
    for value in (LONG_ACCESSION, LONG_ACCESSION[:16], LONG_ACCESSION[:16] + "*"):
        assert studies(root, AccessionNumber=value) == []

    study = batch.bad_integer.StudyInstanceUID
    found = httpx.get(
        f"{root}/studies/{study}/instances", params={"InstanceNumber": "1"}
    )
    assert found.status_code == 200, found.text
    assert found.json() == []
    found = httpx.get(f"{root}/studies/{study}/instances")
    assert [item["00080018"]["Value"][0] for item in found.json()] == [
        batch.bad_integer.SOPInstanceUID
    ]

    # The other attributes of a warned instance stay searchable.
    assert batch.bad_date.StudyInstanceUID in studies(
        root, PatientID=batch.bad_date.PatientID
    )


def test_a_coerced_time_range_matches(batch: Batch, server: Server) -> None:
    study = batch.colon_time.StudyInstanceUID

    assert studies(server.root, StudyInstanceUID=study, StudyTime="072730") == [study]
    assert studies(server.root, StudyInstanceUID=study, StudyTime="07-0728") == [study]
    assert studies(server.root, StudyInstanceUID=study, StudyTime="0800-") == []


def test_metadata_and_retrieve_keep_the_values_as_sent(
    batch: Batch, server: Server
) -> None:
    expected = {
        "bad_date": ("00080020", BAD_DATE),
        "bad_integer": ("00200013", BAD_INTEGER),
        "colon_time": ("00080030", COLON_TIME),
        "long_accession": ("00080050", LONG_ACCESSION),
    }
    datasets = batch.datasets()
    for name, (tag, value) in expected.items():
        ds = datasets[name]
        url = instance_url(server.root, ds)

        response = httpx.get(url + "/metadata", timeout=30)
        assert response.status_code == 200, response.text
        (item,) = response.json()
        assert item[tag]["Value"] == [value], name

        response = httpx.get(url, headers={"Accept": ANY_SYNTAX}, timeout=30)
        assert response.status_code == 200, response.text
        ((_, body),) = multipart_parts(response)
        assert body == batch.sent[name], name

    # A search answers with the value as stored too; it only never matches it.
    study = batch.bad_date.StudyInstanceUID
    found = httpx.get(f"{server.root}/studies", params={"StudyInstanceUID": study})
    assert found.json()[0]["00080020"]["Value"] == [BAD_DATE]


def test_a_single_warned_instance_is_202(server: Server) -> None:
    ds = ct(StudyDate=BAD_DATE)

    response = httpx.post(
        f"{server.root}/studies/{ds.StudyInstanceUID}",
        content=to_bytes(ds),
        headers={"Content-Type": "application/dicom"},
        timeout=60,
    )

    assert response.status_code == 202, response.text
    payload = response.json()
    assert payload["00081190"]["Value"] == [
        f"{server.root}/studies/{ds.StudyInstanceUID}"
    ]
    (item,) = referenced(response)
    assert item["00081196"]["Value"] == [MISMATCH]


def test_warnings_and_failures_together(server: Server) -> None:
    stored = ct()
    assert stow(server.root, [stored]).status_code == 200
    warned = ct(StudyDate=BAD_DATE)

    response = stow(server.root, [stored, warned])

    assert response.status_code == 202, response.text
    (failed,) = response.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [45070]
    (item,) = referenced(response)
    assert item["00081155"]["Value"] == [warned.SOPInstanceUID]
    assert item["00081196"]["Value"] == [MISMATCH]

    # None stored: 409, whatever warnings the refused ones would have had.
    response = stow(server.root, [warned])
    assert response.status_code == 409, response.text
    assert "00081199" not in response.json()


def test_other_vrs(server: Server) -> None:
    ds = ct(
        Modality="ct",
        PatientName="A=B=C=D",
        SeriesNumber="99999999999",
        PatientBirthDate="20230230",
    )

    response = stow(server.root, [ds])

    assert response.status_code == 202, response.text
    (item,) = referenced(response)
    assert failed_attributes(item) == [
        ("00080060", "(0008,0060) Modality: not A-Z 0-9 space _ (CS)"),
        ("00100010", "(0010,0010) PatientName: over 3 groups (PN)"),
        ("00100030", "(0010,0030) PatientBirthDate: not a date YYYYMMDD"),
        ("00200011", "(0020,0011) SeriesNumber: out of the IS range"),
    ]
    study = ds.StudyInstanceUID
    assert studies(server.root, StudyInstanceUID=study, ModalitiesInStudy="CT") == []
    assert studies(server.root, StudyInstanceUID=study, PatientName="A*") == []
    assert studies(server.root, StudyInstanceUID=study) == [study]


def test_put_answers_the_same_and_the_replacement_sets_the_index(
    server: Server,
) -> None:
    clean = ct(StudyDate="20210304")
    response = put(server.root, [clean])
    assert response.status_code == 200, response.text
    study = clean.StudyInstanceUID
    assert studies(server.root, StudyDate="20210304", StudyInstanceUID=study) == [study]

    # The replacement's invalid date leaves the study's date out of the index.
    warned = with_raw(clean, StudyDate=BAD_DATE)
    response = put(server.root, [warned])
    assert response.status_code == 202, response.text
    (item,) = referenced(response)
    assert failed_attributes(item) == [
        ("00080020", "(0008,0020) StudyDate: not a date YYYYMMDD")
    ]
    assert studies(server.root, StudyDate="20210304", StudyInstanceUID=study) == []

    # A valid replacement makes it searchable again, with a clean 200.
    fixed = with_raw(warned, StudyDate="20210305")
    response = put(server.root, [fixed])
    assert response.status_code == 200, response.text
    assert "00081196" not in referenced(response)[0]
    assert studies(server.root, StudyDate="20210305", StudyInstanceUID=study) == [study]


def test_dicomweb_client_stores_with_warnings(server: Server) -> None:
    client = DICOMwebClient(url=server.root)
    ds = ct(StudyDate=BAD_DATE, StudyTime=COLON_TIME)

    result = client.store_instances([ds])

    (item,) = result.ReferencedSOPSequence
    assert item.ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert item.WarningReason == MISMATCH
    assert [entry.OffendingElement for entry in item.FailedAttributesSequence] == [
        0x00080020,
        0x00080030,
    ]
    assert item.FailedAttributesSequence[0].ErrorComment == (
        "(0008,0020) StudyDate: not a date YYYYMMDD"
    )
