"""The SQL of QIDO-RS searches, on the index tables of ``schema``.

All filtering, paging and counting happens in the database: a search selects
one page of the level's rows in a fixed order (primary keys, grouped by the
parent entity), so that paging through a result set that does not change
returns every entity exactly once (PS3.18 §8.3.4.4.1); the per-study and
per-series aggregates are then computed for that page only.

Wildcards (PS3.4 C.2.2.2.4) become GLOB patterns on SQLite, which compare
case-sensitively and can use an index for a literal prefix, and LIKE patterns
with escaped ``%``, ``_`` and ``\\`` elsewhere. Person names are matched on
their case-folded column, so their matching ignores case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    and_,
    distinct,
    false,
    func,
    or_,
    select,
)

from ..qido.keys import LEVELS, MODALITIES_IN_STUDY, MatchKey
from ..qido.model import Equals, Match, Range, Search, Test, UidList, Wildcard, Words
from .schema import instance, series, study

TABLES = {"study": study, "series": series, "instance": instance}


@dataclass
class Found:
    """One matching entity, with the UIDs and attributes of its level and
    the levels above it (None below the search's level)."""

    study_pk: int
    study_instance_uid: str
    study_attrs: dict[str, Any]
    series_pk: int | None = None
    series_instance_uid: str | None = None
    series_attrs: dict[str, Any] | None = None
    sop_instance_uid: str | None = None
    instance_attrs: dict[str, Any] | None = None


@dataclass
class StudyAggregate:
    """What a study's series say about it (PS3.4 Table C.3-1)."""

    series: int = 0
    instances: int = 0
    modalities: list[str] = field(default_factory=list)


@dataclass
class SearchPage:
    """A page of results; `more` is True when matches remain past it."""

    found: list[Found]
    more: bool
    studies: dict[int, StudyAggregate]
    series_instances: dict[int, int]


def run_search(
    engine: Engine,
    search: Search,
    *,
    study_aggregates: bool,
    series_aggregates: bool,
) -> SearchPage:
    """One page of `search`, with the aggregates asked for."""
    level = TABLES[search.level]

    # First the page's primary keys alone, which the indexes on the parent
    # keys often answer without reading a row (deep offsets stay cheap);
    # one more than the limit tells whether matches remain.
    page_keys = (
        select(level.c.pk)
        .select_from(_source(search.level))
        .where(*_conditions(search, engine.dialect.name))
        .order_by(*ORDER[search.level])
        .limit(search.limit + 1)
        .offset(search.offset)
    )

    # One connection, one transaction: the page, its rows and its aggregates
    # come from the same snapshot of the index.
    with engine.connect() as conn:
        pks = list(conn.execute(page_keys).scalars())
        more = len(pks) > search.limit
        pks = pks[: search.limit]

        rows = (
            conn.execute(_select(search.level).where(level.c.pk.in_(pks)))
            if pks
            else []
        )
        by_pk = {row[0]: _found(row[1:], search.level) for row in rows}
        found = [by_pk[pk] for pk in pks]

        studies = (
            _study_aggregates(conn, {f.study_pk for f in found})
            if study_aggregates
            else {}
        )
        series_instances = (
            _series_aggregates(conn, {f.series_pk for f in found if f.series_pk})
            if series_aggregates
            else {}
        )
    return SearchPage(found, more, studies, series_instances)


# A stable order that the indexes on the parent keys serve: studies as
# stored, series grouped by study, instances grouped by series.
ORDER = {
    "study": (study.c.pk,),
    "series": (series.c.study_pk, series.c.pk),
    "instance": (instance.c.series_pk, instance.c.pk),
}


def _source(level: str) -> Any:
    """The level's table joined to those of the levels above it."""
    if level == "study":
        return study
    if level == "series":
        return series.join(study, study.c.pk == series.c.study_pk)
    return instance.join(series, series.c.pk == instance.c.series_pk).join(
        study, study.c.pk == series.c.study_pk
    )


def _select(level: str) -> Select[Any]:
    """The level's primary key, then what `_found` reads."""
    columns: list[Any] = [
        TABLES[level].c.pk,
        study.c.pk,
        study.c.study_instance_uid,
        study.c.attrs,
    ]
    if level in ("series", "instance"):
        columns += [series.c.pk, series.c.series_instance_uid, series.c.attrs]
    if level == "instance":
        columns += [instance.c.sop_instance_uid, instance.c.attrs]
    return select(*columns).select_from(_source(level))


def _found(row: Any, level: str) -> Found:
    found = Found(row[0], row[1], json.loads(row[2]))
    if level in ("series", "instance"):
        found.series_pk = row[3]
        found.series_instance_uid = row[4]
        found.series_attrs = json.loads(row[5])
    if level == "instance":
        found.sop_instance_uid = row[6]
        found.instance_attrs = json.loads(row[7])
    return found


def _conditions(search: Search, dialect: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if search.study_uid is not None:
        conditions.append(study.c.study_instance_uid == search.study_uid)
    if search.series_uid is not None:
        conditions.append(series.c.series_instance_uid == search.series_uid)
    for match in search.matches:
        assert LEVELS.index(match.key.level) <= LEVELS.index(search.level)
        conditions.append(_match(match, dialect))
    return conditions


def _match(match: Match, dialect: str) -> ColumnElement[bool]:
    key = match.key
    if key.tag == MODALITIES_IN_STUDY:
        # PS3.4 C.6.1.1.3: a study matches if any of its series has a
        # matching Modality.
        matching = series.alias("matching_series")
        tests = [_test(matching.c.modality, t, key, dialect) for t in match.tests]
        return study.c.pk.in_(select(matching.c.study_pk).where(or_(*tests)))

    table = TABLES[key.level]
    assert key.column is not None
    column = table.c[key.column]
    return or_(*(_test(column, t, key, dialect) for t in match.tests))


def _test(column: Any, test: Test, key: MatchKey, dialect: str) -> ColumnElement[bool]:
    person_name = key.vr == "PN"
    match test:
        case Equals(value=value):
            if person_name and isinstance(value, str) and "=" not in value:
                # A name without "=" is the alphabetic component group
                # (PS3.5 §6.2.1.2): it also matches a stored name that has
                # ideographic or phonetic groups after its alphabetic one.
                return or_(column == value, _wildcard(column, value + "=*", dialect))
            return column == value
        case Wildcard(pattern=pattern):
            condition = _wildcard(column, pattern, dialect)
            if person_name and "=" not in pattern and not pattern.endswith("*"):
                condition = or_(condition, _wildcard(column, pattern + "=*", dialect))
            return condition
        case UidList(uids=uids):
            return column.in_(uids)
        case Range(low=low, high=high):
            bounds = []
            if low is not None:
                bounds.append(column >= low)
            if high is not None:
                bounds.append(column <= high)
            return and_(*bounds)
        case Words(words=words):
            # The words column holds " word word ...": a query word is a
            # prefix of a name word when " " + word starts some run of it.
            assert key.words_column is not None
            words_column = column.table.c[key.words_column]
            return and_(*(_wildcard(words_column, f"* {w}*", dialect) for w in words))
    return false()


def _wildcard(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    """`column` matches a DICOM wildcard pattern; every other character is
    literal (PS3.4 C.2.2.2.4)."""
    if dialect == "sqlite":
        # In GLOB only *, ? and [ are special; "[[]" is a literal "[".
        return column.op("GLOB", is_comparison=True)(pattern.replace("[", "[[]"))
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = escaped.replace("*", "%").replace("?", "_")
    return column.like(like, escape="\\")


def _study_aggregates(conn: Any, pks: set[int]) -> dict[int, StudyAggregate]:
    """Series and instance counts and the modalities of each study in `pks`."""
    aggregates = {pk: StudyAggregate() for pk in pks}
    if not pks:
        return aggregates

    counts = (
        select(
            series.c.study_pk,
            func.count(distinct(series.c.pk)),
            func.count(instance.c.pk),
        )
        .select_from(series.join(instance, instance.c.series_pk == series.c.pk))
        .where(series.c.study_pk.in_(pks))
        .group_by(series.c.study_pk)
    )
    for study_pk, n_series, n_instances in conn.execute(counts):
        aggregates[study_pk].series = n_series
        aggregates[study_pk].instances = n_instances

    modalities = (
        select(series.c.study_pk, series.c.modality)
        .where(series.c.study_pk.in_(pks), series.c.modality.is_not(None))
        .distinct()
        .order_by(series.c.study_pk, series.c.modality)
    )
    for study_pk, modality in conn.execute(modalities):
        aggregates[study_pk].modalities.append(modality)
    return aggregates


def _series_aggregates(conn: Any, pks: set[int]) -> dict[int, int]:
    """The number of instances of each series in `pks`."""
    if not pks:
        return {}
    counts = (
        select(instance.c.series_pk, func.count())
        .where(instance.c.series_pk.in_(pks))
        .group_by(instance.c.series_pk)
    )
    return {pk: n for pk, n in conn.execute(counts)}
