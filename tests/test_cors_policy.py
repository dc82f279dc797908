"""The CORS settings validator (docs/cors.md §4): refusals, normal forms,
warnings, the admin API's JSON shape, and exact origin matching."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomhub.config import ConfigError
from dicomhub.cors import CorsConfigError, CorsPlan, CorsPolicy, parse_cors_settings
from dicomhub.cors.policy import ALL_METHODS, DEFAULT_EXPOSE_HEADERS

V = "https://viewer.example.org"
A = "https://admin.example.org"


def refused(raw: dict[str, Any]) -> CorsConfigError:
    with pytest.raises(CorsConfigError) as info:
        parse_cors_settings(raw)
    return info.value


# --- every refusal rule names the key, the value and the rule ----------------

REFUSALS = [
    # (id, [cors] table, key, offending value, words of the rule)
    (
        "star-with-credentials",
        {"origins": ["*"], "allow_credentials": True},
        "cors.allow_credentials",
        True,
        'cors.origins is ["*"]',
    ),
    ("star-mixed", {"origins": ["*", V]}, "cors.origins", ["*", V], "cannot be mixed"),
    ("path", {"origins": [V + "/ohif"]}, "cors.origins", V + "/ohif", "no path"),
    ("two-slashes", {"origins": [V + "//"]}, "cors.origins", V + "//", "no path"),
    ("query", {"origins": [V + "/?a=1"]}, "cors.origins", V + "/?a=1", "no query"),
    ("fragment", {"origins": [V + "#x"]}, "cors.origins", V + "#x", "no fragment"),
    (
        "userinfo",
        {"origins": ["https://u:p@viewer.example.org"]},
        "cors.origins",
        "https://u:p@viewer.example.org",
        "user name or password",
    ),
    (
        "wildcard-host",
        {"origins": ["https://*.example.org"]},
        "cors.origins",
        "https://*.example.org",
        "wildcards",
    ),
    ("null", {"origins": ["null"]}, "cors.origins", "null", "allow everyone"),
    ("null-in-list", {"origins": [V, "null"]}, "cors.origins", "null", "D12"),
    ("NULL-upper", {"origins": ["NULL"]}, "cors.origins", "NULL", "D12"),
    ("empty-origin", {"origins": [""]}, "cors.origins", "", "empty string"),
    ("no-scheme", {"origins": ["viewer.example.org"]}, "cors.origins", None, "scheme"),
    ("no-host", {"origins": ["https://"]}, "cors.origins", "https://", "needs a host"),
    ("bad-port", {"origins": [V + ":http"]}, "cors.origins", V + ":http", "port"),
    ("big-port", {"origins": [V + ":70000"]}, "cors.origins", V + ":70000", "65535"),
    ("bad-host", {"origins": ["https://a b"]}, "cors.origins", "https://a b", "host"),
    ("ipv6-bare", {"origins": ["http://::1"]}, "cors.origins", "http://::1", "IPv6"),
    ("ipv6-bad", {"origins": ["http://[::g]"]}, "cors.origins", None, "IPv6"),
    ("origins-str", {"origins": V}, "cors.origins", V, "list of strings"),
    ("origin-int", {"origins": [1]}, "cors.origins", 1, "string"),
    ("header-space", {"headers": ["x y"]}, "cors.headers", "x y", "token"),
    ("header-comma", {"headers": ["a,b"]}, "cors.headers", "a,b", "token"),
    ("header-empty", {"headers": [""]}, "cors.headers", "", "token"),
    ("header-star-mixed", {"headers": ["*", "a"]}, "cors.headers", None, "mixed"),
    ("method-list", {"methods": ["GET, DELETE"]}, "cors.methods", None, "token"),
    ("method-empty", {"methods": [""]}, "cors.methods", "", "token"),
    ("method-star-mixed", {"methods": ["*", "GET"]}, "cors.methods", None, "mixed"),
    ("max-age-negative", {"max_age": -1}, "cors.max_age", -1, "negative"),
    ("max-age-float", {"max_age": 1.5}, "cors.max_age", 1.5, "whole number"),
    ("max-age-text", {"max_age": "600"}, "cors.max_age", "600", "whole number"),
    ("max-age-bool", {"max_age": True}, "cors.max_age", True, "whole number"),
    (
        "credentials-text",
        {"allow_credentials": "yes"},
        "cors.allow_credentials",
        "yes",
        "true or false",
    ),
    (
        "pna-int",
        {"allow_private_network": 1},
        "cors.allow_private_network",
        1,
        "true or false",
    ),
    ("expose-star", {"expose_headers": ["*"]}, "cors.expose_headers", None, "'*'"),
    ("expose-bad", {"expose_headers": ["a b"]}, "cors.expose_headers", "a b", "token"),
    ("unknown-key", {"origin": [V]}, "cors.origin", [V], "unknown key"),
    ("azure-key-in-toml", {"maxAge": 600}, "cors.maxAge", 600, "did you mean max_age"),
]


@pytest.mark.parametrize(
    ("raw", "key", "value", "rule"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusal_names_key_value_and_rule(
    raw: dict[str, Any], key: str, value: Any, rule: str
) -> None:
    error = refused(raw)

    assert isinstance(error, ConfigError)
    assert error.key == key
    assert rule in error.rule
    message = str(error)
    assert message.startswith(f"{key} = ")
    assert rule in message
    if value is not None:
        assert error.value == value
        assert repr(value) in message


def test_star_with_credentials_message_names_both_settings() -> None:
    """cors-01 item 1 (D3, D7): the message tells what to do."""
    message = str(refused({"origins": ["*"], "allow_credentials": True}))
    assert "allow_credentials" in message
    assert "origins" in message
    assert "list the allowed origins" in message


def test_star_without_credentials_is_accepted() -> None:
    policy, _ = parse_cors_settings({"origins": ["*"], "allow_credentials": False})
    assert policy.any_origin
    assert policy.origins == ("*",)


# --- normal forms and warnings ----------------------------------------------

NORMALISED = [
    ("HTTPS://Viewer.Example.org:443/", V),
    ("https://viewer.example.org/", V),
    ("https://viewer.example.org:443", V),
    ("  https://viewer.example.org  ", V),
    ("http://viewer.example.org:80", "http://viewer.example.org"),
    ("HTTP://LOCALHOST:8080/", "http://localhost:8080"),
    ("https://viewer.example.org:08443", "https://viewer.example.org:8443"),
    ("https://Bücher.example", "https://xn--bcher-kva.example"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
    ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
    ("http://[::FFFF:1.2.3.4]", "http://[::ffff:102:304]"),
    ("http://127.0.0.1:80", "http://127.0.0.1"),
]


@pytest.mark.parametrize(("configured", "normal"), NORMALISED)
def test_origin_is_normalised_with_a_warning(configured: str, normal: str) -> None:
    """cors-16 item 1, docs/cors.md §4: the form browsers send."""
    policy, warnings = parse_cors_settings({"origins": [configured]})

    assert policy.origins == (normal,)
    assert len(warnings) == 1
    assert repr(configured) in warnings[0]
    assert repr(normal) in warnings[0]


@pytest.mark.parametrize(
    "origin",
    [
        V,
        "https://viewer.example.org:80",
        "http://viewer.example.org:443",
        "https://viewer.example.org:8443",
        "http://[::1]",
        "https://xn--bcher-kva.example",
    ],
)
def test_origin_already_normal_is_kept_without_warning(origin: str) -> None:
    """Scheme and port matter: only the scheme's own default port is dropped."""
    policy, warnings = parse_cors_settings({"origins": [origin, A]})
    assert policy.origins == (origin, A)
    assert warnings == []


