"""Hypothesis against the DICOMweb side of a real server (PS3.18).

Random QIDO-RS query strings, Accept headers on WADO-RS, STOW-RS bodies and
Content-Types, and path UIDs: whatever the request, the answer is never a
5xx (a 500 is a bug; a 4xx says what was wrong), and the server still
answers /health afterwards. Derandomized and short by default;
``DICOMHUB_FUZZ_EXAMPLES`` raises the number of examples per test
(fuzz/run, fuzz/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dicomhub.qido.keys import MATCH_KEYS

from .conftest import Server
from .dicomdata import fresh, to_bytes

EXAMPLES = int(os.environ.get("DICOMHUB_FUZZ_EXAMPLES", "60"))

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

TIMEOUT = 30

# The 30 000-character query values make Hypothesis warn about their repr.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@pytest.fixture(scope="module")
def client(dicomweb_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dicomweb_server.root, timeout=TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module")
def stored(dicomweb_server: Server, client: httpx.Client) -> dict[str, str]:
    """One real instance (CT_small.dcm) for WADO-RS to find."""
    ds = fresh("CT_small.dcm")
    answer = client.post(
        "/studies",
        content=to_bytes(ds),
        headers={"Content-Type": "application/dicom"},
    )
    assert answer.status_code == 200, answer.text
    return {
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "instance": ds.SOPInstanceUID,
    }


def not_a_server_error(answer: httpx.Response) -> None:
    request = answer.request
    body = request.content if request.stream is not None else b""
    assert answer.status_code < 500, (
        f"{answer.status_code} for {request.method} {request.url} "
        f"headers={dict(request.headers)} body={body[:2000]!r}\n"
        f"answer: {answer.text[:2000]}"
    )


# Text as it reaches a server: any Unicode but surrogates (which no URL or
# UTF-8 body can carry); header values are Latin-1 without CR/LF (RFC 9110 §5.5).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)

# ---- QIDO-RS (PS3.18 §10.6) ------------------------------------------------

SEARCH_PATHS = st.sampled_from(
    [
        "/studies",
        "/series",
        "/instances",
        "/studies/{study}/series",
        "/studies/{study}/instances",
        "/studies/{study}/series/{series}/instances",
    ]
)

MATCH_NAMES = sorted(
    {key.tag for key in MATCH_KEYS.values()}
    | {key.keyword for key in MATCH_KEYS.values()}
)
QUERY_KEYS = st.one_of(
    st.sampled_from(MATCH_NAMES),
    st.sampled_from(
        ["includefield", "limit", "offset", "fuzzymatching", "orderby", "charset"]
    ),
    st.sampled_from(["00100010.00100020", "0040A730.0040A123", "PatientName.x"]),
    TEXT,
)

DATES = st.sampled_from(
    ["20200101", "2020", "19000101-20991231", "-20200101", "20200101-", "-", "2020-"]
)
QUERY_VALUES = st.one_of(
    TEXT,
    st.sampled_from(["", "*", "?", "**", "a*b?c", "\\", "=", "all", "true", "0"]),
    DATES,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.from_regex(r"[0-9.\-*?]{0,80}", fullmatch=True),
    # Long, below httpx's 64 KiB limit on a URL component.
    st.sampled_from(["x" * 30_000, "1." * 15_000, "*" * 5_000]),
)


@FUZZ
@given(
    path=SEARCH_PATHS,
    pairs=st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=8),
)
def test_qido_query_strings(
    client: httpx.Client,
    stored: dict[str, str],
    path: str,
    pairs: list[tuple[str, str]],
) -> None:
    # Repeated keys stay repeated: urlencode keeps every pair in order.
    query = urlencode(pairs, quote_via=quote)
    assume(len(query) < 60_000)  # httpx refuses a query over 64 KiB
    url = path.format(**stored)

    not_a_server_error(client.get(url, params=httpx.QueryParams(query)))


@FUZZ
@given(path=SEARCH_PATHS, raw=st.binary(max_size=200))
def test_qido_raw_query_bytes(
    client: httpx.Client, stored: dict[str, str], path: str, raw: bytes
) -> None:
    """Bytes in the query that no client library would send: percent-encoded
    invalid UTF-8, bare '%', '&&', '=' without a key."""
    query = quote(raw, safe="&=%+*?,-.")
    url = client.base_url.join(path.format(**stored)).copy_with(
        query=query.encode("ascii")
    )

    not_a_server_error(client.get(url))


# ---- WADO-RS Accept (PS3.18 §8.7) --------------------------------------------

RETRIEVE_PATHS = st.sampled_from(
    [
        "/studies/{study}",
        "/studies/{study}/series/{series}",
        "/studies/{study}/series/{series}/instances/{instance}",
        "/studies/{study}/metadata",
        "/studies/{study}/series/{series}/metadata",
        "/studies/{study}/series/{series}/instances/{instance}/metadata",
        "/studies/{study}/series/{series}/instances/{instance}/frames/1",
        "/studies/{study}/series/{series}/instances/{instance}/frames/1,1",
        "/studies/{study}/series/{series}/instances/{instance}/rendered",
        "/studies/{study}/series/{series}/instances/{instance}/frames/1/rendered",
        "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
        "/studies/{study}/series/{series}/rendered",
        "/studies/{study}/thumbnail",
        "/studies/{study}/series/{series}/instances/{instance}/bulkdata/7FE00010",
    ]
)

MEDIA_TYPES = st.sampled_from(
    [
        "*/*",
        "application/*",
        "image/*",
        "application/dicom",
        "application/dicom+json",
        "application/dicom+xml",
        "application/json",
        "application/octet-stream",
        "application/zip",
        "multipart/related",
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/octet-stream"',
        'multipart/related; type="image/jpeg"',
        "multipart/related; type=application/dicom+json",
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/jp2",
        "image/jls",
        "video/mp4",
        "text/html",
        "text/plain",
        "",
        ";",
        "/",
        "*",
    ]
)
PARAMETERS = st.one_of(
    st.sampled_from(
        [
            "transfer-syntax=*",
            "transfer-syntax=1.2.840.10008.1.2.1",
            "transfer-syntax=1.2.840.10008.1.2.4.50",
            "transfer-syntax=1.2.840.10008.1.2.4.90",
            'transfer-syntax="1.2.840.10008.1.2.5"',
            "transfer-syntax=",
            "q=0",
            "q=1",
            "q=0.5",
            "q=2",
            "q=-1",
            "q=abc",
            "charset=utf-8",
            'type="',
            "=",
        ]
    ),
    HEADER_TEXT.map(lambda t: t.replace(",", "")),
)
ACCEPT = st.one_of(
    st.lists(
        st.tuples(MEDIA_TYPES, st.lists(PARAMETERS, max_size=3)).map(
            lambda mp: "; ".join([mp[0], *mp[1]])
        ),
        max_size=5,
    ).map(", ".join),
    HEADER_TEXT,
)


@FUZZ
@given(path=RETRIEVE_PATHS, accept=ACCEPT)
def test_wado_accept_headers(
    client: httpx.Client, stored: dict[str, str], path: str, accept: str
) -> None:
    # Latin-1 on the wire, as RFC 9110 §5.5 leaves obs-text to the recipient.
    value = accept.strip(" \t").encode("latin-1")
    answer = client.get(path.format(**stored), headers={"Accept": value})

    not_a_server_error(answer)


# ---- STOW-RS bodies (PS3.18 §10.5) -----------------------------------------


@pytest.fixture(scope="module")
def dicom_part() -> bytes:
    return to_bytes(fresh("CT_small.dcm"))


BOUNDARIES = st.one_of(
    st.from_regex(r"[0-9A-Za-z_-]{1,40}", fullmatch=True),
    st.sampled_from(["b", "dicomhub-fuzz", "-" * 70, "a" * 71, "x y", '"q"', ""]),
    st.from_regex(r"[0-9A-Za-z'()+_,\-./:=? ]{1,70}", fullmatch=True),
)
# Mostly the type STOW-RS takes, so that the multipart reader sees the bodies.
STOW_CONTENT_TYPES = st.sampled_from(
    [
        *['multipart/related; type="application/dicom"; boundary="{b}"'] * 8,
        'multipart/related; type="application/dicom"; boundary={b}',
        "multipart/related; type=application/dicom; boundary={b}",
        'multipart/related; boundary="{b}"; type="application/dicom"',
        'multipart/related; type="application/dicom+json"; boundary={b}',
        "multipart/related; boundary={b}",
        'multipart/related; type="application/dicom"',
        "multipart/form-data; boundary={b}",
        "multipart/mixed; boundary={b}",
        "application/dicom",
        "application/dicom+json",
        "application/json",
        "text/plain",
        "{b}",
    ]
)
PART_TYPES = st.sampled_from(
    [
        "application/dicom",
        "application/dicom+json",
        "application/octet-stream",
        "image/jpeg",
        "text/plain",
        "",
    ]
)


# DICOM JSON (PS3.18 §F.2) that is valid JSON but not a valid dataset.
JSON_PARTS = [
    b"[]",
    b"{}",
    b"[{}]",
    b'[{"0020000D": 1}]',
    b'[{"0020000D": {"vr": "UI", "Value": [1e999]}}]',
    rb'[{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "\ud800"}]}}]',
    b'[{"00080018": {"vr": "UI", "Value": ["1.2.3"]}, "00080018": {}}]',
    b'[{"7FE00010": {"vr": "OB", "InlineBinary": "not base64!"}}]',
]


@st.composite
def part_bodies(draw: st.DrawFn, dicom: bytes) -> bytes:
    """A real instance, a cut or bit-flipped one, or random bytes."""
    kind = draw(st.sampled_from(["dicom", "cut", "flipped", "random", "json"]))
    if kind == "dicom":
        return dicom
    if kind == "cut":
        return dicom[: draw(st.integers(0, len(dicom)))]
    if kind == "flipped":
        at = draw(st.integers(0, len(dicom) - 1))
        flipped = dicom[at] ^ draw(st.integers(1, 255))
        return dicom[:at] + bytes([flipped]) + dicom[at + 1 :]
    if kind == "json":
        return draw(st.sampled_from(JSON_PARTS))
    return draw(st.binary(max_size=600))


@st.composite
def stow_requests(draw: st.DrawFn, dicom: bytes) -> tuple[str, str, bytes]:
    boundary = draw(BOUNDARIES)
    content_type = draw(STOW_CONTENT_TYPES).format(b=boundary)
    delimiter = draw(st.sampled_from([boundary] * 4 + [boundary[:-1], "other"]))
    body = draw(st.sampled_from([b"", b"preamble\r\n"]))
    for _ in range(draw(st.integers(0, 3))):
        headers = draw(
            st.one_of(
                st.just(["Content-Type: application/dicom"]),
                st.lists(
                    st.one_of(
                        PART_TYPES.map(lambda t: f"Content-Type: {t}"),
                        HEADER_TEXT,
                    ),
                    max_size=3,
                ),
            )
        )
        newline = draw(st.sampled_from(["\r\n", "\n"]))
        body += f"--{delimiter}{newline}".encode()
        body += "".join(h + newline for h in headers).encode("latin-1")
        body += newline.encode() + draw(part_bodies(dicom)) + newline.encode()
    body += draw(
        st.sampled_from(
            [f"--{delimiter}--\r\n".encode(), b"", f"--{delimiter}".encode()]
        )
    )
    path = draw(st.sampled_from(["/studies", "/studies/{study}", "/studies/1.2.3"]))
    return path, content_type, body


@FUZZ
@given(data=st.data())
def test_stow_bodies(
    client: httpx.Client,
    stored: dict[str, str],
    dicom_part: bytes,
    data: st.DataObject,
) -> None:
    path, content_type, body = data.draw(stow_requests(dicom_part))
    method = data.draw(st.sampled_from(["POST", "PUT"]))

    answer = client.request(
        method,
        path.format(**stored),
        content=body,
        # A field value has no leading or trailing whitespace (RFC 9110 §5.5).
        headers={"Content-Type": content_type.strip(" \t").encode("latin-1")},
    )

    not_a_server_error(answer)


# ---- Path UIDs (PS3.18 §8.2, PS3.5 §9.1) -----------------------------------

UID_LIKE = st.one_of(
    st.from_regex(r"[0-9]{1,5}(\.[0-9]{1,5}){0,8}", fullmatch=True),
    st.sampled_from(
        ["", ".", "..", "0", "1.2.", ".1.2", "1..2", "01.2", "1" * 65, "9" * 5000]
    ),
    TEXT.filter(lambda t: t not in ("", ".", "..")),
)
UID_PATHS = st.sampled_from(
    [
        ("GET", "/studies/{a}"),
        ("GET", "/studies/{a}/metadata"),
        ("GET", "/studies/{a}/series"),
        ("GET", "/studies/{a}/series/{b}"),
        ("GET", "/studies/{a}/series/{b}/instances"),
        ("GET", "/studies/{a}/series/{b}/instances/{c}"),
        ("GET", "/studies/{a}/series/{b}/instances/{c}/frames/{a}"),
        ("GET", "/studies/{a}/series/{b}/instances/{c}/rendered"),
        ("GET", "/studies/{a}/series/{b}/instances/{c}/bulkdata/{a}"),
        ("DELETE", "/studies/{a}"),
        ("DELETE", "/studies/{a}/series/{b}"),
        ("DELETE", "/studies/{a}/series/{b}/instances/{c}"),
    ]
)


@FUZZ
@given(route=UID_PATHS, uids=st.tuples(UID_LIKE, UID_LIKE, UID_LIKE))
def test_path_uids(
    client: httpx.Client, route: tuple[str, str], uids: tuple[str, str, str]
) -> None:
    method, template = route
    a, b, c = (quote(uid, safe="") for uid in uids)
    url = client.base_url.copy_with(
        raw_path=(
            client.base_url.raw_path.decode() + template.format(a=a, b=b, c=c)
        ).encode("ascii")
    )

    not_a_server_error(client.request(method, url))


def test_server_still_answers(dicomweb_server: Server) -> None:
    """After every example above (the same module server): alive, no traceback."""
    assert httpx.get(dicomweb_server.url + "/health").status_code == 200
    assert dicomweb_server.process.poll() is None
    assert "Traceback" not in dicomweb_server.log()
