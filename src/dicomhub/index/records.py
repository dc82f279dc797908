"""What the index keeps of one instance, taken from its dataset at store time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from ..dicom.dicomjson import to_dicom_json
from ..dicom.levels import EXCLUDED_FROM_INDEX, level_of
from .validation import AttributeWarning, IndexValues


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
    # Searchable attributes whose values failed their VR's rules and are not
    # indexed as sent (dicomhub.index.validation); STOW-RS answers with them.
    warnings: list[AttributeWarning] = field(default_factory=list)
    # What WADO-RS metadata sends of the instance (dicomhub.dicom.
    # metadata_document); None when it could not be made.
    metadata_document: str | None = None


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


def name_key(value: str) -> str:
    """The case-folded form person-name matching compares (PS3.4 C.2.2.2.1)."""
    return value.casefold()


def name_words(value: str) -> str:
    """Every word of every component, case-folded, each preceded by a space."""
    for separator in "^=,":
        value = value.replace(separator, " ")
    return "".join(f" {word}" for word in value.casefold().split())


def _person_name(values: IndexValues, keyword: str, prefix: str) -> dict[str, Any]:
    text = values.person_name(keyword)
    return {
        f"{prefix}_name": text,
        f"{prefix}_name_key": name_key(text) if text else None,
        f"{prefix}_name_words": name_words(text) if text else None,
    }


def build_record(
    ds: Dataset,
    transfer_syntax_uid: str,
    size: int,
    attributes: dict[str, Any] | None = None,
) -> InstanceRecord:
    """Split `ds` into the index's columns and per-level DICOM JSON.

    `attributes` is the DICOM JSON of `ds` when it is made already, with or
    without BulkDataURIs: the index keeps no bulk data (PS3.18 F.2.6).
    """
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

    # Each searchable value is checked against its VR (PS3.5 §6.2); one that
    # fails leaves its column empty and adds a warning to the record.
    values = IndexValues(ds)
    record.study_columns = {
        "patient_id": values.text("PatientID"),
        "patient_birth_date": values.date("PatientBirthDate"),
        "patient_sex": values.text("PatientSex"),
        "study_date": values.date("StudyDate"),
        "study_time": values.time("StudyTime"),
        "accession_number": values.text("AccessionNumber"),
        "study_id": values.text("StudyID"),
        "study_description": values.text("StudyDescription"),
        **_person_name(values, "PatientName", "patient"),
        **_person_name(values, "ReferringPhysicianName", "referring_physician"),
    }
    record.series_columns = {
        "modality": values.text("Modality"),
        "series_number": values.integer("SeriesNumber"),
        "series_description": values.text("SeriesDescription"),
        "series_date": values.date("SeriesDate"),
        "performed_procedure_step_start_date": values.date(
            "PerformedProcedureStepStartDate"
        ),
    }
    record.instance_columns = {
        "sop_class_uid": record.sop_class_uid,
        "instance_number": values.integer("InstanceNumber"),
        "number_of_frames": values.integer("NumberOfFrames"),
        "rows": values.integer("Rows"),
        "columns": values.integer("Columns"),
    }
    # In tag order, as the attributes of a data set are (PS3.5 §7.1).
    record.warnings = sorted(values.warnings, key=lambda warning: warning.tag)

    levels = {
        "study": record.study_attrs,
        "series": record.series_attrs,
        "instance": record.instance_attrs,
    }
    if attributes is None:
        attributes = to_dicom_json(ds)
    for tag, attr in attributes.items():
        if tag in EXCLUDED_FROM_INDEX or tag.startswith("0002"):
            continue
        kept = _without_bulk_data(attr)
        if kept is not None:
            levels[level_of(tag)][tag] = kept
    return record


def _without_bulk_data(attr: dict[str, Any]) -> dict[str, Any] | None:
    """`attr` without the BulkDataURIs in it or in its items; None when it
    is one."""
    if "BulkDataURI" in attr:
        return None
    if attr.get("vr") != "SQ" or "Value" not in attr:
        return attr
    items = [
        {
            tag: kept
            for tag, inner in item.items()
            if (kept := _without_bulk_data(inner)) is not None
        }
        for item in attr["Value"]
    ]
    return {**attr, "Value": items}
