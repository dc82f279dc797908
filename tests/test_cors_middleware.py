"""The CORS layer around inner layers that misbehave on purpose: headers an
inner layer set (D13), Vary merging (D4, D11), exceptions (D9), redirects (D17),
streamed bodies, Private Network Access (D14) and a policy replaced while the
server runs. uvicorn serves the layer on a real socket, in a thread of the
test process, because these inner applications exist only for the tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from dicomhub.cors import CORSMiddleware, CorsPolicy, PolicyHolder, parse_cors_settings
from dicomhub.cors.middleware import PREFLIGHT_ANSWERS_MAX, PREFLIGHT_KEY_MAX_BYTES

V = "https://viewer.example.org"
E = "https://evil.example.net"

LIST = {
    "origins": [V],
    "headers": ["Authorization"],
    "methods": ["GET", "POST"],
    "max_age": 600,
    "allow_private_network": True,
}


async def inner_cors(request: Request) -> Response:
    # An inner handler (or an upstream) that sets CORS headers of its own.
    return PlainTextResponse(
        "inner",
        headers={
            "Access-Control-Allow-Origin": "https://inner.example",
            "Access-Control-Allow-Credentials": "false",
            "Access-Control-Allow-Methods": "*",
            "Access-Control-Max-Age": "99",
            "Access-Control-Expose-Headers": "*",
            "Vary": "Accept",
        },
    )


async def vary_star(request: Request) -> Response:
    return PlainTextResponse("any", headers={"Vary": "*"})


async def vary_origin(request: Request) -> Response:
    return PlainTextResponse("own", headers={"Vary": "accept, origin"})


async def boom(request: Request) -> Response:
    raise RuntimeError("a handler failed")


async def redirect(request: Request) -> Response:
    return RedirectResponse("/stream", status_code=307)


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def options(request: Request) -> Response:
    return PlainTextResponse("routed OPTIONS", headers={"Allow": "GET, OPTIONS"})


INNER = Starlette(
    routes=[
        Route("/inner-cors", inner_cors),
        Route("/vary-star", vary_star),
        Route("/vary-origin", vary_origin),
        Route("/boom", boom),
        Route("/redirect", redirect),
        Route("/stream", stream),
        Route("/options", options, methods=["GET", "OPTIONS"]),
    ]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def holder() -> PolicyHolder:
    return PolicyHolder(parse_cors_settings(LIST)[0])


@pytest.fixture(scope="module")
def layer(holder: PolicyHolder) -> CORSMiddleware:
    return CORSMiddleware(INNER, holder)


@pytest.fixture(scope="module")
def url(layer: CORSMiddleware) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        layer,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def policy(holder: PolicyHolder) -> Iterator[PolicyHolder]:
    """The holder, put back to the LIST policy after a test that replaced it."""
    yield holder
    holder.replace(parse_cors_settings(LIST)[0])


def test_inner_cors_headers_are_replaced_never_appended(url: str) -> None:
    """docs/cors.md, D13: one ACAO, ours; inner ACAC/ACAM/ACMA removed."""
    response = httpx.get(url + "/inner-cors", headers={"Origin": V})

    assert response.headers.get_list("access-control-allow-origin") == [V]
    assert "access-control-allow-credentials" not in response.headers
    assert "access-control-allow-methods" not in response.headers
    assert "access-control-max-age" not in response.headers
    assert response.headers.get_list("access-control-expose-headers") == [
        "Content-Location, Location, ETag, Warning, WWW-Authenticate, "
        "Content-Range, Accept-Ranges"
    ]

    refused = httpx.get(url + "/inner-cors", headers={"Origin": E})
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-expose-headers" not in refused.headers


def test_vary_is_merged_never_overwritten(url: str) -> None:
    """docs/cors.md, D4: 'Vary: Accept' stays; Origin is added once."""
    merged = httpx.get(url + "/inner-cors", headers={"Origin": V})
    assert merged.headers.get_list("vary") == ["Accept, Origin"]

    already = httpx.get(url + "/vary-origin", headers={"Origin": V})
    assert already.headers.get_list("vary") == ["accept, origin"]

    star = httpx.get(url + "/vary-star")
    assert star.headers.get_list("vary") == ["*"]


def test_unhandled_exception_500_carries_cors_headers(url: str) -> None:
    """D9, cors-04: the server-error layer's 500 passes through our send."""
    response = httpx.get(url + "/boom", headers={"Origin": V})

    assert response.status_code == 500
    assert response.headers.get_list("access-control-allow-origin") == [V]
    assert "origin" in response.headers["vary"].lower()


def test_redirect_carries_cors_headers(url: str) -> None:
    """D17: a 3xx the server produces is a response like any other."""
    response = httpx.get(url + "/redirect", headers={"Origin": V})

    assert response.status_code == 307
    assert response.headers.get_list("access-control-allow-origin") == [V]


def test_streamed_body_passes_unchanged(url: str) -> None:
    response = httpx.get(url + "/stream", headers={"Origin": V})

    assert response.text == "".join(f"chunk {i}\n" for i in range(5))
    assert response.headers.get_list("access-control-allow-origin") == [V]


