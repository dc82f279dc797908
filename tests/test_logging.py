"""One log line per request, and no patient data in the log."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from dicomhub.accesslog import AccessLogMiddleware

from .conftest import Server
from .dicomdata import fresh, stow


def test_one_line_per_request_without_patient_data(dicomweb_server: Server) -> None:
    ct = fresh("CT_small.dcm", PatientName="Secretname^Verysecret")
    assert stow(dicomweb_server.root, [ct]).status_code == 200
    marker = "/v2/studies/1.2.826.0.1.3680043.9.12345"

    httpx.get(
        f"{dicomweb_server.root}/studies",
        params={"PatientName": "Secretname*", "PatientID": ct.PatientID},
    )
    httpx.get(dicomweb_server.url + marker + "/metadata")

    log = dicomweb_server.log()
    assert "Secretname" not in log
    assert ct.PatientID not in log
    assert len([line for line in log.splitlines() if marker in line]) == 1
    assert f'"GET {marker}/metadata" 404' in log


def test_the_line_names_its_source_and_follows_the_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The record is made without a stack walk, yet says where it comes from;
    with INFO off for the access log nothing is made at all."""

    async def no_content(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    scope = {
        "type": "http",
        "method": "OPTIONS",
        "path": "/v2/studies",
        "headers": [],
        "client": ("127.0.0.1", 50000),
    }
    logged = AccessLogMiddleware(no_content)

    with caplog.at_level(logging.INFO, logger="dicomhub.access"):
        asyncio.run(logged(scope, receive, send))
    (record,) = caplog.records
    assert record.getMessage().startswith('127.0.0.1 "OPTIONS /v2/studies" 204 0 ')
    assert (record.filename, record.funcName) == ("accesslog.py", "__call__")

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dicomhub.access"):
        asyncio.run(logged(scope, receive, send))
    assert caplog.records == []


def test_an_encoded_line_break_cannot_forge_a_log_line(server_factory) -> None:
    """A path is logged as sent, percent-encoded: a %0A in it would otherwise
    start a line of the attacker's choosing, in the access log and in the
    audit line of a refused admin request."""
    server = server_factory('[auth]\napi_keys = ["0123456789abcdef0123"]\n')
    forged = "%0A2026-12-04 12:00:00,000 INFO dicomhub.audit: forged"

    for path in (f"/admin/x{forged}", f"/v2/studies{forged}"):
        answer = httpx.get(server.url + path.replace(" ", "%20"))
        assert answer.status_code == 401

    lines = server.log().splitlines()
    assert not [line for line in lines if line.startswith("2026-12-04 12:00")]
    assert [line for line in lines if "refused GET /admin/x%0A2026" in line]


def test_the_access_log_can_be_turned_off(server_factory) -> None:
    """[server] access_log = false (or DICOMHUB_SERVER_ACCESS_LOG=false), for a
    reverse proxy that logs every request itself; other lines stay."""
    from_file = server_factory("[server]\naccess_log = false\n")
    from_env = server_factory(env={"DICOMHUB_SERVER_ACCESS_LOG": "false"})
    logged = server_factory()

    for server in (from_file, from_env, logged):
        assert httpx.get(server.url + "/v2/studies").status_code == 200

    assert "dicomhub.access" not in from_file.log()
    assert "dicomhub.access" not in from_env.log()
    assert '"GET /v2/studies" 200' in logged.log()


def test_a_part_type_cannot_forge_a_log_line(dicomweb_server: Server) -> None:
    """A part's Content-Type is the client's text; refused, it is quoted and
    escaped in the answer and in the log."""
    forged = "text/x\r2026-12-04 12:00:00,000 INFO dicomhub.audit: forged\x1b[1A"
    body = (
        f"--BND\r\nContent-Type: {forged}\r\n\r\nxx\r\n--BND--\r\n"
    ).encode("latin-1")

    answer = httpx.post(
        f"{dicomweb_server.root}/studies",
        content=body,
        headers={
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=BND'
        },
    )

    assert answer.status_code == 409
    log = dicomweb_server.log()
    assert "\x1b" not in log
    assert "\r2026-12-04 12:00" not in log
    assert "instance refused (43264)" in log
