"""The CORS policy: the Azure DICOM service's five settings, plus two of ours.

One policy holds for every origin, as in the Azure DICOM service. It is built
from the ``[cors]`` table of the configuration file (`parse_cors_settings`) or
from the admin API's JSON (`CorsPolicy.from_azure_json`); both go through the
same validator, which refuses what browsers would refuse or misread
(docs/cors.md §4) and warns about what they would silently change.

An empty or missing ``[cors]`` table allows no origin: CORS is off, browsers
on other origins cannot read any answer and every preflight gets a 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError
from .origin import OriginError, normalise_origin

# "*" in the methods setting means all of these (Azure; docs/cors.md §4).
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

# Methods allowed when the setting is left out: reading only.
DEFAULT_METHODS = ("GET", "HEAD")

# D16: the response headers a DICOMweb client needs to read (STOW-RS Location
# and Warning, WADO-RS ETag and Range answers, the 401 challenge).
DEFAULT_EXPOSE_HEADERS = (
    "Content-Location",
    "Location",
    "ETag",
    "Warning",
    "WWW-Authenticate",
    "Content-Range",
    "Accept-Ranges",
)

# Chromium caches a preflight for at most 2 h (kMaxTimeout in
# services/network/cors/preflight_result.cc); Firefox 24 h; WebKit 10 min.
CHROMIUM_MAX_AGE = 7200

# Browsers parse Access-Control-Max-Age into a fixed-size integer and fall back
# to their 5 s default when it overflows; no browser caches longer than a day.
LARGEST_MAX_AGE = 2**31 - 1

# RFC 9110 §5.6.2: token = 1*tchar
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# The TOML keys of the [cors] table and the admin API's JSON keys (Azure).
FIELDS = (
    "origins",
    "headers",
    "methods",
    "max_age",
    "allow_credentials",
    "expose_headers",
    "allow_private_network",
)
AZURE_KEYS = {
    "origins": "origins",
    "headers": "headers",
    "methods": "methods",
    "max_age": "maxAge",
    "allow_credentials": "allowCredentials",
    "expose_headers": "exposeHeaders",
    "allow_private_network": "allowPrivateNetwork",
}


class CorsConfigError(ConfigError):
    """A CORS setting that cannot be used; the message names key, value and rule."""


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """A validated, normalised CORS policy; build it with `parse_cors_settings`.

    origins : ``("*",)`` or origins as browsers serialise them; ``()`` = CORS off
    headers : ``("*",)`` or lower-case header names a request may carry
    methods : ``("*",)`` (all of `ALL_METHODS`) or upper-case method tokens
    max_age : seconds a browser may cache a preflight; None sends no header
    allow_credentials : answer credentialed requests (cookies, HTTP auth)
    expose_headers : response headers scripts may read (never ``*``)
    allow_private_network : answer Private Network Access preflights
    """

    origins: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    methods: tuple[str, ...] = DEFAULT_METHODS
    max_age: int | None = None
    allow_credentials: bool = False
    expose_headers: tuple[str, ...] = DEFAULT_EXPOSE_HEADERS
    allow_private_network: bool = False

    def __post_init__(self) -> None:
        # A policy built directly must already be in normal form; the
        # validator is the same one the settings go through.
        values = {name: getattr(self, name) for name in FIELDS}
        normal, _ = _validate(values, _toml_key)
        if normal != values:
            changed = next(k for k in FIELDS if normal[k] != values[k])
            raise CorsConfigError(
                _toml_key(changed),
                values[changed],
                f"not in normal form; parse_cors_settings gives {normal[changed]!r}",
            )

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    @property
    def any_origin(self) -> bool:
        return self.origins == ("*",)

    @property
    def any_header(self) -> bool:
        return self.headers == ("*",)

    @property
    def allowed_methods(self) -> tuple[str, ...]:
        return ALL_METHODS if self.methods == ("*",) else self.methods

    def to_azure_json(self) -> dict[str, Any]:
        """The settings in the Azure DICOM service's JSON shape, plus ours."""
        shape: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            shape[AZURE_KEYS[name]] = list(value) if isinstance(value, tuple) else value
        return shape

    @classmethod
    def from_azure_json(cls, data: Any) -> tuple[CorsPolicy, list[str]]:
        """Validate the admin API's JSON (keys as `to_azure_json`); CorsConfigError
        names the JSON key. Returns the policy and warnings, as
        `parse_cors_settings` does."""
        if not isinstance(data, Mapping):
            raise CorsConfigError("cors", data, "must be a JSON object")

        by_azure_key = {azure: name for name, azure in AZURE_KEYS.items()}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in by_azure_key:
                raise CorsConfigError(key, value, _unknown_key_rule(key, AZURE_KEYS))
            values[by_azure_key[key]] = value
        return _build(values, AZURE_KEYS.__getitem__)


