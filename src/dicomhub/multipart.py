"""multipart/related bodies (RFC 2387, RFC 2046 §5.1) for DICOMweb.

Writing: WADO-RS answers are streamed part by part.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass


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


async def aiter_sync(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Run a blocking byte iterator in the thread pool, chunk by chunk."""
    from starlette.concurrency import iterate_in_threadpool

    async for chunk in iterate_in_threadpool(iterator):
        yield chunk
