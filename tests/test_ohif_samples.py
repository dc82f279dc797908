"""OHIF Viewer draws every sample study it can display, served by dicomhub.

One dicomhub holds every sample, each stored as its own study (new Study,
Series and SOP Instance UIDs, tests/dicomdata.py ``fresh``), so a study shows
exactly one file. One headless Chromium page loads OHIF (demo/ohif/server.py,
on another origin than dicomhub) once; each test then opens
``/viewer?StudyInstanceUIDs=<uid>`` and waits until a Cornerstone viewport
holding that study's images has drawn pixels that are not all one colour (the
canvas read back in the page). A multi-frame sample must also draw its last
frame. Every request to dicomhub answered with a status >= 400, and each
request the browser could not complete, fails the test with the request, the
status and dicomhub's answer to the same request.

The samples: pydicom's bundled test files (always there, no download), and the
shared corpus's clean set when ../shared exists (tests/dicomdata.py
``shared_samples``). Which files OHIF cannot display by their nature, and why,
is decided by `not_displayable` from the file itself and listed as skipped
with that reason; what OHIF 3.13.2 gets wrong is in OHIF_FAULTS, expected to
fail (strict, so a viewer that learns to draw them makes the test fail and the
entry is removed).

Speed: studies after the first are opened by a client-side navigation (the
history change React Router follows), not a reload; an opening that fails is
retried once with a full page load, so a failure is never an artefact of the
previous study. Microscopy (SM) samples open in OHIF's microscopy mode, which
draws with WebGL: there the viewport is read back from a screenshot.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Request, Response
from playwright.sync_api import Error as PlaywrightError
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID

from demo import static_server
from demo.ohif import OhifMissing
from demo.ohif import server as ohif_server

from . import dicomdata
from .browser import Console, launch_chromium
from .conftest import Server, start_server

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1000, "height": 700}
LOAD_MS = 120_000
POLL_MS = 250
# Bounds of one study's wait, generous for a busy 2-core machine. A study is
# given up early when it has settled: nothing drawn and no request to dicomhub
# for SETTLE_S, or its image loaded and the canvas still one colour after
# BLANK_S, or OHIF showed its error page.
STUDY_S = 60.0
SETTLE_S = 10.0
BLANK_S = 4.0

# pydicom's bundled files, as many encodings as it ships; those missing from
# the installed pydicom (some live only in the pydicom-data download, which a
# test never fetches) are left out.
PYDICOM_FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "emri_small.dcm",
    "US1_J2KR.dcm",
    "JPEG-LL.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "JPEG-lossy.dcm",
    "693_J2KI.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "JPEGLSNearLossless_08.dcm",
    "JPEGLSNearLossless_16.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jls_lossy_line.dcm",
    "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_32bit.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_jpeg2k.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "rtdose_1frame.dcm",
    "rtdose_expb.dcm",
    "rtdose_rle.dcm",
    "liver_1frame.dcm",
    "rtplan.dcm",
    "reportsi.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
]

# Transfer syntaxes whose frames OHIF 3.13 (Cornerstone3D's DICOM image loader)
# decodes in the browser. Deflated and big endian instances are included:
# dicomhub sends their frames as Explicit VR Little Endian (PS3.18 §8.7.3).
OHIF_DECODES = frozenset(
    {
        "1.2.840.10008.1.2",  # Implicit VR Little Endian
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline
        "1.2.840.10008.1.2.4.51",  # JPEG Extended
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
        "1.2.840.10008.1.2.4.91",  # JPEG 2000
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
        "1.2.840.10008.1.2.4.203",  # HTJ2K
        "1.2.840.10008.1.2.5",  # RLE Lossless
    }
)

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
WHOLE_SLIDE_MICROSCOPY = "1.2.840.10008.5.1.4.1.1.77.1.6"

# Files no viewer can be asked to draw, by name: they are not valid instances.
MALFORMED = {
    "SC_rgb_jpeg.dcm": "its data set is encoded Implicit VR under JPEG Baseline, "
    "which requires Explicit VR (PS3.5 §A.4); pydicom cannot write the copy "
    "with new UIDs",
}

# What OHIF 3.13.2 fails to draw although dicomhub serves it correctly; each
# was checked by hand (request, answer and OHIF's console).
PIXEL_SPACING_ZERO = (
    "OHIF 3.13.2: this file's Pixel Spacing is 0.000\\0.000; Cornerstone3D then "
    "draws an empty viewport (without Pixel Spacing, or with 0.1\\0.1, it draws)"
)
RLE_32_BIT = (
    "OHIF 3.13.2: Cornerstone's RLE decoder has no 32-bit samples ('unsupported "
    "pixel format for RLE'); dicomhub sends the RLE frame as stored"
)
OHIF_FAULTS = {
    "color-pl.dcm": "OHIF 3.13.2: the retired Ultrasound Image Storage SOP class "
    "1.2.840.10008.5.1.4.1.1.6 is missing from its SOP class dictionary, so no "
    "display set is made ('No match found defaultDisplaySetId')",
    "gdcm-US-ALOKA-16.dcm": "OHIF 3.13.2: Segmented Palette Color Lookup Tables "
    "(0028,1221-1223) are not read ('The image does not have a complete color "
    "palette'); dicomhub sends them as BulkDataURIs",
    "RG1_UNCR.dcm": PIXEL_SPACING_ZERO,
    "RG1_J2KI.dcm": PIXEL_SPACING_ZERO,
    "SC_rgb_rle_32bit.dcm": RLE_32_BIT,
    "SC_rgb_rle_32bit_2frame.dcm": RLE_32_BIT,
    "rtdose_rle.dcm": RLE_32_BIT,
    "SC_ybr_full_422_uncompressed.dcm": "OHIF 3.13.2: a native YBR_FULL_422 frame "
    "(2 bytes a pixel, PS3.3 C.7.6.3.1.2) is not expanded ('model.size is not a "
    "multiple of model.numberOfComponents'); dicomhub sends the frame as stored",
}

# OHIF's QIDO-RS parser (getModalities) reads ModalitiesInStudy.Value.length
# and so fails on an empty Modalities in Study, which dicomhub sends as
# {"vr": "CS"} with no Value, as PS3.18 F.2.5 says for an empty attribute;
# OHIF then opens its "study not found" page. Samples without (0008,0060)
# Modality (Type 1, PS3.3 C.7.3.1) are stored with Modality OT so that their
# pixels are tested, and one is also stored as it is, expected to fail.
NO_MODALITY = "OT"
NO_MODALITY_FAULT = (
    "OHIF 3.13.2: getModalities reads ModalitiesInStudy.Value.length, which an "
    "empty Modalities in Study lacks (PS3.18 F.2.5), and shows 'study not found'"
)


@dataclass(frozen=True)
class Sample:
    """One file, stored as its own study, and how OHIF should show it."""

    label: str
    path: Path
    frames: int
    route: str = "viewer"
    changes: tuple[tuple[str, str], ...] = ()
    fault: str = ""

    def dataset(self) -> Dataset:
        return dicomdata.fresh(self.path, **dict(self.changes))


def not_displayable(ds: Dataset) -> str | None:
    """Why OHIF cannot display this instance by its nature; None when it can."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        sop_class = UID(ds.get("SOPClassUID", ""))
        return f"no pixel data: {sop_class.name or 'no SOP Class UID'}"
    if ds.get("SOPClassUID") == SEGMENTATION_STORAGE:
        return (
            "Segmentation: OHIF draws a SEG only over its referenced images, "
            "which are not among the samples"
        )
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax not in OHIF_DECODES:
        return f"transfer syntax {syntax.name or syntax!r} has no decoder in OHIF"
    return None


