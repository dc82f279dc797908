"""``dicomhub cors check``, run as a command, against the CORS profiles of
/work/shared/cases/cors/conventions.md (LIST, MIN, CRED, STAR): as
configuration files, and as running servers asked with real preflights, also
through a reverse proxy that mishandles CORS headers. Exit codes: 0 allowed,
1 blocked, 2 unusable input or settings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .conftest import Server, free_port, start_server

V = "https://viewer.example.org"
A = "https://admin.example.org"
E = "https://evil.example.net"

PROFILES = {
    "LIST": f"""
        [cors]
        origins = ["{V}", "{A}"]
        headers = ["Authorization", "X-Request-ID"]
        methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
        max_age = 600
        allow_credentials = false
    """,
    "MIN": f"""
        [cors]
        origins = ["{V}"]
        headers = ["Authorization"]
        methods = ["GET"]
        allow_credentials = false
    """,
    "CRED": f"""
        [cors]
        origins = ["{V}"]
        headers = ["*"]
        methods = ["*"]
        max_age = 7200
        allow_credentials = true
    """,
    "STAR": """
        [cors]
        origins = ["*"]
        headers = ["*"]
        methods = ["*"]
        max_age = 86400
        allow_credentials = false
    """,
}

NOT_IN_HEADERS = 'is not in cors.headers (add it to headers, or use ["*"])'
NOT_IN_METHODS = 'is not in cors.methods (add it to methods, or use ["*"])'
CAPS_NOTE = "Chromium 7200 s, Firefox 86400 s, Safari 600 s"

# (profile, arguments, exit code, first line of the output); each holds for
# the settings file and for a server running with it.
CASES = [
    ("LIST", ["--origin", V], 0, f"allowed: {V} may GET (no preflight needed)"),
    (
        "LIST",
        ["--origin", V, "-H", "Authorization", "-H", "x-request-id,accept"],
        0,
        f"allowed: {V} may GET with headers accept, authorization, x-request-id "
        "(preflight cached 600 s)",
    ),
    (
        "LIST",
        ["--origin", A, "--method", "delete", "-H", "authorization"],
        0,
        f"allowed: {A} may DELETE with headers authorization (preflight cached 600 s)",
    ),
    (
        "LIST",
        ["--origin", V, "--method", "PATCH"],
        1,
        f"blocked: method 'PATCH' {NOT_IN_METHODS}",
    ),
    (
        "LIST",
        ["--origin", V, "-H", "authorization", "-H", "x-foo"],
        1,
        f"blocked: header 'x-foo' {NOT_IN_HEADERS}",
    ),
    (
        "LIST",
        ["--origin", E],
        1,
        f"blocked: origin '{E}' is not in cors.origins (add it to origins)",
    ),
    (
        "LIST",
        ["--origin", "null", "-H", "authorization"],
        1,
        "blocked: origin 'null' is never allowed by a list of origins",
    ),
    (
        "MIN",
        ["--origin", V, "-H", "authorization"],
        0,
        f"allowed: {V} may GET with headers authorization (preflight cached 5 s, "
        "the browsers' default: no max age set)",
    ),
    (
        "MIN",
        ["--origin", V, "-H", "x-request-id"],
        1,
        f"blocked: header 'x-request-id' {NOT_IN_HEADERS}",
    ),
    (
        "MIN",
        ["--origin", V, "--method", "POST", "-H", "content-type"],
        1,
        f"blocked: method 'POST' {NOT_IN_METHODS}",
    ),
    (
        "MIN",
        ["--origin", V, "--method", "POST"],
        0,
        f"allowed: {V} may POST (no preflight needed)",
    ),
    (
        "MIN",
        ["--origin", V, "-H", "accept,content-type,range"],
        0,
        f"allowed: {V} may GET with headers accept, content-type, range "
        "(preflight cached 5 s, the browsers' default: no max age set)",
    ),
    (
        "MIN",
        ["--origin", V, "--method", "DELETE", "-H", "authorization"],
        1,
        f"blocked: method 'DELETE' {NOT_IN_METHODS}",
    ),
    (
        "CRED",
        ["--origin", V, "--credentials", "--method", "DELETE", "-H", "authorization"],
        0,
        f"allowed: {V} may DELETE with credentials and headers authorization "
        "(preflight cached 7200 s)",
    ),
    (
        "CRED",
        ["--origin", V, "--credentials"],
        0,
        f"allowed: {V} may GET with credentials (no preflight needed)",
    ),
    (
        "CRED",
        ["--origin", A, "--credentials", "-H", "authorization"],
        1,
        f"blocked: origin '{A}' is not in cors.origins (add it to origins)",
    ),
    (
        "STAR",
        ["--origin", E, "--method", "PUT", "-H", "authorization,x-anything"],
        0,
        f"allowed: {E} may PUT with headers authorization, x-anything "
        "(preflight cached 86400 s)",
    ),
    ("STAR", ["--origin", "null"], 0, "allowed: null may GET (no preflight needed)"),
    (
        "STAR",
        ["--origin", E, "--credentials"],
        1,
        "blocked: Access-Control-Allow-Origin is '*', which browsers never accept "
        "on a request with credentials (list the origin in cors.origins and set "
        "allow_credentials = true)",
    ),
]

# The credentialed request against a profile without allow_credentials: the
# settings name the key, a server's answer names the missing header.
CREDENTIALS_OFF_SETTINGS = (
    "blocked: the request carries credentials but cors.allow_credentials is "
    "false (set it to true, or send the request without cookies)"
)
CREDENTIALS_OFF_SERVER = (
    "blocked: the request carries credentials but the answer to the GET has no "
    "Access-Control-Allow-Credentials: true (set cors.allow_credentials = true, "
    "or send the request without cookies)"
)

# (configured origins, the --origin given, the listed origin it nearly
# matches, how they differ).
NEAR_MISSES = [
    ([V, A], "http://viewer.example.org", V, "http instead of https"),
    ([V, A], f"{V}/", V, f"a trailing '/': browsers send '{V}'"),
    (
        [V, A],
        "https://Viewer.Example.org",
        V,
        f"upper-case letters: browsers send '{V}'",
    ),
    ([V, A], f"{V}:443", V, f"the default port written out: browsers send '{V}'"),
    ([V, A], f"{V}/viewer/index.html", V, f"a path: browsers send '{V}'"),
    (
        [V, A],
        "https://www.viewer.example.org",
        V,
        "another host name: a site and its subdomains are different origins",
    ),
    (
        ["http://localhost:3000"],
        "http://localhost",
        "http://localhost:3000",
        "no port, where the listed origin has :3000",
    ),
    (
        ["http://localhost:3000"],
        "http://localhost:3001",
        "http://localhost:3000",
        "port :3001 instead of :3000",
    ),
    (
        ["http://localhost:3000"],
        "http://127.0.0.1:3000",
        "http://localhost:3000",
        "127.0.0.1 and localhost name the same machine but are different origins "
        "to a browser",
    ),
    (
        ["https://pacs.example.org:8443"],
        "http://pacs.example.org:8443",
        "https://pacs.example.org:8443",
        "http instead of https",
    ),
]


def cors_check(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``dicomhub cors check`` as a user would, without DICOMHUB_* leaking in."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMHUB_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dicomhub", "cors", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        cwd=cwd,
    )


def first_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.splitlines()[0] if result.stdout else ""


def write_config(directory: Path, text: str) -> Path:
    path = directory / "dicomhub.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def profile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        name: write_config(tmp_path_factory.mktemp(name), text)
        for name, text in PROFILES.items()
    }


@pytest.fixture(scope="module")
def profile_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Server]]:
    """One running server per profile, shared by this module's --url tests."""
    servers = {
        name: start_server(tmp_path_factory.mktemp(f"srv-{name}"), text)
        for name, text in PROFILES.items()
    }
    yield servers
    for server in servers.values():
        server.stop()


