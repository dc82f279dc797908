"""The CORS cases of cases/cors/ (cors-01 .. cors-17), against real servers.

Each test is named after its case file and names it in its docstring. The
profiles LIST, MIN, CRED and STAR are those of cases/cors/conventions.md;
every response any test receives goes through `check_every_response`, the
conventions' "checked on every response of every case".

cors-06 and cors-07 (the AUTH profile, API keys on) are in tests/test_auth.py.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Server, ServerFailed, start_server
from .dicomdata import fresh, read, stow

V = "https://viewer.example.org"
A = "https://admin.example.org"
E = "https://evil.example.net"
MISSING = "1.2.826.0.1.3680043.8.498.999"

FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'

CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
    "access-control-allow-private-network",
)


# --- profiles (conventions.md) -----------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    origins: tuple[str, ...]
    headers: tuple[str, ...]
    methods: tuple[str, ...]
    max_age: int | None
    allow_credentials: bool

    @property
    def list_mode(self) -> bool:
        return self.origins != ("*",)

    def toml(self) -> str:
        lines = [
            "[cors]",
            f"origins = {json.dumps(list(self.origins))}",
            f"headers = {json.dumps(list(self.headers))}",
            f"methods = {json.dumps(list(self.methods))}",
            f"allow_credentials = {json.dumps(self.allow_credentials)}",
        ]
        if self.max_age is not None:
            lines.append(f"max_age = {self.max_age}")
        return "\n".join(lines) + "\n"

    def but(self, **changes: Any) -> Profile:
        return replace(self, **changes)


LIST = Profile(
    "LIST",
    (V, A),
    ("Authorization", "X-Request-ID"),
    ("GET", "HEAD", "POST", "PUT", "DELETE"),
    600,
    False,
)
MIN = Profile("MIN", (V,), ("Authorization",), ("GET",), None, False)
CRED = Profile("CRED", (V,), ("*",), ("*",), 7200, True)
STAR = Profile("STAR", ("*",), ("*",), ("*",), 86400, False)


# --- what every response must satisfy -----------------------------------------


def fields(response: httpx.Response, name: str) -> list[str]:
    return response.headers.get_list(name)


def items(response: httpx.Response, name: str) -> list[str]:
    """All fields of `name` joined, split on commas, trimmed, empties dropped."""
    joined = ",".join(fields(response, name))
    return [item.strip(" \t") for item in joined.split(",") if item.strip(" \t")]


def header_items(response: httpx.Response, name: str) -> set[str]:
    return {item.lower() for item in items(response, name)}


def is_preflight(request: httpx.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "origin" in request.headers
        and "access-control-request-method" in request.headers
    )


def check_every_response(response: httpx.Response, profile: Profile) -> None:
    """conventions.md, "Checked on every response of every case", rules 1-5."""
    acao = fields(response, "access-control-allow-origin")
    acac = fields(response, "access-control-allow-credentials")

    # 1. At most one ACAO field and at most one ACAC field.
    assert len(acao) <= 1, acao
    assert len(acac) <= 1, acac

    # 2. ACAC, when present, is exactly "true".
    assert acac in ([], ["true"]), acac

    # 3. With credentials: never "*" in ACAO, ACAM, ACAH or ACEH.
    if profile.allow_credentials:
        assert acao != ["*"]
        for name in (
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-expose-headers",
        ):
            assert "*" not in items(response, name), (name, fields(response, name))

    # 4. With a list of origins: never ACAO null; Vary holds Origin everywhere.
    if profile.list_mode:
        assert acao != ["null"]
        assert "origin" in header_items(response, "vary"), fields(response, "vary")

    # 5. A preflight never gets a 3xx, 401 or 405.
    if is_preflight(response.request):
        status = response.status_code
        assert not 300 <= status < 400 and status not in (401, 405), status


def assert_no_cors(response: httpx.Response) -> None:
    """NO-CORS: none of ACAO, ACAC, ACAM, ACAH, ACMA, ACEH, ACAPN."""
    present = [name for name in CORS_HEADERS if name in response.headers]
    assert present == [], present


def assert_exactly(response: httpx.Response, name: str, value: str) -> None:
    """`H == "x"`: exactly one field whose value is byte-for-byte x."""
    assert fields(response, name) == [value], (name, fields(response, name))


# --- servers and data ---------------------------------------------------------


@dataclass
class Client:
    server: Server
    profile: Profile

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        response = httpx.request(
            method,
            self.server.url + path,
            headers=headers,
            content=content,
            timeout=60,
        )
        check_every_response(response, self.profile)
        return response

    def raw_request(
        self, method: str, path: str, headers: list[tuple[str, str]]
    ) -> httpx.Response:
        """Like `request`, but through http.client, which sends field values
        exactly as given (httpx refuses leading and trailing spaces)."""
        url = httpx.URL(self.server.url)
        connection = http.client.HTTPConnection(url.host, url.port, timeout=60)
        try:
            connection.putrequest(method, path)
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders()
            answer = connection.getresponse()
            response = httpx.Response(
                answer.status,
                headers=answer.getheaders(),
                content=answer.read(),
                request=httpx.Request(method, url.join(path), headers=headers),
            )
        finally:
            connection.close()
        check_every_response(response, self.profile)
        return response

    def get(
        self, path: str, origin: str | None = None, **headers: str
    ) -> httpx.Response:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if origin is not None:
            sent["Origin"] = origin
        return self.request("GET", path, sent)

    def preflight(
        self, path: str, origin: str, method: str, request_headers: str | None = None
    ) -> httpx.Response:
        sent = {"Origin": origin, "Access-Control-Request-Method": method}
        if request_headers is not None:
            sent["Access-Control-Request-Headers"] = request_headers
        return self.request("OPTIONS", path, sent)


@dataclass(frozen=True)
class Uids:
    study: str
    series: str
    instance: str

    @property
    def instance_path(self) -> str:
        return (
            f"/v2/studies/{self.study}/series/{self.series}/instances/{self.instance}"
        )

    @property
    def frame_path(self) -> str:
        return self.instance_path + "/frames/1"


def ct_small() -> Uids:
    """conventions.md: {study}, {series}, {instance} are read from CT_small.dcm."""
    ds = read("CT_small.dcm")
    return Uids(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


CT = ct_small()
QIDO_CT = f"/v2/studies?StudyInstanceUID={CT.study}"


def store_ct_small(server: Server) -> Uids:
    """Store pydicom's CT_small.dcm with STOW-RS, as every case assumes."""
    response = stow(server.root, [read("CT_small.dcm")])
    assert response.status_code == 200, (
        f"STOW-RS of CT_small.dcm answered {response.status_code}: the case "
        f"needs it stored first; {response.text[:300]}"
    )
    return CT


