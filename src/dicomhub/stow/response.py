"""The Store Instances Response Module (PS3.18 §10.5.3) of a STOW-RS request.

The answer lists the stored instances in ReferencedSOPSequence (0008,1199)
and the refused ones, each with its FailureReason, in FailedSOPSequence
(0008,1198), as DICOM JSON (PS3.18 Annex F); its status says whether all,
some or none were stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ..web import dicom_json_response
from .examine import InvalidInstance


@dataclass(frozen=True)
class Reference:
    """What the response says of a stored instance (PS3.18 §10.5.3)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str


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

    # PS3.18 §10.5.3: 200 all stored, 202 some stored, 409 none stored.
    if not failed:
        status = 200
    elif stored:
        status = 202
    else:
        status = 409
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
    return {
        "00081150": _uid(record.sop_class_uid),
        "00081155": _uid(record.sop_instance_uid),
        "00081190": _url(url),
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
