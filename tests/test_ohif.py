"""OHIF Viewer in headless Chromium, on one origin, reading dicomhub on another.

Origin A serves @ohif/app's prebuilt dist/ with our app-config.js
(demo/ohif/server.py; scripts/test installs the package with ensure_ohif).
Origin B is a dicomhub started with a [cors] table, holding pydicom's CT and MR
samples. Allowed: OHIF's study list shows both studies (QIDO-RS, PS3.18 §10.6),
opening the CT in the Basic Viewer draws it on the viewport's canvas (series
metadata and frames over WADO-RS, PS3.18 §10.4), and the console holds no CORS
error. With A missing from origins, OHIF shows no study and its data source
error, and the console holds Chromium's "blocked by CORS policy" error.

OHIF is heavy for a 2-core machine: each wait is generous, and bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from pydicom.dataset import Dataset

from demo import samples, static_server
from demo.ohif import OhifMissing
from demo.ohif import server as ohif_server

from . import dicomdata
from .browser import Console, launch_chromium
from .conftest import Server, free_port

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parent.parent
WAIT_MS = 120_000
VIEWPORT = {"width": 1280, "height": 800}

# Runs in the page: how many colours the first viewport's canvas shows. OHIF
# (Cornerstone3D) draws each viewport into a 2D canvas of this class; before
# the image arrives it is a uniform black.
CANVAS_COLOURS = """() => {
    const canvas = document.querySelector('canvas.cornerstone-canvas');
    if (!canvas || !canvas.width || !canvas.height) return 0;
    const context = canvas.getContext('2d');
    if (!context) return 0;
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4) {
        colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
    return colours.size;
}"""
MIN_COLOURS = 16


def cors_table(origins: list[str]) -> str:
    # OHIF sends no Authorization of its own; its frame requests carry a quoted
    # Accept and are preflighted, which dicomhub always allows (docs/cors.md D6).
    return f"""
    [cors]
    origins = {json.dumps(origins)}
    headers = ["Authorization"]
    methods = ["GET", "HEAD", "POST"]
    max_age = 600
    allow_credentials = false
    """


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


def require_ohif() -> None:
    """Skip when OHIF's dist/ is missing; in CI (CI set) that is a failure."""
    try:
        ohif_server.dist_dir()
    except OhifMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def viewer() -> Iterator[ohif_server.OhifServer]:
    """Origin A: OHIF's dist/; each test points it at its own dicomhub."""
    require_ohif()
    server = ohif_server.make_server(port=0, quiet=True)
    static_server.serve_in_thread(server, "ohif")
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Viewer:
    page: Page
    console: Console

    def wait_for_patient(self, name: str) -> None:
        self.page.get_by_text(name, exact=True).first.wait_for(timeout=WAIT_MS)

    def open_in_basic_viewer(self, name: str) -> None:
        """Select the study's row in the list, then launch the Basic Viewer."""
        self.page.get_by_text(name, exact=True).first.click()
        self.page.locator('button[title="Basic Viewer"]').click()
        self.page.wait_for_url("**/viewer?*", timeout=WAIT_MS)

    def wait_for_image(self) -> int:
        """Wait until the viewport's canvas shows an image; its colour count."""
        self.page.wait_for_function(
            f"({CANVAS_COLOURS})() >= {MIN_COLOURS}", polling=500, timeout=WAIT_MS
        )
        return self.page.evaluate(CANVAS_COLOURS)


@pytest.fixture
def open_viewer(browser: Browser) -> Iterator[Callable[[str], Viewer]]:
    contexts = []

    def open_(origin: str) -> Viewer:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        console = Console.attach(page)
        page.goto(origin + "/", timeout=WAIT_MS)
        return Viewer(page, console)

    yield open_
    for context in contexts:
        context.close()


def store_samples(server: Server) -> tuple[Dataset, Dataset]:
    ct = dicomdata.fresh("CT_small.dcm", PatientName="Dicomhub^CT")
    mr = dicomdata.fresh("MR_small.dcm", PatientName="Dicomhub^MR")
    response = dicomdata.stow(server.root, [ct, mr])
    assert response.status_code == 200, response.text
    return ct, mr


def access_lines(server: Server, method: str, path_part: str) -> list[str]:
    return [
        line
        for line in server.log().splitlines()
        if f'"{method} ' in line and path_part in line
    ]