@pytest.fixture(scope="module")
def profiles(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Client]]:
    """One server per profile for the whole module; CT_small stored on demand."""
    servers: dict[str, Server] = {}
    stored: set[str] = set()

    def client(profile: Profile, with_ct: bool = False) -> Client:
        if profile.name not in servers:
            workdir = tmp_path_factory.mktemp(profile.name.lower())
            servers[profile.name] = start_server(workdir, profile.toml())
        server = servers[profile.name]
        if with_ct and profile.name not in stored:
            store_ct_small(server)
            stored.add(profile.name)
        return Client(server, profile)

    yield client
    for server in servers.values():
        server.stop()


def assert_refused_at_start(
    server_factory: Callable[..., Server], config: str, *words: str
) -> str:
    """`dicomhub serve` exits non-zero before it listens; the message names..."""
    with pytest.raises(ServerFailed) as info:
        server_factory(config)
    failed = info.value

    assert failed.returncode not in (None, 0), failed.output
    assert "Uvicorn running" not in failed.output
    for word in words:
        assert word in failed.output, (word, failed.output)
    return failed.output


# --- cors-01 ------------------------------------------------------------------


def test_cors_01_star_with_credentials_refused_at_start(
    server_factory: Callable[..., Server],
) -> None:
    """cors-01-star-with-credentials.md, items 1 and 2."""
    output = assert_refused_at_start(
        server_factory,
        STAR.but(allow_credentials=True).toml(),
        "cors.allow_credentials",
        "True",
        'cors.origins is ["*"]',
    )
    assert "cannot be true" in output

    assert_refused_at_start(
        server_factory,
        STAR.but(origins=("*", V)).toml(),
        "cors.origins",
        repr(["*", V]),
        "cannot be mixed",
    )


