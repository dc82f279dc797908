"""DICOM JSON (PS3.18 Annex F) from pydicom datasets.

Placeholder built on pydicom's own converter; see the module that replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset


def to_dicom_json(
    ds: Dataset,
    *,
    bulk_uri: Callable[[str], str] | None = None,
    bulk_threshold: int = 1024,
) -> dict[str, Any]:
    """The DICOM JSON object of `ds`.

    Binary values longer than `bulk_threshold` bytes become a BulkDataURI made by
    `bulk_uri(tag_path)` (tag path such as ``"7FE00010"`` or
    ``"00540016/0/00181072"``); without `bulk_uri` they are left out.
    """

    def handler(elem: Any) -> str:
        return bulk_uri(f"{elem.tag:08X}") if bulk_uri else ""

    return ds.to_json_dict(
        bulk_data_threshold=bulk_threshold, bulk_data_element_handler=handler
    )
