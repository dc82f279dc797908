"""HTTP conditional requests and byte ranges (RFC 9110 §13, §14), as WADO-RS
needs them: strong entity tags, ``If-None-Match``, ``If-Range`` and a single
``Range: bytes=...`` range.

Known limits: only the ``bytes`` range unit is understood, and a request for
several ranges is answered with the whole representation (200), which RFC 9110
§14.2 allows a server to do; multipart/byteranges answers are not made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import DicomhubError

# Clients revalidate before each use, and a 304 saves the body
# (RFC 9111 §5.2.2.4); the DICOM data may change with any STOW or DELETE.
REVALIDATE = "no-cache"


def strong_etag(parts: Iterable[str]) -> str:
    """A strong entity tag (RFC 9110 §8.8.3) over `parts`, in order.

    Each part is length-prefixed so that no two different lists hash alike.
    """
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return f'"{digest.hexdigest()[:32]}"'


def _entity_tags(header: str) -> list[str]:
    """The entity tags of an ``If-None-Match`` or ``If-Match`` list, each with
    its ``W/`` prefix if it had one (RFC 9110 §8.8.3)."""
    tags = []
    rest = header.strip()
    while rest:
        rest = rest.lstrip(" \t,")
        if not rest:
            break
        weak = rest.startswith("W/")
        if weak:
            rest = rest[2:]
        if not rest.startswith('"'):
            # Not an entity tag: skip to the next list member.
            _, _, rest = rest.partition(",")
            continue
        end = rest.find('"', 1)
        if end < 0:
            break
        tags.append(("W/" if weak else "") + rest[: end + 1])
        rest = rest[end + 1 :]
    return tags


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` is false for the current `etag`, so that a GET
    is answered with 304 (RFC 9110 §13.1.2).

    The comparison is weak (RFC 9110 §8.8.3.2): ``W/"x"`` matches ``"x"``.
    """
    if header is None:
        return False
    if header.strip() == "*":
        return True
    plain = etag.removeprefix("W/")
    return any(tag.removeprefix("W/") == plain for tag in _entity_tags(header))


def if_range_holds(header: str | None, etag: str | None) -> bool:
    """Whether ``Range`` may be honoured given ``If-Range`` (RFC 9110 §13.1.5):
    it holds when absent, or when it is a strong tag equal to `etag`. A date
    never holds here, since these answers carry no Last-Modified."""
    if header is None:
        return True
    value = header.strip()
    return etag is not None and not value.startswith("W/") and value == etag


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` inclusive of a representation of ``length``
    bytes (RFC 9110 §14.1.2)."""

    first: int
    last: int
    length: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.length}"


class Unsatisfiable(DicomhubError):
    """No range of the request overlaps the representation: 416 with
    ``Content-Range: bytes */length`` (RFC 9110 §15.5.17, §14.4)."""

    status = 416

    def __init__(self, length: int):
        super().__init__(
            f"the requested range starts past the end of the {length} bytes; "
            "ask for a range within them, or send no Range header",
            headers={"Content-Range": f"bytes */{length}", "Accept-Ranges": "bytes"},
        )
        self.length = length


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """The one byte range to send for ``Range`` over `length` bytes.

    None means: send the whole representation with 200, which is the answer to
    no header, a header that does not parse or names another unit (RFC 9110
    §14.2 says to ignore it), and a list of several ranges (this server does
    not make multipart/byteranges). Raises Unsatisfiable when the single range
    starts past the end, or asks for the last 0 bytes (RFC 9110 §14.1.3).
    """
    if header is None:
        return None
    unit, equals, spec = header.strip().partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    pieces = [piece.strip() for piece in spec.split(",") if piece.strip()]
    if len(pieces) != 1:
        return None
    first_text, dash, last_text = pieces[0].partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()

    if not first_text:
        # bytes=-n: the last n bytes (suffix-range, RFC 9110 §14.1.1).
        if not last_text.isdigit():
            return None
        suffix = int(last_text)
        if suffix == 0 or length == 0:
            raise Unsatisfiable(length)
        return ByteRange(max(length - suffix, 0), length - 1, length)

    if not first_text.isdigit() or (last_text and not last_text.isdigit()):
        return None
    first = int(first_text)
    if last_text and int(last_text) < first:
        # An invalid int-range makes the whole header invalid (§14.1.1).
        return None
    if first >= length:
        raise Unsatisfiable(length)
    last = min(int(last_text), length - 1) if last_text else length - 1
    return ByteRange(first, last, length)
