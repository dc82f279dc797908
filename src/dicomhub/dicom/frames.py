"""Pixel data of a stored instance: its frames, as stored or decoded, and
whole instances decoded to a native transfer syntax. Choosing a syntax and
encoding into a compressed one is dicomhub.dicom.transcode.

The header is parsed when a `StoredPixels` is made, so a damaged file fails
there, before an HTTP answer has started. Frames are then read one at a time
from the open file: native frames by their offset, encapsulated ones through
the Basic or Extended Offset Table (``pydicom.encaps.get_frame``), so a frame
of a large multi-frame instance costs one frame of memory.

Native frames are always little endian (PS3.18 §8.7.3: a native frame part
is labelled Explicit VR Little Endian); big endian and deflated instances are
read whole and converted, which is fine for these rare, retired encodings.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.filewriter import dcmwrite
from pydicom.pixels import get_decoder, pixel_array
from pydicom.pixels.utils import pack_bits
from pydicom.uid import UID

from ..errors import NotAcceptable

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

OCTET_STREAM = "application/octet-stream"

# Media types of compressed frames and the transfer syntaxes each may carry
# (PS3.18 §8.7.3).
FRAME_MEDIA_TYPES = {
    "image/jpeg": frozenset(
        {
            "1.2.840.10008.1.2.4.50",
            "1.2.840.10008.1.2.4.51",
            "1.2.840.10008.1.2.4.57",
            "1.2.840.10008.1.2.4.70",
        }
    ),
    "image/jls": frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}),
    "image/jp2": frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}),
    "image/jpx": frozenset({"1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"}),
    "image/dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
}

PIXEL_DATA = 0x7FE00010

# Word size of each binary VR, for big endian values (PS3.5 §7.3).
_WORD_SIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}

# Explicit VR elements whose length field takes 4 bytes after 2 reserved ones.
_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ"}


class NoPixelData(Exception):
    """The instance has no (7FE0,0010) Pixel Data."""


def can_decode(transfer_syntax: str) -> bool:
    """Whether pydicom has a working decoder for `transfer_syntax` here."""
    uid = UID(transfer_syntax)
    try:
        if not uid.is_compressed:
            return True
        return get_decoder(uid).is_available
    except (NotImplementedError, ValueError):
        # ValueError: not a transfer syntax pydicom knows.
        return False


def cannot_decode(transfer_syntax: str) -> NotAcceptable:
    return NotAcceptable(
        f"the pixel data is stored as {UID(transfer_syntax).name} and cannot be "
        "decoded on this server; ask for it as stored (transfer-syntax=*)"
    )


class StoredPixels:
    """The pixel data of one stored instance, read from its open file `fp`.

    Raises whatever pydicom raises for a file that is not DICOM, and
    NoPixelData when the instance has no Pixel Data.
    """

    def __init__(self, fp: BinaryIO):
        self.fp = fp
        self.header = pydicom.dcmread(fp, stop_before_pixels=True)
        self.transfer_syntax = UID(self.header.file_meta.TransferSyntaxUID)
        self._whole: Dataset | None = None
        self._value_start = fp.tell()
        self._value_length = 0

        if self.transfer_syntax in (
            DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
            EXPLICIT_VR_BIG_ENDIAN,
        ):
            # File positions mean nothing inside a deflated stream, and big
            # endian words must be swapped: read these few files whole.
            fp.seek(0)
            self._whole = pydicom.dcmread(fp)
            if PIXEL_DATA not in self._whole:
                raise NoPixelData()
        else:
            self._locate_pixel_data()

        header = self.header
        try:
            self.rows = int(header.Rows)
            self.columns = int(header.Columns)
            self.samples_per_pixel = int(header.get("SamplesPerPixel") or 1)
            self.bits_allocated = int(header.BitsAllocated)
            self.pixel_representation = int(header.get("PixelRepresentation") or 0)
            self.number_of_frames = int(header.get("NumberOfFrames") or 1)
            self.planar_configuration = int(header.get("PlanarConfiguration") or 0)
        except (AttributeError, TypeError, ValueError):
            # The instance was stored, but its frames cannot be located
            # (PS3.3 C.7.6.3: these attributes describe the Pixel Data).
            raise NotAcceptable(
                "the stored instance's Image Pixel attributes (Rows, Columns, "
                "Bits Allocated, Number of Frames...) are missing or not numbers, "
                "so its frames cannot be located; retrieve the whole instance"
            ) from None
        self.photometric_interpretation = str(
            header.get("PhotometricInterpretation") or ""
        )

    @property
    def encapsulated(self) -> bool:
        return self.transfer_syntax.is_encapsulated

    def _locate_pixel_data(self) -> None:
        """Read the Pixel Data element header at the file position where
        ``stop_before_pixels`` left off (PS3.5 §7.1.2)."""
        tag = self.fp.read(4)
        if len(tag) < 4 or struct.unpack("<HH", tag) != (0x7FE0, 0x0010):
            raise NoPixelData()
        if self.transfer_syntax.is_implicit_VR:
            (length,) = struct.unpack("<L", self.fp.read(4))
        else:
            vr = self.fp.read(2)
            if vr in _LONG_LENGTH_VRS:
                (length,) = struct.unpack("<2xL", self.fp.read(6))
            else:
                (length,) = struct.unpack("<H", self.fp.read(2))
        self._value_start = self.fp.tell()
        self._value_length = length

    # Native frames ---------------------------------------------------------

    def _frame_bits(self) -> int:
        bits = self.rows * self.columns * self.samples_per_pixel * self.bits_allocated
        if self.photometric_interpretation == "YBR_FULL_422":
            # Two chroma samples are shared by each pair of pixels (PS3.3 C.7.6.3.1.2).
            bits = bits // 3 * 2
        return bits

    def native_frame(self, index: int) -> bytes:
        """Frame `index` (0-based) of native pixel data, little endian."""
        if self._whole is not None:
            return self._native_frame_of_whole(index)

        bits = self._frame_bits()
        if bits % 8 == 0:
            size = bits // 8
            end = (index + 1) * size
            if end > self._value_length:
                raise ValueError("the stored Pixel Data is shorter than its frames")
            self.fp.seek(self._value_start + index * size)
            return self.fp.read(size)

        # 1 bit pixels: a frame may begin inside a byte (PS3.5 §8.1.1); take
        # its bits and pack them again from bit 0, padded to a whole byte.
        first_bit = index * bits
        start, end = first_bit // 8, (first_bit + bits + 7) // 8
        if end > self._value_length:
            raise ValueError("the stored Pixel Data is shorter than its frames")
        self.fp.seek(self._value_start + start)
        packed = np.frombuffer(self.fp.read(end - start), dtype=np.uint8)
        unpacked = np.unpackbits(packed, bitorder="little")
        offset = first_bit - start * 8
        return pack_bits(unpacked[offset : offset + bits], pad=False)

    def _native_frame_of_whole(self, index: int) -> bytes:
        assert self._whole is not None
        if self.transfer_syntax != EXPLICIT_VR_BIG_ENDIAN:
            data = self._whole.PixelData
            bits = self._frame_bits()
            if bits % 8 == 0:
                return bytes(data[index * bits // 8 : (index + 1) * bits // 8])
        return self._to_bytes(pixel_array(self._whole, index=index, raw=True))

    def iter_native_value(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The whole native Pixel Data value, little endian, in chunks."""
        if self._whole is not None:
            for index in range(self.number_of_frames):
                yield self._native_frame_of_whole(index)
            return

        yield from self.iter_stored_value(0, self._value_length, chunk_size)

    @property
    def stored_value_length(self) -> int | None:
        """The length of the Pixel Data value as it lies in the file, or None
        for the files that are read whole (deflated, big endian), whose value
        is not a slice of the file."""
        return None if self._whole is not None else self._value_length

    def iter_stored_value(
        self, first: int, size: int, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """`size` bytes of the Pixel Data value as stored, from byte `first`
        of the value, in chunks; for native pixel data in a little endian
        file these are the little endian bytes (PS3.5 §8.1.1)."""
        assert self._whole is None
        remaining = size
        self.fp.seek(self._value_start + first)
        while remaining > 0:
            chunk = self.fp.read(min(chunk_size, remaining))
            if not chunk:
                raise ValueError("the stored Pixel Data is shorter than its length")
            remaining -= len(chunk)
            yield chunk

    # Encapsulated frames ---------------------------------------------------

    def encoded_frame(self, index: int) -> bytes:
        """Frame `index` of encapsulated pixel data as stored, without item
        tags (PS3.5 A.4)."""
        header = self.header
        offsets = None
        if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
            offsets = (header.ExtendedOffsetTable, header.ExtendedOffsetTableLengths)
        self.fp.seek(self._value_start)
        return get_frame(
            self.fp,
            index,
            extended_offsets=offsets,
            number_of_frames=self.number_of_frames,
        )

    # Decoded frames --------------------------------------------------------

    def frame_array(self, index: int) -> np.ndarray:
        """Frame `index` decoded, colour as RGB; NotAcceptable when it cannot
        be decoded here."""
        if not can_decode(self.transfer_syntax):
            raise cannot_decode(self.transfer_syntax)
        source: Any = self._whole if self._whole is not None else self.fp
        try:
            return pixel_array(source, index=index)
        except (NotImplementedError, RuntimeError, ValueError) as exc:
            # The decoders found the stored codestream unreadable: not a
            # server fault, and the frames are still available as stored.
            raise NotAcceptable(
                f"the pixel data stored as {self.transfer_syntax.name} could not "
                f"be decoded ({type(exc).__name__}); ask for it as stored "
                "(transfer-syntax=*)"
            ) from exc

    def decoded_frame(self, index: int) -> bytes:
        """Frame `index` in Explicit VR Little Endian form.

        Colour frames decoded from YCbCr codestreams come as RGB (pydicom
        converts them), by pixel or by plane as Planar Configuration says.
        """
        if not self.encapsulated:
            return self.native_frame(index)
        return self._to_bytes(self.frame_array(index))

    def _to_bytes(self, arr: np.ndarray) -> bytes:
        """Decoded pixels as native frame bytes laid out as the header says."""
        if self.bits_allocated == 1:
            return pack_bits(arr, pad=False)
        if arr.ndim == 3 and self.planar_configuration == 1:
            # Colour by plane: all red, then green, then blue (PS3.3 C.7.6.3.1.3).
            arr = arr.transpose(2, 0, 1)
        kind = "i" if self.pixel_representation else "u"
        dtype = np.dtype(f"<{kind}{max(self.bits_allocated // 8, 1)}")
        return arr.astype(dtype, copy=False).tobytes()


def transcode_instance(fp: BinaryIO, target: str) -> bytes:
    """The instance in `fp` as Part 10 bytes in the native `target` syntax
    (Explicit or Implicit VR Little Endian), pixel data decoded as needed.

    Raises NotAcceptable when the pixel data cannot be decoded here.
    """
    ds = pydicom.dcmread(fp)
    source = UID(ds.file_meta.TransferSyntaxUID)

    if source.is_compressed:
        if not can_decode(source):
            raise cannot_decode(source)
        try:
            # Decoding loses nothing, so the instance keeps its SOP Instance UID.
            ds.decompress(generate_instance_uid=False)
        except (NotImplementedError, RuntimeError, ValueError) as exc:
            raise NotAcceptable(
                f"the pixel data stored as {source.name} could not be decoded "
                f"({type(exc).__name__}); ask for it as stored (transfer-syntax=*)"
            ) from exc

    big_endian = not source.is_little_endian
    if big_endian:
        # pydicom writes numbers in the new byte order but copies binary
        # values as they are; swap their words first (PS3.5 §7.3).
        _swap_binary_values(ds)

    ds.file_meta.TransferSyntaxUID = UID(target)
    buffer = io.BytesIO()
    dcmwrite(
        buffer,
        ds,
        implicit_vr=target == IMPLICIT_VR_LITTLE_ENDIAN,
        little_endian=True,
        # pydicom refuses to change the byte order unless forced, and forcing
        # excludes its file format checks; the file meta read is kept as is.
        enforce_file_format=not big_endian,
        force_encoding=big_endian,
    )
    return buffer.getvalue()


def _swap_binary_values(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_binary_values(item)
            continue
        size = _WORD_SIZE.get(str(elem.VR))
        if elem.tag == PIXEL_DATA and size:
            # Native pixel samples are words of Bits Allocated (PS3.5 §8.1.1).
            size = max(int(ds.get("BitsAllocated") or 16) // 8, size)
        if size and isinstance(elem.value, bytes) and len(elem.value) % size == 0:
            swapped = bytearray(len(elem.value))
            for start in range(size):
                swapped[start::size] = elem.value[size - 1 - start :: size]
            elem.value = bytes(swapped)
