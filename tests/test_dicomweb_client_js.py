"""The JavaScript dicomweb-client (npm, the one OHIF uses) in headless Chromium.

Origin A serves tests/js/dicomweb-client.html with the package's prebuilt UMD
build (build/dicomweb-client.js; scripts/test installs the version named in
tests/js/dicomweb-client.VERSION with ensure_dicomweb_client), our
tests/js/dicomweb-client-calls.js, and three of pydicom's files with new UIDs:
CT_small (native), rtdose (15 frames, Implicit VR) and MR_small_jp2klossless
(JPEG 2000). Origin B is a dicomhub whose [cors] table lists A. The page fetches
the files as ArrayBuffers and drives every request-making method of the client
against B, one call at a time; it reports what came back in window.results
(sizes, counts, UIDs, SHA-256 of parts) and this module checks each against the
files. Version 0.11.3 has no DELETE and no series or study thumbnail methods.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from demo import static_server

from . import dicomdata
from .browser import Console, launch_chromium
from .conftest import Server, start_server

pytestmark = [
    pytest.mark.browser,
    # rtdose.dcm refers to a plan by a UID with a leading-zero component.
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI"),
]

REPOSITORY = Path(__file__).resolve().parent.parent
PAGE_DIR = Path(__file__).resolve().parent / "js"
VERSION = (PAGE_DIR / "dicomweb-client.VERSION").read_text().strip()
INSTALL_DIR = REPOSITORY / ".cache" / "dicomweb-client" / VERSION
UMD_BUILD = INSTALL_DIR / "build" / "dicomweb-client.js"
WAIT_MS = 120_000

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"

# The public methods of DICOMwebClient: those that make requests are all
# exercised by the page; the others make none.
EXERCISED = {
    "storeInstances",
    "searchForStudies",
    "searchForSeries",
    "searchForInstances",
    "retrieveStudyMetadata",
    "retrieveSeriesMetadata",
    "retrieveInstanceMetadata",
    "retrieveInstance",
    "retrieveSeries",
    "retrieveStudy",
    "retrieveInstanceFrames",
    "retrieveInstanceRendered",
    "retrieveInstanceFramesRendered",
    "retrieveInstanceThumbnail",
    "retrieveInstanceFramesThumbnail",
    "retrieveBulkData",
}
NOT_REQUESTED = {
    "buildInstanceWadoURIUrl": "builds a WADO-URI URL (PS3.18 §9); dicomhub has none",
    "setDebug": "logging switch",
    "getDebug": "logging switch",
    "setVerbose": "logging switch",
    "getVerbose": "logging switch",
}

# Calls the page makes that dicomhub must refuse, with the status it must give.
REFUSED = {
    "store CT again (refused: 409)": 409,
    "metadata of an unknown study (404)": 404,
    "CT frame 1 as JPEG Baseline (16-bit: 406)": 406,
}
ANSWERED = [
    "store CT and RT Dose into their study",
    "store MR (JPEG 2000)",
    "studies of the patient",
    "studies of the patient, limit 1 offset 0",
    "studies of the patient, limit 1 offset 1",
    "studies of the patient, limit 1 offset 2",
    "series of the CT study",
    "CT series of the patient",
    "instances of the CT series",
    "instances of the CT study",
    "instances of the patient",
    "metadata of the CT study",
    "metadata of the RT Dose series",
    "metadata of the CT instance",
    "metadata of the MR instance",
    "CT instance",
    "CT instance as stored",
    "MR instance",
    "MR instance as stored",
    "RT Dose series",
    "CT study",
    "CT frame 1",
    "RT Dose frames 1,2,15",
    "CT frame 1, octet-stream as stored",
    "MR frame 1, decoded",
    "MR frame 1 as image/jp2",
    "CT frame 1 as image/jp2 (transcoded)",
    "CT rendered",
    "CT rendered as PNG, viewport 64,64",
    "RT Dose frame 2 rendered as PNG",
    "RT Dose frame 3 rendered, quality 90",
    "CT thumbnail",
    "MR thumbnail as PNG",
    "RT Dose frame 1 thumbnail",
    "CT Pixel Data bulk data",
    "MR Pixel Data bulk data",
    "CT Pixel Data bytes 0-99, single part",
]

# PS3.18 §10.4.1 (Supplement 203) defines a thumbnail of frames,
# {instance}/frames/{frames}/thumbnail, beside the study, series and instance
# ones; dicomhub answers 404 there (docs/dicomweb.md lists no frame thumbnail).
FRAMES_THUMBNAIL = "RT Dose frame 1 thumbnail"


def require_client() -> None:
    """Skip when the UMD build is missing; in CI (CI set) that is a failure."""
    if UMD_BUILD.is_file():
        return
    message = (
        f"dicomweb-client {VERSION} (npm) is not installed in {INSTALL_DIR}; "
        "scripts/test installs it (ensure_dicomweb_client in scripts/_setup.sh)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def cors_table(origins: list[str]) -> str:
    # STOW's multipart Content-Type and the quoted multipart Accept make the
    # browser preflight; dicomhub always allows those headers (docs/cors.md D6).
    return f"""
    [cors]
    origins = {json.dumps(origins)}
    headers = ["Authorization"]
    methods = ["GET", "HEAD", "POST"]
    max_age = 600
    allow_credentials = false
    """


@dataclass
class Instances:
    """CT and RT Dose in one study, the MR in another; one patient."""

    patient_id: str
    ct: Dataset
    dose: Dataset
    mr: Dataset

    def manifest(self) -> dict[str, Any]:
        def entry(name: str, file: str, ds: Dataset) -> dict[str, str]:
            return {
                "name": name,
                "file": file,
                "study": ds.StudyInstanceUID,
                "series": ds.SeriesInstanceUID,
                "sop": ds.SOPInstanceUID,
            }

        return {
            "patientID": self.patient_id,
            "ct": entry("CT", "ct.dcm", self.ct),
            "dose": entry("RT Dose", "dose.dcm", self.dose),
            "mr": entry("MR", "mr.dcm", self.mr),
        }


@dataclass
class PageRun:
    results: dict[str, dict[str, Any]] = field(repr=False)
    methods: list[str]
    wado_uri_url: str
    console: Console = field(repr=False)
    server: Server
    instances: Instances = field(repr=False)

    def answered(self, name: str) -> dict[str, Any]:
        """The result of a call that must succeed; the full exchange when not."""
        entry = self.results[name]
        assert entry["ok"], explain(name, entry, self.server)
        return entry


def explain(name: str, entry: dict[str, Any], server: Server) -> str:
    """What the page saw, each GET sent again from Python, and dicomhub's log."""
    lines = [f"{name}: {json.dumps(entry, indent=1)}"]
    for request in entry.get("requests", []):
        if request["method"] == "GET":
            again = httpx.get(request["url"], headers=request["headers"], timeout=30)
            lines.append(
                f"GET {request['url']} again from Python: {again.status_code} "
                f"{dict(again.headers)} {again.content[:400]!r}"
            )
    lines.append("dicomhub log:\n" + server.log()[-3000:])
    return "\n".join(lines)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_instances() -> Instances:
    ct = dicomdata.fresh("CT_small.dcm")
    patient = ct.PatientID
    dose = dicomdata.fresh("rtdose.dcm", study=ct.StudyInstanceUID, PatientID=patient)
    mr = dicomdata.fresh("MR_small_jp2klossless.dcm", PatientID=patient)
    return Instances(patient, ct, dose, mr)