def _candidates() -> Iterator[tuple[str, Path]]:
    shared = dicomdata.shared_samples()
    clean = sorted((shared / "clean").glob("*.dcm")) if shared else []
    digests = {hashlib.sha256(p.read_bytes()).digest() for p in clean}
    for name in PYDICOM_FILES:
        found = get_testdata_file(name, download=False)
        if found is None:
            continue
        path = Path(str(found))
        # The clean set holds copies of many of pydicom's files: once is enough.
        if hashlib.sha256(path.read_bytes()).digest() not in digests:
            yield f"pydicom/{name}", path
    for path in clean:
        yield f"clean/{path.name}", path


def _params() -> list[Any]:
    params = []
    without_modality = None
    for label, path in _candidates():
        with warnings.catch_warnings():
            # MALFORMED files make pydicom warn; they are listed with a reason.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=1024)
        route = "viewer"
        if ds.get("SOPClassUID") == WHOLE_SLIDE_MICROSCOPY:
            route = "microscopy"
        sample = Sample(label, path, int(ds.get("NumberOfFrames") or 1), route)
        reason = not_displayable(ds)
        if path.name in MALFORMED:
            reason = f"malformed: {MALFORMED[path.name]}"
        elif reason is not None:
            reason = f"not displayable: {reason}"
        if reason is not None:
            mark = pytest.mark.skip(reason=f"{label}: {reason}")
            params.append(pytest.param(sample, marks=mark, id=label))
            continue

        if "Modality" not in ds:
            without_modality = without_modality or sample
            sample = replace(sample, changes=(("Modality", NO_MODALITY),))
        if path.name in OHIF_FAULTS:
            sample = replace(sample, fault=OHIF_FAULTS[path.name])
        params.append(pytest.param(sample, marks=ohif_fault(sample.fault), id=label))

    if without_modality is not None:
        label = f"{without_modality.label} without Modality"
        sample = replace(without_modality, label=label, fault=NO_MODALITY_FAULT)
        params.append(pytest.param(sample, marks=ohif_fault(sample.fault), id=label))
    return params