def test_cors_01_star_with_credentials_no_echo(profiles: Callable[..., Client]) -> None:
    """cors-01-star-with-credentials.md, item 4 (profile CRED)."""
    client = profiles(CRED, with_ct=True)
    response = client.request("GET", QIDO_CT, {"Origin": E, "Cookie": "session=abc"})

    assert response.status_code == 200
    assert_no_cors(response)
    assert "origin" in header_items(response, "vary")


def test_cors_01_star_with_credentials_refused_live(
    server_factory: Callable[..., Server],
) -> None:
    """cors-01-star-with-credentials.md, item 3 (profile STAR, PUT /admin/cors)."""
    client = Client(server_factory(STAR.toml()), STAR)
    store_ct_small(client.server)
    body = {
        "origins": ["*"],
        "headers": ["*"],
        "methods": ["*"],
        "maxAge": 86400,
        "allowCredentials": True,
    }

    refused = client.request(
        "PUT",
        "/admin/cors",
        {"Content-Type": "application/json"},
        json.dumps(body).encode(),
    )

    assert refused.status_code == 400
    reason = refused.json()
    assert reason["key"] == "allowCredentials"
    assert 'cannot be true while origins is ["*"]' in reason["message"]
    assert "browsers refuse '*' on credentialed requests" in reason["message"]

    settings = client.get("/admin/cors")
    assert settings.status_code == 200
    assert settings.json()["origins"] == ["*"]
    assert settings.json()["allowCredentials"] is False

    after = client.get(QIDO_CT, origin="https://any.example.com")
    assert after.status_code == 200
    assert_exactly(after, "access-control-allow-origin", "*")
    assert "access-control-allow-credentials" not in after.headers


# --- cors-02 ------------------------------------------------------------------


def test_cors_02_wildcard_never_with_credentials_flag_get(
    profiles: Callable[..., Client],
) -> None:
    """cors-02-wildcard-never-with-credentials-flag.md, item 1."""
    client = profiles(STAR, with_ct=True)
    response = client.request(
        "GET", QIDO_CT, {"Origin": "https://any.example.com", "Cookie": "a=b"}
    )

    assert response.status_code == 200
    assert_exactly(response, "access-control-allow-origin", "*")
    assert "access-control-allow-credentials" not in response.headers


def test_cors_02_wildcard_never_with_credentials_flag_preflight(
    profiles: Callable[..., Client],
) -> None:
    """cors-02-wildcard-never-with-credentials-flag.md, item 2."""
    response = profiles(STAR).preflight(
        f"/v2/studies/{CT.study}", "https://any.example.com", "DELETE", "authorization"
    )

    assert response.status_code == 204
    assert_exactly(response, "access-control-allow-origin", "*")
    assert "access-control-allow-credentials" not in response.headers
    assert "DELETE" in items(response, "access-control-allow-methods")
    assert "authorization" in header_items(response, "access-control-allow-headers")
    assert_exactly(response, "access-control-max-age", "86400")


# --- cors-03 ------------------------------------------------------------------


