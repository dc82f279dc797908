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
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames, get_frame
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import dcmwrite
from pydicom.pixels import get_decoder, pixel_array
from pydicom.pixels.utils import pack_bits
from pydicom.uid import UID

from ..errors import NotAcceptable, PayloadTooLarge

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


# Memory a decoded frame may take: decoders allocate Rows x Columns x
# Samples per Pixel x (Bits Allocated / 8) bytes, and the codestream's own
# header may claim more. 512 MiB is 16k x 16k pixels of 16 bit RGB.
MAX_DECODED_FRAME_BYTES = 512 * 1024**2

# Memory a whole instance decoded at once may take (a retrieve transcoded to
# a native or another compressed syntax is made in memory).
MAX_DECODED_INSTANCE_BYTES = 1024**3

# What a deflated data set (PS3.5 §A.5) may inflate to: pydicom inflates it
# whole in memory, and a few megabytes of zeros deflate a thousandfold.
MAX_INFLATED_BYTES = 256 * 1024**2

_MIB = 1024**2

# Start of Frame markers of JPEG (ISO 10918-1 B.1.1.3: C0-CF but C4 DHT,
# C8 JPG and CC DAC) and JPEG-LS (ISO 14495-1 SOF55, F7).
_SOF_MARKERS = {0xC0 + n for n in range(16)} - {0xC4, 0xC8, 0xCC} | {0xF7}
# JPEG 2000 (ISO 15444-1 A.5.1): SOC then SIZ.
_J2K_SIZ = b"\xff\x4f\xff\x51"


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


def check_inflated_size(fp: BinaryIO, limit: int = MAX_INFLATED_BYTES) -> None:
    """PayloadTooLarge when the data set in `fp` is deflated (PS3.5 §A.5)
    and inflates to more than `limit` bytes, found by inflating it in pieces
    before pydicom inflates it whole. A file or a stream that cannot be read
    is left for pydicom to refuse. `fp` is left at its start."""
    fp.seek(0)
    try:
        read_preamble(fp, True)
        meta = _read_file_meta_info(fp)
    except Exception:
        fp.seek(0)
        return
    if meta.get("TransferSyntaxUID") != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        fp.seek(0)
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while chunk := fp.read(1 << 20):
            while chunk:
                # At most 1 MiB out per call: counted, never held.
                total += len(inflater.decompress(chunk, 1 << 20))
                if total > limit:
                    raise PayloadTooLarge(
                        f"the deflated data set inflates to over {limit // _MIB} "
                        "MiB, the limit (dicomhub.dicom.frames.MAX_INFLATED_BYTES); "
                        "send it in Explicit VR Little Endian"
                    )
                chunk = inflater.unconsumed_tail
    except zlib.error:
        pass
    finally:
        fp.seek(0)


def check_decoded_size(what: str, size: int, limit: int, name: str) -> None:
    """PayloadTooLarge, before anything is allocated, when decoding `what`
    takes `size` bytes, over `limit` (the module constant `name`)."""
    if size > limit:
        raise PayloadTooLarge(
            f"{what} decodes to {size} bytes (Rows x Columns x Samples per "
            f"Pixel x Bits Allocated / 8), over the limit of {limit // _MIB} MiB "
            f"(dicomhub.dicom.frames.{name}); it is not decoded; retrieve it as "
            "stored (transfer-syntax=*)"
        )