def test_duplicate_origins_are_merged_with_a_warning() -> None:
    policy, warnings = parse_cors_settings({"origins": [V, V + "/"]})
    assert policy.origins == (V,)
    assert any("listed twice" in w for w in warnings)


@pytest.mark.parametrize(
    ("max_age", "warns"), [(0, False), (7200, False), (7201, True)]
)
def test_max_age_above_chromium_cap_warns(max_age: int, warns: bool) -> None:
    policy, warnings = parse_cors_settings({"origins": [V], "max_age": max_age})
    assert policy.max_age == max_age
    assert any("7200" in w for w in warnings) is warns


def test_headers_lower_cased_and_methods_upper_cased() -> None:
    """D5, D6: header names compare lower-case, methods are upper-case tokens."""
    policy, _ = parse_cors_settings(
        {
            "origins": [V],
            "headers": ["Authorization", "X-Request-ID", "authorization"],
            "methods": ["get", "Post", "GET"],
        }
    )
    assert policy.headers == ("authorization", "x-request-id")
    assert policy.methods == ("GET", "POST")


@pytest.mark.parametrize("methods", [["*"], "*", "all", "ALL"])
def test_methods_star_means_all_seven(methods: Any) -> None:
    policy, _ = parse_cors_settings({"origins": [V], "methods": methods})
    assert policy.methods == ("*",)
    assert set(policy.allowed_methods) == {
        "DELETE",
        "GET",
        "HEAD",
        "OPTIONS",
        "PATCH",
        "POST",
        "PUT",
    }
    assert policy.allowed_methods == ALL_METHODS


