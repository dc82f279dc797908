"""STOW-RS: store instances (PS3.18 §10.5).

``POST {root}/studies`` and ``POST {root}/studies/{study}`` take either
``multipart/related; type="application/dicom"`` (one PS3.10 file per part) or
a single ``application/dicom`` body. The body is read from the ASGI receive
channel as it arrives, so memory stays bounded whatever the body size. Each
part goes through three steps, the blocking ones in the thread pool:

1. receive: its bytes go to a temporary file in the store's incoming folder;
2. examine: once the part ends, its file is synced and pydicom reads it
   (large values are skipped, not loaded), building the index record and the
   metadata document (``dicomhub.stow.examine``), while the next parts keep
   arriving: several parts are synced side by side, which the file system
   takes in one journal commit;
3. commit: at the body's end (or every `STOW_BATCH` instances) the examined
   files are renamed into place, each folder is synced once, then one index
   transaction records them all, so a crash never leaves an index row without
   its file, and an instance the answer lists survives a crash of the machine
   (``dicomhub.index.sql`` syncs each commit). A file whose row was refused is
   removed again. Records are indexed in body order, so of two parts with the
   same SOP Instance UID the first wins.

If the body turns out to be broken (cut short, no closing delimiter, over the
size limit), the parts received whole before the break are committed, and the
4xx for the break says how many were stored.

Each instance gets its own blob key (its UIDs plus a random suffix), so an
upload that loses a race against another with the same SOP Instance UID never
overwrites the file the winner stored: the stored instance stays
byte-identical, and the duplicate fails with 45070, as in the Azure service.

``PUT`` on the same paths stores as the Azure DICOM service's upsert does:
the same bodies, limits and answers, but an instance whose SOP Instance UID is
already stored (in the same study and series) replaces the stored one instead
of failing with 45070. The new file goes in under its own key, the index row
then points at it (one transaction, with a change feed ``create`` entry that
marks the earlier ones ``replaced``), and the old file is removed last, so a
crash at any step leaves the index naming a whole file. The study and series
rows take the replacement's attributes too (the Azure service's "latest
wins"); a POST of a further instance leaves them as they are. An instance stored
under another study or series is refused with 45071, not moved.

A retrieve that looked up the old file just before it was removed reads
the replacement instead when it is in the same transfer syntax
(``dicomhub.services.wado``); otherwise it finds it gone, as after a DELETE.

The answer is the Store Instances Response Module (PS3.18 §10.5.3) with the
Azure DICOM service's failure reasons (``dicomhub.stow.response``). An instance
whose searchable attributes fail their VR's rules is stored all the same, as
the Azure service's API v2 does, and answered with warnings (202): POST and
PUT alike (``dicomhub.index.validation``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .. import audit
from ..errors import (
    BadRequest,
    DicomhubError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..index import DuplicateInstance, InstanceRecord
from ..mediatypes import parse_media_type
from ..multipart import PartData, PartEnd, PartStart, read_multipart
from ..stow.examine import (
    CONFLICTING_STUDY,
    DUPLICATE_INSTANCE,
    INVALID_INSTANCE,
    PROCESSING_FAILURE,
    InvalidInstance,
    examine,
)
from ..stow.response import Reference, store_response
from ..uids import check_uid, shown
from ..web import Services, dicomweb_root, services

logger = logging.getLogger(__name__)

DICOM = "application/dicom"

# Bytes of one part gathered in memory before they go to its file.
_WRITE_BATCH = 1 << 20

# Parts being synced and examined while the next ones are still arriving.
_IN_FLIGHT = 8

# Instances indexed in one transaction at most: a request's instances are
# indexed together, up to this many at a time.
STOW_BATCH = 50

ACCEPTED = 'multipart/related; type="application/dicom" or application/dicom'


@dataclass
class Received:
    """One part: stored (`reference`) or refused (`failure`) once settled.

    `temp` is its file in the incoming folder until it is moved into place
    or removed; `record` what the index is to keep of it once examined.
    """

    number: int
    temp: Path | None = None
    record: InstanceRecord | None = None
    reference: Reference | None = None
    failure: InvalidInstance | None = None
    # For the audit log: the study the examined instance names, and whether
    # it replaced a stored one (PUT).
    study: str | None = None
    replaced: bool = False


# Receiving ---------------------------------------------------------------


class PartFile:
    """The bytes of one part on their way into a temporary file."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path: Path | None = None
        self.size = 0
        self._fd = -1
        self._pending: list[bytes] = []
        self._pending_size = 0

    async def open(self) -> None:
        self._fd, name = await run_in_threadpool(
            tempfile.mkstemp, suffix=".part", dir=self.directory
        )
        self.path = Path(name)

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= _WRITE_BATCH:
            await self._flush()

    async def finish(self) -> Path:
        """Write what is pending; the file's path. `sync_and_close` follows."""
        await self._flush()
        assert self.path is not None
        return self.path

    def sync_and_close(self) -> None:
        """Bring the bytes to the disk and close the file (blocking).

        Parts are synced in the thread pool side by side while the next ones
        arrive, and the file system takes several syncs in one journal commit.
        """
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def discard(self) -> None:
        self.discard_descriptor()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def discard_descriptor(self) -> None:
        """Close the file if `sync_and_close` did not."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        await run_in_threadpool(_write_all, self._fd, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, refused once it grows over `limit` bytes."""
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise BadRequest(
            "the client closed the connection before the body ended"
        ) from None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is over the limit of {limit} bytes "
        "(server.max_body_bytes); send the instances in several requests"
    )