def make_site(directory: Path, instances: Instances) -> Path:
    """Origin A's files: the page, the client's UMD build, the DICOM files."""
    directory.mkdir()
    for name in ("dicomweb-client.html", "dicomweb-client-calls.js"):
        shutil.copy(PAGE_DIR / name, directory / name)
    shutil.copy(UMD_BUILD, directory / "dicomweb-client.js")
    manifest = instances.manifest()
    (directory / "instances.json").write_text(json.dumps(manifest))
    for key in ("ct", "dose", "mr"):
        data = dicomdata.to_bytes(getattr(instances, key))
        (directory / manifest[key]["file"]).write_bytes(data)
    return directory


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageRun]:
    """The page opened once against its own dicomhub, after every call settled."""
    require_client()
    instances = make_instances()
    site = make_site(tmp_path_factory.mktemp("page") / "site", instances)
    page_server = static_server.make_server(port=0, directory=site, quiet=True)
    static_server.serve_in_thread(page_server, "dicomweb-client-page")
    origin = static_server.origin(page_server)
    server = start_server(tmp_path_factory.mktemp("dicomhub"), cors_table([origin]))
    try:
        with launch_chromium() as browser:
            context = browser.new_context()
            page = context.new_page()
            console = Console.attach(page)
            page.goto(f"{origin}/dicomweb-client.html?root={server.root}")
            page.wait_for_function("window.done === true", timeout=WAIT_MS)
            yield PageRun(
                results=page.evaluate("window.results"),
                methods=page.evaluate("window.clientMethods"),
                wado_uri_url=page.evaluate("window.wadoURIUrl"),
                console=console,
                server=server,
                instances=instances,
            )
            context.close()
    finally:
        server.stop()
        page_server.shutdown()
        page_server.server_close()