def test_headers_star_is_kept_as_star() -> None:
    policy, _ = parse_cors_settings({"origins": [V], "headers": ["*"]})
    assert policy.any_header


def test_empty_table_means_cors_off() -> None:
    """An empty or missing [cors] table allows no origin, without a warning."""
    policy, warnings = parse_cors_settings({})

    assert policy == CorsPolicy()
    assert not policy.enabled
    assert policy.origins == ()
    assert policy.methods == ("GET", "HEAD")
    assert policy.max_age is None
    assert policy.allow_credentials is False
    assert policy.allow_private_network is False
    assert policy.expose_headers == DEFAULT_EXPOSE_HEADERS
    assert warnings == []


def test_settings_without_origins_warn_that_cors_is_off() -> None:
    policy, warnings = parse_cors_settings({"headers": ["Authorization"]})
    assert not policy.enabled
    assert any("CORS is off" in w for w in warnings)


def test_expose_headers_default_is_d16() -> None:
    policy, _ = parse_cors_settings({"origins": [V]})
    assert policy.expose_headers == (
        "Content-Location",
        "Location",
        "ETag",
        "Warning",
        "WWW-Authenticate",
        "Content-Range",
        "Accept-Ranges",
    )


def test_expose_headers_keep_their_spelling_and_drop_repeats() -> None:
    policy, _ = parse_cors_settings(
        {"origins": [V], "expose_headers": ["Location", "location", "ETag"]}
    )
    assert policy.expose_headers == ("Location", "ETag")


def test_values_from_the_environment_as_tuples_and_json() -> None:
    """DICOMHUB_CORS_* values arrive as lists, JSON numbers and booleans."""
    policy, _ = parse_cors_settings(
        {
            "origins": (V,),
            "headers": ("Authorization",),
            "max_age": 600,
            "allow_credentials": True,
        }
    )
    assert policy.origins == (V,)
    assert policy.allow_credentials is True


# --- the policy object --------------------------------------------------------


def test_policy_is_immutable() -> None:
    policy, _ = parse_cors_settings({"origins": [V]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.origins = ("*",)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"origins": ("HTTPS://viewer.example.org",)}, "cors.origins"),
        ({"origins": [V]}, "cors.origins"),
        ({"headers": ("Authorization",)}, "cors.headers"),
        ({"methods": ("get",)}, "cors.methods"),
        ({"origins": ("*",), "allow_credentials": True}, "cors.allow_credentials"),
        ({"max_age": -5}, "cors.max_age"),
    ],
)
def test_policy_built_directly_must_be_valid_and_normal(
    fields: dict[str, Any], key: str
) -> None:
    with pytest.raises(CorsConfigError) as info:
        CorsPolicy(**fields)
    assert info.value.key == key


# --- the admin API's JSON shape (Azure keys plus ours) ------------------------


def test_azure_json_round_trip() -> None:
    policy, _ = parse_cors_settings(
        {
            "origins": [V, A],
            "headers": ["Authorization"],
            "methods": ["GET", "POST"],
            "max_age": 0,
            "allow_credentials": True,
            "allow_private_network": True,
        }
    )
    shape = policy.to_azure_json()

    assert shape == {
        "origins": [V, A],
        "headers": ["authorization"],
        "methods": ["GET", "POST"],
        "maxAge": 0,
        "allowCredentials": True,
        "exposeHeaders": list(DEFAULT_EXPOSE_HEADERS),
        "allowPrivateNetwork": True,
    }
    assert CorsPolicy.from_azure_json(shape) == (policy, [])


def test_azure_json_refusal_names_the_json_key() -> None:
    """cors-01 item 3: the admin API refuses '*' with credentials, by its key."""
    with pytest.raises(CorsConfigError) as info:
        CorsPolicy.from_azure_json(
            {
                "origins": ["*"],
                "headers": ["*"],
                "methods": ["*"],
                "maxAge": 86400,
                "allowCredentials": True,
            }
        )
    assert info.value.key == "allowCredentials"
    assert 'origins is ["*"]' in info.value.rule


def test_azure_json_uses_the_same_validator() -> None:
    policy, warnings = CorsPolicy.from_azure_json(
        {"origins": ["HTTPS://Viewer.Example.org/"], "maxAge": None}
    )
    assert policy.origins == (V,)
    assert policy.max_age is None
    assert warnings

    with pytest.raises(CorsConfigError) as info:
        CorsPolicy.from_azure_json({"maxAge": -1})
    assert info.value.key == "maxAge"


