"""Media types (RFC 9110 §8.3.1): Content-Type values, Accept headers, and
what a DICOMweb client asks for with them.

One scanner reads a media type with its parameters for both headers:
`parse_media_type` gives a Content-Type value (STOW-RS request bodies and
their parts), `parse_accept` the ranges of an Accept header.

Clients write the same wish in many ways (cases/dicomweb/dicomweb-16): the
``type`` and ``transfer-syntax`` parameters quoted or not, spaces around ``;``
or none, ``transfer-syntax`` given several times, q-values, ``*/*``, or no
Accept at all. `parse_accept` reads all of them into `MediaRange` values and
`acceptable` turns those into the representations a resource may answer with,
most preferred first (PS3.18 §8.7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MULTIPART_RELATED = "multipart/related"

# Whitespace allowed around "=" in a parameter (OWS, RFC 9110 §5.6.3).
_OWS = " \t"

_Parameters = list[tuple[str, str | None]]


def _scan(text: str, start: int, stops: str) -> tuple[str, _Parameters, int]:
    """Read ``type/subtype; name=value; name="quoted value"`` from `start`.

    This is the media type syntax of RFC 9110 §8.3.1. The type and the
    parameter names are case-insensitive and come back in lower case; values
    keep their case. A value is a token or a quoted-string, which comes back
    without its quotes and backslash escapes (RFC 9110 §5.6.4), so it may hold
    ``;`` and ``,``; anything between its closing quote and the next ``;`` is
    dropped. A ``"`` anywhere but at the start of a value is an ordinary
    character. A parameter without ``=`` has the value None, and an empty name
    is kept as "" for the caller to skip.

    `stops` is ``";"``, or ``";,"`` where a ``,`` outside a quoted-string ends
    the media type, as between the entries of an Accept header. Returns the
    type, its parameters in order, and where reading stopped: past that ``,``,
    or at the end of `text`.
    """
    end = len(text)
    i = _find(text, stops, start)
    media = text[start:i].strip().lower()
    params: _Parameters = []
    while i < end and text[i] == ";":
        equals = _find(text, "=" + stops, i + 1)
        name = text[i + 1 : equals].strip().lower()
        if equals == end or text[equals] != "=":
            params.append((name, None))
            i = equals
            continue
        i = equals + 1
        while i < end and text[i] in _OWS:
            i += 1
        if i < end and text[i] == '"':
            value, i = _quoted_string(text, i + 1)
            i = _find(text, stops, i)
        else:
            stop = _find(text, stops, i)
            value = text[i:stop].strip()
            i = stop
        params.append((name, value))
    return media, params, min(i + 1, end)


def _find(text: str, chars: str, start: int) -> int:
    """The index of the first of `chars` at or after `start`, else len(text)."""
    for i in range(start, len(text)):
        if text[i] in chars:
            return i
    return len(text)


def _quoted_string(text: str, i: int) -> tuple[str, int]:
    """The value of a quoted-string opened before `i`, and the index after it.

    An unterminated quoted-string runs to the end of `text`.
    """
    value = []
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            value.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(value), i + 1
        value.append(char)
        i += 1
    return "".join(value), i


# Content-Type ------------------------------------------------------------


@dataclass(frozen=True)
class MediaType:
    """A parsed ``Content-Type``: lower-case type and parameter names."""

    type: str
    params: dict[str, str]


def parse_media_type(header: str) -> MediaType:
    """A Content-Type value: its type and parameters (RFC 9110 §8.3.1).

    Parameter names are case-insensitive and folded to lower case; values keep
    their case. Quoted values may hold ``;`` and backslash escapes. Parameters
    without a value are dropped; of a repeated one, the last counts.
    """
    # Whitespace around a field value is not part of it (RFC 9110 §5.5).
    media, params, _ = _scan(header.strip(), 0, ";")
    return MediaType(
        media, {name: value for name, value in params if name and value is not None}
    )


# Accept ------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header; names lower-cased, values unquoted."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...] = ()
    q: float = 1.0

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> str | None:
        """The first value of parameter `name`, or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        """Every value of parameter `name`, in order (transfer-syntax may repeat)."""
        return [value for key, value in self.params if key == name]

    def covers(self, media_type: str) -> bool:
        """Whether this range includes `media_type` (``*/*``, ``image/*``...)."""
        kind, _, subtype = media_type.lower().partition("/")
        if self.type == "*":
            return True
        return self.type == kind and self.subtype in ("*", subtype)


