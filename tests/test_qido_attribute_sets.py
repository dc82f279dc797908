"""The attributes each QIDO-RS result carries: the defaults of PS3.18 Tables
10.6.3-3 to -5 with the Azure DICOM service's defaults, and what
``includefield=all`` adds (the Azure service's lists for the level, then every
other attribute kept there), checked exactly on an instance built to hold each
of them; RetrieveURL follows ``public_base_url``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from .conftest import Server, start_server
from .dicomdata import stow
from .test_qido_cases import assert_json_ok, search, value

PUBLIC = "https://pacs.example/dicomweb"

# The Azure DICOM service's Conformance Statement v2, "Search response":
# the default tags per level, and the other tags includefield=all adds.
AZURE_DEFAULT = {
    "study": {
        "00080020", "00080050", "00081030", "00080090",
        "00100010", "00100020", "00100030", "0020000D",
    },
    "series": {"00080060", "00081090", "0020000E", "00400244"},
    "instance": {"00080018"},
}  # fmt: skip
AZURE_OTHER = {
    "study": {
        "00080005", "00080030", "00080056", "00080201", "00080063", "00081032",
        "00081060", "00081080", "00081110", "00101010", "00101020", "00101030",
        "00102180", "001021B0", "00100040", "00200010",
    },
    "series": {
        "00080005", "00080201", "00200011", "00200060", "00080021", "00080031",
        "0008103E", "00400245", "00400275",
    },
    "instance": {
        "00080005", "00080016", "00080056", "00080201", "00200013", "00280010",
        "00280011", "00280100", "00280008",
    },
}  # fmt: skip

# What dicomhub returns for the instance of `full_instance`, per level.
STUDY_DEFAULT = {
    "00080020",  # StudyDate
    "00080030",  # StudyTime
    "00080050",  # AccessionNumber
    "00080056",  # InstanceAvailability
    "00080061",  # ModalitiesInStudy
    "00080090",  # ReferringPhysicianName
    "00080201",  # TimezoneOffsetFromUTC
    "00081030",  # StudyDescription (Azure)
    "00081190",  # RetrieveURL
    "00100010",  # PatientName
    "00100020",  # PatientID
    "00100030",  # PatientBirthDate
    "00100040",  # PatientSex
    "0020000D",  # StudyInstanceUID
    "00200010",  # StudyID
    "00201206",  # NumberOfStudyRelatedSeries
    "00201208",  # NumberOfStudyRelatedInstances
}
STUDY_ALL = STUDY_DEFAULT | {
    "00080005",  # SpecificCharacterSet
    "00080063",  # AnatomicRegionsInStudyCodeSequence
    "00081032",  # ProcedureCodeSequence
    "00081060",  # NameOfPhysiciansReadingStudy
    "00081080",  # AdmittingDiagnosesDescription
    "00081110",  # ReferencedStudySequence
    "00101010",  # PatientAge
    "00101020",  # PatientSize
    "00101030",  # PatientWeight
    "00102180",  # Occupation
    "001021B0",  # AdditionalPatientHistory
}
SERIES_DEFAULT = {
    "00080060",  # Modality
    "00080201",  # TimezoneOffsetFromUTC
    "0008103E",  # SeriesDescription
    "00081090",  # ManufacturerModelName (Azure)
    "00081190",  # RetrieveURL
    "0020000E",  # SeriesInstanceUID
    "00200011",  # SeriesNumber
    "00201209",  # NumberOfSeriesRelatedInstances
    "00400244",  # PerformedProcedureStepStartDate
    "00400245",  # PerformedProcedureStepStartTime
    "00400275",  # RequestAttributesSequence
}
SERIES_ALL = SERIES_DEFAULT | {
    "00080005",  # SpecificCharacterSet
    "00080021",  # SeriesDate
    "00080031",  # SeriesTime
    "00200060",  # Laterality
    "00181030",  # ProtocolName: kept at the series level, not in Azure's list
}
INSTANCE_DEFAULT = {
    "00080016",  # SOPClassUID
    "00080018",  # SOPInstanceUID
    "00080056",  # InstanceAvailability
    "00080201",  # TimezoneOffsetFromUTC
    "00081190",  # RetrieveURL
    "00200013",  # InstanceNumber
    "00280008",  # NumberOfFrames
    "00280010",  # Rows
    "00280011",  # Columns
    "00280100",  # BitsAllocated
}
INSTANCE_ALL = INSTANCE_DEFAULT | {
    "00080005",  # SpecificCharacterSet
    "00080008",  # ImageType: kept at the instance level, not in Azure's list
}

# The UIDs of the resource path, returned as the Azure service does.
STUDY_UID = {"0020000D"}
SERIES_UID = {"0020000E"}


def code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def full_instance(patient_name: str = "Sets^Attribute") -> Dataset:
    """A CT instance with every attribute of the Azure lists and PS3.18
    tables, and one more kept attribute at the series and instance levels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SpecificCharacterSet = "ISO_IR 100"

    # Study level.
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-SETS"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.TimezoneOffsetFromUTC = "+0100"
    ds.StudyDescription = "Attribute sets"
    ds.PatientName = patient_name
    ds.PatientID = "PID-" + generate_uid()[-8:]
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyID = "S1"
    ds.AnatomicRegionsInStudyCodeSequence = [code("T-D1100", "Head")]
    ds.ProcedureCodeSequence = [code("P1", "Procedure")]
    ds.NameOfPhysiciansReadingStudy = "Reader^Ray"
    ds.AdmittingDiagnosesDescription = "Headache"
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    referenced.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedStudySequence = [referenced]
    ds.PatientAge = "054Y"
    ds.PatientSize = "1.70"
    ds.PatientWeight = "70"
    ds.Occupation = "Baker"
    ds.AdditionalPatientHistory = "None"

    # Series level.
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.SeriesDescription = "Axial"
    ds.ManufacturerModelName = "Model X"
    ds.SeriesNumber = 3
    ds.SeriesDate = "20240102"
    ds.SeriesTime = "101600"
    ds.Laterality = "L"
    ds.PerformedProcedureStepStartDate = "20240102"
    ds.PerformedProcedureStepStartTime = "101000"
    request = Dataset()
    request.RequestedProcedureID = "RP1"
    ds.RequestAttributesSequence = [request]
    ds.ProtocolName = "Head routine"

    # Instance level.
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.NumberOfFrames = 1
    return ds


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that advertises itself as PUBLIC (a proxy in front of it)."""
    workdir: Path = tmp_path_factory.mktemp("attribute-sets")
    server = start_server(workdir, f'[server]\npublic_base_url = "{PUBLIC}/"\n')
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stored(public_server: Server) -> Dataset:
    ds = full_instance()
    response = stow(public_server.root, [ds])
    assert response.status_code == 200, response.text
    return ds


def only(server: Server, path: str, query: str) -> dict[str, Any]:
    response = search(server, path, query)
    results = assert_json_ok(response)
    assert len(results) == 1, results
    assert "warning" not in response.headers, response.headers["warning"]
    return results[0]


def resources(ds: Dataset) -> dict[str, tuple[str, str, set[str], set[str]]]:
    """Per case: path, query, the default key set and the `all` key set."""
    study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID
    sop = f"SOPInstanceUID={ds.SOPInstanceUID}"
    return {
        "studies": (
            "/studies",
            f"StudyInstanceUID={study}",
            STUDY_DEFAULT,
            STUDY_ALL,
        ),
        "study's series": (
            f"/studies/{study}/series",
            "",
            STUDY_UID | SERIES_DEFAULT,
            STUDY_UID | SERIES_ALL,
        ),
        "all series": (
            "/series",
            f"SeriesInstanceUID={series}",
            STUDY_DEFAULT | SERIES_DEFAULT,
            STUDY_DEFAULT | SERIES_ALL,
        ),
        "series' instances": (
            f"/studies/{study}/series/{series}/instances",
            "",
            STUDY_UID | SERIES_UID | INSTANCE_DEFAULT,
            STUDY_UID | SERIES_UID | INSTANCE_ALL,
        ),
        "study's instances": (
            f"/studies/{study}/instances",
            "",
            STUDY_UID | SERIES_DEFAULT | INSTANCE_DEFAULT,
            STUDY_UID | SERIES_DEFAULT | INSTANCE_ALL,
        ),
        "all instances": (
            "/instances",
            sop,
            STUDY_DEFAULT | SERIES_DEFAULT | INSTANCE_DEFAULT,
            STUDY_DEFAULT | SERIES_DEFAULT | INSTANCE_ALL,
        ),
    }


CASES = [
    "studies",
    "study's series",
    "all series",
    "series' instances",
    "study's instances",
    "all instances",
]


@pytest.mark.parametrize("case", CASES)
def test_default_and_all_sets_are_exact(
    public_server: Server, stored: Dataset, case: str
) -> None:
    path, query, default, everything = resources(stored)[case]

    assert set(only(public_server, path, query)) == default
    joined = f"{query}&includefield=all" if query else "includefield=all"
    assert set(only(public_server, path, joined)) == everything


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_the_azure_sets_are_covered(level: str) -> None:
    default = {"study": STUDY_DEFAULT, "series": SERIES_DEFAULT}.get(
        level, INSTANCE_DEFAULT
    )
    everything = {"study": STUDY_ALL, "series": SERIES_ALL}.get(level, INSTANCE_ALL)
    assert AZURE_DEFAULT[level] <= default
    assert AZURE_DEFAULT[level] | AZURE_OTHER[level] <= everything


def test_values_of_the_computed_and_shared_attributes(
    public_server: Server, stored: Dataset
) -> None:
    study, series = stored.StudyInstanceUID, stored.SeriesInstanceUID
    item = only(
        public_server,
        f"/studies/{study}/series/{series}/instances",
        "includefield=all",
    )
    # The JSON is UTF-8 whatever the file's character set was.
    assert item["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
    assert value(item, "00080056") == "ONLINE"
    # TimezoneOffsetFromUTC is kept with the study and returned at every level.
    assert value(item, "00080201") == "+0100"
    assert value(item, "0020000D") == study
    assert value(item, "00280100") == 16

    item = only(public_server, f"/studies/{study}/series", "")
    assert value(item, "00081090") == "Model X"
    assert value(item, "00080201") == "+0100"
    assert value(item, "00201209") == 1

    item = only(public_server, "/studies", f"StudyInstanceUID={study}")
    assert value(item, "00081030") == "Attribute sets"
    assert value(item, "00080061") == "CT"


@pytest.mark.parametrize("prefix", ["/v2", "/v1"])
def test_retrieve_urls_are_absolute_under_public_base_url(
    public_server: Server, stored: Dataset, prefix: str
) -> None:
    study, series = stored.StudyInstanceUID, stored.SeriesInstanceUID
    sop = stored.SOPInstanceUID
    root = PUBLIC + prefix
    expected = {
        "/studies": f"{root}/studies/{study}",
        "/series": f"{root}/studies/{study}/series/{series}",
        "/instances": f"{root}/studies/{study}/series/{series}/instances/{sop}",
    }
    for path, url in expected.items():
        response = httpx.get(
            f"{public_server.url}{prefix}{path}",
            params={"StudyInstanceUID": study},
            headers={"Accept": "application/dicom+json"},
        )
        [item] = assert_json_ok(response)
        assert item["00081190"] == {"vr": "UR", "Value": [url]}


def test_specific_character_set_by_default_only_beyond_ascii(
    public_server: Server, stored: Dataset
) -> None:
    """PS3.18 Table 10.6.3-3, Type 1C: present when the text is not ASCII."""
    accented = full_instance("Müller^Jörg")
    assert stow(public_server.root, [accented]).status_code == 200

    query = f"StudyInstanceUID={accented.StudyInstanceUID}"
    item = only(public_server, "/studies", query)
    assert item["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
    assert value(item, "00100010") == {"Alphabetic": "Müller^Jörg"}

    query = f"StudyInstanceUID={stored.StudyInstanceUID}"
    assert "00080005" not in only(public_server, "/studies", query)
    item = only(public_server, "/studies", f"{query}&includefield=00080005")
    assert item["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
