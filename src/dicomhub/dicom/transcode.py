"""Pixel data in another transfer syntax: which one WADO-RS sends an instance
or its frames in, and the encoders that make it (PS3.18 §8.7.3, PS3.5 §8.2).

Targets: Explicit and Implicit VR Little Endian (decoding only); RLE Lossless,
JPEG-LS Lossless and JPEG 2000 (lossless .90, lossy .91) through pydicom's
encoders (pylibjpeg-rle, pyjpegls, pylibjpeg-openjpeg); JPEG Baseline through
Pillow, as pydicom has no JPEG encoder. Stored frames are decoded by pydicom
(colour comes out as RGB) and encoded again one frame at a time, so a frame
costs one frame of memory; a whole instance is transcoded in memory.

Lossy targets record the loss in the data set (PS3.3 C.7.6.1.1.5: Lossy Image
Compression, Ratio and Method) and keep the SOP Instance UID: the answer is an
encoding of the stored instance that the user agent asked for, which stays
unchanged on this server, as with a lossy transfer syntax on a DIMSE
association. A receiver that keeps the lossy copy as an image of its own gives
it a new UID (PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filewriter import dcmwrite
from pydicom.pixels import get_encoder, pixel_array
from pydicom.pixels.encoders.base import ENCODING_PROFILES
from pydicom.uid import UID

from ..errors import NotAcceptable
from .frames import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    FRAME_MEDIA_TYPES,
    IMPLICIT_VR_LITTLE_ENDIAN,
    NoPixelData,
    StoredPixels,
    can_decode,
)
from .frames import transcode_instance as native_instance

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

NATIVE_TARGETS = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN})

# The compressed syntaxes made here, lossless first (the order of suggestions).
COMPRESSED_TARGETS = (
    JPEG_2000_LOSSLESS,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
    JPEG_2000,
    JPEG_BASELINE,
)

# Lossy Image Compression Method of each lossy target (PS3.3 C.7.6.1.1.5.1).
LOSSY_METHODS = {JPEG_BASELINE: "ISO_10918_1", JPEG_2000: "ISO_15444_1"}

# The syntax of a frame media type asked for without transfer-syntax (PS3.18
# Table 8.7.3-5). The standard's default for image/jpeg is JPEG Lossless SV1
# (.70), which no installed library encodes, so image/jpeg gets JPEG Baseline;
# image/jpx (.92) has no encoder here at all and comes only as stored.
FRAME_DEFAULTS = {
    "image/jpeg": JPEG_BASELINE,
    "image/jls": JPEG_LS_LOSSLESS,
    "image/jp2": JPEG_2000_LOSSLESS,
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/dicom-rle": RLE_LOSSLESS,
}

# Photometric Interpretation of colour encoded in each syntax: decoded colour
# is RGB, which JPEG Baseline subsamples to YCbCr 4:2:2 and JPEG 2000 turns
# into YBR_RCT or YBR_ICT with its multiple component transform (PS3.5 §8.2.1,
# §8.2.4); RLE and JPEG-LS keep RGB.
_COLOUR = {
    JPEG_BASELINE: "YBR_FULL_422",
    JPEG_2000_LOSSLESS: "YBR_RCT",
    JPEG_2000: "YBR_ICT",
}

JPEG_QUALITY = 90
JPEG_2000_RATIO = 10

# pylibjpeg-openjpeg encodes at most 24 bits per sample.
_OPENJPEG_MAX_BITS = 24

# The smallest frame side the JPEG 2000 and JPEG-LS encoders take:
# pylibjpeg-openjpeg always makes 6 wavelet resolutions, which need 2**5
# pixels a side, and pyjpegls gives CharLS an output buffer of twice the
# frame, which the markers and an incompressible frame overflow when small.
MIN_SIDE = 32
_SIZED_ENCODERS = {
    JPEG_2000_LOSSLESS: "JPEG 2000",
    JPEG_2000: "JPEG 2000",
    JPEG_LS_LOSSLESS: "JPEG-LS",
}


class CannotMake(Exception):
    """The representation asked for cannot be made; `reason` says why and
    what to ask for instead."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _name(uid: str) -> str:
    return UID(uid[:64]).name