@pytest.mark.parametrize("profile", [LIST, MIN], ids=["LIST", "MIN"])
def test_cors_03_vary_origin_on_every_response(
    profiles: Callable[..., Client], profile: Profile
) -> None:
    """cors-03-vary-origin-on-every-response.md, items 1-3, LIST then MIN."""
    client = profiles(profile, with_ct=True)

    without = client.get(QIDO_CT)
    assert without.status_code == 200
    assert "access-control-allow-origin" not in without.headers

    evil = client.get(QIDO_CT, origin=E)
    assert evil.status_code == 200
    assert "access-control-allow-origin" not in evil.headers
    assert "access-control-allow-credentials" not in evil.headers

    viewer = client.get(QIDO_CT, origin=V)
    assert viewer.status_code == 200
    assert_exactly(viewer, "access-control-allow-origin", V)

    for response in (without, evil, viewer):
        assert "origin" in header_items(response, "vary")


def test_cors_03_vary_origin_on_health_admin_and_unknown_paths(
    profiles: Callable[..., Client],
) -> None:
    """conventions.md rule 4: `/health` and `/admin` included, with or without
    Origin (cors-03-vary-origin-on-every-response.md)."""
    client = profiles(LIST)
    for path in ("/health", "/admin/cors", "/admin/", "/no/such/path"):
        for origin in (None, V, E):
            response = client.get(path, origin=origin)
            assert "origin" in header_items(response, "vary"), path
            if origin == V:
                assert_exactly(response, "access-control-allow-origin", V)


# --- cors-04 ------------------------------------------------------------------


def damage_stored_instance(server: Server, uids: Uids) -> Path:
    """Overwrite the stored file of `uids.instance` with bytes that are not
    DICOM, as a disk fault would."""
    found = [
        path
        for path in (server.data_dir / "blobs").rglob(f"*{uids.instance}*")
        if path.is_file() and ".incoming" not in path.parts
    ]
    assert len(found) == 1, found
    found[0].write_bytes(b"this is not a DICOM file\n" * 64)
    return found[0]


def requests_reading_the_object(client: Client, uids: Uids) -> list[httpx.Response]:
    """cors-04: the frames request, and the others that read the object."""
    wanted = [
        (uids.frame_path, FRAMES_ACCEPT),
        (uids.instance_path + "/metadata", "application/dicom+json"),
        (uids.instance_path + "/rendered", "image/jpeg"),
        (f"/v2/studies/{uids.study}/series", "application/dicom+json"),
        (uids.instance_path, 'multipart/related; type="application/dicom"'),
    ]
    responses = []
    for path, accept in wanted:
        try:
            responses.append(client.get(path, origin=V, Accept=accept))
        except httpx.TransportError:
            # A streamed answer cut short after its head has no status to check.
            continue
    return responses


@pytest.mark.parametrize("profile", [LIST, CRED], ids=["LIST", "CRED"])
def test_cors_04_cors_headers_on_500(
    server_factory: Callable[..., Server], profile: Profile
) -> None:
    """cors-04-cors-headers-on-500.md, items 1 (LIST) and 2 (CRED)."""
    server = server_factory(profile.toml())
    client = Client(server, profile)
    uids = store_ct_small(server)
    damage_stored_instance(server, uids)

    responses = requests_reading_the_object(client, uids)
    failed = [r for r in responses if r.status_code >= 500]
    assert failed, [(r.request.url.path, r.status_code) for r in responses]

    for response in failed:
        assert response.status_code == 500
        assert_exactly(response, "access-control-allow-origin", V)
        assert "origin" in header_items(response, "vary")
        if profile.allow_credentials:
            assert_exactly(response, "access-control-allow-credentials", "true")
        else:
            assert "access-control-allow-credentials" not in response.headers
    assert "Traceback" in server.log()


# --- cors-05 ------------------------------------------------------------------