# Settings files -----------------------------------------------------------


@pytest.mark.parametrize(("profile", "args", "code", "line"), CASES)
def test_settings_file_verdicts(
    profile_files: dict[str, Path],
    profile: str,
    args: list[str],
    code: int,
    line: str,
) -> None:
    result = cors_check("--config", str(profile_files[profile]), *args)

    assert first_line(result) == line, result.stdout + result.stderr
    assert result.returncode == code
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("origins", "given", "listed", "how"), NEAR_MISSES)
def test_near_miss_origins_name_the_listed_origin(
    tmp_path: Path, origins: list[str], given: str, listed: str, how: str
) -> None:
    config = write_config(
        tmp_path, f"[cors]\norigins = {origins!r}\n".replace("'", '"')
    )

    result = cors_check("--config", str(config), "--origin", given)

    assert first_line(result) == (
        f"blocked: origin {given!r} is not in cors.origins; it nearly matches "
        f"{listed!r} ({how})"
    )
    assert result.returncode == 1


def test_explanations_teach_the_protocol_reason(
    profile_files: dict[str, Path],
) -> None:
    post = cors_check(
        "--config", str(profile_files["MIN"]), "--origin", V, "--method", "POST"
    )
    assert "a POST without non-safelisted headers is sent without a preflight" in (
        post.stdout
    )
    assert "D15" in post.stdout

    lower = cors_check(
        "--config", str(profile_files["LIST"]), "--origin", V, "--method", "patch"
    )
    assert first_line(lower) == f"blocked: method 'patch' {NOT_IN_METHODS}"
    assert "write 'PATCH' in the script" in lower.stdout

    star = cors_check(
        "--config", str(profile_files["STAR"]), "--origin", E, "-H", "x-anything"
    )
    assert CAPS_NOTE in star.stdout

    credentials = cors_check(
        "--config", str(profile_files["LIST"]), "--origin", V, "--credentials"
    )
    assert first_line(credentials) == CREDENTIALS_OFF_SETTINGS
    assert "a bearer token in Authorization is a request header" in credentials.stdout
    assert credentials.returncode == 1