# What the stored pixel data is -------------------------------------------------


@dataclass(frozen=True)
class PixelDescription:
    """The Image Pixel attributes an encoder needs (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    number_of_frames: int

    @classmethod
    def of(cls, ds: Dataset) -> PixelDescription:
        try:
            bits_allocated = int(ds.BitsAllocated)
            return cls(
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                samples_per_pixel=int(ds.get("SamplesPerPixel") or 1),
                bits_allocated=bits_allocated,
                bits_stored=int(ds.get("BitsStored") or bits_allocated),
                pixel_representation=int(ds.get("PixelRepresentation") or 0),
                photometric_interpretation=str(
                    ds.get("PhotometricInterpretation") or ""
                ),
                number_of_frames=int(ds.get("NumberOfFrames") or 1),
            )
        except (AttributeError, TypeError, ValueError):
            raise NotAcceptable(
                "the stored instance's Image Pixel attributes (Rows, Columns, "
                "Bits Allocated...) are missing or not numbers, so its pixel "
                "data cannot be encoded; ask for transfer-syntax=* (as stored)"
            ) from None

    @property
    def decoded_photometric(self) -> str:
        """pydicom decodes colour (YBR_FULL, YBR_FULL_422, YBR_ICT...) to RGB."""
        return "RGB" if self.samples_per_pixel == 3 else self.photometric_interpretation

    @property
    def frame_size(self) -> int:
        """Bytes of one native frame."""
        bits = self.rows * self.columns * self.samples_per_pixel * self.bits_allocated
        return (bits + 7) // 8

    def __str__(self) -> str:
        sign = "signed" if self.pixel_representation else "unsigned"
        samples = self.samples_per_pixel
        return (
            f"{self.decoded_photometric} pixels with {samples} "
            f"sample{'s' if samples != 1 else ''}, {sign}, Bits Allocated "
            f"{self.bits_allocated}, Bits Stored {self.bits_stored}"
        )


@dataclass(frozen=True)
class StoredSource:
    """A stored instance as far as choosing a target syntax goes."""

    transfer_syntax: str
    # None: the instance has no (7FE0,0010) Pixel Data.
    pixels: PixelDescription | None
    # Why its pixel data has no compressed form, when it has none.
    problem: str | None = None


_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)


def read_source(fp: BinaryIO) -> StoredSource:
    """What the instance in `fp` holds; pydicom's errors for a damaged file."""
    try:
        stored = StoredPixels(fp)
    except NoPixelData:
        fp.seek(0)
        ds = pydicom.dcmread(fp, defer_size=1024)
        syntax = str(ds.file_meta.TransferSyntaxUID)
        if any(tag in ds for tag in _FLOAT_PIXEL_DATA):
            # Float and Double Float Pixel Data are always native (PS3.5 §8.2).
            return StoredSource(
                syntax, None, "float pixel data has no compressed form (PS3.5 §8.2)"
            )
        return StoredSource(syntax, None)
    except NotAcceptable as exc:
        fp.seek(0)
        meta = pydicom.dcmread(fp, stop_before_pixels=True).file_meta
        return StoredSource(str(meta.TransferSyntaxUID), None, exc.message)
    return source_of(stored)


def source_of(pixels: StoredPixels) -> StoredSource:
    """`pixels` as a source; unreadable attributes that only an encoder needs
    (Bits Stored) refuse encoding, not the pixel data as stored or decoded."""
    try:
        description = PixelDescription.of(pixels.header)
    except NotAcceptable as exc:
        return StoredSource(str(pixels.transfer_syntax), None, exc.message)
    return StoredSource(str(pixels.transfer_syntax), description)


def encoded_photometric(target: str, pixels: PixelDescription) -> str:
    """The Photometric Interpretation of `pixels` once encoded in `target`."""
    if pixels.samples_per_pixel != 3 or target in NATIVE_TARGETS:
        return pixels.decoded_photometric
    return _COLOUR.get(target, "RGB")


