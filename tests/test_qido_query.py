"""The parts of a QIDO-RS search below HTTP: parameter parsing (PS3.4
C.2.2.2), the SQL on an index filled directly, and the LIKE form of wildcards
for databases other than SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import column
from sqlalchemy.dialects import postgresql

from dicomhub.errors import BadRequest
from dicomhub.index import SqlIndex, build_record
from dicomhub.index.query import _wildcard, run_search
from dicomhub.qido.keys import MATCH_KEYS
from dicomhub.qido.model import Equals, Range, UidList, Wildcard, Words
from dicomhub.qido.params import MAX_LIMIT, parse_search
from dicomhub.qido.results import build_item, return_fields

from .dicomdata import fresh


def matching_tests(parameters: list[tuple[str, str]], level: str = "study") -> list:
    search = parse_search(level, None, None, parameters)  # type: ignore[arg-type]
    return [test for match in search.matches for test in match.tests]


def test_values_become_the_matching_types_of_ps3_4() -> None:
    assert matching_tests([("StudyDate", "20240101")]) == [Equals("20240101")]
    assert matching_tests([("StudyDate", "20240101-")]) == [Range("20240101", None)]
    assert matching_tests([("StudyDate", "-20240101")]) == [Range(None, "20240101")]
    assert matching_tests([("StudyTime", "07-0730")]) == [Range("07", "073059.999999")]
    assert matching_tests([("StudyInstanceUID", "1.2, 1.3\\1.4")]) == [
        UidList(("1.2", "1.3", "1.4"))
    ]
    assert matching_tests([("PatientName", "DOE^J*")]) == [Wildcard("doe^j*")]
    assert matching_tests([("PatientName", "Straße")]) == [Equals("strasse")]
    assert matching_tests([("PatientName", "Doe^John"), ("fuzzymatching", "true")]) == [
        Words(("doe", "john"))
    ]
    assert matching_tests([("AccessionNumber", "a\\b*")]) == [
        Equals("a"),
        Wildcard("b*"),
    ]
    assert matching_tests([("AccessionNumber", "a,b")]) == [Equals("a,b")]
    assert matching_tests([("ModalitiesInStudy", "CT,MR")]) == [
        Equals("CT"),
        Equals("MR"),
    ]
    assert matching_tests([("SeriesNumber", "+3")], "series") == [Equals(3)]
    assert matching_tests([("PatientID", "")]) == []
    assert matching_tests([("PatientID", "a\\*")]) == []


def test_paging_parameters() -> None:
    def paging(*parameters: tuple[str, str]) -> tuple[int, int]:
        search = parse_search("study", None, None, parameters)
        return search.limit, search.offset

    assert paging() == (100, 0)
    assert paging(("limit", "7"), ("offset", "3")) == (7, 3)
    assert paging(("limit", "100000")) == (MAX_LIMIT, 0)
    assert paging(("limit", "9" * 5000)) == (MAX_LIMIT, 0)
    assert paging(("offset", "9" * 5000))[1] >= 2**62
    for bad in [("limit", "0"), ("limit", "-1"), ("limit", "1\n"), ("offset", "x")]:
        with pytest.raises(BadRequest, match=bad[0]):
            paging(bad)


def test_includefield_forms() -> None:
    search = parse_search(
        "series",
        None,
        None,
        [
            ("includefield", "00081030, PatientSex"),
            ("includefield", "0008103e"),
            ("includefield", "RequestAttributesSequence.RequestedProcedureID"),
        ],
    )
    assert search.returned == {"00081030", "00100040", "0008103E", "00400275"}
    assert not search.include_all
    assert parse_search("study", None, None, [("includefield", "ALL")]).include_all


def test_wildcards_as_like_patterns() -> None:
    """Outside SQLite, %, _ and \\ are escaped and * and ? become % and _."""
    condition = _wildcard(column("c"), "a%b_c\\d*e?", "postgresql")
    compiled = condition.compile(dialect=postgresql.dialect())
    assert "LIKE" in str(compiled) and "ESCAPE" in str(compiled)
    assert list(compiled.params.values()) == ["a\\%b\\_c\\\\d%e_"]


def test_every_match_key_has_an_index_column() -> None:
    from dicomhub.index.schema import metadata

    for key in MATCH_KEYS.values():
        if key.column is None:
            continue
        table = metadata.tables[key.level]
        assert key.column in table.c, key
        if key.words_column:
            assert key.words_column in table.c, key


@pytest.fixture
def index(tmp_path: Path) -> SqlIndex:
    return SqlIndex(f"sqlite:///{tmp_path / 'index.sqlite3'}")


def add(index: SqlIndex, name: str = "CT_small.dcm", **attrs: object) -> None:
    ds = fresh(name, **attrs)
    index.add_instance(build_record(ds, ExplicitVRLittleEndian, 1000))


def run(index: SqlIndex, level: str, *parameters: tuple[str, str]) -> list[dict]:
    search = parse_search(level, None, None, parameters)  # type: ignore[arg-type]
    fields = return_fields(search)
    page = run_search(
        index.engine,
        search,
        study_aggregates=fields.study_aggregates,
        series_aggregates=fields.series_aggregates,
    )
    return [build_item(found, fields, page, "http://pacs/v2") for found in page.found]


def names(results: list[dict]) -> list[str | None]:
    values = [item["00100010"].get("Value") for item in results]
    return [v[0]["Alphabetic"] if v else None for v in values]


def test_person_names_with_component_groups(index: SqlIndex) -> None:
    """A name without "=" matches the alphabetic group of a stored name that
    also has ideographic and phonetic groups (PS3.5 §6.2.1.2)."""
    add(index, PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう")
    add(index, PatientName="Yamada^Hanako")
    assert names(run(index, "study", ("PatientName", "yamada^tarou"))) == [
        "Yamada^Tarou"
    ]
    assert names(run(index, "study", ("PatientName", "Yamada^T?rou"))) == [
        "Yamada^Tarou"
    ]
    assert len(run(index, "study", ("PatientName", "*山田*"))) == 1
    assert len(run(index, "study", ("PatientName", "Yamada^Tarou=山田^太郎=*"))) == 1
    assert run(index, "study", ("PatientName", "Tarou")) == []
    assert names(
        run(index, "study", ("PatientName", "tar"), ("fuzzymatching", "true"))
    ) == ["Yamada^Tarou"]


def test_results_come_in_storage_order_and_page(index: SqlIndex) -> None:
    for n in range(5):
        add(index, PatientName=f"Person^{n}")
    assert names(run(index, "study")) == [f"Person^{n}" for n in range(5)]
    assert names(run(index, "study", ("limit", "2"), ("offset", "3"))) == [
        "Person^3",
        "Person^4",
    ]
    assert names(run(index, "instance", ("offset", "4"))) == ["Person^4"]