def codestream_size(data: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) a JPEG, JPEG-LS or JPEG 2000 codestream
    says it holds, from its header alone; None when it has none of these
    headers (RLE, whose size comes from the data set) or it cannot be read.
    Decoders allocate by these numbers, whatever Rows and Columns say."""
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    at = data.find(_J2K_SIZ, 0, 4096)
    if at >= 0 and len(data) >= at + 42:
        # SIZ: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, 4 tile sizes, Csiz.
        xsiz, ysiz, xosiz, yosiz = struct.unpack(">4L", data[at + 8 : at + 24])
        (csiz,) = struct.unpack(">H", data[at + 40 : at + 42])
        return max(ysiz - yosiz, 0), max(xsiz - xosiz, 0), csiz
    return None


def _jpeg_size(data: bytes) -> tuple[int, int, int] | None:
    """The frame header of a JPEG or JPEG-LS codestream (ISO 10918-1 B.2.2)."""
    offset = 2
    while offset + 10 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:
            # Fill bytes before a marker (ISO 10918-1 B.1.1.2).
            offset += 1
            continue
        if marker in _SOF_MARKERS:
            rows, columns = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return rows, columns, data[offset + 9]
        if marker == 0xDA:
            return None
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        offset += 2 + length
    return None


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
            if self.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
                check_inflated_size(fp)
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

    @property
    def decoded_frame_size(self) -> int:
        """Bytes a decoder allocates for one frame: each sample takes whole
        bytes (1 bit pixels one byte each)."""
        sample_bytes = max((self.bits_allocated + 7) // 8, 1)
        return self.rows * self.columns * self.samples_per_pixel * sample_bytes

    def check_decodable(self, index: int) -> None:
        """Refuse, before anything is allocated, to decode frame `index`
        when it takes more than MAX_DECODED_FRAME_BYTES, or when its
        codestream claims more pixels than Rows and Columns say (a decoder
        allocates what the codestream claims)."""
        check_decoded_size(
            f"frame {index + 1}",
            self.decoded_frame_size,
            MAX_DECODED_FRAME_BYTES,
            "MAX_DECODED_FRAME_BYTES",
        )
        if self._whole is not None:
            return
        if not self.encapsulated:
            # The decoder would refuse a short value only after allocating.
            bits = self._frame_bits()
            if ((index + 1) * bits + 7) // 8 > self._value_length:
                raise _short_pixel_data(self, index)
            return
        self._check_codestream(index, self.encoded_frame(index))

    def check_all_decodable(self) -> None:
        """`check_decodable` for every frame of encapsulated pixel data, the
        fragments read once in order (not from the start for each frame)."""
        check_decoded_size(
            "a frame",
            self.decoded_frame_size,
            MAX_DECODED_FRAME_BYTES,
            "MAX_DECODED_FRAME_BYTES",
        )
        if not self.encapsulated or self._whole is not None:
            return
        self.fp.seek(self._value_start)
        frames = generate_frames(
            self.fp,
            number_of_frames=self.number_of_frames,
            extended_offsets=self._extended_offsets(),
        )
        index = 0
        try:
            for index, data in enumerate(frames):
                self._check_codestream(index, data)
        except (ValueError, KeyError, IndexError, struct.error) as exc:
            raise _not_located(index, exc) from None

    def _check_codestream(self, index: int, data: bytes) -> None:
        size = codestream_size(data[:65536])
        if size is None:
            return
        rows, columns, components = size
        if rows * columns * components > (
            self.rows * self.columns * self.samples_per_pixel
        ):
            raise NotAcceptable(
                f"the codestream of frame {index + 1} claims {columns} x {rows} "
                f"pixels of {components} component(s), more than Rows and "
                f"Columns say ({self.columns} x {self.rows}, Samples per Pixel "
                f"{self.samples_per_pixel}); it is not decoded; retrieve it as "
                "stored (transfer-syntax=*)"
            )

    def native_frame(self, index: int) -> bytes:
        """Frame `index` (0-based) of native pixel data, little endian."""
        check_decoded_size(
            f"frame {index + 1}",
            (self._frame_bits() + 7) // 8,
            MAX_DECODED_FRAME_BYTES,
            "MAX_DECODED_FRAME_BYTES",
        )
        if self._whole is not None:
            return self._native_frame_of_whole(index)

        bits = self._frame_bits()
        if bits % 8 == 0:
            size = bits // 8
            end = (index + 1) * size
            if end > self._value_length:
                raise _short_pixel_data(self, index)
            self.fp.seek(self._value_start + index * size)
            return self.fp.read(size)

        # 1 bit pixels: a frame may begin inside a byte (PS3.5 §8.1.1); take
        # its bits and pack them again from bit 0, padded to a whole byte.
        first_bit = index * bits
        start, end = first_bit // 8, (first_bit + bits + 7) // 8
        if end > self._value_length:
            raise _short_pixel_data(self, index)
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
        self.fp.seek(self._value_start)
        try:
            return get_frame(
                self.fp,
                index,
                extended_offsets=self._extended_offsets(),
                number_of_frames=self.number_of_frames,
            )
        except (ValueError, KeyError, IndexError, struct.error) as exc:
            raise _not_located(index, exc) from None

    def _extended_offsets(self) -> tuple[Any, Any] | None:
        header = self.header
        if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
            return (header.ExtendedOffsetTable, header.ExtendedOffsetTableLengths)
        return None

    # Decoded frames --------------------------------------------------------

    def frame_array(self, index: int) -> np.ndarray:
        """Frame `index` decoded, colour as RGB; NotAcceptable when it cannot
        be decoded here."""
        if not can_decode(self.transfer_syntax):
            raise cannot_decode(self.transfer_syntax)
        self.check_decodable(index)
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


def _short_pixel_data(pixels: StoredPixels, index: int) -> NotAcceptable:
    return NotAcceptable(
        "the stored Pixel Data is shorter than Rows x Columns x Samples per "
        f"Pixel x Bits Allocated say for frame {index + 1} (PS3.5 §8.1.1), so "
        "the frame cannot be cut out of it; retrieve the whole instance"
    )


def check_instance_decodable(fp: BinaryIO) -> None:
    """Refuse, before pydicom reads or decodes it, an instance whose decoded
    pixel data would be over MAX_DECODED_INSTANCE_BYTES, or one of whose
    frames `StoredPixels.check_decodable` refuses. `fp` is left at its start."""
    try:
        pixels = StoredPixels(fp)
    except (NoPixelData, NotAcceptable):
        fp.seek(0)
        return
    try:
        check_decoded_size(
            "the instance",
            pixels.decoded_frame_size * pixels.number_of_frames,
            MAX_DECODED_INSTANCE_BYTES,
            "MAX_DECODED_INSTANCE_BYTES",
        )
        pixels.check_all_decodable()
    finally:
        fp.seek(0)


def transcode_instance(fp: BinaryIO, target: str) -> bytes:
    """The instance in `fp` as Part 10 bytes in the native `target` syntax
    (Explicit or Implicit VR Little Endian), pixel data decoded as needed.

    Raises NotAcceptable when the pixel data cannot be decoded here, and
    PayloadTooLarge when decoding it would take too much memory.
    """
    check_instance_decodable(fp)
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


def _not_located(index: int, exc: Exception) -> NotAcceptable:
    # Number of Frames, the offset tables and the fragments disagree (PS3.5
    # A.4): the stored instance holds no such frame to cut out.
    return NotAcceptable(
        f"frame {index + 1} cannot be located in the encapsulated Pixel "
        f"Data ({type(exc).__name__}): its fragments and offset table do "
        "not agree with Number of Frames (PS3.5 A.4); retrieve the whole "
        "instance"
    )
