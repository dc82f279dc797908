"""The big phase (``--only big``): one 2 GB study, stored in one STOW-RS
request and retrieved in one WADO-RS answer.

The goal (BRIEF.md): "A 2 GB STOW body is stored with the server's peak RSS
under 256 MB; retrieving a 2 GB study streams without buffering it."

1. The study: `INSTANCES` multi-frame 16-bit instances (Multi-frame Grayscale
   Word Secondary Capture, made from pydicom's CT_small.dcm), `FRAMES` frames
   of `SIZE` × `SIZE` each, 8 MiB of pixel data an instance, 2 GiB in all.
   They are written once to bench/.work/big/ and reused.
2. STOW-RS: the files go as ONE multipart/related body (PS3.18 §10.5.1),
   chunked (RFC 9112 §7.1), read from the files 1 MiB at a time as the
   request is sent, so the client never holds the body. Every instance must
   come back in ReferencedSOPSequence (PS3.18 §10.5.3).
3. WADO-RS: the whole study with ``Accept: multipart/related;
   type="application/dicom"; transfer-syntax=*`` (PS3.18 §10.4.1.1.1, as
   stored), read as it arrives and written to /dev/null; the parts are counted
   on the way.

Each step resets the server's peak resident set size before the request and
reads it after (bench/memory.py). A server that buffers the body holds about
2 GB at its peak; one that streams holds a few chunks. The time to the first
byte of the answer says the same for retrieval: a server that reads the whole
study before answering starts late.

One request per server and step (2 GB each; ``--repeats`` does not apply). A
server that refuses, fails or dies gets a row saying so, not a figure.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from . import memory
from .compare import DICOMHUB, PEER, Figure, Line, line
from .load import MULTIPART_DICOM
from .servers import Running

INSTANCES = 256
FRAMES = 16
SIZE = 512  # Rows = Columns, 16-bit: 512 KiB a frame, 8 MiB an instance
SERIES = 4
CHUNK = 1 << 20
GOAL_MB = 256  # the server's peak RSS while it stores a 2 GB body

# Multi-frame Grayscale Word Secondary Capture Image Storage (PS3.4 B.5).
MF_GRAYSCALE_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
RETRIEVE_ACCEPT = f"{MULTIPART_DICOM}; transfer-syntax=*"

# A 2 GB request or answer takes minutes on a busy machine; a stalled one
# fails after this many seconds without a byte.
TIMEOUT = httpx.Timeout(1800.0, connect=10.0)


@dataclass(frozen=True)
class Study:
    uid: str
    paths: list[Path]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.paths)

    def shape(self) -> str:
        return f"{len(self.paths)} × {FRAMES} frames of {SIZE}×{SIZE} (16-bit)"

    def describe(self) -> str:
        return f"{self.shape()}, {self.size / 1e6:,.0f} MB"


def make(work: Path, seed: int, progress: Callable[[str], None]) -> Study:
    """The study's files under `work`; made once (index.csv is written last,
    so a folder that has it is whole) and reused."""
    out = work / "big" / f"mf-{INSTANCES}x{FRAMES}x{SIZE}-{seed}"
    index = out / "index.csv"
    if index.exists():
        with open(index, newline="") as f:
            rows = list(csv.DictReader(f))
        return Study(rows[0]["StudyInstanceUID"], [out / r["file"] for r in rows])

    progress(f"making the big study in {out} (once)")
    out.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    template.SOPClassUID = MF_GRAYSCALE_WORD_SC
    template.file_meta.MediaStorageSOPClassUID = MF_GRAYSCALE_WORD_SC
    template.Rows = template.Columns = SIZE
    template.NumberOfFrames = FRAMES
    template.BitsAllocated, template.BitsStored, template.HighBit = 16, 12, 11
    template.PixelRepresentation = 0
    template.PatientID = f"BIG{seed:03d}"
    template.PatientName = "Big^Study"
    template.StudyInstanceUID = generate_uid()
    rng = np.random.default_rng(seed)
    rows = []
    series = ""
    for i in range(INSTANCES):
        if i % (INSTANCES // SERIES) == 0:
            series = generate_uid()
        ds = template.copy()
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        # 12-bit noise: no compressor makes it much smaller.
        ds.PixelData = rng.integers(
            0, 4096, FRAMES * SIZE * SIZE, dtype="<u2"
        ).tobytes()
        name = f"mf_{i:04d}.dcm"
        ds.save_as(out / name, enforce_file_format=True)
        rows.append({"file": name, "StudyInstanceUID": ds.StudyInstanceUID})
    with open(index, "w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "StudyInstanceUID"])
        writer.writeheader()
        writer.writerows(rows)
    return Study(template.StudyInstanceUID, [out / r["file"] for r in rows])


def body(paths: list[Path], boundary: str) -> Iterator[bytes]:
    """The multipart/related body (RFC 2046 §5.1.1), read from the files as it
    is sent: one part head or one 1 MiB chunk of a file at a time."""
    for path in paths:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


@dataclass
class Step:
    """One request to one server: its figures, or why it has none."""

    seconds: float = 0.0
    size: int = 0
    first_byte: float | None = None
    server_before: float | None = None
    server_peak: float | None = None
    client_peak: float | None = None
    failure: str = ""

    @property
    def megabytes_per_second(self) -> float | None:
        if self.failure or not self.seconds:
            return None
        return self.size / 1e6 / self.seconds


def measured(target: Running, request: Callable[[Step], None]) -> Step:
    """Run `request` with the server's and this client's peaks reset."""
    step = Step(server_before=memory.resident_megabytes(target.pid))
    memory.reset_peak(target.pid)
    memory.reset_peak(os.getpid())
    started = time.perf_counter()
    try:
        request(step)
    except httpx.HTTPError as exc:
        step.failure = f"{type(exc).__name__}: {str(exc)[:120] or 'no message'}"
    step.seconds = time.perf_counter() - started
    step.server_peak = memory.peak_megabytes(target.pid)
    step.client_peak = memory.peak_megabytes(os.getpid())
    if step.server_peak is None:
        step.failure = (step.failure + "; " if step.failure else "") + (
            "the server process is gone"
        )
    return step


def stow(target: Running, study: Study) -> Step:
    boundary = f"bench-big-{uuid.uuid4().hex}"

    def request(step: Step) -> None:
        response = httpx.post(
            f"{target.root}/studies",
            content=body(study.paths, boundary),
            headers={
                "Content-Type": f"{MULTIPART_DICOM}; boundary={boundary}",
                "Accept": "application/dicom+json",
            },
            timeout=TIMEOUT,
        )
        step.size = study.size
        if response.status_code != 200:
            step.failure = f"{response.status_code}: {response.text[:120]}"
            return
        # ReferencedSOPSequence (0008,1199), PS3.18 §10.5.3.
        stored = len(response.json().get("00081199", {}).get("Value", []))
        if stored != len(study.paths):
            step.failure = f"{stored} of {len(study.paths)} instances stored"

    return measured(target, request)


def boundary_of(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    return ""


def retrieve(target: Running, study: Study) -> Step:
    def request(step: Step) -> None:
        started = time.perf_counter()
        headers = {"Accept": RETRIEVE_ACCEPT, "Accept-Encoding": "gzip, deflate"}
        url = f"{target.root}/studies/{study.uid}"
        with (
            httpx.stream("GET", url, headers=headers, timeout=TIMEOUT) as response,
            open(os.devnull, "wb") as sink,
        ):
            if response.status_code != 200:
                step.failure = f"{response.status_code}: {response.read()[:120]!r}"
                return
            delimiter = b"--" + boundary_of(response.headers["content-type"]).encode()
            tail = b""
            delimiters = 0
            for chunk in response.iter_bytes():
                if step.first_byte is None:
                    step.first_byte = time.perf_counter() - started
                step.size += len(chunk)
                sink.write(chunk)

                # Count delimiter lines across chunk edges: parts + 1.
                window = tail + chunk
                delimiters += window.count(delimiter)
                tail = window[-(len(delimiter) - 1) :]
                delimiters -= tail.count(delimiter)
        if delimiters - 1 != len(study.paths):
            step.failure = f"{delimiters - 1} parts for {len(study.paths)} instances"

    return measured(target, request)


def run(
    targets: list[Running], study: Study, progress: Callable[[str], None]
) -> list[tuple[Figure, dict[str, str]]]:
    """Store then retrieve the study on every server; each figure with the
    servers' failures and details."""
    stows: dict[str, Step] = {}
    retrieves: dict[str, Step] = {}
    for target in targets:
        progress(f"big: STOW-RS of {study.describe()} into {target.name}")
        stows[target.name] = stow(target, study)
        progress(f"big: {target.name}: {summary(stows[target.name])}")
        if stows[target.name].failure:
            continue
        progress(f"big: WADO-RS of the study from {target.name}")
        retrieves[target.name] = retrieve(target, study)
        progress(f"big: {target.name}: {summary(retrieves[target.name])}")

    size = f"{study.size / 1e6:,.0f} MB"
    client = "python, 1 client, 1 request"
    rows = [
        (stows, f"STOW-RS one {size} body (chunked), {study.shape()}",
         "MB/s", True, lambda s: s.megabytes_per_second),
        (stows, f"peak RSS during the {size} STOW-RS (goal < {GOAL_MB} MB)",
         "MB", False, lambda s: s.server_peak),
        (retrieves, f"WADO-RS study of {size}, transfer-syntax=*",
         "MB/s", True, lambda s: s.megabytes_per_second),
        (retrieves, f"WADO-RS study of {size}: time to first byte",
         "ms", False, lambda s: s.first_byte * 1000 if s.first_byte else None),
        (retrieves, f"peak RSS during the {size} WADO-RS study",
         "MB", False, lambda s: s.server_peak),
    ]  # fmt: skip
    result = []
    for steps, name, unit, higher, value in rows:
        figure = Figure("big", name, unit, higher, client)
        notes = {}
        for target in targets:
            step = steps.get(target.name)
            if step is None:
                notes[target.name] = "not run: its STOW-RS failed"
            elif step.failure and not (unit == "MB" and step.server_peak):
                notes[target.name] = f"failed: {step.failure}"
            else:
                figure.add(target.name, value(step))
                if step.failure:
                    notes[target.name] = f"failed: {step.failure}"
        result.append((figure, notes | details(steps)))
    return result