# Committing --------------------------------------------------------------


def _prepare(item: Received, part: PartFile, size: int, study: str | None) -> None:
    """Sync the part and examine it (blocking): sets `item.record`, or
    raises InvalidInstance."""
    part.sync_and_close()
    assert item.temp is not None
    item.record = examine(item.temp, size, study)


def _commit(svc: Services, batch: list[Received], replace: bool) -> None:
    """Store the examined parts of `batch`, in body order, as one index
    transaction; each item ends with its `reference` or its `failure`.

    The files go into place first and are made durable, then the index names
    them, so a crash never leaves an index row without its file; files the
    index refused are removed again, and files of replaced instances once the
    index names their replacements. Whatever happens, the items' temporary
    files are gone afterwards: moved or removed.
    """
    placed: list[Received] = []
    for item in batch:
        try:
            _place(svc, item)
        except OSError as exc:
            logger.error("stow: cannot store a blob: %s", exc.strerror)
            _refuse(svc, item, PROCESSING_FAILURE, "the file could not be stored")
        else:
            placed.append(item)
    if not placed:
        return

    try:
        svc.store.make_durable(_record(item).blob_key for item in placed)
        outcomes = svc.index.add_instances([_record(item) for item in placed], replace)
    except OSError as exc:
        logger.error("stow: cannot store a blob: %s", exc.strerror)
        for item in placed:
            _refuse(svc, item, PROCESSING_FAILURE, "the file could not be stored")
        return
    except Exception:
        logger.exception("stow: the index refused instances")
        for item in placed:
            _refuse(svc, item, PROCESSING_FAILURE, "the index could not store it")
        return

    for item, outcome in zip(placed, outcomes, strict=True):
        record = _record(item)
        if isinstance(outcome.refusal, DuplicateInstance):
            # The blob under its own key never touched the stored
            # instance's file (Azure 45070).
            _refuse(svc, item, DUPLICATE_INSTANCE, "the SOP instance is already stored")
            continue
        if outcome.refusal is not None:
            _refuse(svc, item, CONFLICTING_STUDY, str(outcome.refusal))
            continue
        item.reference = Reference(
            record.study_instance_uid,
            record.series_instance_uid,
            record.sop_instance_uid,
            record.sop_class_uid,
            tuple(record.warnings),
        )

        # The index names the new file now; the replaced one is unreferenced.
        replaced = outcome.replaced
        item.replaced = replaced is not None
        if replaced is not None and replaced.blob_key != record.blob_key:
            _remove_blob(svc, replaced.blob_key)


def _record(item: Received) -> InstanceRecord:
    assert item.record is not None
    return item.record


def _place(svc: Services, item: Received) -> None:
    """Move the part's file under its key, not yet durable."""
    assert item.temp is not None
    svc.store.place(_record(item).blob_key, item.temp)
    item.temp = None


def _refuse(svc: Services, item: Received, reason: int, message: str) -> None:
    """`item` fails: its file, placed or not, is removed."""
    record = _record(item)
    item.failure = InvalidInstance(
        reason, message, record.sop_class_uid, record.sop_instance_uid
    )
    _unlink_temporary(item)
    _remove_blob(svc, record.blob_key)


def _remove_blob(svc: Services, key: str) -> None:
    """Take back a blob the index does not name (refused or replaced)."""
    try:
        svc.store.delete(key)
    except OSError as exc:
        # Unreferenced, so invisible; only its space is lost.
        logger.error("stow: cannot remove an unindexed blob: %s", exc.strerror)


