"""The one place where requests are authorised.

Every request that reaches routing passes `AuthorizationMiddleware`, which maps
it to an action of the Azure DICOM service's data roles (read, write, delete)
or to admin, and asks the configured `Authorizer`: open access, or bearer
tokens (API keys, OpenID Connect access tokens) whose roles grant actions.
Preflights never get here:
the CORS layer answers them first, since they carry no credentials (Fetch,
#cors-protocol-and-credentials).
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from . import audit
from .audit import SUBJECT
from .config import ConfigError
from .errors import DicomhubError, Forbidden, ServiceUnavailable, Unauthorized
from .oidc import (
    KeysUnavailable,
    TokenRejected,
    TokenVerifier,
    looks_like_jwt,
    verifier_from_settings,
)


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"
    PUBLIC = "public"


def action_for(method: str, path: str) -> Action:
    # The admin page's files hold no data; the API calls they make are checked.
    # "/admin" is redirected to the page ("/admin/").
    if path in ("/health", "/admin", "/admin/") or path.startswith("/admin/static/"):
        return Action.PUBLIC
    if path.startswith("/admin"):
        return Action.ADMIN
    if method in ("POST", "PUT"):
        return Action.WRITE
    if method == "DELETE":
        return Action.DELETE
    return Action.READ


# The longest bearer token looked at (access tokens with many roles are a few
# kilobytes).
MAX_TOKEN_LENGTH = 16 * 1024


class Authorizer(Protocol):
    """Decides one request. One that may block (fetch a JWK Set) sets a true
    `blocking` attribute, and the middleware then calls it from a thread."""

    def authorize(self, request: Request, action: Action) -> None:
        """Return if allowed; raise Unauthorized (401) or Forbidden (403)."""


class OpenAccess:
    """No authentication: every request may do everything. The server listens
    on loopback by default for that reason."""

    def authorize(self, request: Request, action: Action) -> None:
        return None


class Role(enum.Enum):
    """dicomhub's roles, after the Azure DICOM service's data roles: "DICOM
    Data Reader" reads, "DICOM Data Owner" reads, writes and deletes (here the
    reader, writer and deleter roles together). admin manages the settings
    (CORS) and may read, to see the data the settings act on."""

    READER = "reader"
    WRITER = "writer"
    DELETER = "deleter"
    ADMIN = "admin"


GRANTS: dict[Role, frozenset[Action]] = {
    Role.READER: frozenset({Action.READ}),
    Role.WRITER: frozenset({Action.WRITE}),
    Role.DELETER: frozenset({Action.DELETE}),
    Role.ADMIN: frozenset({Action.ADMIN, Action.READ}),
}
ALL_ROLES = frozenset(Role)
ROLE_NAMES = ", ".join(role.value for role in Role)

_VERBS = {
    Action.READ: "reading (QIDO-RS, WADO-RS)",
    Action.WRITE: "storing (STOW-RS)",
    Action.DELETE: "deleting",
    Action.ADMIN: "the admin API",
}


def _challenge(error: str | None = None, description: str | None = None) -> str:
    # RFC 6750 §3: auth-params after the scheme; error_description holds no
    # double quote or backslash (§3, error_description syntax).
    value = 'Bearer realm="dicomhub"'
    if error:
        value += f', error="{error}"'
    if description:
        # %x20-21 / %x23-5B / %x5D-7E only: no quote, backslash or non-ASCII.
        text = "".join(
            c if " " <= c <= "~" and c not in '"\\' else "'" for c in description
        )
        value += f', error_description="{text}"'
    return value


def _invalid_token(description: str) -> Unauthorized:
    return Unauthorized(
        description,
        headers={"WWW-Authenticate": _challenge("invalid_token", description)},
    )


def _require(roles: frozenset[Role], action: Action) -> None:
    if any(action in GRANTS[role] for role in roles):
        return

    # RFC 6750 §3.1: authenticated, but the token does not carry enough.
    needed = " or ".join(f"'{r.value}'" for r in Role if action in GRANTS[r])
    description = f"{_VERBS[action]} needs the role {needed}"
    raise Forbidden(
        f"{description}; ask the administrator of the identity provider or of "
        "this server to grant it",
        headers={
            "WWW-Authenticate": _challenge("insufficient_scope", description),
        },
    )


@dataclass(frozen=True)
class ApiKey:
    name: str
    key: bytes
    roles: frozenset[Role] = ALL_ROLES


class BearerTokens:
    """Bearer tokens (RFC 6750 §2.1): static API keys, OpenID Connect access
    tokens (JWTs checked by `oidc.TokenVerifier`), or both.

    With both on, a token shaped as a JWT (three base64url parts) is an access
    token; anything else is an API key. Keys are compared in constant time.
    The roles of an access token come from its `roles_claim`, through
    `role_map` (dicomhub role -> claim values that grant it).
    """

    def __init__(
        self,
        keys: list[ApiKey],
        verifier: TokenVerifier | None = None,
        roles_claim: str = "roles",
        role_map: dict[Role, frozenset[str]] | None = None,
    ):
        self._keys = keys
        self._verifier = verifier
        self._roles_claim = roles_claim
        self._role_map = role_map or {role: frozenset({role.value}) for role in Role}
        # A JWK Set fetch blocks; the middleware then calls from a thread.
        self.blocking = verifier is not None

    def authorize(self, request: Request, action: Action) -> None:
        if action is Action.PUBLIC:
            return

        # RFC 6750 §3: a missing token gets a bare challenge; a wrong one says
        # invalid_token, so a browser app knows to fetch a new one.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not scheme:
            raise Unauthorized(
                self._missing(), headers={"WWW-Authenticate": _challenge()}
            )
        if scheme.lower() != "bearer":
            raise _invalid_token("send the token as 'Authorization: Bearer <token>'")

        token = token.strip()
        if len(token) > MAX_TOKEN_LENGTH:
            # Refused before any parsing: a JWT is a few kilobytes at most.
            raise _invalid_token(
                f"the bearer token is longer than {MAX_TOKEN_LENGTH} characters, "
                "the limit; send the access token or API key alone"
            )
        if self._verifier is not None and (not self._keys or looks_like_jwt(token)):
            name, roles = self._from_access_token(self._verifier, token)
        else:
            name, roles = self._from_api_key(token)
        request.scope[SUBJECT] = name
        _require(roles, action)

    def _missing(self) -> str:
        if self._verifier is None:
            return "this server needs an API key: send 'Authorization: Bearer <key>'"
        also = " (or an API key)" if self._keys else ""
        return (
            f"this server needs an access token from {self._verifier.issuer}{also}: "
            "send 'Authorization: Bearer <token>'"
        )

    def _from_api_key(self, token: str) -> tuple[str, frozenset[Role]]:
        given = token.encode()
        found: ApiKey | None = None
        for api_key in self._keys:
            # Every key is compared, so the time taken names none of them.
            if hmac.compare_digest(given, api_key.key) and found is None:
                found = api_key
        if found is None:
            raise _invalid_token(
                "the bearer token is not a valid API key of this server"
            )
        return found.name, found.roles

    def _from_access_token(
        self, verifier: TokenVerifier, token: str
    ) -> tuple[str, frozenset[Role]]:
        try:
            verified = verifier.verify(token)
        except TokenRejected as exc:
            raise _invalid_token(exc.description) from None
        except KeysUnavailable:
            raise ServiceUnavailable(
                "the identity provider's signing keys cannot be fetched, so no "
                "token can be checked; try again shortly",
                headers={"Retry-After": "30"},
            ) from None

        values = set(verified.claim_values(self._roles_claim))
        roles = frozenset(
            role for role, granted in self._role_map.items() if granted & values
        )
        return verified.subject, roles



def _roles_of(key: str, value: Any) -> frozenset[Role]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(key, value, f"must be a list of roles from {ROLE_NAMES}")
    roles = set()
    for item in value:
        try:
            roles.add(Role(item))
        except ValueError:
            raise ConfigError(
                key, item, f"unknown role; expected one of {ROLE_NAMES}"
            ) from None
    return frozenset(roles)


def _api_keys(given: Any) -> list[ApiKey]:
    if isinstance(given, list):
        given = {f"key-{number}": key for number, key in enumerate(given, 1)}
    if not isinstance(given, dict):
        raise ConfigError("auth.api_keys", "...", "must be a table or a list of keys")

    keys = []
    for name, entry in given.items():
        roles = ALL_ROLES
        key = entry
        if isinstance(entry, dict):
            for field_name in entry:
                if field_name not in ("key", "roles"):
                    raise ConfigError(
                        f"auth.api_keys.{name}.{field_name}",
                        "(hidden)",
                        "unknown key; expected key and roles",
                    )
            key = entry.get("key")
            if "roles" in entry:
                roles = _roles_of(f"auth.api_keys.{name}.roles", entry["roles"])
        # The value is never echoed: it is a secret.
        if not isinstance(key, str) or len(key) < 16 or not key.isprintable():
            raise ConfigError(
                f"auth.api_keys.{name}",
                "(hidden)",
                "a key must be text of at least 16 printable characters",
            )
        if " " in key:
            raise ConfigError(f"auth.api_keys.{name}", "(hidden)", "no spaces in a key")
        keys.append(ApiKey(str(name), key.encode(), roles))
    return keys


def _role_map(raw: dict[str, Any]) -> dict[Role, frozenset[str]]:
    given = raw.get("role_map")
    if given is None:
        return {role: frozenset({role.value}) for role in Role}
    if not isinstance(given, dict):
        raise ConfigError(
            "auth.role_map",
            given,
            f"must be a table of dicomhub role ({ROLE_NAMES}) = list of claim values",
        )

    # A role left out is granted by no token: the table says all there is.
    mapped: dict[Role, frozenset[str]] = {}
    for name, values in given.items():
        try:
            role = Role(name)
        except ValueError:
            raise ConfigError(
                f"auth.role_map.{name}", values, f"unknown role; expected {ROLE_NAMES}"
            ) from None
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v for v in values
        ):
            raise ConfigError(
                f"auth.role_map.{name}", values, "must be a list of claim values"
            )
        mapped[role] = frozenset(values)
    return mapped


AUTH_KEYS = (
    "api_keys",
    "issuer",
    "audience",
    "jwks_uri",
    "jwks_file",
    "roles_claim",
    "role_map",
    "leeway_seconds",
)


def authorizer_from_settings(raw: dict[str, Any]) -> Authorizer:
    """The authorizer the ``[auth]`` table asks for; OpenAccess when empty.

    ``api_keys`` is a table of name = key (every role), of name = {key, roles},
    or a list of keys (named key-1, ...). ``issuer`` turns on OpenID Connect
    access tokens (`oidc.verifier_from_settings`). Both may be on at once.
    """
    for name in raw:
        if name not in AUTH_KEYS:
            raise ConfigError(
                f"auth.{name}",
                raw[name],
                f"unknown key; expected one of {', '.join(AUTH_KEYS)}",
            )

    roles_claim = raw.get("roles_claim", "roles")
    if not isinstance(roles_claim, str) or not all(roles_claim.split(".")):
        raise ConfigError(
            "auth.roles_claim",
            roles_claim,
            "must be a claim name or a dotted path such as realm_access.roles",
        )
    role_map = _role_map(raw)
    verifier = verifier_from_settings(raw)

    given = raw.get("api_keys")
    keys = _api_keys(given) if given else []
    for api_key in keys:
        # With an issuer, a JWT-shaped bearer token goes to OpenID Connect, so
        # such a key could never be used.
        if verifier is not None and looks_like_jwt(api_key.key.decode()):
            raise ConfigError(
                f"auth.api_keys.{api_key.name}",
                "(hidden)",
                "has the shape of a JWT (three parts joined by dots), which "
                "this server reads as an access token while auth.issuer is "
                "set; choose a key with fewer dots",
            )
    if verifier is None and not keys:
        return OpenAccess()
    return BearerTokens(keys, verifier, roles_claim, role_map)


class AuthorizationMiddleware:
    def __init__(self, app: ASGIApp, authorizer: Authorizer):
        self.app = app
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request = Request(scope)
        action = action_for(request.method, scope["path"])
        try:
            # An authorizer that may fetch over the network (a JWK Set) says
            # so with `blocking`; it then runs in a worker thread, off the loop.
            if getattr(self.authorizer, "blocking", False):
                await run_in_threadpool(self.authorizer.authorize, request, action)
            else:
                self.authorizer.authorize(request, action)
        except DicomhubError as exc:
            if action in (Action.ADMIN, Action.WRITE, Action.DELETE):
                # Every refused settings change, store or delete is audited,
                # guesses included; refused reads are in the access log.
                audit.refused(request, exc.status, exc.message)
            response = PlainTextResponse(
                exc.message, status_code=exc.status, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