def test_options_without_acrm_is_routed(url: str) -> None:
    """D10: no ACRM, no preflight: the route answers, with CORS headers."""
    response = httpx.options(url + "/options", headers={"Origin": V})

    assert response.status_code == 200
    assert response.text == "routed OPTIONS"
    assert response.headers.get_list("access-control-allow-origin") == [V]


def test_preflight_never_reaches_the_route(url: str) -> None:
    """D10: OPTIONS + Origin + ACRM is answered by the layer, 204, no body."""
    response = httpx.options(
        url + "/options",
        headers={"Origin": V, "Access-Control-Request-Method": "GET"},
    )

    assert response.status_code == 204
    assert response.content == b""
    assert "allow" not in response.headers


def test_preflight_without_origin_is_routed(url: str) -> None:
    response = httpx.options(
        url + "/options", headers={"Access-Control-Request-Method": "GET"}
    )
    assert response.text == "routed OPTIONS"


def test_repeated_origin_fields_never_match(url: str) -> None:
    """A browser joins repeated fields with ', ': never a serialised origin."""
    response = httpx.get(url + "/stream", headers=[("Origin", V), ("Origin", V)])
    assert "access-control-allow-origin" not in response.headers


def test_private_network_preflight(url: str) -> None:
    """docs/cors.md, D14: ACAPN 'true' only when asked for; Vary names ACRPN."""
    asked = httpx.options(
        url + "/anything",
        headers={
            "Origin": V,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert asked.status_code == 204
    assert asked.headers.get_list("access-control-allow-private-network") == ["true"]
    assert "Access-Control-Request-Private-Network" in asked.headers["vary"]

    not_asked = httpx.options(
        url + "/anything",
        headers={"Origin": V, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-private-network" not in not_asked.headers


def test_refused_preflight_names_the_check_and_keeps_vary(url: str) -> None:
    """D2: 403, text/plain, no Access-Control-* header, Vary kept (D11)."""
    response = httpx.options(
        url + "/anything",
        headers={
            "Origin": V,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-not-allowed",
        },
    )

    assert response.status_code == 403
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "(headers)" in response.text and "'x-not-allowed'" in response.text
    assert not [k for k in response.headers if k.startswith("access-control-")]
    assert response.headers["vary"] == (
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
        "Access-Control-Request-Private-Network"
    )


def test_policy_replaced_at_run_time(url: str, policy: PolicyHolder) -> None:
    """The next request reads the new policy; no restart."""
    before = httpx.get(url + "/stream", headers={"Origin": "https://other.example"})
    assert "access-control-allow-origin" not in before.headers

    star, _ = parse_cors_settings({"origins": ["*"]})
    policy.replace(star)
    assert policy.current is star

    after = httpx.get(url + "/stream", headers={"Origin": "https://other.example"})
    assert after.headers.get_list("access-control-allow-origin") == ["*"]
    assert "vary" not in after.headers


def test_replace_takes_only_a_policy(policy: PolicyHolder) -> None:
    with pytest.raises(TypeError, match="CorsPolicy"):
        policy.replace({"origins": ["*"]})  # type: ignore[arg-type]
    assert isinstance(policy.current, CorsPolicy)


PREFLIGHT = {
    "Origin": V,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


def test_remembered_preflight_follows_a_replaced_policy(
    url: str, policy: PolicyHolder
) -> None:
    """A preflight answered before a policy change is decided afresh after it."""
    frame = url + "/v2/studies/1.2/series/1.3/instances/1.4/frames/1"
    first = [httpx.options(frame, headers=PREFLIGHT) for _ in range(2)]
    assert [r.status_code for r in first] == [204, 204]
    assert first[1].headers == first[0].headers

    without_authorization, _ = parse_cors_settings({**LIST, "headers": []})
    policy.replace(without_authorization)
    refused = httpx.options(frame, headers=PREFLIGHT)
    assert refused.status_code == 403
    assert "'authorization' is not allowed" in refused.text

    policy.replace(parse_cors_settings(LIST)[0])
    again = httpx.options(frame, headers=PREFLIGHT)
    assert again.status_code == 204
    assert again.headers["access-control-allow-headers"] == "authorization"


def test_remembered_preflights_are_bounded(url: str, layer: CORSMiddleware) -> None:
    """Made-up origins and header lists cannot grow the table without limit."""
    with httpx.Client() as client:
        for i in range(PREFLIGHT_ANSWERS_MAX + 50):
            made_up = {**PREFLIGHT, "Origin": f"https://x{i}.example"}
            assert client.options(url + "/any", headers=made_up).status_code == 403
            assert len(layer._answers) <= PREFLIGHT_ANSWERS_MAX

        # A key beyond the limit is answered, never stored.
        long_list = ",".join(f"x-h{i}" for i in range(PREFLIGHT_KEY_MAX_BYTES // 4))
        stored = len(layer._answers)
        long = client.options(
            url + "/any",
            headers={**PREFLIGHT, "Access-Control-Request-Headers": long_list},
        )
        assert long.status_code == 403
        assert len(layer._answers) == stored

        # The allowed preflight is still answered right after the churn.
        allowed = client.options(url + "/any", headers=PREFLIGHT)
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == V
