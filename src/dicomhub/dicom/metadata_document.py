"""The metadata document of a stored instance (PS3.18 §10.4.1.1.2, Annex F).

WADO-RS metadata answers with each instance's DICOM JSON. Making it means
parsing the stored file with pydicom, so STOW-RS makes it once, when the
instance is stored, and the index keeps it beside the instance's row
(``instance_document``), written in the same transaction: a PUT that replaces
the instance replaces its document, a DELETE removes both, and every replica
that shares the index reads it without touching the blob store.

A document is the instance's DICOM JSON object encoded as the metadata answer
encodes it (compact, keys in tag order), with Available Transfer Syntax UID
(0008,3002) and each BulkDataURI relative to the instance's URL
(``bulkdata/7FE00010``). The URL itself depends on the request (the public
root, ``X-Forwarded-*``), so `public_document` puts it in front of every
BulkDataURI when a document is sent: one text replacement, no JSON parsing.
"""

from __future__ import annotations

import json
from typing import Any

from pydicom.dataset import Dataset

from .dicomjson import to_dicom_json

# Binary values longer than this are BulkDataURIs, not InlineBinary (PS3.18
# F.2.6, F.2.7).
BULK_THRESHOLD = 1024

# Available Transfer Syntax UID (a QIDO-RS instance attribute, PS3.18 §10.6):
# the stored syntax, so a client can ask for frames as stored.
AVAILABLE_TRANSFER_SYNTAX_UID = "00083002"

# Inside a JSON string every quote is escaped, so this text occurs only where
# a BulkDataURI key and its value begin.
_BULK_DATA_URI = '"BulkDataURI":"'


def relative_bulk_uri(path: str) -> str:
    """A BulkDataURI relative to the instance's URL, for `to_dicom_json`."""
    return "bulkdata/" + path


def document_attributes(ds: Dataset) -> dict[str, Any]:
    """The DICOM JSON of `ds` as a document holds it, before `encode_document`.

    Values that `ds` deferred are read only when they are written inline.
    """
    return to_dicom_json(ds, bulk_uri=relative_bulk_uri, bulk_threshold=BULK_THRESHOLD)


def encode_document(attributes: dict[str, Any], transfer_syntax_uid: str) -> str:
    """The document of the DICOM JSON `attributes` (made with `relative_bulk_uri`)."""
    available = {"vr": "UI", "Value": [transfer_syntax_uid]}
    attributes = {**attributes, AVAILABLE_TRANSFER_SYNTAX_UID: available}
    return json.dumps(
        dict(sorted(attributes.items())),
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def public_document(document: str, instance_url: str) -> str:
    """`document` with its BulkDataURIs under `instance_url` (PS3.18 F.2.6)."""
    if _BULK_DATA_URI not in document:
        return document
    base = json.dumps(instance_url + "/", ensure_ascii=False)[1:-1]
    return document.replace(_BULK_DATA_URI, _BULK_DATA_URI + base)


def metadata_array(documents: list[str]) -> bytes:
    """The JSON array of `documents` as UTF-8, the metadata answer's body."""
    return ("[" + ",".join(documents) + "]").encode("utf-8")
