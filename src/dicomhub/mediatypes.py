"""Accept headers (RFC 9110 §12.5.1) and what a DICOMweb client asks for with them.

Clients write the same wish in many ways (cases/dicomweb/dicomweb-16): the
``type`` and ``transfer-syntax`` parameters quoted or not, spaces around ``;``
or none, ``transfer-syntax`` given several times, q-values, ``*/*``, or no
Accept at all. `parse_accept` reads all of them into `MediaRange` values and
`acceptable` turns those into the representations a resource may answer with,
most preferred first (PS3.18 §8.7).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MULTIPART_RELATED = "multipart/related"


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


def _split(text: str, separator: str) -> Iterator[str]:
    """Split on `separator` outside double quotes (RFC 9110 §5.6.4)."""
    start, quoted, escaped = 0, False, False
    for position, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            yield text[start:position]
            start = position + 1
    yield text[start:]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out, escaped = [], False
        for char in inner:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return value


def parse_media_range(text: str) -> MediaRange | None:
    """One media range with its parameters; None when it is not one."""
    pieces = list(_split(text, ";"))
    kind, slash, subtype = pieces[0].strip().lower().partition("/")
    if not slash or not kind or not subtype or " " in kind + subtype:
        return None

    params: list[tuple[str, str]] = []
    q = 1.0
    for piece in pieces[1:]:
        name, equals, value = piece.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if not equals:
            return None
        value = _unquote(value)
        if name == "q":
            try:
                q = min(max(float(value), 0.0), 1.0)
            except ValueError:
                return None
            continue
        params.append((name, value))
    return MediaRange(kind, subtype, tuple(params), q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """The ranges of an Accept header, highest q first (ties keep their order).

    A missing or empty header accepts anything (RFC 9110 §12.5.1); entries that
    cannot be parsed and those with q=0 ("not acceptable") are dropped, so an
    Accept of only such entries yields an empty list: nothing fits.
    """
    if header is None or not header.strip():
        return [ANY]
    ranges = []
    for text in _split(header, ","):
        if not text.strip():
            continue
        media_range = parse_media_range(text)
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