def test_every_request_making_method_is_exercised(run: PageRun) -> None:
    # The build's own `version` export says "0.5.2" in 0.11.3 (not regenerated
    # before publishing), so the package's manifest is the one to trust.
    package = json.loads((INSTALL_DIR / "package.json").read_text())
    assert package["version"] == VERSION
    assert "page" not in run.results, run.results.get("page")
    assert set(run.methods) == EXERCISED | set(NOT_REQUESTED), run.methods
    assert {entry["method"] for entry in run.results.values()} == EXERCISED
    assert set(run.results) == set(ANSWERED) | set(REFUSED)


@pytest.mark.parametrize("name", ANSWERED)
def test_call_answered(run: PageRun, name: str) -> None:
    entry = run.answered(name)
    assert entry["status"] in (200, 206), explain(name, entry, run.server)


@pytest.mark.parametrize(("name", "status"), REFUSED.items())
def test_call_refused(run: PageRun, name: str, status: int) -> None:
    entry = run.results[name]
    assert not entry["ok"] and entry["status"] == status, explain(
        name, entry, run.server
    )


def test_no_cors_error_in_console(run: PageRun) -> None:
    assert run.console.cors_errors() == [], run.console.lines
    assert not [line for line in run.console.lines if line.startswith("pageerror")]


def test_store_instances(run: PageRun) -> None:
    """STOW-RS (PS3.18 §10.5): the client's multipart body is stored whole;
    storing an instance again is refused with 45070 (docs/dicomweb.md)."""
    ct, dose, mr = run.instances.ct, run.instances.dose, run.instances.mr
    stored = run.answered("store CT and RT Dose into their study")
    assert stored["referenced"] == [ct.SOPInstanceUID, dose.SOPInstanceUID]
    assert stored["failed"] == []
    assert run.answered("store MR (JPEG 2000)")["referenced"] == [mr.SOPInstanceUID]

    again = run.results["store CT again (refused: 409)"]
    assert "45070" in again["body"] and ct.SOPInstanceUID in again["body"]


def test_searches(run: PageRun) -> None:
    """QIDO-RS (PS3.18 §10.6) at each level, with limit and offset paging."""
    ct, dose, mr = run.instances.ct, run.instances.dose, run.instances.mr
    studies = {ct.StudyInstanceUID, mr.StudyInstanceUID}
    assert set(run.answered("studies of the patient")["uids"]) == studies

    pages = [
        run.answered(f"studies of the patient, limit 1 offset {offset}")["uids"]
        for offset in (0, 1, 2)
    ]
    assert [len(page) for page in pages] == [1, 1, 0]
    assert set(pages[0] + pages[1]) == studies

    series = run.answered("series of the CT study")
    assert series["modalities"] == ["CT", "RTDOSE"]
    assert run.answered("CT series of the patient")["uids"] == [ct.SeriesInstanceUID]
    assert run.answered("instances of the CT series")["uids"] == [ct.SOPInstanceUID]
    assert run.answered("instances of the CT study")["uids"] == sorted(
        [ct.SOPInstanceUID, dose.SOPInstanceUID]
    )
    assert run.answered("instances of the patient")["uids"] == sorted(
        [ct.SOPInstanceUID, dose.SOPInstanceUID, mr.SOPInstanceUID]
    )


def test_metadata(run: PageRun) -> None:
    """WADO-RS metadata (PS3.18 §10.4, Annex F) with BulkDataURIs on dicomhub."""
    ct, dose, mr = run.instances.ct, run.instances.dose, run.instances.mr
    assert run.answered("metadata of the CT study")["uids"] == sorted(
        [ct.SOPInstanceUID, dose.SOPInstanceUID]
    )
    assert run.answered("metadata of the RT Dose series")["frames"] == [15]

    for name, ds, syntax in (
        ("CT", ct, EXPLICIT_VR_LITTLE_ENDIAN),
        ("MR", mr, JPEG_2000_LOSSLESS),
    ):
        entry = run.answered(f"metadata of the {name} instance")
        assert entry["uids"] == [ds.SOPInstanceUID]
        assert entry["transferSyntaxes"] == [syntax]
        uri = entry["pixelDataBulkDataURI"]
        assert uri.startswith(run.server.root + "/studies/"), uri
        assert ds.SOPInstanceUID in uri