CORS_05 = [
    ("404", 404, "GET", f"/v2/studies/{MISSING}/metadata",
     {"Accept": "application/dicom+json"}, None),
    ("400", 400, "GET", "/v2/studies?StudyDate=notadate", {}, None),
    ("406", 406, "GET", CT.instance_path, {"Accept": "image/x-nonexistent"}, None),
    ("415", 415, "POST", "/v2/studies", {"Content-Type": "application/json"}, b"{}"),
    ("405", 405, "PATCH", f"/v2/studies/{CT.study}", {}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "method", "path", "headers", "body"),
    [case[1:] for case in CORS_05],
    ids=[case[0] for case in CORS_05],
)
def test_cors_05_cors_headers_on_dicomweb_4xx(
    profiles: Callable[..., Client],
    status: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    """cors-05-cors-headers-on-dicomweb-4xx.md, items 1-5 (profile LIST)."""
    client = profiles(LIST, with_ct=True)
    response = client.request(method, path, {**headers, "Origin": V}, body)

    assert response.status_code == status, response.text[:300]
    assert_exactly(response, "access-control-allow-origin", V)
    assert "origin" in header_items(response, "vary")


# --- cors-08 ------------------------------------------------------------------


def test_cors_08_preflight_before_routing(profiles: Callable[..., Client]) -> None:
    """cors-08-preflight-before-routing.md: 204 on the frames URL and on every
    path, known or not."""
    client = profiles(LIST)
    paths = [
        CT.frame_path,
        f"/v1/studies/{CT.study}/series/{CT.series}/instances/{CT.instance}/frames/1",
        "/v2/studies",
        "/health",
        "/admin/cors",
        "/no/such/path",
        "/",
    ]
    for path in paths:
        response = client.preflight(path, V, "GET", "accept,authorization")

        assert response.status_code == 204, path
        assert_exactly(response, "access-control-allow-origin", V)
        assert "GET" in items(response, "access-control-allow-methods")
        assert {"accept", "authorization"} <= header_items(
            response, "access-control-allow-headers"
        )
        assert response.content == b""


def test_cors_08_options_without_acrm_goes_to_routing(
    profiles: Callable[..., Client],
) -> None:
    """docs/cors.md, D10: OPTIONS without ACRM is no preflight; routing answers,
    and the answer still carries the CORS headers (D9)."""
    response = profiles(LIST).request("OPTIONS", "/v2/studies", {"Origin": V})

    assert response.status_code in (200, 204, 404, 405)
    assert_exactly(response, "access-control-allow-origin", V)
    assert "access-control-allow-methods" not in response.headers


# --- cors-09 ------------------------------------------------------------------


def test_cors_09_authorization_not_covered_by_star(
    profiles: Callable[..., Client],
) -> None:
    """cors-09-authorization-not-covered-by-star.md, items 1 (STAR), 2 (CRED)."""
    star = profiles(STAR).preflight(
        "/v2/studies", "https://teaching.example.edu", "GET", "authorization"
    )
    assert star.status_code == 204
    assert_exactly(star, "access-control-allow-origin", "*")
    assert "authorization" in header_items(star, "access-control-allow-headers")
    assert items(star, "access-control-allow-headers") != ["*"]

    cred = profiles(CRED).preflight("/v2/studies", V, "GET", "authorization")
    assert cred.status_code == 204
    assert_exactly(cred, "access-control-allow-origin", V)
    assert_exactly(cred, "access-control-allow-credentials", "true")
    assert "authorization" in header_items(cred, "access-control-allow-headers")
    assert "*" not in items(cred, "access-control-allow-headers")


# --- cors-10 ------------------------------------------------------------------


def test_cors_10_wado_accept_preflight(profiles: Callable[..., Client]) -> None:
    """cors-10-wado-accept-preflight.md, item 1 (profile LIST)."""
    response = profiles(LIST).preflight(CT.frame_path, V, "GET", "accept,authorization")

    assert response.status_code == 204
    assert {"accept", "authorization"} <= header_items(
        response, "access-control-allow-headers"
    )


def test_cors_10_wado_accept_frames(profiles: Callable[..., Client]) -> None:
    """cors-10-wado-accept-preflight.md, item 2 (profile LIST)."""
    client = profiles(LIST, with_ct=True)
    response = client.get(CT.frame_path, origin=V, Accept=FRAMES_ACCEPT)

    assert response.status_code == 200, response.text[:300]
    assert_exactly(response, "access-control-allow-origin", V)


# --- cors-11 ------------------------------------------------------------------


def test_cors_11_stow_content_type_preflight(profiles: Callable[..., Client]) -> None:
    """cors-11-stow-content-type-preflight.md, item 1 (profile LIST)."""
    response = profiles(LIST).preflight(
        "/v2/studies", V, "POST", "authorization,content-type"
    )

    assert response.status_code == 204
    assert "POST" in items(response, "access-control-allow-methods")
    assert {"authorization", "content-type"} <= header_items(
        response, "access-control-allow-headers"
    )


def test_cors_11_stow_upload(profiles: Callable[..., Client]) -> None:
    """cors-11-stow-content-type-preflight.md, item 2 (profile LIST)."""
    client = profiles(LIST)
    response = stow(client.server.root, [read("MR_small.dcm")], headers={"Origin": V})
    check_every_response(response, LIST)

    assert response.status_code == 200, response.text[:300]
    assert_exactly(response, "access-control-allow-origin", V)


# --- cors-12 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_headers", "names"),
    [
        ("X-Request-ID, Authorization", {"x-request-id", "authorization"}),
        (" authorization ,, x-request-id ", {"authorization", "x-request-id"}),
    ],
    ids=["item-1-case-and-space", "item-2-empty-item"],
)
def test_cors_12_request_headers_parsing(
    profiles: Callable[..., Client], request_headers: str, names: set[str]
) -> None:
    """cors-12-request-headers-parsing.md, items 1 and 2 (profile LIST)."""
    response = profiles(LIST).raw_request(
        "OPTIONS",
        "/v2/studies",
        [
            ("Origin", V),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", request_headers),
        ],
    )

    assert response.status_code == 204
    assert names <= header_items(response, "access-control-allow-headers")


