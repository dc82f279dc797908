"""A parsed QIDO-RS search: the resource, the matching rules and the paging.

The matching types are those of PS3.4 C.2.2.2; each is a test on one index
column, and a match key holds the tests of which any one must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from .keys import Level, MatchKey


@dataclass(frozen=True)
class Equals:
    """Single Value Matching (PS3.4 C.2.2.2.1); person names come case-folded."""

    value: str | int


@dataclass(frozen=True)
class Wildcard:
    """Wild Card Matching (PS3.4 C.2.2.2.4): ``*`` any run, ``?`` one character."""

    pattern: str


@dataclass(frozen=True)
class UidList:
    """List of UID Matching (PS3.4 C.2.2.2.2)."""

    uids: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    """Range Matching (PS3.4 C.2.2.2.5); an open end is None.

    Both ends are compared as text, which orders DA and TM values correctly;
    an empty value never matches.
    """

    low: str | None
    high: str | None


@dataclass(frozen=True)
class Words:
    """Fuzzy matching of a person name (PS3.18 §8.3.4.2, dicomhub's rule):
    every word is a case-insensitive prefix of some word of the name."""

    words: tuple[str, ...]


Test = Equals | Wildcard | UidList | Range | Words


@dataclass(frozen=True)
class Match:
    """The tests on one match key; an entity matches if any test passes."""

    key: MatchKey
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class Search:
    """One search request, checked and ready to run.

    `study_uid` and `series_uid` come from the resource path; `returned` holds
    the tags to return beyond the level's defaults (match keys and
    includefield), and `include_all` is ``includefield=all``. The flags are
    the parameters of PS3.18 §8.3.4.2, §8.3.4.5 and §8.3.4.6, and `charsets`
    the ``charset`` parameter's values (§8.3.3.2); the answer's Warning
    headers come from them (see ``dicomhub.qido.warnings``).
    """

    level: Level
    study_uid: str | None
    series_uid: str | None
    matches: tuple[Match, ...]
    returned: frozenset[str]
    include_all: bool
    limit: int
    offset: int
    fuzzy: bool = False
    empty_value_matching: bool = False
    multiple_value_matching: bool = False
    charsets: tuple[str, ...] = ()
