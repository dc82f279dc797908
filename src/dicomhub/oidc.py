"""OpenID Connect access tokens: JWTs checked against the issuer's keys.

A token is a JWS in compact form (RFC 7515 §7.1) carrying JWT claims
(RFC 7519). It is accepted when its signature verifies with a key of the
issuer's JWK Set (RFC 7517 §5), its algorithm is on the allow-list, `iss` names
the configured issuer, `aud` names this server, and `exp`/`nbf` hold within a
small leeway (RFC 7519 §4.1). The JWK Set comes from the issuer's discovery
document (OpenID Connect Discovery 1.0 §4), from a `jwks_uri` given directly,
or from a local file; it is cached, and refetched when a token names a key id
the cache does not know (the issuer rotated its keys), at most once a minute.

Nothing here knows dicomhub's roles: `auth` maps the claims to them.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from .config import ConfigError
from .hosts import is_loopback_address

logger = logging.getLogger(__name__)

# RFC 8725 §3.1: a fixed allow-list of asymmetric algorithms. `none` and the
# HMAC family (HS*) are refused: with HS256 the issuer's public key would be
# usable as the shared secret. Each algorithm names the key type it needs.
ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}

JWKS_TTL = 3600.0  # seconds a fetched JWK Set is used before it is refreshed
KID_REFETCH_INTERVAL = 60.0  # at most one refetch a minute for unknown key ids
FAILED_FETCH_RETRY = 10.0  # after a failed fetch, wait this long to try again
FETCH_TIMEOUT = 5.0
MAX_LEEWAY = 300

# RFC 7515 §7.1: BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(sig);
# the signature may be empty (alg "none"), which is refused later with a reason.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_jwt(token: str) -> bool:
    """True when `token` has the shape of a compact JWS (three base64url parts)."""
    return _COMPACT_JWS.fullmatch(token) is not None


class TokenRejected(Exception):
    """The token is not acceptable; `description` says why without quoting it.

    The description goes into the `error_description` of the challenge
    (RFC 6750 §3), so it holds no double quote or backslash.
    """

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description


class KeysUnavailable(Exception):
    """The issuer's JWK Set cannot be obtained and none is cached."""


def _check_url(key: str, value: Any) -> str:
    # OpenID Connect Discovery 1.0 §3: the issuer is an https URL. Plain http
    # is accepted for loopback only, where a test or local issuer runs.
    if not isinstance(value, str) or not value:
        raise ConfigError(key, value, "must be a URL such as https://login.example.org")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(key, value, "must be an https URL")
    if parts.query or parts.fragment:
        raise ConfigError(key, value, "must have no query or fragment")
    if parts.scheme == "http" and not is_loopback_address(parts.hostname):
        raise ConfigError(
            key, value, "must be https; plain http is allowed for loopback only"
        )
    return value


