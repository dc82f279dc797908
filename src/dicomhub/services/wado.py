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
(406 when no installed decoder reads the stored one). Compressed targets are
only offered as stored.

Metadata carries a strong ETag computed from the index alone, and answers
``If-None-Match`` with 304; a single-part bulk data answer honours one
``Range: bytes=...`` range with 206 (RFC 9110 §13, §14).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

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
    FramePlan,
    NoPixelData,
    StoredPixels,
    instance_target,
    plan_frames,
    transcode_instance,
)
from ..dicom.render import (
    JPEG,
    PNG,
    RenderOptions,
    parse_quality,
    parse_viewport,
    parse_window,
    render,
)
from ..errors import BadRequest, NotAcceptable, NotFound
from ..index import StoredInstance
from ..mediatypes import MediaRange, Wanted, acceptable, parse_accept
from ..multipart import OutgoingPart, aiter_sync, multipart_related_stream, new_boundary
from ..uids import path_uids
from ..web import (
    DICOM_JSON,
    VARY_ACCEPT,
    Services,
    dicom_json_response,
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
    study, series, sop = path_uids(request)
    found = await run_in_threadpool(
        services(request).index.find_instances, study, series, sop
    )
    if not found:
        level = "instance" if sop else "series" if series else "study"
        raise NotFound(f"no {level} with these UIDs is stored; check the URL")
    return found


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
    """`parts` with its first part made now, so that what fails on it fails
    before the answer has started."""
    first = await run_in_threadpool(next, parts, None)
    return parts if first is None else chain([first], parts)


# Retrieve instances (PS3.18 §10.4) --------------------------------------------


async def retrieve(request: Request) -> Response:
    found = await _find(request)
    svc = services(request)
    root = dicomweb_root(request)
    single = (DICOM,) if request.path_params.get("instance") else ()
    wanted = acceptable(
        _accept(request),
        part_types=(DICOM,),
        single_types=single,
        default=Wanted(DICOM, (), True),
    )

    for choice in wanted:
        targets = [
            instance_target(choice.transfer_syntaxes, item.transfer_syntax_uid)
            for item in found
        ]
        if all(targets):
            break
    else:
        raise NotAcceptable(
            "no representation fits Accept; ask for multipart/related; "
            'type="application/dicom" with transfer-syntax=* (as stored) or '
            f"{EXPLICIT_VR_LITTLE_ENDIAN} (PS3.18 §8.7.3)"
        )

    parts = await _started(_instance_parts(svc, root, found, targets))
    if choice.multipart:
        return _multipart_response(parts, DICOM)
    return _single_response(parts)


def _instance_parts(
    svc: Services, root: str, found: list[StoredInstance], targets: list[str | None]
) -> Iterator[OutgoingPart]:
    for item, target in zip(found, targets, strict=True):
        assert target is not None
        if target == item.transfer_syntax_uid:
            chunks: list[bytes] | Iterator[bytes] = svc.store.iter_bytes(item.blob_key)
        else:
            logger.debug("transcoding %s to %s", item.transfer_syntax_uid, target)
            with svc.store.open(item.blob_key) as fp:
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
    found = await _find(request)
    root = dicomweb_root(request)

    # A client that holds the current representation gets 304 with the
    # headers a 200 would carry, and no body (RFC 9110 §13.1.2, §15.4.5).
    etag = _metadata_etag(root, found)
    headers = {"ETag": etag, "Cache-Control": REVALIDATE}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={**VARY_ACCEPT, **headers})

    svc = services(request)
    items = await run_in_threadpool(_read_metadata, svc, root, found)
    return dicom_json_response(items, headers=headers)


def _read_metadata(
    svc: Services, root: str, found: list[StoredInstance]
) -> list[dict[str, object]]:
    items = []
    for item in found:
        prefix = _instance_url(root, item) + "/bulkdata/"
        # Long values stay on disk (defer_size); a deflated stream cannot be
        # re-read at an offset, so it is read whole.
        deflated = item.transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
        with svc.store.open(item.blob_key) as fp:
            ds = pydicom.dcmread(fp, defer_size=None if deflated else BULK_THRESHOLD)
            attributes = to_dicom_json(
                ds,
                bulk_uri=lambda path, prefix=prefix: prefix + path,
                bulk_threshold=BULK_THRESHOLD,
            )

        # Available Transfer Syntax UID (a QIDO-RS instance attribute, PS3.18
        # §10.6): the stored syntax, so a client can ask for frames as stored.
        attributes["00083002"] = {"vr": "UI", "Value": [item.transfer_syntax_uid]}
        items.append(dict(sorted(attributes.items())))
    return items


# Frames (PS3.18 §10.4) ---------------------------------------------------------


def _frame_numbers(text: str) -> list[int]:
    numbers = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece.isdigit():
            raise BadRequest(
                "frame numbers are positive integers separated by commas, for "
                "example frames/1,2,3 (PS3.18 §10.4)"
            )
        number = int(piece)
        if number < 1:
            raise NotFound("frame numbers start at 1 (PS3.18 §10.4)")
        numbers.append(number)
    return numbers