def why_not(target: str, source: StoredSource) -> str | None:
    """Why `source` cannot be sent in `target`; None when it can."""
    stored = source.transfer_syntax
    if target == stored:
        return None
    if target in NATIVE_TARGETS:
        return None if can_decode(stored) else _undecodable(stored)
    if target not in COMPRESSED_TARGETS:
        return f"{_name(target)} is not a transfer syntax this server can make"
    if source.problem:
        return source.problem
    if source.pixels is None:
        # Without pixel data the data set is the same in every syntax
        # (Explicit VR Little Endian, PS3.5 §A.4): it is only relabelled.
        return None
    if not can_decode(stored):
        return _undecodable(stored)
    return _unfit(target, source.pixels)


def _undecodable(stored: str) -> str:
    return f"the pixel data is stored as {_name(stored)}, which cannot be decoded here"


def _unfit(target: str, pixels: PixelDescription) -> str | None:
    """Why `target` cannot hold `pixels` (PS3.5 §8.2 tables, as pydicom
    lists them); None when it can."""
    photometric = encoded_photometric(target, pixels)
    for profile in ENCODING_PROFILES[UID(target)]:
        name, samples, representations, allocated, stored = profile
        if (
            photometric == name
            and pixels.samples_per_pixel == samples
            and pixels.pixel_representation in representations
            and pixels.bits_allocated in allocated
            and pixels.bits_stored in stored
        ):
            break
    else:
        return f"{_name(target)} cannot hold {pixels} (PS3.5 §8.2)"

    if target in (JPEG_2000, JPEG_2000_LOSSLESS) and (
        pixels.bits_stored > _OPENJPEG_MAX_BITS
    ):
        return (
            f"the JPEG 2000 encoder here takes at most {_OPENJPEG_MAX_BITS} bits "
            f"per sample, and these have {pixels.bits_stored}"
        )
    if target in _SIZED_ENCODERS and min(pixels.rows, pixels.columns) < MIN_SIDE:
        # Known before encoding, so that a later instance of a study never
        # fails after the answer has started.
        return (
            f"the {_SIZED_ENCODERS[target]} encoder here needs frames of at least "
            f"{MIN_SIDE} x {MIN_SIDE} pixels, and these are {pixels.columns} x "
            f"{pixels.rows}"
        )
    return None


def alternatives(source: StoredSource) -> str:
    """What else to ask for, for a 406 message."""
    stored = source.transfer_syntax
    offered = [f"transfer-syntax=* (as stored, {_name(stored)})"]
    for target in (EXPLICIT_VR_LITTLE_ENDIAN, *COMPRESSED_TARGETS):
        if why_not(target, source) is None:
            offered.append(f"{target} ({_name(target)})")
    return "ask for " + ", or ".join(offered)


# Choosing a target -----------------------------------------------------------


def instance_target(
    syntaxes: Sequence[str], stored: str, source: Callable[[], StoredSource]
) -> str:
    """The syntax to send an instance stored in `stored` in, when the user
    agent accepts `syntaxes` (``*``: as stored; none given: Explicit VR Little
    Endian, PS3.18 §8.7.3.4), the first that can be made. `source` reads the
    instance, only when a compressed syntax must be checked.

    Raises CannotMake when none can.
    """
    requested = syntaxes or (EXPLICIT_VR_LITTLE_ENDIAN,)
    reasons = []
    for syntax in requested:
        if syntax in ("*", stored):
            return stored
        if syntax in COMPRESSED_TARGETS:
            reason = why_not(syntax, source())
        else:
            # Native, or not made here: the stored syntax alone tells.
            reason = why_not(syntax, StoredSource(stored, None))
        if reason is None:
            return syntax
        reasons.append(reason)
    raise CannotMake("; ".join(reasons) + "; " + alternatives(source()))


@dataclass(frozen=True)
class FramePlan:
    """How frames are sent: the media type and transfer syntax of each part,
    and whether the stored frames are decoded first (and encoded again when
    the syntax is compressed)."""

    media_type: str
    transfer_syntax: str
    decode: bool

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; transfer-syntax={self.transfer_syntax}"


