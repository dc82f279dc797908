"""The compiled policy: headers per answer and the preflight decision
(docs/cors.md §5: D3-D8, D11, D14). Pure functions; the same rules
are checked over a socket in test_cors_cases.py and test_cors_middleware.py."""

from __future__ import annotations

from typing import Any

import pytest

from dicomhub.cors import CorsPlan, parse_cors_settings

V = "https://viewer.example.org"
VB = V.encode()

LIST = {
    "origins": [V, "https://admin.example.org"],
    "headers": ["Authorization", "X-Request-ID"],
    "methods": ["GET", "HEAD", "POST", "PUT", "DELETE"],
    "max_age": 600,
}


def plan(**overrides: Any) -> CorsPlan:
    return CorsPlan(parse_cors_settings({**LIST, **overrides})[0])


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


def test_list_mode_echoes_the_allowed_origin_and_varies() -> None:
    """D4: ACAO is the request's value; every answer varies on Origin."""
    p = plan()
    granted = p.actual_headers(VB)

    assert header(granted, b"access-control-allow-origin") == [VB]
    assert header(granted, b"access-control-allow-credentials") == []
    assert header(granted, b"access-control-max-age") == []
    assert p.actual_vary == (b"Origin",)
    assert p.actual_headers(b"https://evil.example.net") == []
    assert p.actual_headers(None) == []
    assert p.actual_headers(b"null") == []


def test_star_mode_sends_a_static_star_without_vary() -> None:
    """D3: '*' on every answer, with or without Origin; never an echo."""
    p = plan(origins=["*"])
    for origin in (VB, b"null", None, b"garbage"):
        assert header(p.actual_headers(origin), b"access-control-allow-origin") == [
            b"*"
        ]
    assert p.actual_vary == ()


def test_credentials_add_acac_true_to_actual_and_preflight() -> None:
    """D7: 'true' in lower case on both answers, for allowed origins only."""
    p = plan(allow_credentials=True)
    assert header(p.actual_headers(VB), b"access-control-allow-credentials") == [
        b"true"
    ]
    answer = p.preflight(VB, b"GET", [])
    assert header(answer.headers, b"access-control-allow-credentials") == [b"true"]
    assert p.actual_headers(b"https://evil.example.net") == []


def test_cors_off_refuses_every_preflight_and_adds_nothing() -> None:
    p = CorsPlan(parse_cors_settings({})[0])
    answer = p.preflight(VB, b"GET", [])

    assert not answer.allowed
    assert answer.check == "origin"
    assert "CORS is off" in answer.reason
    assert p.actual_headers(VB) == []
    assert p.actual_vary == ()


@pytest.mark.parametrize(
    "method", [b"GET, DELETE", b"GET,DELETE", b"", b"get", b"DELETE ", b"PATCH"]
)
def test_method_must_be_one_allowed_token(method: bytes) -> None:
    """D5, cors-13: never echo a list; case-sensitive; PATCH is not listed."""
    answer = plan().preflight(VB, method, [])
    assert not answer.allowed
    assert answer.check == "method"
    assert answer.headers == []


def test_acam_lists_the_allowed_set_in_upper_case() -> None:
    answer = plan(methods=["*"]).preflight(VB, b"PATCH", [])
    assert header(answer.headers, b"access-control-allow-methods") == [
        b"DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    ]


@pytest.mark.parametrize(
    ("fields", "echoed"),
    [
        ([b"accept,authorization"], b"accept, authorization"),
        ([b"X-Request-ID, Authorization"], b"x-request-id, authorization"),
        ([b" authorization ,, x-request-id "], b"authorization, x-request-id"),
        ([b"authorization", b"content-type"], b"authorization, content-type"),
        ([b"range,\taccept-language, content-language"], None),
        ([b"authorization,authorization,AUTHORIZATION"], b"authorization"),
    ],
)
def test_request_headers_parsed_across_fields_and_echoed_lower_case(
    fields: list[bytes], echoed: bytes | None
) -> None:
    """D6, cors-12: split, trim, drop empties, lower-case; safelisted names pass."""
    answer = plan().preflight(VB, b"GET", fields)
    assert answer.allowed, answer.reason
    acah = header(answer.headers, b"access-control-allow-headers")
    if echoed is not None:
        assert acah == [echoed]
    else:
        assert acah == [b"range, accept-language, content-language"]


def test_no_requested_headers_means_no_acah() -> None:
    answer = plan().preflight(VB, b"GET", [b" , "])
    assert answer.allowed
    assert header(answer.headers, b"access-control-allow-headers") == []


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ([b"authorization, x request"], "headers"),
        ([b"x-unknown"], "headers"),
        ([b"authorization", b"x-secret"], "headers"),
        ([b'"authorization"'], "headers"),
    ],
)
def test_request_headers_not_allowed_or_not_tokens_are_refused(
    fields: list[bytes], check: str
) -> None:
    answer = plan().preflight(VB, b"GET", fields)
    assert not answer.allowed
    assert answer.check == check


def test_headers_star_echoes_every_valid_name_including_authorization() -> None:
    """D6, cors-09: never a literal '*', which would not cover Authorization."""
    answer = plan(headers=["*"]).preflight(VB, b"GET", [b"Authorization,X-Anything"])
    assert header(answer.headers, b"access-control-allow-headers") == [
        b"authorization, x-anything"
    ]
    refused = plan(headers=["*"]).preflight(VB, b"GET", [b"x y"])
    assert not refused.allowed


@pytest.mark.parametrize(
    ("max_age", "sent"), [(0, [b"0"]), (600, [b"600"]), (None, [])]
)
def test_max_age_zero_is_sent_and_unset_is_left_out(
    max_age: int | None, sent: list[bytes]
) -> None:
    """D8, cors-14."""
    answer = plan(max_age=max_age).preflight(VB, b"GET", [])
    assert header(answer.headers, b"access-control-max-age") == sent


@pytest.mark.parametrize(
    ("enabled", "requested", "origin", "sent"),
    [
        (True, True, VB, [b"true"]),
        (True, False, VB, []),
        (False, True, VB, []),
    ],
)
def test_private_network_only_when_enabled_requested_and_allowed(
    enabled: bool, requested: bool, origin: bytes, sent: list[bytes]
) -> None:
    """D14: ACAPN 'true' or nothing (never 'false'); PNA alone never refuses."""
    p = plan(allow_private_network=enabled)
    answer = p.preflight(origin, b"GET", [], private_network=requested)

    assert answer.allowed
    assert header(answer.headers, b"access-control-allow-private-network") == sent
    pna_vary = b"Access-Control-Request-Private-Network" in p.preflight_vary
    assert pna_vary is enabled


def test_private_network_for_a_refused_origin_stays_refused() -> None:
    p = plan(allow_private_network=True)
    answer = p.preflight(b"https://evil.example.net", b"GET", [], True)
    assert not answer.allowed
    assert answer.headers == []
