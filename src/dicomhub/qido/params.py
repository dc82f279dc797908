"""From a QIDO-RS request's query parameters to a checked `Search`.

PS3.18 §8.3.4 defines the parameters: ``{attributeID}={value}`` match keys,
``fuzzymatching``, ``includefield``, ``limit`` and ``offset``. Match values
follow PS3.4 C.2.2.2; anything that cannot be understood is a 400 whose
message names the parameter, never its value (values can be patient data).

dicomhub's choices where the standard leaves room:

- an attribute given twice (also once by tag and once by keyword) is a list:
  an entity matches if any value does; ``limit``, ``offset`` and the matching
  flags given twice with different values are a 400;
- UID lists may be separated by commas or backslashes (OHIF sends the latter);
  CS and number values may be listed the same way, other text with ``\\``;
- person names match case-insensitively, in every script, and with
  ``fuzzymatching=true`` by word prefix (see `Words`);
- ``limit`` defaults to 100 and is capped at 200, as in the Azure DICOM
  service; the cap is announced with a Warning header, never a 400;
- ``emptyvaluematching`` and ``multiplevaluematching`` (PS3.18 §8.3.4.5-6) are
  understood but not performed: ``true`` gets the standard's Warning.

Known limits: no matching inside sequences; DT attributes are not indexed;
StudyDate and StudyTime ranges are matched each on its own, never combined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from ..errors import BadRequest
from ..uids import is_valid_uid
from .keys import (
    LEVELS,
    MATCH_KEYS,
    Level,
    MatchKey,
    describe,
    resolve_tag,
)
from .model import Equals, Match, Range, Search, Test, UidList, Wildcard, Words

DEFAULT_LIMIT = 100
MAX_LIMIT = 200

# Past any index's row count; also keeps the offset inside a 64-bit integer.
MAX_OFFSET = 2**62

# Content negotiation parameters (PS3.18 §8.3.3); `accept` is the service's.
NEGOTIATION_PARAMETERS = frozenset({"accept", "charset"})

PARAMETER_NAMES = (
    "an attribute tag or keyword, includefield, fuzzymatching, "
    "emptyvaluematching, multiplevaluematching, limit or offset"
)

_LIST_SEPARATORS = re.compile(r"[,\\]")
_VALUE_SEPARATOR = re.compile(r"\\")
_WORD_SEPARATORS = re.compile(r"[\s^=,]+")
_DIGITS = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
# TM: HH, HHMM, HHMMSS or HHMMSS.F to HHMMSS.FFFFFF (PS3.5 Table 6.2-1).
_TIME = re.compile(r"([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9](\.[0-9]{1,6})?)?)?")


def parse_search(
    level: Level,
    study_uid: str | None,
    series_uid: str | None,
    parameters: Iterable[tuple[str, str]],
) -> Search:
    """Check a search's path UIDs and query parameters; BadRequest otherwise."""
    values: dict[str, list[str]] = {}
    for name, value in parameters:
        values.setdefault(name, []).append(value)

    limit = _limit(_single("limit", values.pop("limit", [])))
    offset = _offset(_single("offset", values.pop("offset", [])))
    fuzzy = _flag("fuzzymatching", values.pop("fuzzymatching", []), "8.3.4.2")
    empty = _flag("emptyvaluematching", values.pop("emptyvaluematching", []), "8.3.4.5")
    multiple = _flag(
        "multiplevaluematching", values.pop("multiplevaluematching", []), "8.3.4.6"
    )
    include_all, included = _includefield(values.pop("includefield", []))
    charsets = tuple(
        item.strip().lower()
        for value in values.pop("charset", [])
        for item in value.split(",")
        if item.strip()
    )
    for name in NEGOTIATION_PARAMETERS:
        values.pop(name, None)

    # A tag and its keyword name the same key; their values form one list.
    by_tag: dict[str, list[str]] = {}
    for name, given in values.items():
        by_tag.setdefault(_attribute(name), []).extend(given)

    matches: list[Match] = []
    returned = set(included)
    for tag, given in by_tag.items():
        returned.add(tag)
        if all(_is_universal(value.strip()) for value in given):
            # Universal Matching (PS3.4 C.2.2.2.3) needs no index: any known
            # attribute may be asked for this way, and is only returned.
            continue
        match = _match(_match_key(tag, level), given, fuzzy)
        if match is not None:
            matches.append(match)

    return Search(
        level=level,
        study_uid=_path_uid(study_uid, "StudyInstanceUID"),
        series_uid=_path_uid(series_uid, "SeriesInstanceUID"),
        matches=tuple(matches),
        returned=frozenset(returned),
        include_all=include_all,
        limit=limit,
        offset=offset,
        fuzzy=fuzzy,
        empty_value_matching=empty,
        multiple_value_matching=multiple,
        charsets=charsets,
    )


