"""The audit log (logger ``dicomhub.audit``) of stores, replaces and deletes,
refused ones included, against a real server with API keys carrying roles;
and the log stays free of patient data and of pydicom's own tracebacks."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from .conftest import Server, start_server
from .dicomdata import fresh, multipart_body, stow, to_bytes
from .test_security_bombs import image, url_of

WRITE_KEY = "audit-writer-key-0123456789"
DELETE_KEY = "audit-deleter-key-0123456789"
READ_KEY = "audit-reader-key-0123456789"

# Distinctive enough that finding either anywhere in the log is a leak.
PATIENT_NAME = "Quillfeather^Ottoline^Zephyrine"
PATIENT_ID = "PID-AUDIT-73519-XQ"

CONFIG = f"""
[auth.api_keys.uploader]
key = "{WRITE_KEY}"
roles = ["writer"]

[auth.api_keys.cleaner]
key = "{DELETE_KEY}"
roles = ["deleter"]

[auth.api_keys.viewer]
key = "{READ_KEY}"
roles = ["reader"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("audit"), CONFIG)
    yield server
    server.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _audit_lines(server: Server) -> list[str]:
    return [
        line.split("dicomhub.audit: ", 1)[1]
        for line in server.log().splitlines()
        if " dicomhub.audit: " in line
    ]


def _new_audit_lines(server: Server, before: list[str]) -> list[str]:
    after = _audit_lines(server)
    assert after[: len(before)] == before
    return after[len(before) :]


def _patient() -> Dataset:
    return fresh("CT_small.dcm", PatientName=PATIENT_NAME, PatientID=PATIENT_ID)


def _put(server: Server, ds: Dataset, key: str) -> httpx.Response:
    body, content_type = multipart_body([to_bytes(ds)])
    return httpx.put(
        f"{server.root}/studies",
        content=body,
        headers={"Content-Type": content_type, **_bearer(key)},
        timeout=60,
    )


def test_store_replace_and_delete_are_audited(server: Server) -> None:
    ds = _patient()
    study = ds.StudyInstanceUID

    before = _audit_lines(server)
    assert stow(server.root, [ds], headers=_bearer(WRITE_KEY)).status_code == 200
    assert _new_audit_lines(server, before) == [
        "instances stored (POST /v2/studies) by uploader from 127.0.0.1: 200, "
        f"stored=1 replaced=0 failed=0 studies={study}"
    ]

    before = _audit_lines(server)
    assert _put(server, ds, WRITE_KEY).status_code == 200
    assert _new_audit_lines(server, before) == [
        "instances stored (PUT /v2/studies) by uploader from 127.0.0.1: 200, "
        f"stored=0 replaced=1 failed=0 studies={study}"
    ]

    # A second POST of the same instance fails (45070): counted, still audited.
    before = _audit_lines(server)
    assert stow(server.root, [ds], headers=_bearer(WRITE_KEY)).status_code == 409
    assert _new_audit_lines(server, before) == [
        "instances stored (POST /v2/studies) by uploader from 127.0.0.1: 409, "
        f"stored=0 replaced=0 failed=1 studies={study}"
    ]

    before = _audit_lines(server)
    url = f"{server.root}/studies/{study}"
    assert httpx.delete(url, headers=_bearer(DELETE_KEY)).status_code == 204
    assert _new_audit_lines(server, before) == [
        f"instances deleted (DELETE /v2/studies/{study}) by cleaner from "
        f"127.0.0.1: 204, removed=1 study={study} series=- instance=-"
    ]

    # Nothing left to delete: the 404 is audited too.
    before = _audit_lines(server)
    assert httpx.delete(url, headers=_bearer(DELETE_KEY)).status_code == 404
    assert _new_audit_lines(server, before) == [
        f"instances deleted (DELETE /v2/studies/{study}) by cleaner from "
        f"127.0.0.1: 404, removed=0 study={study} series=- instance=-"
    ]