def test_retrieve_instances_series_study(run: PageRun) -> None:
    """WADO-RS (PS3.18 §10.4.1.1.1): PS3.10 parts; transfer-syntax=* gives the
    bytes the page stored."""
    for name in ("CT", "MR"):
        entry = run.answered(f"{name} instance")
        assert entry["count"] == 1 and entry["part10"] == [True]
        assert entry["contentType"] == "application/dicom"
        assert run.answered(f"{name} instance as stored")["identical"] is True

    assert run.answered("RT Dose series")["part10"] == [True]
    assert run.answered("CT study")["part10"] == [True, True]


def jpeg_2000_frame(mr: Dataset) -> bytes:
    return next(generate_frames(mr.PixelData, number_of_frames=1))


def test_frames(run: PageRun) -> None:
    """Frames (PS3.18 §10.4.1.1.3): native little endian by default, decoded
    when stored compressed; as stored with transfer-syntax=* or image/jp2."""
    ct, dose, mr = run.instances.ct, run.instances.dose, run.instances.mr
    for name in ("CT frame 1", "CT frame 1, octet-stream as stored"):
        assert run.answered(name)["sha256"] == [sha256(ct.PixelData)]

    frame_size = dose.Rows * dose.Columns * dose.BitsAllocated // 8
    expected = [
        sha256(dose.PixelData[(n - 1) * frame_size : n * frame_size])
        for n in (1, 2, 15)
    ]
    assert run.answered("RT Dose frames 1,2,15")["sha256"] == expected

    decoded = run.answered("MR frame 1, decoded")
    assert decoded["sha256"] == [sha256(mr.pixel_array.tobytes())]

    jp2 = run.answered("MR frame 1 as image/jp2")
    assert jp2["contentType"] == "image/jp2"
    assert jp2["magic"][0] in ("j2k", "jp2")
    assert jp2["sha256"] == [sha256(jpeg_2000_frame(mr))]

    # Transcoded (PS3.18 §8.7.3): a JPEG 2000 codestream made from the CT frame.
    transcoded = run.answered("CT frame 1 as image/jp2 (transcoded)")
    assert transcoded["contentType"] == "image/jp2"
    assert transcoded["magic"][0] in ("j2k", "jp2")


def test_rendered_and_thumbnails(run: PageRun) -> None:
    """Rendered and thumbnail resources (PS3.18 §10.4.1.1.4-5), decoded by
    Chromium; JPEG unless PNG was asked for."""
    expected = {
        "CT rendered": ("jpeg", [128, 128]),
        "CT rendered as PNG, viewport 64,64": ("png", [64, 64]),
        "RT Dose frame 2 rendered as PNG": ("png", [10, 10]),
        "RT Dose frame 3 rendered, quality 90": ("jpeg", [10, 10]),
    }
    for name, (kind, dimensions) in expected.items():
        entry = run.answered(name)
        assert (entry["magic"], entry["dimensions"]) == (kind, dimensions), name

    for name, kind in (("CT thumbnail", "jpeg"), ("MR thumbnail as PNG", "png")):
        entry = run.answered(name)
        width, height = entry["dimensions"]
        assert entry["magic"] == kind and width == height <= 128, (name, entry)


def test_frames_thumbnail(run: PageRun) -> None:
    entry = run.answered(FRAMES_THUMBNAIL)
    assert entry["status"] == 200
    assert entry["magic"] == "jpeg" and entry["dimensions"] == [10, 10]


def test_bulk_data(run: PageRun) -> None:
    """Bulk data (PS3.18 §10.4.1.1.2) at the metadata's BulkDataURIs: native
    Pixel Data as one part, compressed as one part per frame as stored; a
    single-part Range answers 206 (RFC 9110 §14)."""
    ct, mr = run.instances.ct, run.instances.mr
    assert run.answered("CT Pixel Data bulk data")["sha256"] == [sha256(ct.PixelData)]
    assert run.answered("MR Pixel Data bulk data")["sha256"] == [
        sha256(jpeg_2000_frame(mr))
    ]

    ranged = run.answered("CT Pixel Data bytes 0-99, single part")
    assert ranged["status"] == 206
    assert ranged["sha256"] == [sha256(ct.PixelData[:100])]


def test_wado_uri_url_is_only_built(run: PageRun) -> None:
    ct = run.instances.ct
    assert run.wado_uri_url == (
        f"{run.server.root}?requestType=WADO&studyUID={ct.StudyInstanceUID}"
        f"&seriesUID={ct.SeriesInstanceUID}&objectUID={ct.SOPInstanceUID}"
        "&contentType=application/dicom&transferSyntax=*"
    )