def _shown(name: str) -> str:
    """A parameter name fit for an error message."""
    if len(name) <= 64 and name.isprintable():
        return f"'{name}'"
    return "a parameter with an over-long or unprintable name"


def _keyword(item: str) -> str:
    """An includefield value fit for an error message: repeated only when it
    has the shape of a keyword or tag, since a mistyped value may be a search
    value, which may be patient data."""
    if len(item) <= 64 and item.isascii() and item.isalnum():
        return f"'{item}'"
    return "a value that is neither a tag nor a keyword"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _path_uid(uid: str | None, name: str) -> str | None:
    if uid is not None and not is_valid_uid(uid):
        raise BadRequest(
            f"the {name} in the URL is not a valid UID (PS3.5 §9.1: digits and "
            "dots, at most 64 characters)"
        )
    return uid


def _single(name: str, given: list[str]) -> list[str]:
    """A parameter that takes one value (Azure: allowed count 0..1); the same
    value repeated is that value."""
    if len(set(given)) > 1:
        raise BadRequest(
            f"{name} was given {len(given)} times with different values; "
            "give it once (PS3.18 §8.3.4)"
        )
    return given


def _limit(given: list[str]) -> int:
    if not given:
        return DEFAULT_LIMIT
    text = given[-1]
    if not _DIGITS.fullmatch(text) or not text.strip("0"):
        raise BadRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT} (PS3.18 §8.3.4.4); "
            "larger values are capped"
        )
    # A number this long is past the cap anyway (and past int()'s digit limit).
    return MAX_LIMIT if len(text) > 18 else min(int(text), MAX_LIMIT)


def _offset(given: list[str]) -> int:
    if not given:
        return 0
    text = given[-1]
    if not _DIGITS.fullmatch(text):
        raise BadRequest(
            "offset must be a whole number of matches to skip, 0 or more "
            "(PS3.18 §8.3.4.4)"
        )
    return MAX_OFFSET if len(text) > 18 else min(int(text), MAX_OFFSET)


def _flag(name: str, given: list[str], section: str) -> bool:
    """A true/false parameter, false when absent (PS3.18 §8.3.4.2, .5, .6)."""
    texts = {text.lower() for text in given}
    if not texts <= {"true", "false"}:
        raise BadRequest(f"{name} must be true or false (PS3.18 §{section})")
    if len(texts) > 1:
        raise BadRequest(f"{name} was given as both true and false; give it once")
    return texts == {"true"}


def _includefield(given: list[str]) -> tuple[bool, set[str]]:
    """``includefield`` values: repeated or comma-separated tags, keywords or
    ``all`` (PS3.18 §8.3.4.3). A sequence path includes its whole sequence."""
    include_all = False
    tags: set[str] = set()
    for value in given:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item.lower() == "all":
                include_all = True
                continue
            tag = resolve_tag(item.split(".")[0])
            if tag is None:
                raise BadRequest(
                    f"includefield names an unknown attribute, {_keyword(item)}; "
                    "give a tag such as 00100010, a keyword such as PatientName, "
                    "or all"
                )
            tags.add(tag)
    return include_all, tags


def _attribute(name: str) -> str:
    """The tag of a match parameter's attribute; 400 if it names none."""
    tag = resolve_tag(name)
    if tag is not None:
        return tag
    if "." in name:
        raise BadRequest(
            f"{_shown(name)}: matching on attributes inside sequences is not "
            "supported; match on a top-level attribute"
        )
    raise BadRequest(
        f"unknown query parameter {_shown(name)}: expected {PARAMETER_NAMES}"
    )


def _match_key(tag: str, level: Level) -> MatchKey:
    key = MATCH_KEYS.get(tag)
    if key is None:
        queryable = ", ".join(
            k.keyword
            for k in MATCH_KEYS.values()
            if LEVELS.index(k.level) <= LEVELS.index(level)
        )
        raise BadRequest(
            f"{describe(tag)} is not a queryable attribute; a {level} search "
            f"matches on {queryable}"
        )
    if LEVELS.index(key.level) > LEVELS.index(level):
        raise BadRequest(
            f"{describe(tag)} is {_article(key.level)} {key.level} attribute and "
            "cannot be matched in "
            f"a {level} search; search the {key.level} resource instead"
            + (" or match ModalitiesInStudy" if key.keyword == "Modality" else "")
        )
    return key