def _open_pixels(svc: Services, item: StoredInstance) -> tuple[BinaryIO, StoredPixels]:
    """The open file and its pixel data; the caller closes the file.

    Raises NotFound when the instance has no pixel data; a damaged file
    raises what pydicom raises, which becomes a 500.
    """
    fp = svc.store.open(item.blob_key)
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
            "(or the image/* type of their compressed syntax); Accept names "
            "none of these (PS3.18 §8.7.3)"
        )

    item = (await _find(request))[0]
    svc = services(request)
    fp, pixels = await run_in_threadpool(_open_pixels, svc, item)
    try:
        _check_frames(pixels, numbers)
        choice, plan = _choose_frame_plan(wanted, pixels)
    except BaseException:
        fp.close()
        raise

    parts = await _started(_frame_parts(fp, pixels, numbers, plan))
    if choice.multipart:
        return _multipart_response(parts, plan.media_type)
    return _single_response(parts)


def _choose_frame_plan(
    wanted: list[Wanted], pixels: StoredPixels
) -> tuple[Wanted, FramePlan]:
    """The first representation in `wanted` the frames can be sent in."""
    for choice in wanted:
        plan = plan_frames(choice.media_type, choice.transfer_syntaxes, pixels)
        if plan is not None:
            return choice, plan
    raise NotAcceptable(
        f"the frames are stored as {pixels.transfer_syntax.name}; ask for "
        "them as stored (transfer-syntax=*) or, when this server can "
        "decode them, as 1.2.840.10008.1.2.1; compressing is not offered"
    )


def _frame_parts(
    fp: BinaryIO, pixels: StoredPixels, numbers: list[int], plan: FramePlan
) -> Iterator[OutgoingPart]:
    try:
        for number in numbers:
            if plan.decode:
                data = pixels.decoded_frame(number - 1)
            elif pixels.encapsulated:
                data = pixels.encoded_frame(number - 1)
            else:
                data = pixels.native_frame(number - 1)
            yield OutgoingPart(plan.content_type, [data])
    finally:
        fp.close()


# Bulk data (PS3.18 §10.4) ------------------------------------------------------


async def bulkdata(request: Request) -> Response:
    steps = parse_tag_path(request.path_params["path"])
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
    with svc.store.open(item.blob_key) as fp:
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


def _render_options(request: Request, thumbnail: bool) -> RenderOptions:
    wanted = acceptable(
        _accept(request),
        single_types=(JPEG, PNG),
        default=Wanted(JPEG, (), False),
    )
    if not wanted:
        raise NotAcceptable(
            "rendered images are offered as image/jpeg or image/png; send one "
            "of these in Accept (PS3.18 §8.7.4)"
        )
    query = request.query_params
    viewport = parse_viewport(query["viewport"]) if "viewport" in query else None
    if thumbnail and viewport is None:
        viewport = (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    return RenderOptions(
        media_type=wanted[0].media_type,
        window=parse_window(query["window"]) if "window" in query else None,
        quality=parse_quality(query["quality"]) if "quality" in query else 90,
        viewport=viewport,
    )


def _rendered_frame(request: Request) -> int:
    text = request.path_params.get("frames")
    if text is None:
        # A multi-frame instance renders as its first frame.
        return 1
    numbers = _frame_numbers(text)
    if len(numbers) != 1:
        raise BadRequest("render one frame at a time, for example frames/1/rendered")
    return numbers[0]


def _render_instance(
    svc: Services, item: StoredInstance, number: int, options: RenderOptions
) -> bytes:
    fp, pixels = _open_pixels(svc, item)
    with fp:
        _check_frames(pixels, [number])
        frame = pixels.frame_array(number - 1)
        return render(frame, pixels.header, number - 1, options)


async def rendered(request: Request) -> Response:
    options = _render_options(request, thumbnail=False)
    number = _rendered_frame(request)
    item = (await _find(request))[0]
    body = await run_in_threadpool(
        _render_instance, services(request), item, number, options
    )
    return Response(body, media_type=options.media_type, headers=VARY_ACCEPT)


async def thumbnail(request: Request) -> Response:
    """The first image of the instance, series or study, small."""
    options = _render_options(request, thumbnail=True)
    found = await _find(request)
    body = await run_in_threadpool(_first_image, services(request), found, options)
    return Response(body, media_type=options.media_type, headers=VARY_ACCEPT)


def _first_image(
    svc: Services, found: list[StoredInstance], options: RenderOptions
) -> bytes:
    for item in found:
        try:
            return _render_instance(svc, item, 1, options)
        except NotFound:
            continue
    raise NotFound("nothing stored here has pixel data, so there is no thumbnail")


routes = [
    Route("/studies/{study}", retrieve, methods=["GET"]),
    Route("/studies/{study}/series/{series}", retrieve, methods=["GET"]),
    Route(INSTANCE, retrieve, methods=["GET"]),
    Route("/studies/{study}/metadata", metadata, methods=["GET"]),
    Route("/studies/{study}/series/{series}/metadata", metadata, methods=["GET"]),
    Route(INSTANCE + "/metadata", metadata, methods=["GET"]),
    Route(INSTANCE + "/frames/{frames}", frames, methods=["GET"]),
    Route(INSTANCE + "/frames/{frames}/rendered", rendered, methods=["GET"]),
    Route(INSTANCE + "/rendered", rendered, methods=["GET"]),
    Route(INSTANCE + "/thumbnail", thumbnail, methods=["GET"]),
    Route("/studies/{study}/series/{series}/thumbnail", thumbnail, methods=["GET"]),
    Route("/studies/{study}/thumbnail", thumbnail, methods=["GET"]),
    Route(INSTANCE + "/bulkdata/{path:path}", bulkdata, methods=["GET"]),
]