def summary(step: Step) -> str:
    peak = f"{step.server_peak:,.0f} MB" if step.server_peak else "n/a"
    rate = step.megabytes_per_second
    return (
        f"{step.failure or 'ok'}, {step.seconds:.1f} s, "
        f"{f'{rate:.0f} MB/s' if rate else 'no rate'}, server peak RSS {peak}"
    )


def details(steps: dict[str, Step]) -> dict[str, str]:
    """The spread column: seconds, the server's RSS before the request (the
    peak starts there: clear_refs resets it to the current RSS) and the
    client's own peak RSS (it never holds the body)."""
    text = "; ".join(
        f"{name} {step.seconds:.1f} s, RSS before {step.server_before or 0:,.0f} MB, "
        f"client peak RSS {step.client_peak or 0:,.0f} MB"
        for name, step in steps.items()
    )
    return {"detail": text}


def lines(results: list[tuple[Figure, dict[str, str]]]) -> list[Line]:
    """The table's rows: a failure replaces the server's figure or sits beside
    its peak memory, and leaves the row without a ratio."""
    rows = []
    for figure, notes in results:
        row = line(figure)
        if any(note.startswith("failed") for note in notes.values()):
            row.ratio = "n/a"
        for server, attribute in ((DICOMHUB, "dicomhub"), (PEER, "peer")):
            if server in notes:
                cell = getattr(row, attribute)
                note = notes[server]
                text = note if cell == "n/a" else f"{cell} ({note})"
                setattr(row, attribute, text)
        row.spread = notes.get("detail", "")
        rows.append(row)
    return rows
