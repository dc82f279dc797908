"""WADO-RS (PS3.18 §10.4): instances, metadata, frames, bulk data and rendered
images of the stored studies.

Instances stream part by part from the blob store; a study is never held in
memory. Everything that can fail on a stored object (parsing its header,
decoding its first frame) happens before the answer starts, so a failure is
still a proper status: 404 for what is not stored, 406 for a representation
that cannot be made (PS3.18 §8.7.5), and 500 for a damaged stored file.

Transfer syntaxes: ``transfer-syntax=*`` sends what is stored. Without a
transfer syntax the default is Explicit VR Little Endian (PS3.18 §8.7.3),
and instances or frames stored in another syntax are transcoded with pydicom
(406 when no installed decoder reads the stored one). Instances and frames
are also encoded into RLE, JPEG-LS, JPEG 2000 and JPEG Baseline on request
(dicomhub.dicom.transcode); 406 says why a source cannot become one.

Metadata carries a strong ETag computed from the index alone, and answers
``If-None-Match`` with 304; a single-part bulk data answer honours one
``Range: bytes=...`` range with 206 (RFC 9110 §13, §14).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any, BinaryIO, cast

import pydicom
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..conditional import (
    REVALIDATE,
    if_range_holds,
    none_match,
    parse_range,
    strong_etag,
)
from ..dicom.dicomjson import parse_tag_path, to_dicom_json, value_at
from ..dicom.frames import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    FRAME_MEDIA_TYPES,
    OCTET_STREAM,
    PIXEL_DATA,
    NoPixelData,
    StoredPixels,
    check_instance_decodable,
)
from ..dicom.metadata_document import (
    encode_document,
    metadata_array,
    public_document,
    relative_bulk_uri,
)
from ..dicom.render import (
    JPEG,
    PNG,
    RegionOutside,
    RenderOptions,
    Viewport,
    check_renderable,
    parse_query,
    render,
)
from ..dicom.transcode import (
    CannotMake,
    FramePlan,
    StoredSource,
    frame_in,
    instance_target,
    plan_frames,
    read_source,
    transcode_instance,
)
from ..errors import BadRequest, NotAcceptable, NotFound, PayloadTooLarge
from ..index import StoredInstance
from ..mediatypes import MediaRange, Wanted, acceptable, parse_accept
from ..multipart import OutgoingPart, aiter_sync, multipart_related_stream, new_boundary
from ..uids import path_uids
from ..web import (
    DICOM_JSON,
    VARY_ACCEPT,
    Services,
    dicomweb_root,
    services,
)

logger = logging.getLogger(__name__)

DICOM = "application/dicom"

# Values longer than this are BulkDataURIs in metadata (PS3.18 F.2.6).
BULK_THRESHOLD = 1024

# A thumbnail's longest side when the client sends no viewport (PS3.18 §10.4
# leaves the size to the origin server).
THUMBNAIL_SIZE = 128

INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"


# Requests ------------------------------------------------------------------


def _accept(request: Request) -> list[MediaRange]:
    """The Accept header, or the ``accept`` query parameter that replaces it
    (PS3.18 §8.3.3.1)."""
    query = request.query_params.getlist("accept")
    if query:
        return parse_accept(", ".join(query))
    headers = request.headers.getlist("accept")
    return parse_accept(", ".join(headers) if headers else None)


async def _find(request: Request) -> list[StoredInstance]:
    return await run_in_threadpool(_found, services(request), *path_uids(request))


def _found(
    svc: Services, study: str, series: str | None, sop: str | None
) -> list[StoredInstance]:
    found = svc.index.find_instances(study, series, sop)
    if not found:
        level = "instance" if sop else "series" if series else "study"
        raise NotFound(f"no {level} with these UIDs is stored; check the URL")
    return found


class _Unnamed(io.RawIOBase):
    """An open stored file without its path: pydicom reads a named file's
    deferred values (and its modification time) by the path, which a PUT or
    DELETE may have unlinked meanwhile, and reads an unnamed one through the
    open handle, which stays readable (POSIX unlink)."""

    def __init__(self, fp: BinaryIO):
        super().__init__()
        self._fp = fp

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._fp.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self._fp.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def close(self) -> None:
        self._fp.close()
        super().close()


def _open_blob(svc: Services, item: StoredInstance) -> BinaryIO:
    """The stored file of `item`, which a STOW-RS PUT may have replaced (or a
    DELETE removed) since the index was read: then the index is read again,
    and the replacement is used when it is in the same transfer syntax, which
    the answer may already have named."""
    try:
        return cast(BinaryIO, _Unnamed(svc.store.open(item.blob_key)))
    except FileNotFoundError:
        pass
    found = svc.index.find_instances(
        item.study_instance_uid, item.series_instance_uid, item.sop_instance_uid
    )
    if found and found[0].transfer_syntax_uid == item.transfer_syntax_uid:
        try:
            return cast(BinaryIO, _Unnamed(svc.store.open(found[0].blob_key)))
        except FileNotFoundError:
            pass
    raise NotFound(
        "an instance was replaced or deleted while this request was answered; "
        "send the request again"
    )


def _blob_chunks(
    svc: Services, item: StoredInstance, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """The stored file of `item` in chunks, opened when the part is sent."""
    with _open_blob(svc, item) as fp:
        while chunk := fp.read(chunk_size):
            yield chunk


def _instance_url(root: str, item: StoredInstance) -> str:
    return (
        f"{root}/studies/{item.study_instance_uid}"
        f"/series/{item.series_instance_uid}"
        f"/instances/{item.sop_instance_uid}"
    )


def _multipart_response(parts: Iterator[OutgoingPart], part_type: str) -> Response:
    boundary = new_boundary()
    body = multipart_related_stream(parts, boundary)
    return StreamingResponse(
        aiter_sync(body),
        media_type=f'multipart/related; type="{part_type}"; boundary={boundary}',
        headers=VARY_ACCEPT,
    )


def _single_response(parts: Iterator[OutgoingPart]) -> Response:
    """The one part of `parts` as the whole body, when Accept asked for a
    single part."""
    part = next(parts)

    def body() -> Iterator[bytes]:
        yield from part.chunks
        # Run `parts` to its end, which closes the file its chunks came from.
        for _ in parts:
            pass

    return StreamingResponse(
        aiter_sync(body()), media_type=part.content_type, headers=VARY_ACCEPT
    )


async def _started(parts: Iterator[OutgoingPart]) -> Iterator[OutgoingPart]:
    return await run_in_threadpool(_first_made, parts)


def _first_made(parts: Iterator[OutgoingPart]) -> Iterator[OutgoingPart]:
    """`parts` with its first part made now, so that what fails on it fails
    before the answer has started."""
    first = next(parts, None)
    return parts if first is None else chain([first], parts)


# Retrieve instances (PS3.18 §10.4) --------------------------------------------


async def retrieve(request: Request) -> Response:
    single = (DICOM,) if request.path_params.get("instance") else ()
    wanted = acceptable(
        _accept(request),
        part_types=(DICOM,),
        single_types=single,
        default=Wanted(DICOM, (), True),
    )

    # One trip to the thread pool finds, checks and makes the first part.
    choice, parts = await run_in_threadpool(
        _prepared_instances,
        services(request),
        path_uids(request),
        wanted,
        dicomweb_root(request),
    )
    if choice.multipart:
        return _multipart_response(parts, DICOM)
    return _single_response(parts)


def _prepared_instances(
    svc: Services,
    uids: tuple[str, str | None, str | None],
    wanted: list[Wanted],
    root: str,
) -> tuple[Wanted, Iterator[OutgoingPart]]:
    # A missing resource is named before an Accept that fits nothing.
    found = _found(svc, *uids)
    if not wanted:
        raise NotAcceptable(
            "no representation fits Accept; ask for multipart/related; "
            'type="application/dicom" with transfer-syntax=* (as stored) or '
            f"{EXPLICIT_VR_LITTLE_ENDIAN} (PS3.18 §8.7.3)"
        )
    choice, targets = _instance_targets(svc, found, wanted)
    _check_transcodable(svc, found, targets)

    return choice, _first_made(_instance_parts(svc, root, found, targets))


def _instance_targets(
    svc: Services, found: list[StoredInstance], wanted: list[Wanted]
) -> tuple[Wanted, list[str]]:
    """The first representation in `wanted` every instance can be sent in,
    and each instance's transfer syntax in it: the first of the accepted
    syntaxes that instance can be made in (PS3.18 §8.7.8.2 lets it differ
    from part to part). A stored file is read only to check a compressed
    syntax, at most once."""
    sources: dict[str, StoredSource] = {}

    def source(item: StoredInstance) -> StoredSource:
        if item.blob_key not in sources:
            with _open_blob(svc, item) as fp:
                sources[item.blob_key] = read_source(fp)
        return sources[item.blob_key]

    reasons: list[str] = []
    for choice in wanted:
        try:
            targets = [
                instance_target(
                    choice.transfer_syntaxes,
                    item.transfer_syntax_uid,
                    lambda item=item: source(item),
                )
                for item in found
            ]
        except CannotMake as exc:
            if exc.reason not in reasons:
                reasons.append(exc.reason)
            continue
        return choice, targets
    raise NotAcceptable(
        f"no accepted transfer syntax can be made: {' / '.join(reasons)} "
        "(PS3.18 §8.7.3)"
    )


def _check_transcodable(
    svc: Services, found: list[StoredInstance], targets: list[str]
) -> None:
    """Refuse, before the answer starts, an instance to be transcoded whose
    decoding would be refused (dicomhub.dicom.frames): a refusal past the
    first part could only cut the answer short."""
    for item, target in zip(found, targets, strict=True):
        if target != item.transfer_syntax_uid:
            with _open_blob(svc, item) as fp:
                check_instance_decodable(fp)


def _instance_parts(
    svc: Services, root: str, found: list[StoredInstance], targets: list[str]
) -> Iterator[OutgoingPart]:
    for item, target in zip(found, targets, strict=True):
        if target == item.transfer_syntax_uid:
            chunks: list[bytes] | Iterator[bytes] = _blob_chunks(svc, item)
        else:
            logger.debug("transcoding %s to %s", item.transfer_syntax_uid, target)
            with _open_blob(svc, item) as fp:
                chunks = [transcode_instance(fp, target)]
        yield OutgoingPart(
            f"{DICOM}; transfer-syntax={target}",
            chunks,
            location=_instance_url(root, item),
        )


# Metadata (PS3.18 §10.4, Annex F) ---------------------------------------------


def _check_json_accept(request: Request) -> None:
    wanted = acceptable(
        _accept(request),
        single_types=(DICOM_JSON, "application/json"),
        default=Wanted(DICOM_JSON, (), False),
    )
    if not wanted:
        raise NotAcceptable(
            "metadata is offered as application/dicom+json only (the XML form "
            "is not); send Accept: application/dicom+json (PS3.18 §8.7.3)"
        )


def _metadata_etag(root: str, found: list[StoredInstance]) -> str:
    """A strong entity tag (RFC 9110 §8.8.3) for the metadata of `found`.

    The answer is a function of the stored files and of the root the
    BulkDataURIs are built from. A file is named by its blob key, which is new
    whenever an instance is stored again, so the tag comes from the index
    without reading any file; the version string changes with the format.
    """
    parts = ["metadata-1", str(BULK_THRESHOLD), root]
    for item in sorted(found, key=lambda item: item.sop_instance_uid):
        parts += [item.sop_instance_uid, item.blob_key, str(item.size)]
    return strong_etag(parts)


async def metadata(request: Request) -> Response:
    _check_json_accept(request)
    svc = services(request)
    study, series, sop = path_uids(request)
    found = await run_in_threadpool(svc.index.find_documents, study, series, sop)
    if not found:
        level = "instance" if sop else "series" if series else "study"
        raise NotFound(f"no {level} with these UIDs is stored; check the URL")
    root = dicomweb_root(request)

    # A client that holds the current representation gets 304 with the
    # headers a 200 would carry, and no body (RFC 9110 §13.1.2, §15.4.5).
    etag = _metadata_etag(root, [item for item, _ in found])
    headers = {**VARY_ACCEPT, "ETag": etag, "Cache-Control": REVALIDATE}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)

    body = await run_in_threadpool(_read_metadata, svc, root, found)
    return Response(body, media_type=DICOM_JSON, headers=headers)


def _read_metadata(
    svc: Services, root: str, found: list[tuple[StoredInstance, str | None]]
) -> bytes:
    """The metadata answer: the documents the index keeps, the request's
    root put into their BulkDataURIs, joined into one JSON array
    (dicomhub.dicom.metadata_document). An instance stored without one is
    read with pydicom, and its document kept for the next request."""
    documents = []
    for item, document in found:
        if document is None:
            document = _make_document(svc, item)
        documents.append(public_document(document, _instance_url(root, item)))
    return metadata_array(documents)


def _make_document(svc: Services, item: StoredInstance) -> str:
    """The metadata document of an instance stored without one, kept now."""
    # Long values stay on disk (defer_size); a deflated stream cannot be
    # re-read at an offset, so it is read whole.
    deflated = item.transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    with _open_blob(svc, item) as fp:
        ds = pydicom.dcmread(fp, defer_size=None if deflated else BULK_THRESHOLD)
        attributes = to_dicom_json(
            ds, bulk_uri=relative_bulk_uri, bulk_threshold=BULK_THRESHOLD
        )
    document = encode_document(attributes, item.transfer_syntax_uid)
    try:
        svc.index.keep_document(item, document)
    except Exception:
        # The answer stands; the next request makes the document again.
        logger.exception("metadata: cannot keep a metadata document")
    return document


# Frames (PS3.18 §10.4) ---------------------------------------------------------


# Frames named in one frame list (PS3.18 §10.4.1.1.5); a viewer asks for one
# frame, or a few, at a time.
MAX_FRAME_LIST = 10000

# A frame number is ASCII digits (str.isdigit would take '١' or '²'), at most
# 10 of them: Number of Frames is an IS, at most 12 characters (PS3.5 §6.2).
_FRAME_NUMBER = re.compile(r"[0-9]{1,10}")

# A bulk data path: 8-digit hex tags and item numbers, split by '/'.
_BULK_PATH = re.compile(r"[0-9A-Fa-f/]{1,1024}")


def _frame_numbers(text: str) -> list[int]:
    # Counted before it is split, so a huge list costs nothing.
    if text.count(",") >= MAX_FRAME_LIST:
        raise BadRequest(
            f"the frame list names more than {MAX_FRAME_LIST} frames, the limit "
            "(dicomhub.services.wado.MAX_FRAME_LIST); ask for the frames in "
            "several requests"
        )
    numbers = []
    for piece in text.split(","):
        piece = piece.strip()
        if not _FRAME_NUMBER.fullmatch(piece):
            raise BadRequest(
                "frame numbers are positive integers of at most 10 digits 0-9 "
                "separated by commas, for example frames/1,2,3 (PS3.18 §10.4)"
            )
        number = int(piece)
        if number < 1:
            raise NotFound("frame numbers start at 1 (PS3.18 §10.4)")
        numbers.append(number)

    # PS3.18 §8.2: a frame list holds non-duplicate frame numbers; a repeat
    # would also let one URL multiply a frame's decoding and size at will.
    if len(set(numbers)) != len(numbers):
        raise BadRequest(
            "a frame list names each frame at most once (PS3.18 §8.2); remove "
            "the repeated frame numbers"
        )
    return numbers


def _open_pixels(svc: Services, item: StoredInstance) -> tuple[BinaryIO, StoredPixels]:
    """The open file and its pixel data; the caller closes the file.

    Raises NotFound when the instance has no pixel data; a damaged file
    raises what pydicom raises, which becomes a 500.
    """
    fp = _open_blob(svc, item)
    try:
        return fp, StoredPixels(fp)
    except NoPixelData:
        fp.close()
        raise NotFound("this instance has no pixel data, so it has no frames") from None
    except BaseException:
        fp.close()
        raise


def _check_frames(pixels: StoredPixels, numbers: list[int]) -> None:
    last = max(numbers)
    if last > pixels.number_of_frames:
        raise NotFound(
            f"frame {last} is past the end: the instance has "
            f"{pixels.number_of_frames} frame(s), numbered from 1"
        )


def _check_decodable(pixels: StoredPixels, numbers: list[int]) -> None:
    for number in numbers:
        pixels.check_decodable(number - 1)


def _check_renderable(pixels: StoredPixels, numbers: list[int]) -> None:
    """Refuse to render frames too large to, or whose decoding is refused,
    before anything is decoded (dicomhub.dicom.render, .frames)."""
    for number in numbers:
        check_renderable(pixels.rows, pixels.columns, number)
    _check_decodable(pixels, numbers)


async def frames(request: Request) -> Response:
    numbers = _frame_numbers(request.path_params["frames"])
    # One frame may also come alone, as the Azure DICOM service allows.
    frame_types = (OCTET_STREAM, *FRAME_MEDIA_TYPES)
    wanted = acceptable(
        _accept(request),
        part_types=frame_types,
        single_types=frame_types if len(numbers) == 1 else (),
        default=Wanted(OCTET_STREAM, (), True),
    )
    if not wanted:
        raise NotAcceptable(
            'frames are sent as multipart/related; type="application/octet-stream" '
            '(or "image/jpeg", "image/jls", "image/jp2", "image/jpx", '
            '"image/dicom-rle"); Accept names '
            "none of these (PS3.18 §8.7.3)"
        )

    # One trip to the thread pool finds, opens, checks and makes the first
    # part: a viewer asks for frames one small request at a time.
    choice, plan, parts = await run_in_threadpool(
        _prepared_frames, services(request), path_uids(request), numbers, wanted
    )
    if choice.multipart:
        return _multipart_response(parts, plan.media_type)
    return _single_response(parts)


def _prepared_frames(
    svc: Services,
    uids: tuple[str, str | None, str | None],
    numbers: list[int],
    wanted: list[Wanted],
) -> tuple[Wanted, FramePlan, Iterator[OutgoingPart]]:
    item = _found(svc, *uids)[0]
    fp, pixels = _open_pixels(svc, item)
    try:
        _check_frames(pixels, numbers)
        choice, plan = _choose_frame_plan(wanted, pixels)
        if plan.decode:
            # Every frame is checked before the answer starts: a refusal
            # past the first part could only cut the answer short.
            _check_decodable(pixels, numbers)
    except BaseException:
        fp.close()
        raise

    return choice, plan, _first_made(_frame_parts(fp, pixels, numbers, plan))


def _choose_frame_plan(
    wanted: list[Wanted], pixels: StoredPixels
) -> tuple[Wanted, FramePlan]:
    """The first representation in `wanted` the frames can be sent in."""
    reasons: list[str] = []
    for choice in wanted:
        try:
            return choice, plan_frames(
                choice.media_type, choice.transfer_syntaxes, pixels
            )
        except CannotMake as exc:
            if exc.reason not in reasons:
                reasons.append(exc.reason)
    raise NotAcceptable(
        f"the frames cannot be sent as asked: {' / '.join(reasons)} (PS3.18 §8.7.3)"
    )


def _frame_parts(
    fp: BinaryIO, pixels: StoredPixels, numbers: list[int], plan: FramePlan
) -> Iterator[OutgoingPart]:
    try:
        for number in numbers:
            # Decoded and encoded one frame at a time, when the plan says so.
            data = frame_in(plan, pixels, number - 1)
            yield OutgoingPart(plan.content_type, [data])
    finally:
        fp.close()


# Bulk data (PS3.18 §10.4) ------------------------------------------------------


async def bulkdata(request: Request) -> Response:
    path = request.path_params["path"]
    if not _BULK_PATH.fullmatch(path):
        raise BadRequest(
            "a bulk data path is tags of 8 hex digits with item numbers "
            "between them, split by '/', at most 1024 characters, for example "
            "7FE00010 or 00540016/0/00181072"
        )
    steps = parse_tag_path(path)
    wanted = acceptable(
        _accept(request),
        part_types=(OCTET_STREAM,),
        single_types=(OCTET_STREAM,),
        default=Wanted(OCTET_STREAM, (), True),
    )
    if not wanted:
        raise NotAcceptable(
            'bulk data is sent as multipart/related; type="application/octet-stream" '
            "or as application/octet-stream (PS3.18 §8.7.3)"
        )
    choice = wanted[0]
    item = (await _find(request))[0]
    svc = services(request)

    if not choice.multipart:
        value = await run_in_threadpool(_single_bulk_value, svc, item, steps)
        return _bulk_response(request, value, _bulk_etag(item, steps))

    if steps == [PIXEL_DATA]:
        fp, pixels = await run_in_threadpool(_open_pixels, svc, item)
        parts = _pixel_data_parts(fp, pixels)
    else:
        found = await run_in_threadpool(_read_value, svc, item, steps)
        parts = iter([OutgoingPart(OCTET_STREAM, [found])])
    parts = await _started(parts)
    return _multipart_response(parts, OCTET_STREAM)


@dataclass
class _BulkValue:
    """One bulk data value sent as a single part: its Content-Type, its length,
    a reader of any slice of it (first byte, size) and what frees its file."""

    content_type: str
    length: int
    read: Callable[[int, int], Iterator[bytes]]
    close: Callable[[], None]


def _in_memory(content_type: str, data: bytes) -> _BulkValue:
    return _BulkValue(
        content_type,
        len(data),
        lambda first, size: iter([data[first : first + size]]),
        lambda: None,
    )


def _single_bulk_value(
    svc: Services, item: StoredInstance, steps: list[int]
) -> _BulkValue:
    """The value at `steps` as one octet-stream body; native Pixel Data stays
    in its file and is read slice by slice."""
    if steps != [PIXEL_DATA]:
        return _in_memory(OCTET_STREAM, _read_value(svc, item, steps))

    fp, pixels = _open_pixels(svc, item)
    try:
        if pixels.encapsulated:
            if pixels.number_of_frames > 1:
                raise NotAcceptable(
                    "this Pixel Data holds several compressed frames; ask for "
                    'multipart/related; type="application/octet-stream" to get '
                    "one part per frame"
                )
            label = f"{OCTET_STREAM}; transfer-syntax={pixels.transfer_syntax}"
            value = _in_memory(label, pixels.encoded_frame(0))
            fp.close()
            return value

        label = f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}"
        length = pixels.stored_value_length
        if length is None:
            value = _in_memory(label, b"".join(pixels.iter_native_value()))
            fp.close()
            return value
        return _BulkValue(label, length, pixels.iter_stored_value, fp.close)
    except BaseException:
        fp.close()
        raise


def _bulk_etag(item: StoredInstance, steps: list[int]) -> str:
    """A strong entity tag of a single-part bulk data answer: the stored file
    (its blob key is new whenever the instance is stored again) and the path."""
    return strong_etag(["bulkdata-1", item.blob_key, *(str(step) for step in steps)])


def _closing(chunks: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        close()


def _bulk_response(request: Request, value: _BulkValue, etag: str) -> Response:
    """The single-part answer, whole (200), one byte range of it (206), or
    304 when the client holds it (RFC 9110 §13.1.2, §14, §15.3.7).

    ``Range`` is honoured on GET only, and only when ``If-Range`` (if sent)
    names the current tag (RFC 9110 §13.1.5); several ranges get the whole.
    """
    headers = {
        **VARY_ACCEPT,
        "ETag": etag,
        "Cache-Control": REVALIDATE,
        "Accept-Ranges": "bytes",
    }
    try:
        if none_match(request.headers.get("if-none-match"), etag):
            value.close()
            return Response(status_code=304, headers=headers)
        byte_range = None
        if request.method == "GET" and if_range_holds(
            request.headers.get("if-range"), etag
        ):
            byte_range = parse_range(request.headers.get("range"), value.length)
    except BaseException:
        value.close()
        raise

    first, size, status = 0, value.length, 200
    if byte_range is not None:
        first, size, status = byte_range.first, byte_range.size, 206
        headers["Content-Range"] = byte_range.content_range
    headers["Content-Length"] = str(size)
    return StreamingResponse(
        aiter_sync(_closing(value.read(first, size), value.close)),
        status_code=status,
        media_type=value.content_type,
        headers=headers,
    )


def _read_value(svc: Services, item: StoredInstance, steps: list[int]) -> bytes:
    deflated = item.transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    with _open_blob(svc, item) as fp:
        ds = pydicom.dcmread(fp, defer_size=None if deflated else BULK_THRESHOLD)
        value = value_at(ds, steps)
    if value is None:
        raise NotFound("this instance has no binary value at that tag path")
    return value


def _pixel_data_parts(fp: BinaryIO, pixels: StoredPixels) -> Iterator[OutgoingPart]:
    """Native pixel data as one little endian part, compressed pixel data as
    one part per frame as stored."""
    try:
        if not pixels.encapsulated:
            label = f"{OCTET_STREAM}; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}"
            yield OutgoingPart(label, pixels.iter_native_value())
            return
        label = f"{OCTET_STREAM}; transfer-syntax={pixels.transfer_syntax}"
        for index in range(pixels.number_of_frames):
            yield OutgoingPart(label, [pixels.encoded_frame(index)])
    finally:
        fp.close()


# Rendered and thumbnail (PS3.18 §10.4, §8.3.5) -----------------------------------


# Both alone and as the parts of multipart/related (PS3.18 §8.7.4, §8.6).
RENDERED_TYPES = (JPEG, PNG)


def _render_options(
    request: Request, default_viewport: Viewport | None
) -> RenderOptions:
    """The rendering query parameters (PS3.18 §8.3.5.1), as JPEG until
    `_rendered_choice` picks the media type."""
    return parse_query(request.query_params, default_viewport)


def _rendered_choice(
    request: Request, *, single: bool, multipart: bool, parts_by_default: bool
) -> Wanted:
    """The representation Accept prefers among a lone image (when `single`)
    and a multipart/related of images (when `multipart`, PS3.18 §10.4.3.3);
    without a preference, JPEG parts when `parts_by_default`, else one JPEG."""
    wanted = acceptable(
        _accept(request),
        part_types=RENDERED_TYPES if multipart else (),
        single_types=RENDERED_TYPES if single else (),
        default=Wanted(JPEG, (), parts_by_default),
    )
    if wanted:
        return wanted[0]
    offered = []
    if single:
        offered.append("image/jpeg or image/png")
    if multipart:
        offered.append('multipart/related; type="image/jpeg" (or "image/png")')
    raise NotAcceptable(
        f"this rendered resource is offered as {' or as '.join(offered)}; Accept "
        "names none of these (PS3.18 §8.7.4)"
    )


def _render_instance(
    svc: Services, item: StoredInstance, number: int, options: RenderOptions
) -> bytes:
    fp, pixels = _open_pixels(svc, item)
    with fp:
        _check_frames(pixels, [number])
        _check_renderable(pixels, [number])
        frame = pixels.frame_array(number - 1)
        return render(frame, pixels.header, number - 1, options)


def _image_response(body: bytes, options: RenderOptions) -> Response:
    return Response(body, media_type=options.media_type, headers=VARY_ACCEPT)


async def rendered(request: Request) -> Response:
    """A rendered study, series, instance or frame list (PS3.18 §10.4.1.1.3)."""
    text = request.path_params.get("frames")
    numbers = _frame_numbers(text) if text is not None else None
    parameters = _render_options(request, None)
    if "instance" in request.path_params:
        return await _rendered_instance(request, numbers, parameters)

    found = await _find(request)
    svc = services(request)
    # One image per instance; a lone image when only one instance is stored
    # here and Accept asks for it, as dcm4chee answers.
    choice = _rendered_choice(
        request, single=len(found) == 1, multipart=True, parts_by_default=True
    )
    options = parameters.as_type(choice.media_type)
    if not choice.multipart:
        body = await run_in_threadpool(_first_image, svc, found, options, 1)
        return _image_response(body, options)
    parts = _rendered_instance_parts(svc, dicomweb_root(request), found, options)
    return _multipart_response(await _started(parts), options.media_type)


async def _rendered_instance(
    request: Request, numbers: list[int] | None, parameters: RenderOptions
) -> Response:
    """An instance renders as its first frame (as in Orthanc); frames/{list}
    as the listed frames, one part each (as in dcm4chee)."""
    several = numbers is not None and len(numbers) > 1
    choice = _rendered_choice(
        request, single=not several, multipart=True, parts_by_default=several
    )
    options = parameters.as_type(choice.media_type)
    item = (await _find(request))[0]
    svc = services(request)
    if not choice.multipart:
        number = numbers[0] if numbers else 1
        body = await run_in_threadpool(_render_instance, svc, item, number, options)
        return _image_response(body, options)
    url = _instance_url(dicomweb_root(request), item)
    parts = _rendered_frame_parts(svc, url, item, numbers, options)
    return _multipart_response(await _started(parts), options.media_type)


def _rendered_frame_parts(
    svc: Services,
    url: str,
    item: StoredInstance,
    numbers: list[int] | None,
    options: RenderOptions,
) -> Iterator[OutgoingPart]:
    """The frames `numbers` of `item` (None: its first frame, as the instance
    itself), each rendered when its part is sent."""
    fp, pixels = _open_pixels(svc, item)
    with fp:
        _check_frames(pixels, numbers or [1])
        _check_renderable(pixels, numbers or [1])
        for number in numbers or [1]:
            frame = pixels.frame_array(number - 1)
            body = render(frame, pixels.header, number - 1, options)
            resource = f"{url}/frames/{number}" if numbers else url
            location = resource + "/rendered"
            yield OutgoingPart(options.media_type, [body], location=location)


def _rendered_instance_parts(
    svc: Services, root: str, found: list[StoredInstance], options: RenderOptions
) -> Iterator[OutgoingPart]:
    """One part per instance with pixel data, its first frame, rendered when
    its part is sent.

    An instance without pixel data is left out, and so is one that cannot be
    rendered (pixel data this server cannot decode, a viewport region outside
    its image): the answer has started by then. When nothing renders, the
    first such failure is raised, else 404.
    """
    sent = 0
    failure: NotAcceptable | RegionOutside | PayloadTooLarge | None = None
    for item in found:
        try:
            body = _render_instance(svc, item, 1, options)
        except NotFound:
            continue
        except (NotAcceptable, RegionOutside, PayloadTooLarge) as exc:
            logger.info("rendered: an instance is left out: %s", exc.message)
            failure = failure or exc
            continue
        sent += 1
        location = _instance_url(root, item) + "/rendered"
        yield OutgoingPart(options.media_type, [body], location=location)
    if sent == 0:
        raise failure or NotFound(
            "nothing stored here has pixel data, so there is no image to render"
        )


async def thumbnail(request: Request) -> Response:
    """The first image of the instance, series or study, small; or the one
    frame named by frames/{frame}/thumbnail (PS3.18 §10.4.1.1.4)."""
    parameters = _render_options(request, Viewport(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    choice = _rendered_choice(
        request, single=True, multipart=False, parts_by_default=False
    )
    options = parameters.as_type(choice.media_type)
    number = _thumbnail_frame(request)
    found = await _find(request)
    body = await run_in_threadpool(
        _first_image, services(request), found, options, number
    )
    return _image_response(body, options)


def _thumbnail_frame(request: Request) -> int:
    text = request.path_params.get("frames")
    if text is None:
        return 1
    numbers = _frame_numbers(text)
    if len(numbers) != 1:
        raise BadRequest(
            "a thumbnail is one image: name one frame, for example frames/1/thumbnail"
        )
    return numbers[0]


def _first_image(
    svc: Services, found: list[StoredInstance], options: RenderOptions, number: int
) -> bytes:
    for item in found:
        try:
            return _render_instance(svc, item, number, options)
        except NotFound:
            continue
    raise NotFound("nothing stored here has pixel data, so there is no image to render")


routes = [
    Route("/studies/{study}", retrieve, methods=["GET"]),
    Route("/studies/{study}/series/{series}", retrieve, methods=["GET"]),
    Route(INSTANCE, retrieve, methods=["GET"]),
    Route("/studies/{study}/metadata", metadata, methods=["GET"]),
    Route(
        "/studies/{study}/series/{series}/metadata", metadata, methods=["GET"]
    ),
    Route(INSTANCE + "/metadata", metadata, methods=["GET"]),
    Route(INSTANCE + "/frames/{frames}", frames, methods=["GET"]),
    Route(INSTANCE + "/frames/{frames}/rendered", rendered, methods=["GET"]),
    Route(INSTANCE + "/rendered", rendered, methods=["GET"]),
    Route(
        "/studies/{study}/series/{series}/rendered", rendered, methods=["GET"]
    ),
    Route("/studies/{study}/rendered", rendered, methods=["GET"]),
    Route(INSTANCE + "/thumbnail", thumbnail, methods=["GET"]),
    Route(INSTANCE + "/frames/{frames}/thumbnail", thumbnail, methods=["GET"]),
    Route(
        "/studies/{study}/series/{series}/thumbnail",
        thumbnail,
        methods=["GET"],
    ),
    Route("/studies/{study}/thumbnail", thumbnail, methods=["GET"]),
    Route(INSTANCE + "/bulkdata/{path:path}", bulkdata, methods=["GET"]),
]
