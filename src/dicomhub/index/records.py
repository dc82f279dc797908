"""What the index keeps of one instance, taken from its dataset at store time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from ..dicom.dicomjson import to_dicom_json
from ..dicom.levels import EXCLUDED_FROM_INDEX, level_of


@dataclass
class InstanceRecord:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size: int
    study_columns: dict[str, Any] = field(default_factory=dict)
    series_columns: dict[str, Any] = field(default_factory=dict)
    instance_columns: dict[str, Any] = field(default_factory=dict)
    study_attrs: dict[str, Any] = field(default_factory=dict)
    series_attrs: dict[str, Any] = field(default_factory=dict)
    instance_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredInstance:
    """An indexed instance, as WADO-RS and DELETE need it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size: int
    number_of_frames: int | None


def blob_key_for(study: str, series: str, sop: str) -> str:
    """A key of its own for each stored file, under its study and series.

    The random suffix means an upload that loses a duplicate race (45070)
    never overwrites the file of the instance that won it.
    """
    return f"{study}/{series}/{sop}.{uuid.uuid4().hex[:12]}.dcm"


def _text(ds: Dataset, keyword: str, limit: int) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    text = str(value)
    return text[:limit] if text else None


def _integer(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _date(ds: Dataset, keyword: str) -> str | None:
    """A DA value when it is a plain YYYYMMDD date, else None (not range-matchable)."""
    value = str(ds.get(keyword) or "")
    return value if len(value) == 8 and value.isdigit() else None


def name_key(value: str) -> str:
    """The case-folded form person-name matching compares (PS3.4 C.2.2.2.1)."""
    return value.casefold()


def name_words(value: str) -> str:
    """Every word of every component, case-folded, each preceded by a space."""
    for separator in "^=,":
        value = value.replace(separator, " ")
    return "".join(f" {word}" for word in value.casefold().split())


def _person_name(ds: Dataset, keyword: str, prefix: str) -> dict[str, Any]:
    value = ds.get(keyword)
    text = str(value) if isinstance(value, PersonName | str) and value else None
    return {
        f"{prefix}_name": text,
        f"{prefix}_name_key": name_key(text) if text else None,
        f"{prefix}_name_words": name_words(text) if text else None,
    }


def build_record(ds: Dataset, transfer_syntax_uid: str, size: int) -> InstanceRecord:
    """Split `ds` into the index's columns and per-level DICOM JSON."""
    study_uid = str(ds.StudyInstanceUID)
    series_uid = str(ds.SeriesInstanceUID)
    sop_uid = str(ds.SOPInstanceUID)
    record = InstanceRecord(
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=transfer_syntax_uid,
        blob_key=blob_key_for(study_uid, series_uid, sop_uid),
        size=size,
    )

    record.study_columns = {
        "patient_id": _text(ds, "PatientID", 64),
        "patient_birth_date": _date(ds, "PatientBirthDate"),
        "patient_sex": _text(ds, "PatientSex", 16),
        "study_date": _date(ds, "StudyDate"),
        "study_time": _text(ds, "StudyTime", 16),
        "accession_number": _text(ds, "AccessionNumber", 16),
        "study_id": _text(ds, "StudyID", 16),
        "study_description": _text(ds, "StudyDescription", 64),
        **_person_name(ds, "PatientName", "patient"),
        **_person_name(ds, "ReferringPhysicianName", "referring_physician"),
    }
    record.series_columns = {
        "modality": _text(ds, "Modality", 16),
        "series_number": _integer(ds, "SeriesNumber"),
        "series_description": _text(ds, "SeriesDescription", 64),
        "series_date": _date(ds, "SeriesDate"),
        "performed_procedure_step_start_date": _date(
            ds, "PerformedProcedureStepStartDate"
        ),
    }
    record.instance_columns = {
        "sop_class_uid": record.sop_class_uid,
        "instance_number": _integer(ds, "InstanceNumber"),
        "number_of_frames": _integer(ds, "NumberOfFrames"),
        "rows": _integer(ds, "Rows"),
        "columns": _integer(ds, "Columns"),
    }

    levels = {
        "study": record.study_attrs,
        "series": record.series_attrs,
        "instance": record.instance_attrs,
    }
    for tag, attr in to_dicom_json(ds).items():
        if tag in EXCLUDED_FROM_INDEX or tag.startswith("0002"):
            continue
        levels[level_of(tag)][tag] = attr
    return record