def test_azure_json_unknown_key_suggests_the_camel_case_spelling() -> None:
    with pytest.raises(CorsConfigError) as info:
        CorsPolicy.from_azure_json({"max_age": 5})
    assert "did you mean maxAge" in str(info.value)


@pytest.mark.parametrize("body", [[], "origins", None, 3])
def test_azure_json_must_be_an_object(body: Any) -> None:
    with pytest.raises(CorsConfigError, match="JSON object"):
        CorsPolicy.from_azure_json(body)


# --- exact matching: no prefix, suffix or substring of an origin passes -------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# A last label of digits makes the URL standard read the host as IPv4, which
# has its own tests; domain names end in a label with a letter.
_top_label = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_host = st.builds(
    lambda labels, top: ".".join([*labels, top]),
    st.lists(_label, max_size=3),
    _top_label,
)
_scheme = st.sampled_from(["http", "https"])
_port = st.one_of(st.none(), st.integers(1, 65535))


@st.composite
def origins(draw: st.DrawFn) -> str:
    scheme, host, port = draw(_scheme), draw(_host), draw(_port)
    default = {"http": 80, "https": 443}[scheme]
    if port is None or port == default:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


# No example database on disk: the tests leave no folder in the work tree.
quick = settings(database=None, deadline=None)


@quick
@given(origin=origins(), data=st.data())
def test_no_prefix_suffix_or_substring_of_an_allowed_origin_passes(
    origin: str, data: st.DataObject
) -> None:
    plan = CorsPlan(parse_cors_settings({"origins": [origin]})[0])
    start = data.draw(st.integers(0, len(origin)))
    end = data.draw(st.integers(start, len(origin)))
    extra = data.draw(st.text(min_size=1, max_size=12))

    candidates = [
        origin[start:end],
        origin + extra,
        extra + origin,
        origin + "/",
        origin.upper(),
        origin.replace("://", "://x."),
    ]
    for candidate in candidates:
        if candidate == origin:
            continue
        raw = candidate.encode("utf-8")
        assert not plan.origin_allowed(raw), candidate
        assert plan.actual_headers(raw) == [], candidate
        assert not plan.preflight(raw, b"GET", []).allowed, candidate

    assert plan.origin_allowed(origin.encode())


@quick
@given(origin=origins())
def test_normal_form_is_stable(origin: str) -> None:
    """Normalising twice changes nothing, and browser spellings pass as is."""
    policy, warnings = parse_cors_settings({"origins": [origin]})
    assert policy.origins == (origin,)
    assert warnings == []


@quick
@given(origin=origins())
def test_pasted_spellings_normalise_to_the_browser_form(origin: str) -> None:
    scheme, _, rest = origin.partition("://")
    default = {"http": 80, "https": 443}[scheme]
    spellings = [origin + "/", origin.upper()]
    if ":" not in rest:
        spellings.append(f"{scheme.upper()}://{rest.upper()}:{default}/")

    for spelling in spellings:
        policy, _ = parse_cors_settings({"origins": [spelling]})
        assert policy.origins == (origin,), spelling


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("http://127.1", "write the IPv4 host '127.1' as 127.0.0.1"),
        ("http://2130706433", "as 127.0.0.1"),
        ("http://1.2.3.256", "dotted-quad"),
        ("http://0x7f.0.0.1", "as 127.0.0.1"),
    ],
)
def test_ipv4_hosts_must_be_written_as_browsers_send_them(
    entry: str, rule: str
) -> None:
    """docs/cors.md §4: an entry no browser can send would silently never match."""
    with pytest.raises(CorsConfigError, match=rule):
        parse_cors_settings({"origins": [entry]})


def test_dotted_quad_hosts_are_accepted() -> None:
    policy, _ = parse_cors_settings({"origins": ["http://127.0.0.1:8081/"]})

    assert policy.origins == ("http://127.0.0.1:8081",)


def test_methods_must_be_http_methods() -> None:
    """A typo such as DELET would otherwise refuse every DELETE preflight."""
    with pytest.raises(CorsConfigError) as info:
        parse_cors_settings({"origins": ["https://v.example"], "methods": ["DELET"]})

    assert info.value.key == "cors.methods"
    assert "DELET" in str(info.value)


def test_max_age_beyond_what_browsers_parse_is_refused() -> None:
    with pytest.raises(CorsConfigError, match="cannot parse"):
        parse_cors_settings({"origins": ["https://v.example"], "max_age": 2**31})
