"""The demo command end to end: ``python -m demo.run``, what ``scripts/demo`` runs.

The demo starts ``dicomhub serve`` with demo/dicomhub-demo.toml, stores pydicom's
sample studies through STOW-RS, and serves the viewer page on a second origin.
These tests run it on free ports and a temporary data folder, then check from
outside what a browser on the page's origin would get. The page itself in
Chromium is in test_browser.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from demo import samples

from .conftest import free_port

REPOSITORY = Path(__file__).resolve().parent.parent
STUDY_INCLUDE = "00081030,00080061,00201208"
DICOM_JSON = "application/dicom+json"


@dataclass
class Demo:
    url: str
    page_origin: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def root(self) -> str:
        return self.url + "/v2"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_demo(
    workdir: Path, data_dir: Path | None = None, timeout: float = 120
) -> Iterator[Demo]:
    """Run the demo until the block ends, then stop it as Ctrl-C would."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, demo_port = free_port(), free_port()
    log_path = workdir / f"demo-{port}.log"
    command = [
        sys.executable, "-m", "demo.run",
        "--port", str(port),
        "--demo-port", str(demo_port),
        "--data-dir", str(data_dir or workdir / "data"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMHUB_")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    demo = Demo(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{demo_port}", process, log_path
    )
    try:
        deadline = time.monotonic() + timeout
        while "ready; press Ctrl-C" not in demo.log():
            if process.poll() is not None:
                pytest.fail(f"the demo exited with {process.returncode}:\n{demo.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not get ready:\n{demo.log()}")
            time.sleep(0.2)
        yield demo
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def study_uids(response: httpx.Response) -> set[str]:
    return {item["0020000D"]["Value"][0] for item in response.json()}


def test_demo_page_origin_may_search_and_retrieve(tmp_path: Path) -> None:
    """The page is served, and dicomhub shares the samples with its origin only."""
    expected = samples.samples()

    with run_demo(tmp_path) as demo:
        page = httpx.get(demo.page_origin + "/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "dicomhub demo" in page.text
        script = httpx.get(demo.page_origin + "/app.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]

        # The page's study list: QIDO-RS from the page's origin (PS3.18 §10.6).
        query = {"limit": "101", "offset": "0", "includefield": STUDY_INCLUDE}
        listed = httpx.get(
            demo.root + "/studies",
            params=query,
            headers={"Origin": demo.page_origin, "Accept": DICOM_JSON},
        )
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == demo.page_origin
        assert study_uids(listed) == {s.study for s in expected}

        # Any other origin gets the answer without the header, so a browser
        # there keeps it from the script (docs/cors.md, D4).
        elsewhere = httpx.get(
            demo.root + "/studies",
            params=query,
            headers={"Origin": "http://127.0.0.1:1", "Accept": DICOM_JSON},
        )
        assert "access-control-allow-origin" not in elsewhere.headers

        # The page's image: the rendered CT as JPEG (PS3.18 §10.4, §8.7.4).
        ct = expected[0]
        rendered = httpx.get(
            f"{demo.root}/studies/{ct.study}/series/{ct.series}"
            f"/instances/{ct.instance}/rendered",
            headers={"Origin": demo.page_origin, "Accept": "image/jpeg"},
        )
        assert rendered.status_code == 200
        assert rendered.headers["content-type"] == "image/jpeg"
        assert rendered.content[:2] == b"\xff\xd8"
        assert rendered.headers["access-control-allow-origin"] == demo.page_origin


def test_demo_stops_on_ctrl_c_and_starts_again_on_its_data(tmp_path: Path) -> None:
    """Ctrl-C stops both servers; a second run on the same data stores nothing twice."""
    data_dir = tmp_path / "data"
    expected = {s.study for s in samples.samples()}

    with run_demo(tmp_path, data_dir) as first:
        assert listening(first.url) and listening(first.page_origin)
        first.process.send_signal(signal.SIGINT)
        assert first.process.wait(30) == 0
    assert not listening(first.url)
    assert not listening(first.page_origin)

    with run_demo(tmp_path, data_dir) as second:
        listed = httpx.get(second.root + "/studies", headers={"Accept": DICOM_JSON})
        assert study_uids(listed) == expected
        assert len(listed.json()) == len(expected)
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(30) == 0
    assert not listening(second.url)


def test_demo_warns_when_stored_cors_settings_refuse_its_viewer(
    tmp_path: Path,
) -> None:
    """Settings stored by PUT /admin/cors win over the demo's [cors] table; a
    later run on other ports says so instead of leaving the viewer to fail."""
    data_dir = tmp_path / "data"
    with run_demo(tmp_path, data_dir) as first:
        stored = httpx.put(
            first.url + "/admin/cors",
            json={"origins": [first.page_origin], "methods": ["GET"]},
        )
        assert stored.status_code == 200, stored.text
        assert "warning: dicomhub refuses" not in first.log()

    with run_demo(tmp_path, data_dir) as second:
        assert f"refuses the viewer's origin {second.page_origin}" in second.log()
        assert f"curl -X DELETE {second.url}/admin/cors" in second.log()


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    """A busy port stops the demo at once with a message naming the port."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "demo.run", "--port", str(port),
             "--demo-port", str(free_port()), "--data-dir", str(tmp_path / "data")],
            cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