def parse_cors_settings(raw: Mapping[str, Any]) -> tuple[CorsPolicy, list[str]]:
    """Validate the ``[cors]`` table; return the policy and warnings to log.

    Raises CorsConfigError, naming the key (``cors.origins``), the value and
    the rule, for anything a browser would refuse or that could never match.
    """
    for key, value in raw.items():
        if key not in FIELDS:
            raise CorsConfigError(
                _toml_key(key), value, _unknown_key_rule(key, _toml_names())
            )
    return _build(dict(raw), _toml_key)


def _toml_key(name: str) -> str:
    return f"cors.{name}"


def _toml_names() -> dict[str, str]:
    return {name: name for name in FIELDS}


def _unknown_key_rule(key: str, names: Mapping[str, str]) -> str:
    rule = f"unknown key; expected one of {', '.join(names.values())}"

    # The other spelling (TOML's snake_case, the admin API's camelCase).
    folded = key.replace("_", "").lower()
    for name, spelled in names.items():
        if name.replace("_", "") == folded and spelled != key:
            rule += f" (did you mean {spelled}?)"
    return rule


def _build(
    values: dict[str, Any], key_of: Callable[[str], str]
) -> tuple[CorsPolicy, list[str]]:
    normal, warnings = _validate(values, key_of)
    if not normal["origins"] and any(k != "origins" for k in values):
        warnings.append(
            f"{key_of('origins')} is empty: CORS is off and browsers on other "
            "origins cannot read any answer"
        )
    return CorsPolicy(**normal), warnings


def _validate(
    values: Mapping[str, Any], key_of: Callable[[str], str]
) -> tuple[dict[str, Any], list[str]]:
    """Check and normalise every setting; missing ones take their defaults."""
    warnings: list[str] = []
    defaults = CorsPolicy.__dataclass_fields__
    given = {k: v for k, v in values.items() if v is not None}

    origins = _origins(given.get("origins", ()), key_of("origins"), warnings)
    headers = _headers(given.get("headers", ()), key_of("headers"))
    methods = _methods(given.get("methods", DEFAULT_METHODS), key_of("methods"))
    max_age = _max_age(given.get("max_age"), key_of("max_age"), warnings)
    allow_credentials = _flag(
        given.get("allow_credentials", False), key_of("allow_credentials")
    )
    expose_headers = _expose_headers(
        given.get("expose_headers", defaults["expose_headers"].default),
        key_of("expose_headers"),
    )
    allow_private_network = _flag(
        given.get("allow_private_network", False), key_of("allow_private_network")
    )

    # Browsers never accept "Access-Control-Allow-Origin: *" on a credentialed
    # request (Fetch #cors-check, step 2); the Azure DICOM service and
    # ASP.NET Core refuse the combination, and echoing any origin instead
    # would let every web page read a signed-in user's studies (cors-01).
    if allow_credentials and origins == ("*",):
        raise CorsConfigError(
            key_of("allow_credentials"),
            True,
            f'cannot be true while {key_of("origins")} is ["*"]: browsers refuse '
            "'*' on credentialed requests; list the allowed origins instead",
        )

    normal = {
        "origins": origins,
        "headers": headers,
        "methods": methods,
        "max_age": max_age,
        "allow_credentials": allow_credentials,
        "expose_headers": expose_headers,
        "allow_private_network": allow_private_network,
    }
    return normal, warnings