def ohif_fault(reason: str) -> list[pytest.MarkDecorator]:
    """Expected not to draw, for `reason`; drawing fails the test (strict)."""
    if not reason:
        return []
    return [pytest.mark.xfail(reason=reason, strict=True, raises=NotDrawn)]


class NotDrawn(AssertionError):
    """OHIF did not draw the study (the failure OHIF_FAULTS expects)."""


# Runs in the page: the Cornerstone viewports showing one study's images, with
# the number of colours on each one's canvas (counted up to 64).
PROBE = """(study) => {
    const colours = (canvas) => {
        if (!canvas || !canvas.width || !canvas.height) return 0;
        const context = canvas.getContext('2d');
        if (!context) return 0;
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length && seen.size < 64; i += 4) {
            seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        }
        return seen.size;
    };
    const text = document.body ? document.body.innerText : '';
    const state = {
        path: location.pathname,
        error: text.includes('Something went wrong'),
        viewports: [],
    };
    const cornerstone = window.cornerstone;
    if (!cornerstone) return state;
    for (const element of cornerstone.getEnabledElements()) {
        const viewport = element.viewport;
        const imageIds = viewport.getImageIds ? viewport.getImageIds() : [];
        if (!imageIds.some(id => id.includes('/studies/' + study + '/'))) continue;
        state.viewports.push({
            type: viewport.type,
            imageId: viewport.getCurrentImageId ? viewport.getCurrentImageId() : '',
            loaded: !!(viewport.getCornerstoneImage && viewport.getCornerstoneImage()),
            colours: colours(viewport.canvas),
        });
    }
    return state;
}"""

# Runs in the page: show the study's last frame in the viewport that has it,
# wait for the image and two animation frames, and count the canvas colours.
LAST_FRAME = """async ([study, frames]) => {
    const suffix = '/frames/' + frames;
    for (const element of window.cornerstone.getEnabledElements()) {
        const viewport = element.viewport;
        const imageIds = viewport.getImageIds ? viewport.getImageIds() : [];
        if (!imageIds.some(id => id.includes('/studies/' + study + '/'))) continue;
        const index = imageIds.findIndex(id => id.endsWith(suffix));
        if (index < 0 || !viewport.setImageIdIndex) continue;
        await viewport.setImageIdIndex(index);
        viewport.render();
        await new Promise(done => {
            requestAnimationFrame(() => requestAnimationFrame(done));
        });
        const canvas = viewport.canvas;
        const data = canvas.getContext('2d')
            .getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length && seen.size < 64; i += 4) {
            seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        }
        return {imageId: viewport.getCurrentImageId(), colours: seen.size};
    }
    return {imageId: '', colours: 0};
}"""

# While the microscopy viewport is read back from a screenshot, everything but
# its main OpenLayers canvas is hidden (the overview map and OHIF's banners
# would add colours of their own).
MICROSCOPY_CANVAS = "canvas.ol-layer"
MICROSCOPY_ONLY = """
* { visibility: hidden !important; }
canvas.ol-layer { visibility: visible !important; }
.ol-overviewmap canvas.ol-layer { visibility: hidden !important; }
"""


@dataclass
class Exchange:
    """One request to dicomhub that failed, replayed for its status and body."""

    method: str
    url: str
    status: int | str
    headers: dict[str, str]

    def replay(self) -> str:
        try:
            answer = httpx.request(
                self.method, self.url, headers=self.headers, timeout=30
            )
        except httpx.HTTPError as exc:
            return f"replay failed: {exc!r}"
        content_type = answer.headers.get("content-type")
        body = answer.content[:600].decode("utf-8", "replace")
        return f"replayed: {answer.status_code} {content_type} {body}"

    def __str__(self) -> str:
        return f"{self.method} {self.url} -> {self.status}\n    {self.replay()}"


