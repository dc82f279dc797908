"""The streaming multipart reader STOW-RS parses request bodies with
(RFC 2046 §5.1.1), fed in chunks of every size."""

from __future__ import annotations

import pytest

from dicomhub.mediatypes import parse_media_type
from dicomhub.multipart import (
    MalformedMultipart,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
)

Parts = list[tuple[dict[str, str], bytes]]


def read(body: bytes, boundary: str, chunk: int | None = None) -> Parts:
    """The parts of `body`, fed `chunk` bytes at a time."""
    reader = MultipartReader(boundary)
    step = chunk or len(body) or 1
    events = []
    for start in range(0, len(body), step):
        events += reader.feed(body[start : start + step])
    events += reader.close()

    parts: Parts = []
    open_part = False
    for event in events:
        if isinstance(event, PartStart):
            assert not open_part
            parts.append((event.headers, b""))
            open_part = True
        elif isinstance(event, PartData):
            assert open_part
            parts[-1] = (parts[-1][0], parts[-1][1] + event.data)
        else:
            assert isinstance(event, PartEnd) and open_part
            open_part = False
    assert not open_part
    return parts


TRICKY = (
    b"preamble --b\r\n"
    b"--b\r\nContent-Type: application/dicom\r\n\r\n"
    b"one\r\n--bX\r\n\r\n--b-\r\n--c\r\n"
    b"\r\n--b \t\r\nContent-Type: application/dicom;\r\n transfer-syntax=1.2\r\n\r\n"
    b"\r\n"
    b"\r\n--b\r\n\r\n"
    b"\r\n--b--  epilogue\r\n--b\r\n\r\nnot a part"
)
TRICKY_PARTS = [
    ({"content-type": "application/dicom"}, b"one\r\n--bX\r\n\r\n--b-\r\n--c\r\n"),
    ({"content-type": "application/dicom; transfer-syntax=1.2"}, b"\r\n"),
    ({}, b""),
]


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 5, 7, 16, 64])
def test_parts_are_found_whatever_the_chunk_size(chunk: int | None) -> None:
    assert read(TRICKY, "b", chunk) == TRICKY_PARTS


def test_bare_lf_after_the_delimiter_and_in_headers() -> None:
    body = b"--b\nContent-Type: application/dicom\n\nDATA\r\n--b--"

    assert read(body, "b") == [({"content-type": "application/dicom"}, b"DATA")]


def test_boundary_with_special_characters() -> None:
    boundary = "----=_Part_0_123.456"
    body = f"--{boundary}\r\n\r\nx\r\n--{boundary}--".encode()

    assert read(body, boundary, 4) == [({}, b"x")]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "no delimiter"),
        (b"--other\r\n\r\nx\r\n--other--", "no delimiter"),
        (b"--b\r\n\r\nDATA", "truncated"),
        (b"--b\r\nContent-Type: application/dicom", "truncated"),
        (b"--b\r\nno colon here\r\n\r\nx\r\n--b--", "no colon"),
        (b"--b\r\n" + b"X-Long: " + b"y" * 70000 + b"\r\n\r\n", "longer than"),
    ],
)
def test_malformed_bodies(body: bytes, words: str) -> None:
    with pytest.raises(MalformedMultipart, match=words):
        read(body, "b", 1000)


@pytest.mark.parametrize("boundary", ["", "a\r\nb"])
def test_unusable_boundaries(boundary: str) -> None:
    with pytest.raises(MalformedMultipart):
        MultipartReader(boundary)


@pytest.mark.parametrize(
    ("header", "media", "params"),
    [
        (
            'multipart/related; type="application/dicom"; boundary="a b"',
            "multipart/related",
            {"type": "application/dicom", "boundary": "a b"},
        ),
        (
            "Multipart/Related;Type=application/dicom;Boundary=XYZ",
            "multipart/related",
            {"type": "application/dicom", "boundary": "XYZ"},
        ),
        (
            'multipart/related; odd; boundary="x;\\"y"; type = application/dicom',
            "multipart/related",
            {"boundary": 'x;"y', "type": "application/dicom"},
        ),
        ("application/dicom", "application/dicom", {}),
        ("", "", {}),
    ],
)
def test_content_type_parameters(
    header: str, media: str, params: dict[str, str]
) -> None:
    parsed = parse_media_type(header)

    assert parsed.type == media
    assert parsed.params == params