def _match(key: MatchKey, given: list[str], fuzzy: bool) -> Match | None:
    """The tests for a key's values; None for Universal Matching."""
    tests: list[Test] = []
    for value in given:
        parsed = _tests(key, value.strip(), fuzzy)
        if parsed is None:
            return None
        tests.extend(parsed)
    return Match(key, tuple(tests))


def _is_universal(value: str) -> bool:
    # PS3.4 C.2.2.2.3: a zero-length value matches every entity, and a value
    # of only "*" wildcards matches every value, the empty one included.
    return value.strip("*") == ""


def _tests(key: MatchKey, value: str, fuzzy: bool) -> list[Test] | None:
    if _is_universal(value):
        return None
    if key.vr == "UI":
        return _uid_list(key, value)
    if key.vr in ("DA", "TM"):
        return [_date_or_time(key, value)]
    if key.vr == "PN" and fuzzy:
        words = tuple(w for w in _WORD_SEPARATORS.split(value.casefold()) if w)
        return [Words(words)] if words else None

    # Values of a multi-valued text attribute are separated by "\" (PS3.5
    # §6.4); codes and numbers hold no commas, so a comma may separate them too.
    separator = _LIST_SEPARATORS if key.vr in ("CS", "IS", "US") else _VALUE_SEPARATOR
    items = [item.strip() for item in separator.split(value) if item.strip()]
    if any(_is_universal(item) for item in items):
        return None
    if key.vr in ("IS", "US"):
        return [_integer(key, item) for item in items]
    if key.vr == "PN":
        items = [item.casefold() for item in items]
    return [
        Wildcard(item) if "*" in item or "?" in item else Equals(item) for item in items
    ]


def _uid_list(key: MatchKey, value: str) -> list[Test] | None:
    uids = tuple(u.strip() for u in _LIST_SEPARATORS.split(value) if u.strip())
    if not uids:
        return None
    if not all(is_valid_uid(uid) for uid in uids):
        raise BadRequest(
            f"{describe(key.tag)} must be a UID or a list of UIDs separated by "
            "commas or backslashes (PS3.4 C.2.2.2.2); wildcards are not allowed "
            "for UIDs"
        )
    return [UidList(uids)]


def _integer(key: MatchKey, value: str) -> Test:
    if not _INTEGER.fullmatch(value):
        raise BadRequest(
            f"{describe(key.tag)} must be a whole number (single value matching, "
            "PS3.4 C.2.2.2.1)"
        )
    return Equals(int(value))


def _date_or_time(key: MatchKey, value: str) -> Test:
    """Single Value or Range Matching on a DA or TM (PS3.4 C.2.2.2.5)."""
    check = _check_date if key.vr == "DA" else _check_time
    form = "YYYYMMDD" if key.vr == "DA" else "HHMMSS.FFFFFF"
    if "-" not in value:
        if not check(value):
            raise _bad_date_or_time(key, form)
        return Equals(value)

    low, _, high = value.partition("-")
    if (not low and not high) or not all(check(part) for part in (low, high) if part):
        raise _bad_date_or_time(key, form)
    if key.vr == "TM":
        high = _end_of_time(high) if high else ""
    if low and high and low > high:
        raise BadRequest(
            f"{describe(key.tag)}: the range ends before it starts; give the "
            "earlier value first (PS3.4 C.2.2.2.5)"
        )
    return Range(low or None, high or None)


def _bad_date_or_time(key: MatchKey, form: str) -> BadRequest:
    return BadRequest(
        f"{describe(key.tag)} must be a value {form}, or a range of them written "
        "a-b, -b or a- (PS3.4 C.2.2.2.5)"
    )


def _check_date(value: str) -> bool:
    if not (len(value) == 8 and value.isdigit() and value.isascii()):
        return False
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def _check_time(value: str) -> bool:
    return _TIME.fullmatch(value) is not None


def _end_of_time(value: str) -> str:
    """The latest time a partial TM stands for: ``14`` is up to 14:59:59.999999."""
    if len(value) < 6:
        value += "5959"[len(value) - 2 :]
    if "." not in value:
        value += "."
    return value.ljust(13, "9")