# The request -------------------------------------------------------------


class StowRequest:
    """The parts of one request, from the body's bytes to the index."""

    def __init__(self, svc: Services, study: str | None, replace: bool = False):
        self.svc = svc
        self.study = study
        self.replace = replace
        self.received: list[Received] = []
        self._part: PartFile | None = None
        self._in_flight: list[asyncio.Task[None]] = []
        self._batch: list[Received] = []

    @property
    def stored(self) -> list[Reference]:
        return [item.reference for item in self.received if item.reference]

    @property
    def failed(self) -> list[InvalidInstance]:
        return [item.failure for item in self.received if item.failure]

    @property
    def replaced(self) -> int:
        return sum(1 for item in self.received if item.reference and item.replaced)

    @property
    def studies(self) -> set[str]:
        """The Study Instance UIDs of the instances examined, stored or not."""
        return {item.study for item in self.received if item.study}

    async def handle(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            await self.start(event.content_type)
        elif isinstance(event, PartData):
            await self.write(event.data)
        else:
            await self.end()

    async def start(self, content_type: str | None) -> None:
        number = len(self.received) + 1
        item = Received(number)
        self.received.append(item)

        # Parts without a Content-Type take the root type (RFC 2387 §3.1).
        media = parse_media_type(content_type or DICOM).type
        if media != DICOM:
            item.failure = InvalidInstance(
                INVALID_INSTANCE,
                # The type is the client's text: quoted, escaped and cut.
                f"part {number} is {shown(media)}, not {DICOM} (PS3.18 §10.5.1)",
            )
            return
        part = PartFile(self.svc.store.temp_dir())
        try:
            await part.open()
        except OSError as exc:
            self._unwritable(item, part, exc)
            return
        self._part = part

    async def write(self, data: bytes) -> None:
        if self._part is None:
            return
        try:
            await self._part.write(data)
        except OSError as exc:
            self._unwritable(self.received[-1], self._part, exc)

    async def end(self) -> None:
        part, self._part = self._part, None
        if part is None:
            return
        item = self.received[-1]
        try:
            item.temp = await part.finish()
        except OSError as exc:
            self._unwritable(item, part, exc)
            return

        # Syncing and examining run while the next parts arrive; a few parts
        # at most are in flight, so memory stays bounded. Each part joins the
        # batch after the one before it, keeping body order.
        while len(self._in_flight) >= _IN_FLIGHT:
            await self._in_flight.pop(0)
        previous = self._in_flight[-1] if self._in_flight else None
        task = asyncio.create_task(self._store(item, part, previous))
        self._in_flight.append(task)

    def _unwritable(self, item: Received, part: PartFile, exc: OSError) -> None:
        """The part cannot be written (disk full, say): it fails, others go on."""
        logger.error("stow: cannot write part %d: %s", item.number, exc.strerror)
        part.discard()
        self._part = None
        item.failure = InvalidInstance(
            PROCESSING_FAILURE, "the server could not write the part to disk"
        )

    async def _store(
        self, item: Received, part: PartFile, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            await run_in_threadpool(_prepare, item, part, part.size, self.study)
            item.study = _record(item).study_instance_uid
        except InvalidInstance as failure:
            item.failure = failure
        except Exception:
            logger.exception("stow: part %d could not be stored", item.number)
            item.failure = InvalidInstance(
                PROCESSING_FAILURE, "the server could not store the instance"
            )
        finally:
            part.discard_descriptor()
        if item.failure is not None:
            # Refused before the commit: free its space now.
            _unlink_temporary(item)

        if previous is not None:
            await previous
        if item.failure is None:
            self._batch.append(item)
        if len(self._batch) >= STOW_BATCH:
            await self._commit()

    async def _commit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        try:
            await run_in_threadpool(_commit, self.svc, batch, self.replace)
        except Exception:
            logger.exception("stow: instances could not be stored")
            for item in batch:
                if item.reference is None and item.failure is None:
                    item.failure = InvalidInstance(
                        PROCESSING_FAILURE, "the server could not store the instance"
                    )
                _unlink_temporary(item)
        finally:
            # The answer needs only each item's reference or failure; the
            # records (with their metadata documents) go, so a request of
            # many parts (up to dicomhub.multipart.MAX_PARTS) holds little.
            for item in batch:
                item.record = None

    async def settle(self) -> None:
        """Wait until every received part is stored or refused."""
        while self._in_flight:
            await self._in_flight.pop(0)
        await self._commit()

    async def cleanup(self) -> None:
        """Remove every temporary file that was not committed."""
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._part is not None:
            self._part.discard()
        for item in self.received:
            _unlink_temporary(item)


def _unlink_temporary(item: Received) -> None:
    if item.temp is not None:
        item.temp.unlink(missing_ok=True)
        item.temp = None


def _boundary(request: Request) -> str | None:
    """The multipart boundary, or None for a single application/dicom body."""
    header = request.headers.get("content-type")
    if not header:
        raise UnsupportedMediaType(
            f"the request has no Content-Type; STOW-RS accepts {ACCEPTED}"
        )
    media = parse_media_type(header)
    if media.type == DICOM:
        return None
    if media.type != "multipart/related":
        raise UnsupportedMediaType(
            f"{media.type} is not accepted here; STOW-RS accepts {ACCEPTED} "
            "(PS3.18 §10.5.1)"
        )
    root_type = parse_media_type(media.params.get("type", DICOM)).type
    if root_type != DICOM:
        raise UnsupportedMediaType(
            f'multipart/related; type="{root_type}" is not accepted; STOW-RS '
            f"here accepts {ACCEPTED} (PS3.18 §10.5.1)"
        )
    boundary = media.params.get("boundary")
    if not boundary:
        raise BadRequest(
            "Content-Type multipart/related has no boundary parameter; add "
            "boundary=... naming the delimiter used in the body (RFC 2046 §5.1.1)"
        )
    return boundary


def _check_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is None:
        return
    try:
        declared = int(length)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None
    if declared > limit:
        raise _too_large(limit)


async def store_instances(request: Request) -> Response:
    """POST stores new instances; PUT also replaces stored ones (Azure upsert).

    Every request, whatever its outcome, leaves one audit line: who, the
    counts stored, replaced and failed, the studies concerned, the status.
    """
    study = request.path_params.get("study")
    stow = StowRequest(services(request), study, replace=request.method == "PUT")
    status = 500
    try:
        response = await _store(request, stow)
        status = response.status_code
        return response
    except DicomhubError as exc:
        status = exc.status
        raise
    finally:
        stored = len(stow.stored)
        audit.stored(
            request,
            status,
            stored - stow.replaced,
            stow.replaced,
            len(stow.failed),
            stow.studies,
        )


async def _store(request: Request, stow: StowRequest) -> Response:
    svc = stow.svc
    study = stow.study
    if study is not None:
        check_uid(study, "StudyInstanceUID")
    boundary = _boundary(request)
    limit = svc.settings.server.max_body_bytes
    _check_length(request, limit)

    try:
        try:
            await _read_body(stow, _limited(request, limit), boundary)
        except DicomhubError as exc:
            raise await _broken_body(stow, exc) from None
        await stow.settle()
    finally:
        await stow.cleanup()

    if not stow.received:
        raise BadRequest(
            "the multipart body holds no parts; send one application/dicom "
            "part per instance (PS3.18 §10.5.1)"
        )
    for failure in stow.failed:
        # Kept on one line whatever a message quotes from the request.
        logger.info(
            "stow: instance refused (%d): %s",
            failure.reason,
            audit.one_line(str(failure)),
        )
    for reference in stow.stored:
        # The comments name attributes and rules, never values.
        for warning in reference.warnings:
            logger.info("stow: stored with a warning: %s", warning.comment)
    logger.info("stow: %d stored, %d failed", len(stow.stored), len(stow.failed))
    return store_response(dicomweb_root(request), stow.stored, stow.failed)


async def _read_body(
    stow: StowRequest, body: AsyncIterator[bytes], boundary: str | None
) -> None:
    if boundary is None:
        await stow.start(DICOM)
        async for chunk in body:
            await stow.write(chunk)
        await stow.end()
        return
    async for event in read_multipart(body, boundary):
        await stow.handle(event)


async def _broken_body(stow: StowRequest, exc: DicomhubError) -> DicomhubError:
    """The error for a body that broke off, saying what was stored before."""
    await stow.settle()
    stored = len(stow.stored)
    if not stored:
        return exc
    again = (
        "sending them again with PUT replaces them"
        if stow.replace
        else "sending them again answers 45070 (already stored)"
    )
    message = (
        f"{exc.message}. The {stored} instance(s) received whole before that "
        f"were stored; {again}"
    )
    return type(exc)(message, headers=exc.headers)


routes = [
    Route("/studies", store_instances, methods=["POST", "PUT"]),
    Route("/studies/{study}", store_instances, methods=["POST", "PUT"]),
]