def plan_frames(
    media_type: str, syntaxes: Sequence[str], pixels: StoredPixels
) -> FramePlan:
    """How to send the frames of `pixels` as `media_type` in the first of
    `syntaxes` that can be made (``*``: as stored; none given: the media
    type's default, PS3.18 §8.7.3.3, Table 8.7.3-5).

    Raises CannotMake when none can.
    """
    stored = str(pixels.transfer_syntax)
    source = source_of(pixels)
    allowed = FRAME_MEDIA_TYPES.get(media_type)

    if syntaxes:
        requested = tuple(syntaxes)
    elif allowed is None:
        requested = (EXPLICIT_VR_LITTLE_ENDIAN,)
    elif stored in allowed:
        # The stored frames are already of this type: sent as they are, which
        # PS3.18 §8.7.3 allows for lossy ones and is lossless for the rest.
        requested = ("*",)
    else:
        requested = (FRAME_DEFAULTS[media_type],)

    reasons = []
    for syntax in requested:
        if syntax in ("*", stored):
            if allowed is None or stored in allowed:
                # Native frames are little endian, labelled so (PS3.18 §8.7.3).
                label = stored if pixels.encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
                return FramePlan(media_type, label, False)
            reasons.append(
                f"the frames are stored as {_name(stored)}, not as {media_type}"
            )
            continue
        if allowed is not None and syntax not in allowed:
            reasons.append(
                f"{_name(syntax)} is not a syntax of {media_type} (PS3.18 "
                "Table 8.7.3-5)"
            )
            continue
        if syntax in NATIVE_TARGETS:
            # A native frame is the same bytes in every native syntax, sent
            # as Explicit VR Little Endian (PS3.18 §8.7.3.3.1).
            if not pixels.encapsulated:
                return FramePlan(media_type, EXPLICIT_VR_LITTLE_ENDIAN, False)
            syntax = EXPLICIT_VR_LITTLE_ENDIAN
        reason = why_not(syntax, source)
        if reason is None:
            return FramePlan(media_type, syntax, True)
        reasons.append(reason)
    raise CannotMake("; ".join(reasons) + "; " + alternatives(source))


# Encoding ----------------------------------------------------------------------


def frame_in(plan: FramePlan, pixels: StoredPixels, index: int) -> bytes:
    """Frame `index` (0-based) of `pixels` as `plan` says."""
    if not plan.decode:
        if pixels.encapsulated:
            return pixels.encoded_frame(index)
        return pixels.native_frame(index)
    if plan.transfer_syntax in NATIVE_TARGETS:
        return pixels.decoded_frame(index)
    description = PixelDescription.of(pixels.header)
    return encode_frame(pixels.frame_array(index), plan.transfer_syntax, description)


def encode_frame(frame: np.ndarray, target: str, pixels: PixelDescription) -> bytes:
    """One decoded frame (colour as RGB) as a `target` codestream, without
    item tags (PS3.5 A.4).

    Raises NotAcceptable when the encoder refuses the pixels.
    """
    try:
        if target == JPEG_BASELINE:
            return _jpeg_baseline(frame)
        options = {"j2k_cr": [JPEG_2000_RATIO]} if target == JPEG_2000 else {}
        # pyjpegls answers a bytearray; the HTTP body takes bytes.
        encoded = get_encoder(UID(target)).encode(
            frame,
            rows=pixels.rows,
            columns=pixels.columns,
            samples_per_pixel=pixels.samples_per_pixel,
            bits_allocated=pixels.bits_allocated,
            bits_stored=pixels.bits_stored,
            pixel_representation=pixels.pixel_representation,
            photometric_interpretation=encoded_photometric(target, pixels),
            planar_configuration=0,
            number_of_frames=1,
            **options,
        )
        return bytes(encoded)
    except (RuntimeError, ValueError, OSError) as exc:
        # A stored value outside Bits Stored, for example: not a server fault.
        raise NotAcceptable(
            f"the pixel data could not be encoded as {_name(target)} "
            f"({type(exc).__name__}); ask for transfer-syntax=* (as stored) or "
            f"{EXPLICIT_VR_LITTLE_ENDIAN}"
        ) from exc


