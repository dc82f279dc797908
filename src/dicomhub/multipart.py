"""multipart/related bodies (RFC 2387, RFC 2046 §5.1) for DICOMweb.

Writing: WADO-RS answers are streamed part by part.
Reading: STOW-RS request bodies are parsed incrementally as they arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from .errors import BadRequest, PayloadTooLarge


def new_boundary() -> str:
    return uuid.uuid4().hex


@dataclass
class OutgoingPart:
    content_type: str
    chunks: Iterable[bytes]
    location: str | None = None


def multipart_related_stream(
    parts: Iterable[OutgoingPart], boundary: str
) -> Iterator[bytes]:
    """The body bytes: each part opens with ``--boundary``, the body closes with
    ``--boundary--`` (RFC 2046 §5.1.1)."""
    for part in parts:
        head = f"--{boundary}\r\nContent-Type: {part.content_type}\r\n"
        if part.location:
            head += f"Content-Location: {part.location}\r\n"
        yield (head + "\r\n").encode("latin-1")
        yield from part.chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")


# What one trip to the thread pool brings back at least, unless the iterator
# ends first: a small answer (a frame, a small instance) costs one trip, and a
# large one still streams in pieces of about this size.
SYNC_BATCH_BYTES = 256 * 1024


async def aiter_sync(iterable: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Run a blocking byte iterator in the thread pool, a batch of chunks per
    trip (each trip hands work between threads, which costs more than joining
    a few small chunks); the iterator is closed however the answer ends."""
    from starlette.concurrency import run_in_threadpool

    iterator = iter(iterable)

    def next_batch() -> bytes | None:
        pieces: list[bytes] = []
        size = 0
        for chunk in iterator:
            pieces.append(chunk)
            size += len(chunk)
            if size >= SYNC_BATCH_BYTES:
                break
        return b"".join(pieces) if pieces else None

    try:
        while (batch := await run_in_threadpool(next_batch)) is not None:
            yield batch
    finally:
        # Not while a batch is being made: a cancelled trip to the pool still
        # ends before the cancellation is raised here (anyio's run_sync).
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


# RFC 2046 §5.1.1 lets a delimiter line carry "transport padding" (spaces and
# tabs) before its CRLF; more than this much is not padding but garbage.
_MAX_PADDING = 1024

# The header block of one part (Content-Type, Content-Location, ...): its
# bytes and its lines. Clients send one to three short headers a part.
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_PART_HEADER_LINES = 64

# Parts in one body: a study of this many instances goes in several requests.
MAX_PARTS = 100_000

# RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY_LENGTH = 70


class MalformedMultipart(BadRequest):
    """The body does not follow the multipart syntax of RFC 2046 §5.1.1."""


@dataclass(frozen=True)
class PartStart:
    """A part begins; `headers` has lower-case names."""

    headers: dict[str, str]

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    pass


PartEvent = PartStart | PartData | PartEnd