def test_ohif_lists_and_renders_studies_cross_origin(
    viewer: ohif_server.OhifServer,
    server_factory: Callable[..., Server],
    open_viewer: Callable[[str], Viewer],
) -> None:
    """[cors] origins lists the viewer: study list, image, no CORS error."""
    origin = static_server.origin(viewer)
    server = server_factory(cors_table([origin]))
    viewer.dicomweb_root = server.root
    ct, _ = store_samples(server)

    opened = open_viewer(origin)
    opened.wait_for_patient("Dicomhub, CT")
    opened.wait_for_patient("Dicomhub, MR")
    opened.open_in_basic_viewer("Dicomhub, CT")

    assert f"StudyInstanceUIDs={ct.StudyInstanceUID}" in opened.page.url
    assert opened.wait_for_image() >= MIN_COLOURS
    frames = f"/instances/{ct.SOPInstanceUID}/frames/1"
    assert any('" 200 ' in line for line in access_lines(server, "GET", frames))
    # The quoted multipart Accept made the frame request a preflighted one.
    assert any('" 204 ' in line for line in access_lines(server, "OPTIONS", frames))
    assert opened.console.cors_errors() == [], opened.console.lines


def test_ohif_blocked_when_origin_not_listed(
    viewer: ohif_server.OhifServer,
    server_factory: Callable[..., Server],
    open_viewer: Callable[[str], Viewer],
) -> None:
    """The same viewer with its origin missing from [cors] origins: dicomhub
    answers the search, without ACAO, so Chromium keeps the answer from OHIF
    (docs/cors.md, D4), which shows no study and its data source error."""
    origin = static_server.origin(viewer)
    server = server_factory(cors_table(["http://viewer.example"]))
    viewer.dicomweb_root = server.root
    store_samples(server)

    opened = open_viewer(origin)
    opened.page.get_by_text("Data Source Connection Error").wait_for(timeout=WAIT_MS)

    errors = opened.console.wait_for_cors_error(opened.page)
    assert errors, opened.console.lines
    assert f"from origin '{origin}'" in errors[0]
    assert "No 'Access-Control-Allow-Origin' header" in errors[0]
    assert opened.page.get_by_text("No studies available").is_visible()
    assert opened.page.get_by_text("Dicomhub, CT", exact=True).count() == 0
    assert any('" 200 ' in line for line in access_lines(server, "GET", "/studies"))


# The demo with OHIF ------------------------------------------------------------


@dataclass
class OhifDemo:
    root: str
    viewer_origin: str
    log_path: Path


@contextmanager
def run_ohif_demo(workdir: Path, timeout: float = 120) -> Iterator[OhifDemo]:
    """``python -m demo.run --viewer ohif`` (what scripts/demo runs) on free
    ports until the block ends, then stopped as Ctrl-C would."""
    port, viewer_port = free_port(), free_port()
    log_path = workdir / "demo.log"
    command = [
        sys.executable, "-m", "demo.run", "--viewer", "ohif",
        "--port", str(port),
        "--demo-port", str(viewer_port),
        "--data-dir", str(workdir / "data"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMHUB_")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + timeout
        while "ready; press Ctrl-C" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not get ready:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield OhifDemo(
            f"http://127.0.0.1:{port}/v2", f"http://127.0.0.1:{viewer_port}", log_path
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_ohif_demo_command(
    tmp_path: Path, open_viewer: Callable[[str], Viewer]
) -> None:
    """The demo as scripts/demo runs it: OHIF lists every sample and shows one."""
    require_ohif()
    with run_ohif_demo(tmp_path) as demo:
        assert f"OHIF Viewer (other origin):  {demo.viewer_origin}/" in (
            demo.log_path.read_text()
        )

        opened = open_viewer(demo.viewer_origin)
        for sample in samples.samples():
            # OHIF writes a person name "Family^Given" as "Family, Given".
            name = str(dicomdata.read(sample.path).PatientName)
            opened.wait_for_patient(name.replace("^", ", "))
        # pydicom's CT_small: NEMA WG04's CT1, "CompressedSamples^CT1".
        opened.open_in_basic_viewer("CompressedSamples, CT1")

        assert opened.wait_for_image() >= MIN_COLOURS
        assert opened.console.cors_errors() == [], opened.console.lines
