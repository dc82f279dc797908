"""DICOM JSON (PS3.18 Annex F) from pydicom datasets.

A walker of its own rather than pydicom's ``Dataset.to_json_dict``, which keeps
empty items of a multi-valued attribute as ``""`` instead of ``null``, keeps the
original Specific Character Set next to text that is now Unicode, and would
have to read every deferred value to decide whether it is bulk data.

The rules (PS3.18 F.2):

- keys are 8 upper-case hex digits, every attribute has ``vr`` (F.2.2);
- an empty attribute is ``{"vr": ...}`` alone, an empty item in a multi-valued
  attribute is ``null`` (F.2.5);
- PN values are objects with ``Alphabetic``, ``Ideographic`` and ``Phonetic``,
  empty groups left out (F.2.2);
- IS, DS, SS, US, SL, UL, FL, FD, SV, UV are JSON numbers, except a DS whose
  text a double cannot hold exactly, SV/UV beyond ±(2^53-1), and the float
  values NaN and ±Infinity, which JSON cannot express; those stay strings;
- AT values are 8 hex digit strings (F.2.3.1);
- binary values (OB, OD, OF, OL, OV, OW, UN) up to the threshold are
  ``InlineBinary`` base64 in little endian byte order, longer ones a
  ``BulkDataURI`` (F.2.7, F.2.6);
- text is Unicode, decoded through the Specific Character Set, and the JSON is
  UTF-8, so (0008,0005) is written as ``["ISO_IR 192"]``.

Known limit: only binary VRs become bulk data; long text or numeric arrays are
always written inline.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from ..errors import BadRequest

BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
INTEGER_VRS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})
FLOAT_VRS = frozenset({"FL", "FD"})

# Word size of each binary VR, for swapping big endian values (PS3.5 §7.3).
_WORD_SIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}

# The largest integer a JSON reader that uses doubles (JavaScript) holds exactly.
_MAX_SAFE_INTEGER = 2**53 - 1

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_TAG_TEXT = re.compile(r"[0-9A-Fa-f]{8}")

SPECIFIC_CHARACTER_SET = 0x00080005
UTF8_CHARACTER_SET = "ISO_IR 192"

BulkUri = Callable[[str], str]


def to_dicom_json(
    ds: Dataset,
    *,
    bulk_uri: BulkUri | None = None,
    bulk_threshold: int = 1024,
) -> dict[str, Any]:
    """The DICOM JSON object of `ds`.

    Binary values longer than `bulk_threshold` bytes become a BulkDataURI made by
    `bulk_uri(tag_path)` (tag path such as ``"7FE00010"`` or
    ``"00540016/0/00181072"``: tags and 0-based item numbers); without `bulk_uri`
    they are left out. Values that `ds` deferred (``dcmread(defer_size=...)``)
    are read only when they are written inline.
    """
    little_endian = _is_little_endian(ds)
    walker = _Walker(bulk_uri, bulk_threshold, little_endian)
    return walker.dataset(ds, "")


def _is_little_endian(ds: Dataset) -> bool:
    encoding = getattr(ds, "original_encoding", None)
    if encoding and encoding[1] is not None:
        return bool(encoding[1])
    return True


class _Walker:
    def __init__(self, bulk_uri: BulkUri | None, threshold: int, little: bool):
        self.bulk_uri = bulk_uri
        self.threshold = threshold
        self.little_endian = little

    def dataset(self, ds: Dataset, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for tag in sorted(ds.keys()):
            # Group lengths are retired and the trailing padding is not an
            # attribute (PS3.5 §7.2, PS3.10 §7.2); neither belongs in DICOM JSON.
            if tag.element == 0 or tag == 0xFFFCFFFC or tag.group == 0x0002:
                continue

            key = f"{tag:08X}"
            bulk = self._bulk(ds.get_item(tag), path + key)
            if bulk is not None:
                if bulk:
                    out[key] = bulk
                continue
            out[key] = self.attribute(ds[tag], path + key)
        return out

    def _bulk(
        self, raw: DataElement | RawDataElement, path: str
    ) -> dict[str, Any] | None:
        """The bulk data form of a long binary value, read or not; ``{}`` to
        leave it out; None when the value is to be written inline."""
        vr = _raw_vr(raw)
        if vr not in BINARY_VRS:
            return None
        if isinstance(raw, RawDataElement):
            length = raw.length
        else:
            length = len(raw.value) if isinstance(raw.value, bytes) else 0
        if length <= self.threshold:
            return None
        if self.bulk_uri is None:
            return {}
        return {"vr": vr, "BulkDataURI": self.bulk_uri(path)}

    def attribute(self, elem: DataElement, path: str) -> dict[str, Any]:
        vr = _final_vr(elem)
        if vr == "SQ":
            items = [
                self.dataset(item, f"{path}/{number}/")
                for number, item in enumerate(elem.value or [])
            ]
            return {"vr": vr, "Value": items} if items else {"vr": vr}

        if elem.tag == SPECIFIC_CHARACTER_SET:
            # The text below is Unicode now and the JSON is UTF-8.
            return {"vr": vr, "Value": [UTF8_CHARACTER_SET]}

        if elem.is_empty:
            return {"vr": vr}

        if vr in BINARY_VRS:
            data = _little_endian_bytes(elem.value, vr, self.little_endian)
            return {"vr": vr, "InlineBinary": base64.b64encode(data).decode("ascii")}

        values = [_json_value(vr, value) for value in _values(elem.value)]
        if all(value is None for value in values):
            return {"vr": vr}
        return {"vr": vr, "Value": values}


def _raw_vr(raw: DataElement | RawDataElement) -> str:
    """The VR of an element that may not have been converted yet."""
    if raw.VR and raw.VR != "UN":
        return str(raw.VR)

    # Implicit VR leaves the VR to the dictionary, and pydicom replaces UN by
    # the dictionary's VR when it converts the element (PS3.5 §6.2.2).
    try:
        vr = dictionary_VR(raw.tag)
    except KeyError:
        return "UN"
    # Implicit VR files leave "OB or OW" open; pixel data is OW there (PS3.5 A.1).
    return "OW" if "OW" in vr else vr


def _final_vr(elem: DataElement) -> str:
    vr = str(elem.VR)
    if " or " in vr:
        return "OW" if "OW" in vr else "UN"
    return vr


def _values(value: Any) -> Iterable[Any]:
    if isinstance(value, MultiValue | list | tuple):
        return value
    return [value]


def _little_endian_bytes(data: bytes, vr: str, little_endian: bool) -> bytes:
    """InlineBinary is little endian (PS3.18 F.2.7); swap words of big endian
    sources."""
    size = _WORD_SIZE.get(vr)
    if little_endian or size is None or len(data) % size:
        return bytes(data)
    swapped = bytearray(len(data))
    for start in range(size):
        swapped[start::size] = data[size - 1 - start :: size]
    return bytes(swapped)


def _json_value(vr: str, value: Any) -> Any:
    """One value of a multi-valued attribute; None for an empty one (F.2.5)."""
    if value is None or value == "":
        return None
    if vr == "PN":
        return person_name(value)
    if vr == "AT":
        return f"{int(value):08X}"
    if vr == "DS":
        return decimal_string(value)
    if vr in INTEGER_VRS:
        return _integer(value)
    if vr in FLOAT_VRS:
        return _float(float(value))
    return str(value)


def person_name(value: PersonName | str) -> dict[str, str] | None:
    """The PN object (PS3.18 F.2.2): the groups with text, empty ones left out."""
    if not isinstance(value, PersonName):
        value = PersonName(str(value))
    groups = {
        "Alphabetic": value.alphabetic,
        "Ideographic": value.ideographic,
        "Phonetic": value.phonetic,
    }
    found = {name: text for name, text in groups.items() if text}
    return found or None


def decimal_string(value: Any) -> int | float | str:
    """A DS as a JSON number when a double holds it exactly, else its text."""
    text = str(getattr(value, "original_string", None) or value).strip()
    if _INTEGER_TEXT.fullmatch(text):
        return _integer(int(text))
    try:
        number = float(text)
        exact = Decimal(text) == Decimal(repr(number))
    except (ValueError, InvalidOperation):
        return text
    return number if exact and math.isfinite(number) else text


def _integer(value: Any) -> int | str:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    if abs(number) > _MAX_SAFE_INTEGER:
        return str(number)
    return number


def _float(number: float) -> float | str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def parse_tag_path(text: str) -> list[int]:
    """The steps of a tag path made by `to_dicom_json`: tags, and 0-based item
    numbers after each sequence tag (``"00540016/0/00181072"``)."""
    pieces = text.strip("/").split("/")
    steps = []
    for position, piece in enumerate(pieces):
        is_tag = position % 2 == 0
        if is_tag and _TAG_TEXT.fullmatch(piece):
            steps.append(int(piece, 16))
        elif not is_tag and piece.isdigit():
            steps.append(int(piece))
        else:
            raise BadRequest(
                "a bulk data path is tags of 8 hex digits with item numbers "
                "between them, for example 7FE00010 or 00540016/0/00181072"
            )
    if len(steps) % 2 == 0:
        raise BadRequest("a bulk data path ends with a tag, not an item number")
    return steps


def value_at(ds: Dataset, steps: list[int]) -> bytes | None:
    """The binary value at the tag path `steps`, little endian; None when there
    is none."""
    little_endian = _is_little_endian(ds)
    for position in range(0, len(steps) - 1, 2):
        tag, number = steps[position], steps[position + 1]
        if tag not in ds or ds[tag].VR != "SQ" or number >= len(ds[tag].value):
            return None
        ds = ds[tag].value[number]

    tag = steps[-1]
    if tag not in ds:
        return None
    elem = ds[tag]
    vr = _final_vr(elem)
    if vr not in BINARY_VRS or not isinstance(elem.value, bytes):
        return None
    return _little_endian_bytes(elem.value, vr, little_endian)