def test_a_missing_authorization_header_says_why_bearer_tokens_preflight(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, f'[cors]\norigins = ["{V}"]\nheaders = []\n')

    result = cors_check("--config", str(config), "--origin", V, "-H", "authorization")

    assert first_line(result) == f"blocked: header 'authorization' {NOT_IN_HEADERS}"
    assert "bearer token" in result.stdout
    assert "never CORS-safelisted" in result.stdout
    assert result.returncode == 1


def test_max_age_zero_is_reported_as_not_cached(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f'[cors]\norigins = ["{V}"]\nmethods = ["*"]\nmax_age = 0\n'
    )

    result = cors_check("--config", str(config), "--origin", V, "--method", "PUT")

    assert first_line(result) == (
        f"allowed: {V} may PUT (preflight not cached: max age 0)"
    )
    assert result.returncode == 0


def test_verbose_shows_the_headers_a_browser_sees(
    profile_files: dict[str, Path],
) -> None:
    result = cors_check(
        "--config",
        str(profile_files["LIST"]),
        "--origin",
        V,
        "-H",
        "authorization",
        "--verbose",
    )

    assert result.returncode == 0
    assert "    Access-Control-Request-Headers: authorization" in result.stdout
    assert f"    Access-Control-Allow-Origin: {V}" in result.stdout
    assert "    Access-Control-Allow-Headers: authorization" in result.stdout
    assert "    Access-Control-Max-Age: 600" in result.stdout
    assert "    Vary: Origin" in result.stdout