def parse_jwks(data: Any) -> dict[str | None, list[jwt.PyJWK]]:
    """The usable signing keys of a JWK Set, by key id (None when it has none).

    Keys that are not for signatures (RFC 7517 §4.2 `use`), not RSA or EC
    P-256, or that do not parse are skipped: one odd key must not stop the rest.
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK Set: expected a JSON object with a 'keys' list")
    keys: dict[str | None, list[jwt.PyJWK]] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ALGORITHMS.values():
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        if key.algorithm_name not in ALGORITHMS:
            continue
        kid = entry.get("kid")
        keys.setdefault(kid if isinstance(kid, str) else None, []).append(key)
    return keys


class JwksCache:
    """The issuer's signing keys, fetched once, refreshed after `JWKS_TTL`,
    and refetched on an unknown key id at most every `KID_REFETCH_INTERVAL`.

    Thread-safe: the authorizer runs in a worker thread, so a fetch never
    blocks the event loop. A failed refresh keeps the keys already held.
    """

    def __init__(
        self,
        fetch: Callable[[], dict[str | None, list[jwt.PyJWK]]],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, list[jwt.PyJWK]] | None = None
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")
        self._kid_refetched_at = float("-inf")

    def refresh(self) -> None:
        """Fetch now; on failure log it and keep the keys already held."""
        try:
            keys = self._fetch()
        except (OSError, ValueError, httpx.HTTPError) as exc:
            self._failed_at = self._clock()
            logger.warning("cannot fetch the issuer's signing keys: %s", exc)
            return
        self._keys = keys
        self._fetched_at = self._clock()

    def keys_for(self, kid: str | None) -> list[jwt.PyJWK]:
        """The keys a token naming `kid` may be signed with ([] if none)."""
        with self._lock:
            now = self._clock()
            if self._keys is None or now - self._fetched_at >= JWKS_TTL:
                if now - self._failed_at >= FAILED_FETCH_RETRY:
                    self.refresh()
            if self._keys is None:
                raise KeysUnavailable("the issuer's signing keys cannot be fetched")

            found = self._match(kid)
            if found or now - self._kid_refetched_at < KID_REFETCH_INTERVAL:
                return found

            # An unknown kid: the issuer may have rotated its keys (OpenID
            # Connect Core 1.0 §10.1.1), so the set is fetched again.
            self._kid_refetched_at = now
            self.refresh()
            return self._match(kid)

    def _match(self, kid: str | None) -> list[jwt.PyJWK]:
        assert self._keys is not None
        if kid is not None:
            return list(self._keys.get(kid, []))

        # No kid: allowed when the set leaves no choice (RFC 7515 §4.1.4).
        every = [key for keys in self._keys.values() for key in keys]
        return every if len(every) == 1 else []


def _get_json(client: httpx.Client, url: str) -> Any:
    # The URL goes into the error: the log then says where the keys were sought.
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ValueError(f"GET {url}: {exc}") from None
    if response.status_code != 200:
        raise ValueError(f"GET {url} answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ValueError(f"GET {url} did not answer JSON") from None


def remote_jwks(
    issuer: str, jwks_uri: str | None
) -> Callable[[], dict[str | None, list[jwt.PyJWK]]]:
    """A fetch of the JWK Set at `jwks_uri`, or at the one the issuer's
    discovery document names."""

    def fetch() -> dict[str | None, list[jwt.PyJWK]]:
        with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            uri = jwks_uri
            if uri is None:
                # OpenID Connect Discovery 1.0 §4: the document lives under the
                # issuer; §4.3: its `issuer` must equal the one configured.
                discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
                document = _get_json(client, discovery)
                if not isinstance(document, dict):
                    raise ValueError(f"{discovery} is not a JSON object")
                if document.get("issuer") != issuer:
                    raise ValueError(f"{discovery} names another issuer")
                try:
                    uri = _check_url("jwks_uri", document.get("jwks_uri"))
                except ConfigError as exc:
                    raise ValueError(f"{discovery}: {exc}") from None
            return parse_jwks(_get_json(client, uri))

    return fetch


def file_jwks(path: Path) -> Callable[[], dict[str | None, list[jwt.PyJWK]]]:
    """A read of the JWK Set in `path`; read again on refresh, so replacing
    the file rotates the keys."""

    def fetch() -> dict[str | None, list[jwt.PyJWK]]:
        return parse_jwks(json.loads(path.read_text(encoding="utf-8")))

    return fetch


@dataclass
class Verified:
    """The claims of a token that passed every check."""

    claims: dict[str, Any]

    @property
    def subject(self) -> str:
        """`sub`, else `preferred_username`, cut to printable text for the log."""
        for name in ("sub", "preferred_username"):
            value = self.claims.get(name)
            if isinstance(value, str) and value:
                text = "".join(c if c.isprintable() else "?" for c in value)
                return text[:200]
        return "token-without-subject"

    def claim_values(self, path: str) -> list[str]:
        """The strings at claim `path`: a top-level name, else a dotted path
        into nested objects (``realm_access.roles``). A string is split on
        spaces (as the OAuth `scope` claim, RFC 8693 §4.2); a list gives its
        strings."""
        value: Any = self.claims.get(path)
        if value is None:
            value = self.claims
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [item for item in value if isinstance(item, str)]
        return []


class TokenVerifier:
    """Checks access tokens of one issuer for one audience."""

    def __init__(
        self,
        issuer: str,
        audience: list[str],
        keys: JwksCache,
        leeway: float = 30,
    ):
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.leeway = leeway

    def verify(self, token: str) -> Verified:
        """The token's claims; raises TokenRejected or KeysUnavailable."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the bearer token is not a well-formed JWT") from None

        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRejected(
                "the token is signed with an algorithm this server refuses; "
                "it accepts RS256 and ES256"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("the token header's kid is not a string")
        candidates = [k for k in self.keys.keys_for(kid) if k.algorithm_name == alg]
        if not candidates:
            raise TokenRejected(
                "no signing key of the issuer matches the token's kid and alg; "
                "get a new token from the issuer"
            )

        last: TokenRejected | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[alg],
                    audience=self.audience,
                    issuer=self.issuer,
                    leeway=self.leeway,
                    options={"require": ["exp", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError:
                last = TokenRejected(
                    "the token's signature does not verify with the issuer's keys"
                )
                continue
            except jwt.PyJWTError as exc:
                raise TokenRejected(_describe(exc, self.audience)) from None
            return Verified(claims)
        assert last is not None
        raise last


def _describe(exc: jwt.PyJWTError, audience: list[str]) -> str:
    # What was wrong, in the server's words: claim values are never echoed.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired (exp); get a new one from the issuer"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet (nbf or iat lies in the future)"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the token is not meant for this server: aud must name {audience[0]}"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token was issued by another issuer than this server trusts"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the {exc.claim} claim"
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return "the token's iat claim is not a number"
    return "the token is not a valid JWT"


def verifier_from_settings(raw: dict[str, Any]) -> TokenVerifier | None:
    """The verifier the OpenID Connect keys of ``[auth]`` ask for, or None when
    `issuer` is unset. Raises ConfigError naming the key and the rule."""
    oidc_keys = ("audience", "jwks_uri", "jwks_file", "leeway_seconds")
    if raw.get("issuer") is None:
        for key in (*oidc_keys, "roles_claim", "role_map"):
            if key in raw:
                raise ConfigError(
                    f"auth.{key}", raw[key], "needs auth.issuer (OpenID Connect)"
                )
        return None
    issuer = _check_url("auth.issuer", raw["issuer"])

    audience = raw.get("audience")
    if isinstance(audience, str):
        audience = [audience]
    if (
        not isinstance(audience, list)
        or not audience
        or not all(isinstance(a, str) and a for a in audience)
    ):
        raise ConfigError(
            "auth.audience",
            audience,
            "must name this server as tokens carry it in aud, e.g. \"dicomhub\" "
            "or a list of such names",
        )

    leeway = raw.get("leeway_seconds", 30)
    if (
        isinstance(leeway, bool)
        or not isinstance(leeway, int | float)
        or not 0 <= leeway <= MAX_LEEWAY
    ):
        raise ConfigError(
            "auth.leeway_seconds",
            leeway,
            f"must be a number of seconds from 0 to {MAX_LEEWAY}",
        )

    jwks_uri, jwks_file = raw.get("jwks_uri"), raw.get("jwks_file")
    if jwks_uri is not None and jwks_file is not None:
        raise ConfigError("auth.jwks_file", jwks_file, "give jwks_uri or jwks_file")
    if jwks_file is not None:
        if not isinstance(jwks_file, str) or not jwks_file:
            raise ConfigError("auth.jwks_file", jwks_file, "must be a file path")
        fetch = file_jwks(Path(jwks_file))
        try:
            if not fetch():
                raise ValueError("it holds no RS256 or ES256 signing key")
        except (OSError, ValueError) as exc:
            raise ConfigError("auth.jwks_file", jwks_file, str(exc)) from None
    else:
        if jwks_uri is not None:
            jwks_uri = _check_url("auth.jwks_uri", jwks_uri)
        fetch = remote_jwks(issuer, jwks_uri)

    keys = JwksCache(fetch)
    # The first fetch happens now, before requests come; if the issuer does
    # not answer yet, the first token fetches again.
    keys.refresh()
    return TokenVerifier(issuer, audience, keys, float(leeway))