@dataclass
class Outcome:
    """What OHIF did with one study."""

    drawn: bool = False
    ended: str = ""
    seconds: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    last_frame: dict[str, Any] | None = None
    console: list[str] = field(default_factory=list)
    faults: list[Exchange] = field(default_factory=list)

    def explain(self) -> str:
        errors = [
            line[:400]
            for line in self.console
            if line.startswith(("error", "pageerror")) or "Error Boundary" in line
        ]
        return (
            f"{self.ended} after {self.seconds:.1f}s; state {self.state}; "
            f"last frame {self.last_frame}; console errors: {errors[:8]}"
        )


@dataclass
class Ohif:
    """One Chromium page with OHIF loaded, reading one dicomhub."""

    page: Page
    origin: str
    server: Server
    studies: dict[str, str]
    console: Console
    inflight: set[Request] = field(default_factory=set)
    failed: list[Exchange] = field(default_factory=list)
    last_traffic: float = 0.0
    clean_state: bool = True

    def watch(self) -> None:
        self.page.on("request", self._request)
        self.page.on("requestfinished", self._finished)
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def _ours(self, request: Request) -> bool:
        return request.url.startswith(self.server.url)

    def _request(self, request: Request) -> None:
        if self._ours(request):
            self.inflight.add(request)
            self.last_traffic = time.monotonic()

    def _finished(self, request: Request) -> None:
        if self._ours(request):
            self.inflight.discard(request)
            self.last_traffic = time.monotonic()

    def _request_failed(self, request: Request) -> None:
        self._finished(request)
        # Requests of a page being left are aborted by the browser itself.
        if self._ours(request) and request.failure != "net::ERR_ABORTED":
            self.failed.append(
                Exchange(
                    request.method, request.url, str(request.failure), request.headers
                )
            )

    def _response(self, response: Response) -> None:
        request = response.request
        if self._ours(request) and response.status >= 400:
            self.failed.append(
                Exchange(request.method, request.url, response.status, request.headers)
            )

    def show(self, sample: Sample) -> Outcome:
        """Open the sample's study; one retry with a full load if it fails.

        A study expected to fail is opened with a full load, and only once.
        """
        client_side = self.clean_state and sample.route == "viewer" and not sample.fault
        outcome = self._show(sample, client_side)
        if not outcome.drawn and client_side:
            outcome = self._show(sample, client_side=False)
        self.clean_state = outcome.drawn and sample.route == "viewer"
        return outcome

    def _show(self, sample: Sample, client_side: bool) -> Outcome:
        study = self.studies[sample.label]
        path = f"/{sample.route}?StudyInstanceUIDs={study}"
        console_start = len(self.console.lines)
        self.failed = []
        started = self.last_traffic = time.monotonic()
        if client_side:
            # What React Router does on a history change: OHIF's route reads
            # the new query and loads that study, without reloading the app.
            self.page.evaluate(
                """(path) => {
                    history.pushState(null, '', path);
                    dispatchEvent(new PopStateEvent('popstate', {state: null}));
                }""",
                path,
            )
        else:
            self.page.goto(self.origin + path, timeout=LOAD_MS)

        outcome = self._wait(sample, study, started)
        if outcome.drawn and sample.frames > 1 and sample.route == "viewer":
            outcome.last_frame = self.page.evaluate(LAST_FRAME, [study, sample.frames])
        outcome.seconds = time.monotonic() - started
        outcome.console = self.console.lines[console_start:]
        outcome.faults = [e for e in self.failed if study in e.url]
        return outcome

    def _wait(self, sample: Sample, study: str, started: float) -> Outcome:
        loaded_at = None
        while True:
            now = time.monotonic()
            state = self._state(sample, study)
            if state["drawn"]:
                return Outcome(True, "drawn", state=state)
            if state["ended"]:
                return Outcome(ended=state["ended"], state=state)
            if state["loaded"]:
                loaded_at = loaded_at or now
            if loaded_at is not None and now - loaded_at > BLANK_S:
                return Outcome(ended="image loaded, canvas blank", state=state)
            if not self.inflight and now - self.last_traffic > SETTLE_S:
                return Outcome(ended="settled without drawing", state=state)
            if now - started > STUDY_S:
                return Outcome(ended="timed out", state=state)
            self.page.wait_for_timeout(POLL_MS)

    def _state(self, sample: Sample, study: str) -> dict[str, Any]:
        """Whether the study is drawn, its image loaded, or OHIF gave up (why)."""
        if sample.route == "microscopy":
            colours = self._microscopy_colours()
            return {
                "drawn": colours > 1,
                "loaded": False,
                "ended": "",
                "colours": colours,
            }
        try:
            page = self.page.evaluate(PROBE, study)
        except PlaywrightError as exc:
            # The page was between documents; the next poll reads the new one.
            return {"drawn": False, "loaded": False, "ended": "", "probe": str(exc)}

        ended = ""
        if page["error"]:
            ended = "OHIF's error page"
        elif page["path"] != f"/{sample.route}":
            ended = f"OHIF went to {page['path']}"
        viewports = page["viewports"]
        return {
            "drawn": any(v["colours"] > 1 for v in viewports),
            "loaded": any(v["loaded"] for v in viewports),
            "ended": ended,
            **page,
        }

    def _microscopy_colours(self) -> int:
        canvas = self.page.locator(MICROSCOPY_CANVAS).first
        if not canvas.count() or not canvas.is_visible():
            return 0
        png = canvas.screenshot(style=MICROSCOPY_ONLY, timeout=LOAD_MS)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        colours = image.getcolors(64)
        return 64 if colours is None else len(colours)