def test_cors_12_request_headers_not_a_token(profiles: Callable[..., Client]) -> None:
    """cors-12-request-headers-parsing.md, item 3 (profile LIST)."""
    response = profiles(LIST).preflight(
        "/v2/studies", V, "GET", "authorization, x request"
    )

    assert response.status_code == 403
    assert_no_cors(response)
    assert response.headers["content-type"].startswith("text/plain")
    assert "(headers)" in response.text


def test_cors_12_request_headers_on_several_field_lines(
    profiles: Callable[..., Client],
) -> None:
    """docs/cors.md, D6: ACRH is read across all its field lines."""
    response = profiles(LIST).request(
        "OPTIONS",
        "/v2/studies",
        [
            ("Origin", V),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
            ("Access-Control-Request-Headers", "x-request-id"),
        ],
    )

    assert response.status_code == 204
    assert {"authorization", "x-request-id"} <= header_items(
        response, "access-control-allow-headers"
    )


# --- cors-13 ------------------------------------------------------------------


def test_cors_13_method_list_injection(profiles: Callable[..., Client]) -> None:
    """cors-13-method-list-injection.md, items 1 (LIST), 2 (STAR), 3 (MIN)."""
    path = f"/v2/studies/{CT.study}"

    listed = profiles(LIST).preflight(path, V, "GET, DELETE")
    assert listed.status_code == 403
    assert_no_cors(listed)
    assert "(method)" in listed.text

    star = profiles(STAR).preflight(path, "https://any.example.com", "GET,DELETE")
    assert star.status_code == 403
    assert_no_cors(star)

    minimal = profiles(MIN).preflight(path, V, "DELETE")
    assert minimal.status_code == 403
    assert_no_cors(minimal)
    for name, value in minimal.headers.items():
        assert "DELETE" not in value, name


# --- cors-14 ------------------------------------------------------------------


def test_cors_14_max_age_zero_is_sent(server_factory: Callable[..., Server]) -> None:
    """cors-14-max-age-zero-and-unset.md, item 1 (LIST with max_age = 0)."""
    profile = LIST.but(max_age=0)
    client = Client(server_factory(profile.toml()), profile)
    response = client.preflight("/v2/studies", V, "GET")

    assert response.status_code == 204
    assert_exactly(response, "access-control-max-age", "0")


