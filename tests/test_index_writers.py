"""Two writers of one SQLite index (workers, replicas): each checks what is
stored before it writes, and the checks and the writes must see one state
(dicomhub.index.sql `SqlIndex._writing`).

Two SqlIndex objects on one file stand for two processes: each has its own
engine and its own in-process lock. SQLAlchemy's cursor events pause one
writer between its checks, at the moment where another process's commit
would fall, and let the other write then.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import event

from dicomhub.index import SqlIndex, build_record

STUDY = "1.2.826.0.1.3680043.10.7"
SERIES = STUDY + ".1"


def record(sop: str) -> Any:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientID = "PID-WRITERS"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.SOPInstanceUID = sop
    return build_record(ds, ExplicitVRLittleEndian, 1)


def test_a_commit_between_a_writers_checks_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite3'}"
    first, second = SqlIndex(url), SqlIndex(url)
    paused, other_done = threading.Event(), threading.Event()

    def pause_after_study_check(_conn: Any, _cursor: Any, statement: str, *_: Any):
        # The first writer has just looked for the study, found none, and is
        # about to look for the series.
        if not paused.is_set() and "FROM study \nWHERE study.study_instance_uid" in (
            statement
        ):
            paused.set()
            other_done.wait(timeout=1)

    event.listen(first.engine, "after_cursor_execute", pause_after_study_check)

    def other_writer() -> None:
        paused.wait(timeout=10)
        results.append(second.add_instances([record(SERIES + ".2")])[0])
        other_done.set()

    results: list[Any] = []
    thread = threading.Thread(target=other_writer)
    thread.start()
    results.append(first.add_instances([record(SERIES + ".1")])[0])
    thread.join()

    assert paused.is_set()
    assert [indexed.refusal for indexed in results] == [None, None]
    assert len(first.find_instances(STUDY, SERIES, None)) == 2