ANY = MediaRange("*", "*")


def parse_media_range(text: str) -> MediaRange | None:
    """One media range with its parameters; None when it is not one."""
    media, params, _ = _scan(text, 0, ";")
    return _media_range(media, params)


def _media_range(media: str, params: _Parameters) -> MediaRange | None:
    """The range of a scanned media type; None when it is not one.

    A parameter without a value makes the whole range unreadable; ``q`` is the
    weight (RFC 9110 §12.4.2), not a parameter of the media type.
    """
    kind, slash, subtype = media.partition("/")
    if not slash or not kind or not subtype or " " in kind + subtype:
        return None

    kept: list[tuple[str, str]] = []
    q = 1.0
    for name, value in params:
        if not name:
            continue
        if value is None:
            return None
        if name == "q":
            try:
                q = min(max(float(value), 0.0), 1.0)
            except ValueError:
                return None
            continue
        kept.append((name, value))
    return MediaRange(kind, subtype, tuple(kept), q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """The ranges of an Accept header, highest q first (ties keep their order).

    A missing or empty header accepts anything (RFC 9110 §12.5.1); entries that
    cannot be parsed and those with q=0 ("not acceptable") are dropped, so an
    Accept of only such entries yields an empty list: nothing fits.
    """
    if header is None or not header.strip():
        return [ANY]
    ranges = []
    i = 0
    while i < len(header):
        media, params, i = _scan(header, i, ";,")
        media_range = _media_range(media, params)
        if media_range is not None and media_range.q > 0:
            ranges.append(media_range)
    return sorted(ranges, key=lambda r: -r.q)


@dataclass(frozen=True)
class Wanted:
    """A representation a client accepts.

    `media_type` is the type of each part when `multipart` is set, else of the
    whole body; `transfer_syntaxes` lists the ``transfer-syntax`` values given
    (``*`` meaning "as stored"), empty when none was.
    """

    media_type: str
    transfer_syntaxes: tuple[str, ...]
    multipart: bool


def acceptable(
    ranges: Sequence[MediaRange],
    *,
    part_types: Sequence[str] = (),
    single_types: Sequence[str] = (),
    default: Wanted,
) -> list[Wanted]:
    """What `ranges` accept among multipart/related bodies whose parts are one
    of `part_types` and single bodies of `single_types`, in preference order.

    ``multipart/related`` without ``type`` and ``*/*`` stand for `default`
    (PS3.18 §8.7.3: a missing type parameter means the resource's default); a
    wildcard ``type`` stands for the `part_types` it covers, in their order.
    """
    wanted: list[Wanted] = []
    for media_range in ranges:
        syntaxes = tuple(media_range.all("transfer-syntax"))
        if media_range.essence == MULTIPART_RELATED:
            part_type = (media_range.param("type") or "").strip().lower()
            if not part_type:
                wanted.append(_with_syntaxes(default, syntaxes))
            elif part_type in part_types:
                wanted.append(Wanted(part_type, syntaxes, True))
            elif part_type.endswith("/*"):
                # type="*/*" (dicomweb-client's default) or "image/*": every
                # part type it covers, in the resource's order of preference.
                covering = parse_media_range(part_type) or ANY
                for offered in part_types:
                    if covering.covers(offered):
                        wanted.append(Wanted(offered, syntaxes, True))
            continue

        if media_range.essence in ("*/*", "multipart/*"):
            wanted.append(_with_syntaxes(default, syntaxes))
        for single in single_types:
            if media_range.type != "*" and media_range.covers(single):
                wanted.append(Wanted(single, syntaxes, False))
    return wanted


def _with_syntaxes(default: Wanted, syntaxes: tuple[str, ...]) -> Wanted:
    if not syntaxes:
        return default
    return Wanted(default.media_type, syntaxes, default.multipart)


def describe(wanted: Wanted) -> str:
    """`wanted` as an Accept value, for messages."""
    if not wanted.multipart:
        return wanted.media_type
    text = f'{MULTIPART_RELATED}; type="{wanted.media_type}"'
    for syntax in wanted.transfer_syntaxes:
        text += f"; transfer-syntax={syntax}"
    return text