def test_deleting_an_instance_names_its_uids(server: Server) -> None:
    ds = _patient()
    assert stow(server.root, [ds], headers=_bearer(WRITE_KEY)).status_code == 200
    path = (
        f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )

    before = _audit_lines(server)
    response = httpx.delete(server.url + path, headers=_bearer(DELETE_KEY))

    assert response.status_code == 204
    assert _new_audit_lines(server, before) == [
        f"instances deleted (DELETE {path}) by cleaner from 127.0.0.1: 204, "
        f"removed=1 study={ds.StudyInstanceUID} series={ds.SeriesInstanceUID} "
        f"instance={ds.SOPInstanceUID}"
    ]


def test_refused_store_and_delete_are_audited(server: Server) -> None:
    ds = _patient()

    before = _audit_lines(server)
    response = stow(server.root, [ds], headers=_bearer(READ_KEY))

    assert response.status_code == 403
    assert _new_audit_lines(server, before) == [
        "refused POST /v2/studies from 127.0.0.1 (viewer): 403 "
        f"{response.text}"
    ]

    before = _audit_lines(server)
    path = f"/v2/studies/{ds.StudyInstanceUID}"
    response = httpx.delete(server.url + path, headers=_bearer(READ_KEY))

    assert response.status_code == 403
    assert "deleting needs the role 'deleter'" in response.text
    assert _new_audit_lines(server, before) == [
        f"refused DELETE {path} from 127.0.0.1 (viewer): 403 {response.text}"
    ]

    # No token at all: refused (401) and audited as anonymous.
    before = _audit_lines(server)
    response = httpx.delete(server.url + path)

    assert response.status_code == 401
    assert _new_audit_lines(server, before) == [
        f"refused DELETE {path} from 127.0.0.1 (anonymous): 401 {response.text}"
    ]


def test_reads_are_not_audited(server: Server) -> None:
    before = _audit_lines(server)

    response = httpx.get(f"{server.root}/studies", headers=_bearer(READ_KEY))

    assert response.status_code == 200
    assert _new_audit_lines(server, before) == []


def test_a_crafted_path_stays_on_one_line(server: Server) -> None:
    before = _audit_lines(server)

    # A control character (here ESC, which starts terminal escapes) is
    # written escaped.
    response = httpx.delete(
        f"{server.root}/studies/1.2.3%1BrefusedX", headers=_bearer(DELETE_KEY)
    )

    assert response.status_code == 400
    (line,) = _new_audit_lines(server, before)
    assert line.startswith("instances deleted (DELETE /v2/studies/1.2.3%1BrefusedX)")
    assert "study=1.2.3\\x1brefusedX" in line
    assert "\x1b" not in server.log()


def _truncated_jpeg() -> bytes:
    """A JPEG Baseline codestream (ISO 10918-1) with a sound frame header
    (SOF0: 32 x 32, one component) cut short inside its scan header (SOS):
    every decoder rejects it."""
    buffer = io.BytesIO()
    Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)).save(
        buffer, "JPEG"
    )
    data = buffer.getvalue()
    return data[: data.find(b"\xff\xda") + 3]


def test_a_rejected_frame_leaves_no_traceback_in_the_log(server: Server) -> None:
    ds = image(
        JPEGBaseline8Bit, 32, 32, PatientName=PATIENT_NAME, PatientID=PATIENT_ID
    )
    ds.PixelData = encapsulate([_truncated_jpeg()])
    ds["PixelData"].VR = "OB"
    assert stow(server.root, [ds], headers=_bearer(WRITE_KEY)).status_code == 200
    url = url_of(server, ds)

    for suffix in ("/rendered", "/frames/1", "/thumbnail"):
        response = httpx.get(url + suffix, headers=_bearer(READ_KEY), timeout=60)

        assert response.status_code == 406, response.text
        assert "could not be decoded" in response.text

    log = server.log()
    assert "Traceback" not in log
    assert " pydicom" not in log
    assert "libjpeg" not in log
    assert "truncated" not in log


def test_no_patient_data_in_the_log(server: Server) -> None:
    """Runs last: every store, replace, refusal and decoder failure above
    carried the distinctive name and ID."""
    log = server.log()

    assert PATIENT_NAME not in log
    assert PATIENT_ID not in log
    for part in PATIENT_NAME.split("^"):
        assert part not in log
    assert WRITE_KEY not in log
    assert READ_KEY not in log
    assert DELETE_KEY not in log