def test_without_config_the_environment_is_read(tmp_path: Path) -> None:
    env = {"DICOMHUB_CORS_ORIGINS": V, "DICOMHUB_CORS_HEADERS": "Authorization"}

    allowed = cors_check("--origin", V, "-H", "authorization", env=env, cwd=tmp_path)
    off = cors_check("--origin", V, cwd=tmp_path)

    assert first_line(allowed).startswith(f"allowed: {V} may GET with headers")
    assert allowed.returncode == 0
    assert first_line(off) == (
        "blocked: CORS is off: cors.origins is empty (list the viewer's origin, "
        f'e.g. origins = ["{V}"])'
    )
    assert off.returncode == 1


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        (
            '[cors]\norigins = ["*"]\nallow_credentials = true\n',
            [],
            "dicomhub: invalid setting: cors.allow_credentials = True: cannot be "
            'true while cors.origins is ["*"]',
        ),
        ("[cors]\nmaxAge = 600\n", [], "did you mean max_age?"),
        ('[cors]\norigins = ["https://*.example.org"]\n', [], "wildcards"),
        ("", ["--url", "http://127.0.0.1:1"], "give --config or --url, not both"),
        ("", ["-H", "Authorization: Bearer abc"], "--header takes a header name"),
        ("", ["-H", "cookie"], "use --credentials"),
        ("", ["--method", "GET, DELETE"], "expected one method"),
        ("", ["--path", "/v2/studies"], "--path needs --url"),
    ],
)
def test_unusable_input_exits_2_with_the_reason(
    tmp_path: Path, config: str, args: list[str], message: str
) -> None:
    path = write_config(tmp_path, config)

    result = cors_check("--config", str(path), "--origin", V, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Bearer abc" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = cors_check("--config", str(tmp_path / "none.toml"), "--origin", V)

    assert result.returncode == 2
    assert "file not found" in result.stderr


# Running servers ----------------------------------------------------------


@pytest.mark.parametrize(("profile", "args", "code", "line"), CASES)
def test_server_verdicts_match_the_settings(
    profile_servers: dict[str, Server],
    profile: str,
    args: list[str],
    code: int,
    line: str,
) -> None:
    result = cors_check("--url", profile_servers[profile].url, *args)

    assert first_line(result) == line, result.stdout + result.stderr
    assert result.returncode == code


def test_server_credentials_refusal_names_the_missing_header(
    profile_servers: dict[str, Server],
) -> None:
    result = cors_check(
        "--url", profile_servers["LIST"].root, "--origin", V, "--credentials"
    )

    assert first_line(result) == CREDENTIALS_OFF_SERVER
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("given", "how"),
    [
        ("http://viewer.example.org", "http instead of https"),
        (f"{V}/", f"a trailing '/': browsers send '{V}'"),
    ],
)
def test_server_near_miss_origins(
    profile_servers: dict[str, Server], given: str, how: str
) -> None:
    result = cors_check("--url", profile_servers["LIST"].url, "--origin", given)

    assert first_line(result) == (
        f"blocked: origin {given!r} is not in cors.origins; it nearly matches "
        f"{V!r} ({how})"
    )
    assert result.returncode == 1


def test_server_preflight_is_built_as_a_browser_builds_it(
    profile_servers: dict[str, Server],
) -> None:
    server = profile_servers["LIST"]

    result = cors_check(
        "--url",
        server.root,
        "--origin",
        V,
        "--verbose",
        "-H",
        "X-Request-ID",
        "-H",
        "authorization,Authorization",
        "--path",
        "/v2/studies/",
    )

    assert result.returncode == 0
    assert "  preflight a browser sends: OPTIONS /v2/studies/" in result.stdout
    assert "    Access-Control-Request-Headers: authorization,x-request-id" in (
        result.stdout
    )
    assert "  preflight answer: 204" in result.stdout
    assert "    Access-Control-Allow-Headers: authorization, x-request-id" in (
        result.stdout
    )
    # The GET itself follows; dicomhub's redirect to /v2/studies carries ACAO
    # (docs/cors.md D17), which is what the browser checks before following.
    assert "  answer to the GET: 307" in result.stdout


def test_server_methods_that_change_data_are_never_sent(
    profile_servers: dict[str, Server],
) -> None:
    server = profile_servers["LIST"]
    before = server.log().count('"DELETE ')

    result = cors_check(
        "--url", server.url, "--origin", V, "--method", "DELETE", "--verbose"
    )

    assert result.returncode == 0
    assert "the DELETE itself was not sent" in result.stdout
    assert server.log().count('"DELETE ') == before


def test_an_unreachable_server_exits_2() -> None:
    result = cors_check("--url", f"http://127.0.0.1:{free_port()}", "--origin", V)

    assert result.returncode == 2
    assert "cannot ask" in result.stderr


# A reverse proxy in front that mishandles CORS ----------------------------