def _strings(value: Any, key: str, example: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise CorsConfigError(key, value, f"must be a list of strings, e.g. {example}")
    for item in value:
        if not isinstance(item, str):
            raise CorsConfigError(key, item, "every entry must be a string")
    return list(value)


def _origins(value: Any, key: str, warnings: list[str]) -> tuple[str, ...]:
    entries = _strings(value, key, '["https://viewer.example.org"]')
    if "*" in (e.strip() for e in entries):
        if len(entries) > 1:
            raise CorsConfigError(
                key,
                list(entries),
                "'*' (every origin) cannot be mixed with listed origins; use "
                '["*"] alone or list the origins',
            )
        return ("*",)

    origins: list[str] = []
    for entry in entries:
        try:
            origin = normalise_origin(entry)
        except OriginError as exc:
            raise CorsConfigError(key, entry, str(exc)) from None
        if origin != entry:
            warnings.append(
                f"{key}: {entry!r} was normalised to {origin!r}, the form "
                "browsers send in the Origin header"
            )
        if origin in origins:
            warnings.append(f"{key}: {origin!r} is listed twice")
            continue
        origins.append(origin)
    return tuple(origins)


def _tokens(entries: list[str], key: str, what: str) -> None:
    for entry in entries:
        if not TOKEN.fullmatch(entry):
            raise CorsConfigError(
                key, entry, f"not a {what} (an RFC 9110 token, no spaces or commas)"
            )


def _headers(value: Any, key: str) -> tuple[str, ...]:
    entries = _strings(value, key, '["Authorization", "Accept"]')
    if "*" in entries:
        if len(entries) > 1:
            raise CorsConfigError(
                key, list(entries), "'*' (every header) cannot be mixed with names"
            )
        return ("*",)

    _tokens(entries, key, "header name")
    return tuple(dict.fromkeys(e.lower() for e in entries))


def _methods(value: Any, key: str) -> tuple[str, ...]:
    # The bare strings "*" and "all" are accepted for "every method".
    if isinstance(value, str) and value.strip().lower() in ("*", "all"):
        return ("*",)

    entries = _strings(value, key, '["GET", "POST"] or ["*"]')
    if len(entries) == 1 and entries[0].strip().lower() == "all":
        # The portal's "Select all" (and DICOMHUB_CORS_METHODS=all).
        return ("*",)
    if not entries:
        raise CorsConfigError(
            key, [], "no method would be allowed; list methods or use ['*']"
        )
    if "*" in entries:
        if len(entries) > 1:
            raise CorsConfigError(
                key, list(entries), "'*' (every method) cannot be mixed with names"
            )
        return ("*",)

    # D5: methods are upper-case tokens, compared case-sensitively later.
    _tokens(entries, key, "method name")
    methods = tuple(dict.fromkeys(e.upper() for e in entries))

    # DICOMweb (and the Azure portal's check boxes) use only these; anything
    # else is a typo that would silently refuse, say, every DELETE.
    for method in methods:
        if method not in ALL_METHODS:
            raise CorsConfigError(
                key, method, f"not an HTTP method; use some of {', '.join(ALL_METHODS)}"
            )
    return methods


def _max_age(value: Any, key: str, warnings: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CorsConfigError(key, value, "must be a whole number of seconds")
    if value < 0:
        raise CorsConfigError(
            key,
            value,
            "must not be negative (browsers read negative values differently); "
            "use 0 for 'do not cache preflights'",
        )
    if value > LARGEST_MAX_AGE:
        raise CorsConfigError(
            key,
            value,
            f"above {LARGEST_MAX_AGE}, which browsers cannot parse (they would "
            "cache for 5 s); Firefox keeps preflights 86400 s at most",
        )
    if value > CHROMIUM_MAX_AGE:
        warnings.append(
            f"{key} = {value}: Chromium caches preflights for at most "
            f"{CHROMIUM_MAX_AGE} s, Firefox 86400 s, Safari 600 s"
        )
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise CorsConfigError(key, value, "must be true or false")
    return value


def _expose_headers(value: Any, key: str) -> tuple[str, ...]:
    entries = _strings(value, key, '["Location", "ETag"]')
    if "*" in entries:
        raise CorsConfigError(
            key,
            list(entries),
            "'*' is not supported (with credentials it names a header called '*'); "
            "list the response headers scripts may read",
        )

    _tokens(entries, key, "header name")
    seen: dict[str, str] = {}
    for entry in entries:
        seen.setdefault(entry.lower(), entry)
    return tuple(seen.values())
