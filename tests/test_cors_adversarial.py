"""Faults found by attacking the CORS layer, each reproduced against a real server.

Every test is named for the fault it shows and cites the clause of
``docs/cors.md`` that the server's answer breaks. Together they go beyond the
cases of ``cases/cors/`` (``test_cors_cases.py``): IDN and IPv4 host
normalisation, ``*`` as a requested header name, and settings read from the
environment.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from .conftest import Server, ServerFailed

V = "https://viewer.example.org"


def items(response: httpx.Response, name: str) -> list[str]:
    """All fields of `name` joined, split on commas, trimmed (conventions.md)."""
    joined = ",".join(response.headers.get_list(name))
    return [item.strip(" \t") for item in joined.split(",") if item.strip(" \t")]


def preflight(
    server: Server, origin: str, method: str, request_headers: str | None = None
) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    return httpx.request("OPTIONS", server.root + "/studies", headers=headers)


def acao(server: Server, origin: str) -> list[str]:
    response = httpx.get(server.url + "/health", headers={"Origin": origin})
    return response.headers.get_list("access-control-allow-origin")


def started_or_refused(
    server_factory: Callable[..., Server],
    config: str = "",
    env: dict[str, str] | None = None,
) -> Server | ServerFailed:
    try:
        return server_factory(config, env=env)
    except ServerFailed as failed:
        return failed


# --- origins: host normalisation (§4 "Origins") ------------------------------


def test_idn_origin_with_sharp_s_is_normalised_to_another_host(
    server_factory: Callable[..., Server],
) -> None:
    """§4 "Origins": configured IDN hosts must become the punycode that
    browsers send (UTS #46, non-transitional: ``straße`` -> ``xn--strae-oqa``).
    The IDNA 2003 codec maps ``ß`` to ``ss`` instead, so the server allows
    ``https://strasse.example``, a different host that the admin never listed,
    and refuses the origin browsers really send."""
    server = server_factory('[cors]\norigins = ["https://stra\\u00dfe.example"]\n')

    assert acao(server, "https://xn--strae-oqa.example") == [
        "https://xn--strae-oqa.example"
    ]
    assert acao(server, "https://strasse.example") == []


def test_idn_origin_with_zero_width_joiner_allows_the_plain_ascii_host(
    server_factory: Callable[..., Server],
) -> None:
    """§4 "Origins": an entry that no browser can send (UTS #46 refuses
    a ZERO WIDTH JOINER between Latin letters) must be refused at load. The
    IDNA 2003 codec silently deletes the joiner, so ``pay<ZWJ>pal.example``
    grants ``https://paypal.example``."""
    outcome = started_or_refused(
        server_factory, '[cors]\norigins = ["https://pay\\u200dpal.example"]\n'
    )

    if isinstance(outcome, ServerFailed):
        assert "cors.origins" in outcome.output
        return
    assert acao(outcome, "https://paypal.example") == []


def test_non_canonical_ipv4_origin_never_matches(
    server_factory: Callable[..., Server],
) -> None:
    """§4 "Origins": browsers serialise ``http://127.1`` as ``http://127.0.0.1`` (WHATWG
    URL IPv4 parser). The entry must be normalised to that form or refused at
    load; it is kept as typed and silently never matches."""
    outcome = started_or_refused(server_factory, '[cors]\norigins = ["http://127.1"]\n')

    if isinstance(outcome, ServerFailed):
        assert "cors.origins" in outcome.output
        return
    assert acao(outcome, "http://127.0.0.1") == ["http://127.0.0.1"]


# --- "*" as a requested header name (D5) -------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        # CRED profile (conventions.md): credentials on, headers ["*"].
        f'origins = ["{V}"]\nheaders = ["*"]\nmethods = ["*"]\n'
        "max_age = 7200\nallow_credentials = true\n",
        # STAR profile: there a literal "*" in ACAH is a real wildcard.
        'origins = ["*"]\nheaders = ["*"]\nmethods = ["*"]\nmax_age = 86400\n',
    ],
    ids=["CRED", "STAR"],
)
def test_star_in_request_headers_is_echoed_as_acah_wildcard(
    server_factory: Callable[..., Server], table: str
) -> None:
    """D5: never send ``*`` in ACAH (conventions.md check 3 with credentials).
    ``*`` is a valid token, so a page can ask for a header named ``*``; with
    headers = ["*"] the echo sends ``Access-Control-Allow-Headers: *`` back.
    The preflight must be refused (D2) or the ``*`` left out of ACAH."""
    server = server_factory("[cors]\n" + table)

    response = preflight(server, V, "PUT", "authorization, *")

    assert response.status_code in (204, 403)
    assert "*" not in items(response, "access-control-allow-headers")


# --- settings from the environment (§4) --------------------------------------


def test_methods_all_from_the_environment_becomes_a_method_named_all(
    server_factory: Callable[..., Server],
) -> None:
    """§4 "methods": "all" means every method. DICOMHUB_CORS_METHODS=all is
    split as a list (config.py LIST_KEYS) into ["all"], which the validator
    upper-cases into a method literally called ``ALL``: ACAM becomes ``ALL``
    and every DELETE/PUT/PATCH preflight gets a 403, with no warning."""
    server = server_factory(
        "", env={"DICOMHUB_CORS_ORIGINS": V, "DICOMHUB_CORS_METHODS": "all"}
    )

    response = preflight(server, V, "DELETE")

    assert response.status_code == 204, response.text
    assert "DELETE" in items(response, "access-control-allow-methods")
    assert "ALL" not in items(response, "access-control-allow-methods")


def test_null_origins_from_the_environment_are_not_refused(
    server_factory: Callable[..., Server],
) -> None:
    """§4 "Origins" and D12: ``null`` is refused when the configuration loads
    and the server does not start. DICOMHUB_CORS_ORIGINS=null parses as JSON
    null, which the validator treats as "not set": the server starts with CORS
    off and says nothing."""
    outcome = started_or_refused(
        server_factory, "", env={"DICOMHUB_CORS_ORIGINS": "null"}
    )

    assert isinstance(outcome, ServerFailed), "the server started"
    assert "cors.origins" in outcome.output
