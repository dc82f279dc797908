"""STOW-RS: store instances (PS3.18 §10.5).

``POST {root}/studies`` and ``POST {root}/studies/{study}`` take either
``multipart/related; type="application/dicom"`` (one PS3.10 file per part) or
a single ``application/dicom`` body. The body is read from the ASGI receive
channel as it arrives, so memory stays bounded whatever the body size. Each
part goes through three steps, the blocking ones in the thread pool:

1. receive: its bytes go to a temporary file in the store's incoming folder,
   fsynced once the part ends;
2. examine: pydicom reads it (large values are skipped, not loaded) and the
   index record is built, while the next parts keep arriving
   (``dicomhub.stow.examine``);
3. commit: the file is renamed into place, then its index row commits, so a
   crash never leaves an index row without its file; a file whose row was
   refused is removed again. Commits run one at a time, in body order, so of
   two parts with the same SOP Instance UID the first wins.

A part is committed as soon as it has been examined, as the Azure DICOM
service does. If the body then turns out to be broken (cut short, no closing
delimiter, over the size limit), the answer is the 4xx for that, and its
message says how many instances received whole before the break were stored.

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

from ..errors import (
    BadRequest,
    DicomhubError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ..index import DuplicateInstance, IndexConflict, InstanceRecord
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
from ..uids import check_uid
from ..web import Services, dicomweb_root, services

logger = logging.getLogger(__name__)

DICOM = "application/dicom"

# Bytes of one part gathered in memory before they go to its file.
_WRITE_BATCH = 1 << 20

# Parts being examined or committed while the next ones are still arriving.
_IN_FLIGHT = 3

ACCEPTED = 'multipart/related; type="application/dicom" or application/dicom'


@dataclass
class Received:
    """One part: stored (`reference`) or refused (`failure`) once settled."""

    number: int
    temp: Path | None = None
    reference: Reference | None = None
    failure: InvalidInstance | None = None


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
        """Write what is pending, fsync and close; the file's path."""
        await self._flush()
        await run_in_threadpool(self._sync_and_close)
        assert self.path is not None
        return self.path

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        await run_in_threadpool(_write_all, self._fd, data)

    def _sync_and_close(self) -> None:
        # The bytes reach the disk now, in the thread pool, so the rename at
        # commit time only has to make them visible.
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1


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


def _commit_one(
    svc: Services, record: InstanceRecord, temp: Path, replace: bool
) -> None:
    """Rename the part into place, then index it; InvalidInstance if refused.

    With `replace` (PUT), an instance stored under the same SOP UID is
    replaced and its file removed once the index names the new one.
    Whatever happens, `temp` is gone afterwards: renamed or removed.
    """
    study = record.study_instance_uid
    series = record.series_instance_uid
    sop = record.sop_instance_uid

    def failure(reason: int, message: str) -> InvalidInstance:
        return InvalidInstance(reason, message, record.sop_class_uid, sop)

    try:
        svc.store.put_file(record.blob_key, temp)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        _remove_blob(svc, record.blob_key)
        logger.error("stow: cannot store a blob: %s", exc.strerror)
        raise failure(PROCESSING_FAILURE, "the file could not be stored") from None

    # The index decides duplicates (Azure 45070); the blob under its own key
    # never touched the stored instance's file.
    try:
        if replace:
            replaced = svc.index.replace_instance(record)
        else:
            svc.index.add_instance(record)
            replaced = None
    except DuplicateInstance:
        _remove_blob(svc, record.blob_key)
        if svc.index.find_instances(study, series, sop):
            raise failure(
                DUPLICATE_INSTANCE, "the SOP instance is already stored"
            ) from None
        raise failure(
            CONFLICTING_STUDY,
            "the SOPInstanceUID is already stored in another study or series",
        ) from None
    except IndexConflict as conflict:
        _remove_blob(svc, record.blob_key)
        raise failure(CONFLICTING_STUDY, str(conflict)) from None
    except Exception:
        _remove_blob(svc, record.blob_key)
        logger.exception("stow: the index refused an instance")
        raise failure(PROCESSING_FAILURE, "the index could not store it") from None

    # The index names the new file now; the replaced one is unreferenced.
    if replaced is not None and replaced.blob_key != record.blob_key:
        _remove_blob(svc, replaced.blob_key)


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

    @property
    def stored(self) -> list[Reference]:
        return [item.reference for item in self.received if item.reference]

    @property
    def failed(self) -> list[InvalidInstance]:
        return [item.failure for item in self.received if item.failure]

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
                f"part {number} is {media}, not {DICOM} (PS3.18 §10.5.1)",
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

        # Examining runs while the next parts arrive; a few parts at most are
        # in flight, so memory stays bounded. Each commit waits for the one
        # before it, keeping body order.
        while len(self._in_flight) >= _IN_FLIGHT:
            await self._in_flight.pop(0)
        previous = self._in_flight[-1] if self._in_flight else None
        task = asyncio.create_task(self._store(item, part.size, previous))
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
        self, item: Received, size: int, previous: asyncio.Task[None] | None
    ) -> None:
        temp = item.temp
        assert temp is not None
        try:
            record = await run_in_threadpool(examine, temp, size, self.study)
            if previous is not None:
                await previous

            # From here on the part's file is the commit's to move or remove;
            # its name may soon belong to another request's part.
            item.temp = None
            await run_in_threadpool(_commit_one, self.svc, record, temp, self.replace)
        except InvalidInstance as failure:
            item.failure = failure
            return
        except Exception:
            logger.exception("stow: part %d could not be stored", item.number)
            item.failure = InvalidInstance(
                PROCESSING_FAILURE, "the server could not store the instance"
            )
            return
        finally:
            if item.temp is not None:
                # Refused before the commit: free its space now.
                item.temp.unlink(missing_ok=True)
                item.temp = None
        item.reference = Reference(
            record.study_instance_uid,
            record.series_instance_uid,
            record.sop_instance_uid,
            record.sop_class_uid,
            tuple(record.warnings),
        )

    async def settle(self) -> None:
        """Wait until every received part is stored or refused."""
        while self._in_flight:
            await self._in_flight.pop(0)

    async def cleanup(self) -> None:
        """Remove every temporary file that was not committed."""
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._part is not None:
            self._part.discard()
        for item in self.received:
            if item.temp is not None:
                item.temp.unlink(missing_ok=True)


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
    """POST stores new instances; PUT also replaces stored ones (Azure upsert)."""
    svc = services(request)
    study = request.path_params.get("study")
    if study is not None:
        check_uid(study, "StudyInstanceUID")
    boundary = _boundary(request)
    limit = svc.settings.server.max_body_bytes
    _check_length(request, limit)

    stow = StowRequest(svc, study, replace=request.method == "PUT")
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
        logger.info("stow: instance refused (%d): %s", failure.reason, failure)
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