class TamperingProxy:
    """A real reverse proxy (uvicorn, its own socket) in front of dicomhub,
    doing what hand-written proxy rules often do; the first path segment picks
    the mistake: /duplicate adds its own ACAO, /strip-acah drops ACAH,
    /strip-cors drops every Access-Control-* header, /own-preflight answers
    OPTIONS itself with '*', /no-options answers OPTIONS with 405."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[
                Route(
                    "/{mode}/{rest:path}",
                    self.forward,
                    methods=["GET", "HEAD", "OPTIONS", "POST"],
                )
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> TamperingProxy:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    async def forward(self, request: Request) -> Response:
        mode = request.path_params["mode"]
        if request.method == "OPTIONS" and mode == "no-options":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        if request.method == "OPTIONS" and mode == "own-preflight":
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": "*",
                    "Access-Control-Allow-Headers": "*",
                },
            )

        headers = [(k, v) for k, v in request.headers.raw if k != b"host"]
        async with httpx.AsyncClient() as client:
            upstream = await client.request(
                request.method,
                f"{self.upstream}/{request.path_params['rest']}",
                params=request.query_params,
                headers=headers,
                content=await request.body(),
            )

        kept = []
        for name, value in upstream.headers.raw:
            lowered = name.lower()
            if lowered in (
                b"content-length",
                b"content-encoding",
                b"connection",
                b"transfer-encoding",
            ):
                continue
            if mode == "strip-acah" and lowered == b"access-control-allow-headers":
                continue
            if mode == "strip-cors" and lowered.startswith(b"access-control-"):
                continue
            kept.append((lowered, value))
        if mode == "duplicate":
            kept.append((b"access-control-allow-origin", b"*"))

        response = Response(upstream.content, status_code=upstream.status_code)
        response.raw_headers += kept
        return response


@pytest.fixture(scope="module")
def proxy(profile_servers: dict[str, Server]) -> Iterator[TamperingProxy]:
    with TamperingProxy(profile_servers["LIST"].url) as running:
        yield running


@pytest.mark.parametrize(
    ("mode", "args", "line", "note"),
    [
        (
            "duplicate",
            ["-H", "authorization"],
            "blocked: the preflight answer has 2 Access-Control-Allow-Origin fields "
            f"('{V}', '*'); browsers accept exactly one",
            "a proxy in front that adds CORS headers of its own",
        ),
        (
            "strip-acah",
            ["-H", "accept"],
            "blocked: header 'accept' is not in the preflight answer's "
            "Access-Control-Allow-Headers (add it to cors.headers)",
            "dicomhub always allows accept, accept-language, content-language, "
            "content-type and range (docs/cors.md D6)",
        ),
        (
            "strip-acah",
            ["--method", "POST", "-H", "content-type"],
            "blocked: header 'content-type' is not in the preflight answer's "
            "Access-Control-Allow-Headers (add it to cors.headers)",
            'multipart/related; type="application/dicom"',
        ),
        (
            "strip-cors",
            [],
            "blocked: the answer to the GET has no Access-Control-Allow-Origin",
            "a proxy in front that answers by itself or drops Access-Control-* headers",
        ),
        (
            "own-preflight",
            ["-H", "authorization"],
            "blocked: header 'authorization' is not in the preflight answer's "
            "Access-Control-Allow-Headers (list Authorization by name)",
            "'*' in Access-Control-Allow-Headers never covers it",
        ),
        (
            "own-preflight",
            ["--credentials", "--method", "DELETE"],
            "blocked: Access-Control-Allow-Origin is '*', which browsers never accept "
            "on a request with credentials (list the origin in cors.origins and set "
            "allow_credentials = true)",
            "cookies, HTTP authentication",
        ),
        (
            "no-options",
            ["--method", "DELETE"],
            "blocked: the preflight got 405; browsers need a 2xx answer",
            "dicomhub answers them on every path (docs/cors.md D10)",
        ),
    ],
)
def test_a_proxy_that_mishandles_cors_is_caught(
    proxy: TamperingProxy, mode: str, args: list[str], line: str, note: str
) -> None:
    result = cors_check("--url", f"{proxy.url}/{mode}/v2", "--origin", V, *args)

    assert first_line(result) == line, result.stdout + result.stderr
    assert note in result.stdout
    assert result.returncode == 1


def test_the_same_proxy_passing_headers_through_is_allowed(
    proxy: TamperingProxy,
) -> None:
    result = cors_check(
        "--url", f"{proxy.url}/pass/v2", "--origin", V, "-H", "authorization,accept"
    )

    assert first_line(result) == (
        f"allowed: {V} may GET with headers accept, authorization "
        "(preflight cached 600 s)"
    )
    assert result.returncode == 0


def test_a_post_without_a_preflight_is_not_guessed(proxy: TamperingProxy) -> None:
    # No browser would preflight it and the command never sends a POST, so a
    # preflight answered by something else than dicomhub says nothing about it.
    result = cors_check(
        "--url", f"{proxy.url}/no-options/v2", "--origin", V, "--method", "POST"
    )

    assert result.returncode == 2
    assert "cannot judge a POST without sending it" in result.stderr
