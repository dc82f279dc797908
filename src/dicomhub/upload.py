"""``dicomhub upload``: send DICOM files to a DICOMweb server with STOW-RS.

Files and folders (searched recursively) are sent in batches, each batch one
``multipart/related; type="application/dicom"`` request (PS3.18 §10.5.1)
whose body is streamed from the files, so memory stays small whatever their
size. The server's Store Instances Response (PS3.18 §10.5.3) tells, per SOP
instance, what was stored; the summary names each file that failed and why,
never its patient data.

A file named on the command line is always sent. A file found while walking a
folder is sent only if it is a DICOM PS3.10 file (``DICM`` after the 128-byte
preamble, PS3.10 §7.1) and not a ``DICOMDIR`` (the media directory of a CD
export, PS3.10 §8.6, which is no instance); others (a README, JPEG previews)
are counted as skipped and do not make the upload fail.

Known limit: an instance larger than the server's body limit cannot be sent;
it fails with the server's 413 message.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pydicom
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .multipart import OutgoingPart, multipart_related_stream, new_boundary

STORED = "stored"
DUPLICATE = "already stored"
FAILED = "failed"

# Failure reasons of the Store Instances Response (PS3.18 §10.5.3 and the
# Azure DICOM service's codes), in words.
FAILURE_REASONS = {
    272: "the server could not process it",
    43264: "not a valid DICOM instance, or a required UID is missing",
    43265: "its StudyInstanceUID does not match the study in the URL",
    45070: "the SOP instance is already stored",
    45071: "its series or SOP instance is already stored in another study",
}

_CHUNK = 1 << 20
_PREAMBLE = 128


@dataclass
class FileResult:
    """One file's fate; `outcome` stays None until the server has answered."""

    path: Path
    size: int = 0
    sent: bool = False
    sop_instance_uid: str = ""
    outcome: str | None = None
    reason: str = ""

    def settle(self, outcome: str, reason: str = "") -> None:
        self.outcome = outcome
        self.reason = reason


@dataclass
class Summary:
    results: list[FileResult] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(result.outcome == outcome for result in self.results)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(
            result.outcome in (STORED, DUPLICATE) for result in self.results
        )


def is_part10(path: Path) -> bool:
    """True if the file has the PS3.10 preamble and ``DICM`` prefix."""
    try:
        with open(path, "rb") as f:
            f.seek(_PREAMBLE)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_instance_file(path: Path) -> bool:
    """A PS3.10 file other than a DICOMDIR (whose name is fixed, PS3.10 §8.6)."""
    return path.name.upper() != "DICOMDIR" and is_part10(path)


def collect(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """The files to send and the files skipped while walking folders."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                (files if is_instance_file(found) else skipped).append(found)
        else:
            files.append(path)
    return files, skipped


def batches(
    results: list[FileResult], max_files: int, max_bytes: int
) -> Iterator[list[FileResult]]:
    """Consecutive groups of at most `max_files` files and about `max_bytes`
    bytes (a file bigger than that goes alone)."""
    batch: list[FileResult] = []
    size = 0
    for result in results:
        if batch and (len(batch) >= max_files or size + result.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(result)
        size += result.size
    if batch:
        yield batch


def sop_instance_uid(path: Path) -> str:
    """The file's SOP Instance UID, read locally to match the answer; empty
    when it cannot be read here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]
            )
            return str(ds.get("SOPInstanceUID") or "")
    except Exception:
        # Unreadable here; the server will say why it refuses it.
        return ""


