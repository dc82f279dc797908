"""Examining an uploaded instance before it is stored (PS3.18 §10.5).

`examine` reads a received PS3.10 file with pydicom, refuses what cannot be
stored with an `InvalidInstance` carrying its FailureReason code, and builds
the index record of what can.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from ..dicom.frames import check_inflated_size
from ..dicom.metadata_document import document_attributes, encode_document
from ..errors import PayloadTooLarge
from ..index import InstanceRecord, build_record
from ..uids import is_valid_uid, shown, uid_problem

logger = logging.getLogger(__name__)

# FailureReason values (PS3.18 §10.5.3): 272 (0110H, processing failure) and
# 43264 (A900H, the data set is not a valid instance) are DIMSE statuses
# (PS3.7 Annex C, PS3.4 §B.2.3); 43265, 45070 and 45071 are the codes the
# Azure DICOM service answers with, so its clients understand ours.
PROCESSING_FAILURE = 272
INVALID_INSTANCE = 43264
STUDY_MISMATCH = 43265
DUPLICATE_INSTANCE = 45070
CONFLICTING_STUDY = 45071

# Values larger than this are not read into memory while an instance is
# examined; pydicom seeks past them and reads them from the file if asked.
_DEFER_SIZE = 256 * 1024


class InvalidInstance(Exception):
    """A part that cannot be stored; `reason` is its FailureReason code."""

    def __init__(self, reason: int, message: str, sop_class: str = "", sop: str = ""):
        super().__init__(message)
        self.reason = reason
        self.sop_class_uid = sop_class
        self.sop_instance_uid = sop


def examine(path: Path, size: int, study: str | None) -> InstanceRecord:
    """The index record, with its metadata document, of the PS3.10 file at
    `path`, or InvalidInstance.

    `size` is the file's length in bytes; `study` is the StudyInstanceUID of
    the URL (``POST {root}/studies/{study}``), None when the URL names none.
    """
    # pydicom inflates a deflated data set whole; its size is checked first
    # (a few megabytes may inflate to gigabytes).
    try:
        with open(path, "rb") as fp:
            check_inflated_size(fp)
    except PayloadTooLarge as exc:
        raise InvalidInstance(INVALID_INSTANCE, exc.message) from None

    try:
        ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE)
        _check_complete(ds, size)
        transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID") or "")
        uids = {
            keyword: str(ds.get(keyword) or "")
            for keyword in (
                "SOPClassUID",
                "SOPInstanceUID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
            )
        }
    except InvalidInstance:
        raise
    except Exception as exc:
        # pydicom raises many kinds of errors on broken input; every one of
        # them means the part is not a readable DICOM file.
        raise InvalidInstance(
            INVALID_INSTANCE,
            f"not a readable DICOM PS3.10 file ({type(exc).__name__})",
        ) from None

    sop_class, sop = uids["SOPClassUID"], uids["SOPInstanceUID"]
    if not is_valid_uid(transfer_syntax):
        raise InvalidInstance(
            INVALID_INSTANCE,
            "the file meta has no valid TransferSyntaxUID (0002,0010)",
            _safe(sop_class),
            _safe(sop),
        )
    # These UIDs name the stored file's folders (dicomhub.index.records) and
    # its index rows: each must be a UID (PS3.5 §9.1) before it touches either.
    for keyword, value in uids.items():
        problem = uid_problem(value)
        if problem is not None:
            raise InvalidInstance(
                INVALID_INSTANCE,
                f"{keyword} {shown(value)} is missing or not a valid UID: "
                f"{problem} (PS3.5 §9.1)",
                _safe(sop_class),
                _safe(sop),
            )
    if study is not None and uids["StudyInstanceUID"] != study:
        raise InvalidInstance(
            STUDY_MISMATCH,
            "StudyInstanceUID differs from the URL's (PS3.18 §10.5.1)",
            _safe(sop_class),
            _safe(sop),
        )

    # The DICOM JSON is made once: the metadata document keeps it whole
    # (dicomhub.dicom.metadata_document), the index what it searches and
    # returns. One that cannot be made is refused, as before documents.
    try:
        attributes = document_attributes(ds)
        record = build_record(ds, transfer_syntax, size, attributes)
        document = encode_document(attributes, transfer_syntax)
    except Exception as exc:
        raise InvalidInstance(
            INVALID_INSTANCE,
            f"an attribute value cannot be read ({type(exc).__name__})",
            sop_class,
            sop,
        ) from None

    record.metadata_document = document
    return record


def _safe(uid: str) -> str:
    """A UID of the refused file fit for the answer's ReferencedSOPSequence:
    itself when valid, else cut to 64 characters (PS3.5 §9.1)."""
    return uid if is_valid_uid(uid) else uid[:64]


def _check_complete(ds: Dataset, size: int) -> None:
    """Refuse a file whose last values run past its end (a truncated upload).

    Values over the defer size are skipped by seeking, which never fails, so
    their extent is checked against the file's size here. A deflated data set
    (PS3.5 §A.5) is read from its inflated stream, whose offsets say nothing
    about the file; inflating would have failed on a truncated one.
    """
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return
    for tag in ds.keys():
        raw = ds.get_item(tag)
        length = getattr(raw, "length", 0) or 0
        tell = getattr(raw, "value_tell", None)
        if tell is None or length == 0xFFFFFFFF:
            continue
        if tell + length > size:
            raise InvalidInstance(
                INVALID_INSTANCE,
                f"the file is truncated: element {tag} runs past its end",
                _safe(str(ds.get("SOPClassUID") or "")),
                _safe(str(ds.get("SOPInstanceUID") or "")),
            )