def test_cors_14_max_age_negative_refused_at_start(
    server_factory: Callable[..., Server],
) -> None:
    """cors-14-max-age-zero-and-unset.md, item 2 (LIST with max_age = -1)."""
    assert_refused_at_start(
        server_factory, LIST.but(max_age=-1).toml(), "cors.max_age", "-1", "negative"
    )


def test_cors_14_max_age_unset_is_left_out(profiles: Callable[..., Client]) -> None:
    """cors-14-max-age-zero-and-unset.md, item 3 (profile MIN)."""
    response = profiles(MIN).preflight("/v2/studies", V, "GET")

    assert response.status_code == 204
    assert "access-control-max-age" not in response.headers


def test_cors_14_max_age_not_on_actual_responses(
    profiles: Callable[..., Client],
) -> None:
    """cors-14-max-age-zero-and-unset.md, item 4 (profile LIST)."""
    response = profiles(LIST, with_ct=True).get(QIDO_CT, origin=V)

    assert response.status_code == 200
    assert "access-control-max-age" not in response.headers


# --- cors-15 ------------------------------------------------------------------


def test_cors_15_null_origin_credentialed_get(profiles: Callable[..., Client]) -> None:
    """cors-15-null-origin.md, item 1 (profile CRED)."""
    response = profiles(CRED, with_ct=True).request(
        "GET", QIDO_CT, {"Origin": "null", "Cookie": "session=abc"}
    )

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in header_items(response, "vary")


def test_cors_15_null_origin_preflight(profiles: Callable[..., Client]) -> None:
    """cors-15-null-origin.md, item 2 (profile CRED)."""
    response = profiles(CRED).preflight("/v2/studies", "null", "GET")

    assert response.status_code == 403
    assert_no_cors(response)
    assert "(origin)" in response.text


def test_cors_15_null_origin_refused_at_start(
    server_factory: Callable[..., Server],
) -> None:
    """cors-15-null-origin.md, item 3: ["null"] and [V, "null"]."""
    for origins in (("null",), (V, "null")):
        assert_refused_at_start(
            server_factory, LIST.but(origins=origins).toml(), "cors.origins", "'null'"
        )


def test_cors_15_null_origin_star(profiles: Callable[..., Client]) -> None:
    """cors-15-null-origin.md, item 4 (profile STAR)."""
    response = profiles(STAR, with_ct=True).get(QIDO_CT, origin="null")

    assert response.status_code == 200
    assert_exactly(response, "access-control-allow-origin", "*")


# --- cors-16 ------------------------------------------------------------------


def test_cors_16_configured_origin_normalisation(
    server_factory: Callable[..., Server],
) -> None:
    """cors-16-configured-origin-normalisation.md, item 1."""
    profile = MIN.but(origins=("HTTPS://Viewer.Example.org:443/",))
    server = server_factory(profile.toml())
    client = Client(server, profile)
    assert "normalised to 'https://viewer.example.org'" in server.log()

    preflight = client.preflight("/v2/studies", V, "GET")
    assert preflight.status_code == 204
    assert_exactly(preflight, "access-control-allow-origin", V)

    store_ct_small(server)
    response = client.get(QIDO_CT, origin=V)
    assert response.status_code == 200
    assert_exactly(response, "access-control-allow-origin", V)


def test_cors_16_path_and_wildcard_refused_at_start(
    server_factory: Callable[..., Server],
) -> None:
    """cors-16-configured-origin-normalisation.md, items 2 and 3."""
    for origin, rule in (
        ("https://viewer.example.org/ohif", "no path"),
        ("https://*.example.org", "wildcards"),
    ):
        assert_refused_at_start(
            server_factory,
            MIN.but(origins=(origin,)).toml(),
            "cors.origins",
            repr(origin),
            rule,
        )