class Uploader:
    """Sends batches to one DICOMweb root and records each file's outcome."""

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 300.0,
        progress: Progress | None = None,
    ):
        self.url = url.rstrip("/") + "/studies"
        self.client = httpx.Client(headers=headers, timeout=timeout)
        self.progress = progress
        self._task: Any = None
        self._files_done = 0
        self._files_total = 0

    def close(self) -> None:
        self.client.close()

    def run(self, results: list[FileResult], max_files: int, max_bytes: int) -> None:
        self._files_total = len(results)
        if self.progress is not None:
            total = sum(result.size for result in results)
            self._task = self.progress.add_task(self._description(), total=total)
        for batch in batches(results, max_files, max_bytes):
            if not self.send(batch):
                break
        for result in results:
            if result.outcome is None and not result.sent:
                result.settle(FAILED, "not sent: the server cannot be reached")
            elif result.outcome is None:
                result.settle(FAILED, "no answer for it in the server's response")

    def send(self, batch: list[FileResult]) -> bool:
        """Store one batch; False when the server cannot be reached at all."""
        for result in batch:
            result.sent = True
            result.sop_instance_uid = sop_instance_uid(result.path)
        boundary = new_boundary()
        parts = [
            OutgoingPart("application/dicom", self._chunks(result.path))
            for result in batch
        ]
        content_type = (
            f'multipart/related; type="application/dicom"; boundary={boundary}'
        )
        try:
            response = self.client.post(
                self.url,
                content=multipart_related_stream(parts, boundary),
                headers={
                    "Content-Type": content_type,
                    "Accept": "application/dicom+json",
                },
            )
        except httpx.ConnectError as exc:
            self._fail(batch, f"cannot connect to {self.url}: {exc}")
            return False
        except (httpx.TransportError, OSError) as exc:
            self._fail(batch, f"the request failed: {type(exc).__name__}: {exc}")
            return True
        finally:
            self._files_done += len(batch)
            if self.progress is not None:
                self.progress.update(self._task, description=self._description())

        self._read_answer(batch, response)
        return True

    def _description(self) -> str:
        return f"{self._files_done}/{self._files_total} files"

    def _chunks(self, path: Path) -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                if self.progress is not None:
                    self.progress.advance(self._task, len(chunk))
                yield chunk

    def _fail(self, batch: list[FileResult], reason: str) -> None:
        for result in batch:
            result.settle(FAILED, reason)

    def _read_answer(self, batch: list[FileResult], response: httpx.Response) -> None:
        # PS3.18 §10.5.3: 200, 202 and 409 carry the response dataset.
        payload = None
        if response.status_code in (200, 202, 409):
            try:
                payload = response.json()
            except ValueError:
                pass
        if not isinstance(payload, dict):
            message = response.text.strip().splitlines()[0] if response.text else ""
            self._fail(batch, f"HTTP {response.status_code}: {message}".rstrip(": "))
            return

        for item in _sequence(payload, "00081199"):
            result = _take(batch, _value(item, "00081155"))
            if result is not None:
                result.settle(STORED)
        for item in _sequence(payload, "00081198"):
            code = _value(item, "00081197")
            result = _take(batch, _value(item, "00081155"))
            if result is None:
                continue
            if code == 45070:
                result.settle(DUPLICATE)
            else:
                text = _value(item, "00000902") or FAILURE_REASONS.get(
                    code, "refused by the server"
                )
                result.settle(FAILED, f"{text} (failure reason {code})")


def _sequence(payload: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    element = payload.get(tag)
    if not isinstance(element, dict):
        return []
    items = element.get("Value", [])
    return [item for item in items if isinstance(item, dict)]


def _value(item: dict[str, Any], tag: str) -> Any:
    element = item.get(tag)
    if isinstance(element, dict) and element.get("Value"):
        return element["Value"][0]
    return None


def _take(batch: list[FileResult], uid: Any) -> FileResult | None:
    """The file an answer item is about: the first unanswered one with its
    SOP Instance UID; for an item without a UID (the server could not read
    the part), the first unanswered one unreadable here too, else any."""
    pending = [result for result in batch if result.outcome is None]
    for wanted in (uid, ""):
        for result in pending:
            if wanted is not None and result.sop_instance_uid == wanted:
                return result
    if uid is None and pending:
        return pending[0]
    return None


def upload(
    paths: list[Path],
    url: str,
    *,
    headers: dict[str, str] | None = None,
    max_files: int = 10,
    max_bytes: int = 16 * 1024**2,
    console: Console | None = None,
) -> Summary:
    """Send the files under `paths` to the DICOMweb root `url`."""
    files, skipped = collect(paths)
    summary = Summary(skipped=skipped)
    readable: list[FileResult] = []
    for path in files:
        result = FileResult(path)
        summary.results.append(result)
        try:
            result.size = path.stat().st_size
        except OSError as exc:
            result.settle(FAILED, f"cannot read it: {exc.strerror}")
            continue
        readable.append(result)

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    uploader = Uploader(url, headers=headers, progress=progress)
    try:
        with progress:
            uploader.run(readable, max_files, max_bytes)
    finally:
        uploader.close()
    return summary


def print_summary(summary: Summary, console: Console) -> None:
    console.print(
        f"stored: {summary.count(STORED)}  "
        f"already stored: {summary.count(DUPLICATE)}  "
        f"failed: {summary.count(FAILED)}  "
        f"skipped (not DICOM instances): {len(summary.skipped)}",
        highlight=False,
        soft_wrap=True,
    )
    failed = [result for result in summary.results if result.outcome == FAILED]
    for result in failed:
        console.print(
            f"  failed  {result.path}: {result.reason}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
