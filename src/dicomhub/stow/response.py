"""The Store Instances Response Module (PS3.18 §10.5.3) of a STOW-RS request.

The answer lists the stored instances in ReferencedSOPSequence (0008,1199)
and the refused ones, each with its FailureReason, in FailedSOPSequence
(0008,1198), as DICOM JSON (PS3.18 Annex F); its status says whether all,
some or none were stored.

An instance stored although a searchable attribute failed its VR's rules
(``dicomhub.index.validation``) has a WarningReason (0008,1196) in its
ReferencedSOPSequence item and a FailedAttributesSequence (0074,1048) with
one item per such attribute, as the Azure DICOM service's API v2 answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ..index.validation import AttributeWarning
from ..web import dicom_json_response
from .examine import InvalidInstance

# WarningReason values (PS3.18 Annex I.2.1, the C-STORE warnings of PS3.4
# Table B.2-1): B000H, the index holds a value read in its older form
# (coerced); B007H, a value does not meet its VR, so the Data Set does not
# match the SOP Class (the code the Azure DICOM service uses, 45063).
COERCION_OF_DATA_ELEMENTS = 0xB000
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007


@dataclass(frozen=True)
class Reference:
    """What the response says of a stored instance (PS3.18 §10.5.3)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    warnings: tuple[AttributeWarning, ...] = ()


def store_response(
    root: str, stored: Sequence[Reference], failed: Sequence[InvalidInstance]
) -> Response:
    """The response module and its status; `root` is the DICOMweb root URL."""
    payload: dict[str, Any] = {}

    studies = {reference.study_instance_uid for reference in stored}
    if len(studies) == 1:
        payload["00081190"] = _url(f"{root}/studies/{studies.pop()}")
    if failed:
        payload["00081198"] = {
            "vr": "SQ",
            "Value": [_failed_item(failure) for failure in failed],
        }
    if stored:
        payload["00081199"] = {
            "vr": "SQ",
            "Value": [_referenced_item(root, reference) for reference in stored],
        }

    # PS3.18 §10.5.3: 200 all stored, 202 some stored or stored with
    # warnings, 409 none stored.
    if not stored:
        status = 409
    elif failed or any(reference.warnings for reference in stored):
        status = 202
    else:
        status = 200
    return dicom_json_response(payload, status_code=status)


def _url(value: str) -> dict[str, Any]:
    return {"vr": "UR", "Value": [value]}


def _uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _referenced_item(root: str, record: Reference) -> dict[str, Any]:
    url = (
        f"{root}/studies/{record.study_instance_uid}"
        f"/series/{record.series_instance_uid}"
        f"/instances/{record.sop_instance_uid}"
    )
    item: dict[str, Any] = {
        "00081150": _uid(record.sop_class_uid),
        "00081155": _uid(record.sop_instance_uid),
        "00081190": _url(url),
    }
    if record.warnings:
        item["00081196"] = {"vr": "US", "Value": [_warning_reason(record.warnings)]}
        item["00741048"] = {
            "vr": "SQ",
            "Value": [_failed_attribute(warning) for warning in record.warnings],
        }
    return item


def _warning_reason(warnings: Sequence[AttributeWarning]) -> int:
    """One WarningReason per instance (VM 1): B007 when some value is not
    indexed at all, B000 when every one was only read in its older form."""
    if all(warning.coerced for warning in warnings):
        return COERCION_OF_DATA_ELEMENTS
    return DATA_SET_DOES_NOT_MATCH_SOP_CLASS


def _failed_attribute(warning: AttributeWarning) -> dict[str, Any]:
    # Offending Element (0000,0901) and Error Comment (0000,0902) are the
    # fields of a DIMSE warning status (PS3.7 §C.4.1); the comment names the
    # attribute and the rule it failed, never its value.
    return {
        "00000901": {"vr": "AT", "Value": [f"{warning.tag:08X}"]},
        "00000902": {"vr": "LO", "Value": [warning.comment]},
    }


def _failed_item(failure: InvalidInstance) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if failure.sop_class_uid:
        item["00081150"] = _uid(failure.sop_class_uid)
    if failure.sop_instance_uid:
        item["00081155"] = _uid(failure.sop_instance_uid)
    item["00081197"] = {"vr": "US", "Value": [failure.reason]}

    # Error Comment (0000,0902, PS3.7 §C.4), as other archives send it, says
    # what was wrong in words; the texts are fixed and carry no values.
    item["00000902"] = {"vr": "LO", "Value": [str(failure)[:64]]}
    return item
