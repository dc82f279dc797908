"""One log line per request, and no patient data in the log."""

from __future__ import annotations

import httpx

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
