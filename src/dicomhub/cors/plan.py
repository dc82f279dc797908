"""A policy compiled into ready-made header lists and one preflight decision.

Everything that does not depend on the request is computed once per policy,
so that CORS costs an actual request one set lookup and a list copy. The
preflight decision is a pure function of the request's CORS headers; the
middleware and the ``cors check`` diagnostics can share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .policy import TOKEN, CorsPolicy

Header = tuple[bytes, bytes]

ACAO = b"access-control-allow-origin"
ACAC = b"access-control-allow-credentials"
ACAM = b"access-control-allow-methods"
ACAH = b"access-control-allow-headers"
ACMA = b"access-control-max-age"
ACEH = b"access-control-expose-headers"
ACAPN = b"access-control-allow-private-network"

# D13: the response headers the CORS layer owns; an inner layer's are dropped.
OWNED = frozenset({ACAO, ACAC, ACAM, ACAH, ACMA, ACEH, ACAPN})

# D6: names browsers list in ACRH only when the value is not safelisted
# (Fetch, "CORS-safelisted request-header"); DICOMweb needs exactly those
# values: the quoted multipart Accept, STOW-RS Content-Type, suffix Range.
SAFELISTED_NAMES = frozenset(
    {"accept", "accept-language", "content-language", "content-type", "range"}
)

# D11: what a preflight answer depends on.
PREFLIGHT_VARY = (
    b"Origin",
    b"Access-Control-Request-Method",
    b"Access-Control-Request-Headers",
)
PNA_VARY = b"Access-Control-Request-Private-Network"

_SPLIT = re.compile(r"[ \t]*,[ \t]*")

Check = Literal["origin", "method", "headers"]


@dataclass(frozen=True, slots=True)
class PreflightAnswer:
    """The outcome of a preflight: headers to send, or the check that failed."""

    allowed: bool
    headers: list[Header] = field(default_factory=list)
    check: Check | None = None
    reason: str = ""


class CorsPlan:
    """The precomputed form of one CorsPolicy (never changes after creation)."""

    def __init__(self, policy: CorsPolicy):
        self.policy = policy
        self.any_origin = policy.any_origin
        self.origins = frozenset(o.encode("ascii") for o in policy.origins)

        # Headers of every answer to an allowed origin, after ACAO (D7, D16).
        shared: list[Header] = []
        if policy.allow_credentials:
            shared.append((ACAC, b"true"))
        self._preflight_shared = list(shared)
        if policy.expose_headers:
            shared.append((ACEH, ", ".join(policy.expose_headers).encode("ascii")))

        # D3: with "*" the answer does not depend on Origin, so it is the same
        # for every request and needs no Vary. D4: in list mode ACAO is echoed,
        # so every answer varies on Origin, allowed or not (docs/cors.md, D4).
        self.actual_vary: tuple[bytes, ...] = ()
        self._actual_any: list[Header] = []
        if self.any_origin:
            self._actual_any = [(ACAO, b"*"), *shared]
        elif policy.enabled:
            self.actual_vary = (b"Origin",)
        self._actual_shared = shared

        # The preflight's static part (D5, D8); ACAH is echoed per request.
        self.methods = frozenset(policy.allowed_methods)
        self._acam = (ACAM, ", ".join(policy.allowed_methods).encode("ascii"))
        self._acma = (
            None
            if policy.max_age is None
            else (ACMA, str(policy.max_age).encode("ascii"))
        )
        self.any_header = policy.any_header
        self.header_names = SAFELISTED_NAMES | frozenset(policy.headers)
        self.preflight_vary = PREFLIGHT_VARY + (
            (PNA_VARY,) if policy.allow_private_network else ()
        )
        self.preflight_vary_header = (b"vary", b", ".join(self.preflight_vary))

    def origin_allowed(self, origin: bytes | None) -> bool:
        """D4, D12: exact match against the normalised list; `null` never is."""
        if self.any_origin:
            return True
        return origin is not None and origin in self.origins

    def actual_headers(self, origin: bytes | None) -> list[Header]:
        """The CORS headers of a non-preflight answer (D3, D4, D7, D9, D15)."""
        if self.any_origin:
            return self._actual_any
        if origin is not None and origin in self.origins:
            return [(ACAO, origin), *self._actual_shared]
        return []

    def preflight(
        self,
        origin: bytes,
        request_method: bytes,
        request_headers: list[bytes],
        private_network: bool = False,
    ) -> PreflightAnswer:
        """Decide a preflight (Fetch, "CORS-preflight fetch"; D5, D6, D14).

        `request_headers` are the raw ACRH field values, one per field line.
        """
        if not self.policy.enabled:
            return _refuse("origin", "CORS is off: the [cors] table sets no origins")
        if not self.origin_allowed(origin):
            shown = origin.decode("latin-1")[:200]
            return _refuse("origin", f"origin {shown!r} is not allowed (cors.origins)")

        # D5: exactly one method token, matched case-sensitively; a list such
        # as "GET, DELETE" is refused, never echoed (cors-13).
        method = request_method.decode("latin-1")
        if not TOKEN.fullmatch(method):
            return _refuse(
                "method",
                f"Access-Control-Request-Method {method[:100]!r} is not one method",
            )
        if method not in self.methods:
            return _refuse("method", f"method {method!r} is not allowed (cors.methods)")

        # D6: every field line, split on commas, trimmed, empty items dropped,
        # lower-cased; every item must be a token and allowed.
        names: dict[str, None] = {}
        for line in request_headers:
            for item in _SPLIT.split(line.decode("latin-1").strip(" \t")):
                if not item:
                    continue
                # "*" is a token, but echoed back it would become the
                # wildcard that D5 never sends; no real header has that name.
                if not TOKEN.fullmatch(item) or item == "*":
                    return _refuse(
                        "headers",
                        f"Access-Control-Request-Headers item {item[:100]!r} is not "
                        "a header name",
                    )
                names[item.lower()] = None
        if not self.any_header:
            for name in names:
                if name not in self.header_names:
                    return _refuse(
                        "headers", f"header {name!r} is not allowed (cors.headers)"
                    )

        # Allowed: ACAO (echoed in list mode, "*" otherwise; never with
        # credentials, which "*" origins exclude), then the rest.
        headers: list[Header] = [(ACAO, b"*" if self.any_origin else origin)]
        headers += self._preflight_shared
        headers.append(self._acam)
        if names:
            # Echo the checked, lower-cased names, never the raw field
            # (docs/cors.md, D6).
            headers.append((ACAH, ", ".join(names).encode("latin-1")))
        if self._acma is not None:
            headers.append(self._acma)
        if private_network and self.policy.allow_private_network:
            headers.append((ACAPN, b"true"))
        return PreflightAnswer(allowed=True, headers=headers)


def _refuse(check: Check, reason: str) -> PreflightAnswer:
    return PreflightAnswer(allowed=False, check=check, reason=reason)