@pytest.mark.parametrize(
    "origin",
    ["https://viewer.example.org/", "https://viewer.example.org:443"],
    ids=["item-4-trailing-slash", "item-5-default-port"],
)
def test_cors_16_request_origin_matched_exactly(
    profiles: Callable[..., Client], origin: str
) -> None:
    """cors-16-configured-origin-normalisation.md, items 4 and 5 (profile MIN)."""
    response = profiles(MIN, with_ct=True).get(QIDO_CT, origin=origin)

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


# --- cors-17 ------------------------------------------------------------------


def test_cors_17_credentialed_preflight(profiles: Callable[..., Client]) -> None:
    """cors-17-credentialed-preflight.md (profile CRED)."""
    response = profiles(CRED).preflight("/v2/studies", V, "POST", "content-type")

    assert response.status_code == 204
    assert_exactly(response, "access-control-allow-origin", V)
    assert_exactly(response, "access-control-allow-credentials", "true")
    assert "POST" in items(response, "access-control-allow-methods")
    assert "content-type" in header_items(response, "access-control-allow-headers")
    assert_exactly(response, "access-control-max-age", "7200")


# --- beyond the case files: settings from the environment, the refusal log ---


def test_cors_settings_from_the_environment(
    server_factory: Callable[..., Server],
) -> None:
    """BRIEF.md §3: every key can be set as DICOMHUB_CORS_<KEY>."""
    server = server_factory(
        "",
        env={
            "DICOMHUB_CORS_ORIGINS": f'["{V}"]',
            "DICOMHUB_CORS_HEADERS": "Authorization, X-Request-ID",
            "DICOMHUB_CORS_MAX_AGE": "0",
            "DICOMHUB_CORS_ALLOW_CREDENTIALS": "true",
        },
    )
    client = Client(server, MIN.but(allow_credentials=True))
    response = client.preflight("/v2/studies", V, "GET", "x-request-id")

    assert response.status_code == 204
    assert_exactly(response, "access-control-allow-credentials", "true")
    assert_exactly(response, "access-control-max-age", "0")
    assert "x-request-id" in header_items(response, "access-control-allow-headers")


def test_cors_off_without_a_cors_table(server_factory: Callable[..., Server]) -> None:
    """An empty [cors] table allows no origin: preflights get 403, answers no
    CORS headers."""
    server = server_factory("")
    preflight = httpx.options(
        server.url + "/v2/studies",
        headers={"Origin": V, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 403
    assert_no_cors(preflight)
    assert "CORS is off" in preflight.text

    health = httpx.get(server.url + "/health", headers={"Origin": V})
    assert health.status_code == 200
    assert_no_cors(health)


def test_cors_refused_preflight_logged_once_per_origin_and_reason(
    server_factory: Callable[..., Server],
) -> None:
    """docs/cors.md, D2: the reason is logged at WARNING, once a minute per
    (origin, reason), without the path (it holds UIDs)."""
    server = server_factory(MIN.toml())
    client = Client(server, MIN)
    for _ in range(3):
        assert client.preflight(CT.frame_path, E, "GET").status_code == 403
    assert client.preflight(CT.frame_path, V, "DELETE").status_code == 403

    warnings = [
        line for line in server.log().splitlines() if "CORS preflight refused" in line
    ]
    assert len(warnings) == 2, warnings
    assert "WARNING" in warnings[0] and E in warnings[0] and "(origin)" in warnings[0]
    assert "(method)" in warnings[1] and "'DELETE'" in warnings[1]
    assert not any(CT.study in line for line in warnings)


def test_negotiated_answers_vary_on_accept_and_origin(dicomweb_server: Server) -> None:
    """docs/cors.md, D4: merge into Vary, never overwrite; DICOMweb answers depend
    on Accept (PS3.18 §8.7) as well as on Origin."""
    ct = fresh("CT_small.dcm")
    assert stow(dicomweb_server.root, [ct]).status_code == 200
    base = f"{dicomweb_server.root}/studies/{ct.StudyInstanceUID}"
    headers = {"Origin": "http://viewer.example"}

    for url in (f"{base}/metadata", f"{base}/series", base):
        response = httpx.get(url, headers=headers)
        vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
        assert {"accept", "origin"} <= vary, url