SAMPLES = _params()


def require_ohif() -> None:
    """Skip when OHIF's dist/ is missing; in CI (CI set) that is a failure."""
    try:
        ohif_server.dist_dir()
    except OhifMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def cors_table(origin: str) -> str:
    return f"""
    [cors]
    origins = ["{origin}"]
    headers = ["Authorization"]
    methods = ["GET", "HEAD", "POST"]
    max_age = 600
    allow_credentials = false
    """


def store(server: Server, samples: list[Sample]) -> dict[str, str]:
    """STOW-RS every sample in one request; their Study Instance UIDs."""
    datasets = [sample.dataset() for sample in samples]
    response = dicomdata.stow(server.root, datasets)
    # 202 only for coercion warnings (B000): clean/ExplVR_BigEnd.dcm and
    # clean/color-pl.dcm date and time in the ACR-NEMA form, indexed as V3.
    assert response.status_code in (200, 202), response.text
    # No Failed SOP Sequence (0008,1198): every instance was stored.
    assert "00081198" not in response.json(), response.text
    for item in response.json()["00081199"]["Value"]:
        assert item.get("00081196", {"Value": [0xB000]})["Value"] == [0xB000]
    pairs = zip(samples, datasets, strict=True)
    return {sample.label: ds.StudyInstanceUID for sample, ds in pairs}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def ohif(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ohif]:
    """OHIF loaded once, on its own origin, over a dicomhub with every sample."""
    require_ohif()
    viewer = ohif_server.make_server(port=0, quiet=True)
    static_server.serve_in_thread(viewer, "ohif")
    origin = static_server.origin(viewer)
    server = start_server(tmp_path_factory.mktemp("ohif-samples"), cors_table(origin))
    viewer.dicomweb_root = server.root
    context = browser.new_context(viewport=VIEWPORT)
    try:
        samples = [p.values[0] for p in SAMPLES if not _skipped(p)]
        studies = store(server, samples)
        page = context.new_page()
        opened = Ohif(page, origin, server, studies, Console.attach(page))
        opened.watch()
        page.goto(origin + "/", timeout=LOAD_MS)
        yield opened
    finally:
        context.close()
        server.stop()
        viewer.shutdown()
        viewer.server_close()


def _skipped(param: Any) -> bool:
    return any(mark.name == "skip" for mark in param.marks)


@pytest.mark.parametrize("sample", SAMPLES)
def test_ohif_draws_sample(ohif: Ohif, sample: Sample) -> None:
    outcome = ohif.show(sample)

    faults = "\n".join(str(exchange) for exchange in outcome.faults)
    assert not outcome.faults, f"dicomhub answered with errors:\n{faults}"
    if not outcome.drawn:
        raise NotDrawn(f"{sample.label} not drawn: {outcome.explain()}")
    if outcome.last_frame is not None:
        assert outcome.last_frame["imageId"].endswith(f"/frames/{sample.frames}"), (
            outcome.explain()
        )
        if outcome.last_frame["colours"] <= 1:
            raise NotDrawn(f"last frame not drawn: {outcome.explain()}")
