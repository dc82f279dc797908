"""Searchable values checked against the rules of their VR (PS3.5 §6.2).

The index keeps a searchable attribute in a column only when its value is
valid for the attribute's VR; otherwise the column stays empty, so no search
matches the instance on that attribute, and the instance carries an
`AttributeWarning` that STOW-RS answers with (PS3.18 §10.5.3, as the Azure
DICOM service's API v2 "lenient validation" does). The stored file and its
metadata keep the value as it was sent.

Two older forms are read instead of refused: a DA written ``YYYY.MM.DD`` and a
TM written ``HH:MM:SS.frac``, which PS3.5 Table 6.2-1 recommends supporting for
compatibility with ACR-NEMA. The index holds them in the V3 form, so they
range-match, and the warning says so (`coerced`, Warning Reason B000).

Warnings name the attribute and the rule, never the value: values may be
patient data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

# Maximum length in characters of each text VR (PS3.5 Table 6.2-1).
MAX_LENGTH = {"CS": 16, "SH": 16, "LO": 64, "IS": 12}

# IS: an integer from -2^31 to 2^31 - 1; leading and trailing spaces allowed.
_INTEGER = re.compile(r" *([+-]?[0-9]+) *")
_IS_RANGE = range(-(2**31), 2**31)
_US_RANGE = range(0, 2**16)

# CS: upper case letters, digits, space and underscore.
_CODE = re.compile(r"[A-Z0-9 _]*")

# SH, LO, PN: no control character other than ESC (PS3.5 §6.1.3, Table 6.2-1).
_CONTROL = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")

# TM: HH[MM[SS[.F{1-6}]]], hours 00-23, minutes 00-59, seconds 00-60.
_TIME = re.compile(r"([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9]|60)?)?")
_TIME_FRACTION = re.compile(r"([01][0-9]|2[0-3])[0-5][0-9]([0-5][0-9]|60)\.[0-9]{1,6}")

# The ACR-NEMA forms PS3.5 Table 6.2-1 recommends reading.
_OLD_DATE = re.compile(r"([0-9]{4})\.([0-9]{2})\.([0-9]{2})")
_OLD_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}(?:\.[0-9]{1,6})?))?")

# A PN holds up to three component groups of up to five components, each group
# at most 64 characters (PS3.5 §6.2.1).
_PN_GROUPS = 3
_PN_COMPONENTS = 5
_PN_GROUP_LENGTH = 64


@dataclass(frozen=True)
class AttributeWarning:
    """A searchable attribute whose value the index does not hold as sent.

    `coerced` is True when the value was read in its ACR-NEMA form and the
    index holds the V3 form (a coercion, Warning Reason B000); False when the
    index holds nothing for it (Warning Reason B007).
    """

    tag: int
    keyword: str
    rule: str
    coerced: bool = False

    @property
    def tag_text(self) -> str:
        """The tag as ``(gggg,eeee)`` (PS3.5 §7.1.1)."""
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    @property
    def comment(self) -> str:
        """An Error Comment (0000,0902) of at most 64 characters (LO, PS3.7
        §C.4.1): the tag, the keyword and the rule, no value."""
        return f"{self.tag_text} {self.keyword}: {self.rule}"


class IndexValues:
    """The searchable values of `ds`, each checked; `warnings` collects what
    failed its VR's rules."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.warnings: list[AttributeWarning] = []

    def text(self, keyword: str) -> str | None:
        """A CS, SH or LO value within its length and characters, else None."""
        value = self._single(keyword)
        if value is None:
            return None
        vr = dictionary_VR(keyword)
        limit = MAX_LENGTH[vr]
        if len(value) > limit:
            return self._fail(keyword, f"over {limit} characters ({vr})")
        if vr == "CS" and not _CODE.fullmatch(value):
            return self._fail(keyword, "not A-Z 0-9 space _ (CS)")
        if _CONTROL.search(value):
            return self._fail(keyword, f"control character ({vr})")
        return value

    def person_name(self, keyword: str) -> str | None:
        """A PN value of at most three groups of five components, else None."""
        value = self._single(keyword)
        if value is None:
            return None
        groups = value.split("=")
        if len(groups) > _PN_GROUPS:
            return self._fail(keyword, "over 3 groups (PN)")
        if any(len(group.split("^")) > _PN_COMPONENTS for group in groups):
            return self._fail(keyword, "over 5 components (PN)")
        if any(len(group) > _PN_GROUP_LENGTH for group in groups):
            return self._fail(keyword, "group over 64 chars (PN)")
        if _CONTROL.search(value):
            return self._fail(keyword, "control character (PN)")
        return value

    def date(self, keyword: str) -> str | None:
        """A DA value YYYYMMDD naming a real date, else None."""
        value = self._single(keyword)
        if value is None:
            return None
        if _is_date(value):
            return value
        old = _OLD_DATE.fullmatch(value)
        if old and _is_date("".join(old.groups())):
            self._warn(keyword, "indexed as YYYYMMDD", coerced=True)
            return "".join(old.groups())
        return self._fail(keyword, "not a date YYYYMMDD")

    def time(self, keyword: str) -> str | None:
        """A TM value HH[MM[SS[.FFFFFF]]], else None."""
        value = self._single(keyword)
        if value is None:
            return None
        if _is_time(value):
            return value
        old = _OLD_TIME.fullmatch(value)
        if old:
            converted = "".join(part for part in old.groups() if part)
            if _is_time(converted):
                self._warn(keyword, "indexed as HHMMSS.FFFFFF", coerced=True)
                return converted
        return self._fail(keyword, "not a time HHMMSS.FFFFFF")

    def integer(self, keyword: str) -> int | None:
        """An IS or US value in its VR's range, else None."""
        raw = self.ds.get(keyword)
        if _is_empty(raw):
            return None
        if isinstance(raw, MultiValue | list):
            return self._fail(keyword, "several values (VM 1)")
        if dictionary_VR(keyword) == "US":
            if isinstance(raw, int) and raw in _US_RANGE:
                return int(raw)
            return self._fail(keyword, "not 0 to 65535 (US)")

        # pydicom keeps the text it read beside the number it made of it
        # ("1.0" becomes 1); the rule applies to the text.
        text = str(getattr(raw, "original_string", raw)).rstrip("\x00")
        match = _INTEGER.fullmatch(text)
        if match is None:
            return self._fail(keyword, "not an integer (IS)")
        if len(text.strip(" ")) > MAX_LENGTH["IS"]:
            return self._fail(keyword, "over 12 characters (IS)")
        number = int(match.group(1))
        if number not in _IS_RANGE:
            return self._fail(keyword, "out of the IS range")
        return number

    def _single(self, keyword: str) -> str | None:
        """The one value of a VM 1 attribute as text, without its padding;
        None when absent or empty (or several, with a warning)."""
        raw = self.ds.get(keyword)
        if _is_empty(raw):
            return None
        if isinstance(raw, MultiValue | list):
            return self._fail(keyword, "several values (VM 1)")

        # Trailing spaces and NULs are padding (PS3.5 §6.2); the Azure
        # service indexes a NUL-padded value without a warning too.
        text = str(raw).rstrip(" \x00")
        return text or None

    def _warn(self, keyword: str, rule: str, coerced: bool = False) -> None:
        tag = tag_for_keyword(keyword)
        assert tag is not None
        self.warnings.append(AttributeWarning(tag, keyword, rule, coerced))

    def _fail(self, keyword: str, rule: str) -> None:
        self._warn(keyword, rule)
        return None


def _is_empty(value: Any) -> bool:
    return (
        value is None
        or value == ""
        or (isinstance(value, MultiValue | list) and not any(str(v) for v in value))
    )


def _is_date(value: str) -> bool:
    if not (len(value) == 8 and value.isdigit() and value.isascii()):
        return False
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def _is_time(value: str) -> bool:
    return bool(_TIME.fullmatch(value) or _TIME_FRACTION.fullmatch(value))