def _jpeg_baseline(frame: np.ndarray) -> bytes:
    """8-bit samples as a JPEG Baseline (Process 1) codestream (PS3.5 §8.2.1).

    Pillow converts RGB to YCbCr and subsamples chroma 4:2:2, which is what
    YBR_FULL_422 says (PS3.3 C.7.6.3.1.2); a JFIF segment is allowed
    (PS3.18 §8.7.3.3.2).
    """
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=1)
    return buffer.getvalue()


def transcode_instance(fp: BinaryIO, target: str) -> bytes:
    """The instance in `fp` as Part 10 bytes in `target`, any of
    NATIVE_TARGETS and COMPRESSED_TARGETS, held in memory.

    Raises NotAcceptable when the pixel data cannot be decoded or encoded.
    """
    if target in NATIVE_TARGETS:
        return native_instance(fp, target)

    # Decoded first, which also settles big endian and deflated files.
    ds = pydicom.dcmread(io.BytesIO(native_instance(fp, EXPLICIT_VR_LITTLE_ENDIAN)))
    if any(tag in ds for tag in _FLOAT_PIXEL_DATA):
        raise NotAcceptable(
            "float pixel data has no compressed form (PS3.5 §8.2); ask for "
            f"{EXPLICIT_VR_LITTLE_ENDIAN}"
        )
    if "PixelData" in ds:
        _encode_pixel_data(ds, target)
    ds.file_meta.TransferSyntaxUID = UID(target)

    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _encode_pixel_data(ds: Dataset, target: str) -> None:
    """Replace the native Pixel Data of `ds` by its frames encoded in
    `target`, one fragment per frame with a Basic Offset Table (PS3.5 A.4)."""
    pixels = PixelDescription.of(ds)
    reason = _unfit(target, pixels)
    if reason:
        raise NotAcceptable(
            f"{reason}; ask for transfer-syntax=* or {EXPLICIT_VR_LITTLE_ENDIAN}"
        )

    try:
        frames = [
            encode_frame(pixel_array(ds, index=index), target, pixels)
            for index in range(pixels.number_of_frames)
        ]
    except ValueError as exc:
        # Native Pixel Data shorter than Rows x Columns x ... say (PS3.5
        # §8.1.1): the stored instance cannot be encoded, only sent as is.
        raise NotAcceptable(
            f"the stored pixel data cannot be read as {pixels} "
            f"({type(exc).__name__}); ask for transfer-syntax=* or "
            f"{EXPLICIT_VR_LITTLE_ENDIAN}"
        ) from exc
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            del ds[keyword]
    ds.PhotometricInterpretation = encoded_photometric(target, pixels)
    if pixels.samples_per_pixel > 1:
        # Encoded colour is interleaved by the codec itself (PS3.5 §8.2).
        ds.PlanarConfiguration = 0

    method = LOSSY_METHODS.get(target)
    if method:
        encoded = sum(len(frame) for frame in frames)
        ratio = pixels.frame_size * pixels.number_of_frames / max(encoded, 1)
        _record_loss(ds, method, ratio)


def _record_loss(ds: Dataset, method: str, ratio: float) -> None:
    """Lossy Image Compression is set and never reset; each lossy step adds a
    Ratio and a Method value (PS3.3 C.7.6.1.1.5)."""
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [
        *_values(ds, "LossyImageCompressionRatio"),
        f"{ratio:.2f}"[:16],
    ]
    ds.LossyImageCompressionMethod = [
        *_values(ds, "LossyImageCompressionMethod"),
        method,
    ]


def _values(ds: Dataset, keyword: str) -> list[object]:
    if keyword not in ds or ds[keyword].VM == 0:
        return []
    value = ds[keyword].value
    return list(value) if ds[keyword].VM > 1 else [value]