class MultipartReader:
    """A push parser for a multipart body (RFC 2046 §5.1.1, RFC 2387).

    ``feed`` takes the body in chunks of any size and returns what it could
    decide so far; ``close`` says the body has ended. The part bodies come out
    as they arrive, so the reader never holds more than one chunk plus a
    delimiter's length.

    The grammar, leniently: anything before the first delimiter is preamble
    (clients that open the body with CRLF, or with the delimiter itself, both
    work); a delimiter is ``CRLF--boundary`` followed by transport padding and
    CRLF, or by ``--`` for the closing one; anything after it is epilogue.
    ``CRLF--boundary`` followed by anything else is data, so bytes inside a
    DICOM value that merely resemble a delimiter are kept.
    """

    def __init__(self, boundary: str):
        if (
            not boundary
            or len(boundary) > MAX_BOUNDARY_LENGTH
            or "\r" in boundary
            or "\n" in boundary
        ):
            raise MalformedMultipart(
                "the multipart boundary is empty, longer than "
                f"{MAX_BOUNDARY_LENGTH} characters or holds a line break (RFC 2046 "
                "§5.1.1); send a boundary of 1 to 70 characters"
            )
        self.boundary = boundary
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")

        # The CRLF before the first delimiter may be left out (RFC 2046
        # §5.1.1: it is "conceptually attached" to the delimiter), so the
        # reader starts as if one had been sent.
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"
        self._header_lines: list[bytes] = []
        self._header_bytes = 0
        self.parts = 0

    @property
    def complete(self) -> bool:
        """True once the closing delimiter has been read."""
        return self._state == "epilogue"

    def feed(self, chunk: bytes) -> list[PartEvent]:
        if self._state == "epilogue":
            return []
        self._buffer += chunk
        return self._parse(final=False)

    def close(self) -> list[PartEvent]:
        """Finish; MalformedMultipart if the closing delimiter never came."""
        events = self._parse(final=True)
        if self._state == "epilogue":
            return events
        closing = f"--{self.boundary}--"
        if self._state == "preamble" and self.parts == 0:
            raise MalformedMultipart(
                f"no delimiter line --{self.boundary} found in the body; check "
                "that the boundary parameter of Content-Type matches the body "
                "(RFC 2046 §5.1.1)"
            )
        raise MalformedMultipart(
            f"the body ended inside part {self.parts}, before the closing "
            f"delimiter {closing}; the upload was cut short or the body is "
            "truncated (RFC 2046 §5.1.1); send it again"
        )

    def _parse(self, final: bool) -> list[PartEvent]:
        events: list[PartEvent] = []
        while True:
            if self._state == "epilogue":
                self._buffer.clear()
                return events
            if self._state == "headers":
                if not self._parse_header_line(events):
                    return events
                continue
            if not self._parse_until_delimiter(events, final):
                return events

    def _parse_until_delimiter(self, events: list[PartEvent], final: bool) -> bool:
        """Consume data up to the next delimiter; False when more bytes are needed."""
        buffer = self._buffer
        start = 0
        while True:
            found = buffer.find(self._delimiter, start)
            if found < 0:
                # Keep a tail that could be the start of a delimiter.
                keep = 0 if final else len(self._delimiter) - 1
                self._emit(events, max(len(buffer) - keep, 0))
                return False
            after = found + len(self._delimiter)
            end = self._delimiter_end(after, final)
            if end is None:
                self._emit(events, found)
                return False
            if end < 0:
                start = found + 1
                continue

            self._emit(events, found)
            closing = self._buffer[: end - found].endswith(b"--")
            del self._buffer[: end - found]
            if self._state == "body":
                events.append(PartEnd())
            if closing:
                self._state = "epilogue"
            else:
                self._state = "headers"
                self._header_lines = []
                self._header_bytes = 0
            return True

    def _delimiter_end(self, i: int, final: bool) -> int | None:
        """Where the delimiter line whose boundary ends at `i` ends.

        None when more bytes are needed to decide, -1 when the bytes there
        are not a delimiter after all.
        """
        buffer = self._buffer
        if buffer[i : i + 2] == b"--":
            return i + 2
        if len(buffer) < i + 2 and not final and buffer[i:] in (b"", b"-"):
            return None
        j = i
        while j < len(buffer) and buffer[j] in b" \t" and j - i <= _MAX_PADDING:
            j += 1
        if j - i > _MAX_PADDING:
            return -1
        if buffer[j : j + 2] == b"\r\n":
            return j + 2
        if buffer[j : j + 1] == b"\n":
            # A bare LF, as some hand-written clients send.
            return j + 1
        if j >= len(buffer) or buffer[j:] == b"\r":
            return -1 if final else None
        return -1

    def _emit(self, events: list[PartEvent], length: int) -> None:
        """Hand out (body) or drop (preamble) the first `length` bytes."""
        if length <= 0:
            return
        if self._state == "body":
            events.append(PartData(bytes(self._buffer[:length])))
        del self._buffer[:length]

    def _parse_header_line(self, events: list[PartEvent]) -> bool:
        """Read one header line; False when more bytes are needed."""
        newline = self._buffer.find(b"\n")
        if newline < 0:
            if len(self._buffer) + self._header_bytes > MAX_PART_HEADER_BYTES:
                raise self._headers_too_long()
            return False
        line = bytes(self._buffer[:newline]).rstrip(b"\r")
        del self._buffer[: newline + 1]
        self._header_bytes += newline + 1
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise self._headers_too_long()

        if line:
            self._header_lines.append(line)
            if len(self._header_lines) > MAX_PART_HEADER_LINES:
                raise MalformedMultipart(
                    f"part {self.parts + 1} has more than {MAX_PART_HEADER_LINES} "
                    "header lines, the limit (dicomhub.multipart."
                    "MAX_PART_HEADER_LINES); a part needs only Content-Type "
                    "(PS3.18 §10.5.1)"
                )
            return True

        if self.parts >= MAX_PARTS:
            raise PayloadTooLarge(
                f"the body holds more than {MAX_PARTS} parts, the limit "
                "(dicomhub.multipart.MAX_PARTS); send the instances in several "
                "requests"
            )

        # A blank line ends the headers (RFC 2046 §5.1.1, RFC 5322 §2.2).
        self.parts += 1
        self._state = "body"
        events.append(PartStart(_parse_headers(self._header_lines)))
        return True

    def _headers_too_long(self) -> MalformedMultipart:
        return MalformedMultipart(
            f"the headers of part {self.parts + 1} are longer than "
            f"{MAX_PART_HEADER_BYTES} bytes, the limit (dicomhub.multipart."
            "MAX_PART_HEADER_BYTES), or never end with a blank line "
            "(RFC 2046 §5.1.1)"
        )


def _parse_headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for raw in lines:
        line = raw.decode("latin-1")
        if line[:1] in (" ", "\t") and name:
            # A folded continuation line (RFC 5322 §2.2.3).
            headers[name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise MalformedMultipart(
                f"a part header line has no colon: {line[:40]!r}; each part "
                "header is 'Name: value' (RFC 2045 §3)"
            )
        name = name.strip().lower()
        headers[name] = value.strip()
    return headers


async def read_multipart(
    chunks: AsyncIterator[bytes], boundary: str
) -> AsyncIterator[PartEvent]:
    """The events of a multipart body arriving as `chunks`."""
    reader = MultipartReader(boundary)
    async for chunk in chunks:
        for event in reader.feed(chunk):
            yield event
    for event in reader.close():
        yield event
