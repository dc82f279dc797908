"""The request a browser would send, as ``dicomhub cors check`` models it.

`BrowserRequest` holds the origin as given, the method after Fetch's
normalisation, the header names the browser lists in
Access-Control-Request-Headers and whether it adds credentials;
`browser_request` builds one from the command's options and raises
`CheckUsageError` for what no browser would send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..origin import OriginError, normalise_origin
from ..policy import TOKEN

# Fetch, "CORS-safelisted method": sent without a preflight when no
# non-safelisted header comes with them.
SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})

# Fetch, "normalize a method": only these are upper-cased by the browser; a
# script's "patch" stays "patch" and is compared case-sensitively (D5).
NORMALISED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})

# Fetch, "forbidden request-header": the browser sets these itself, a script
# cannot, so they never appear in Access-Control-Request-Headers.
FORBIDDEN_NAMES = frozenset(
    {
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "access-control-request-private-network",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
    }
)
FORBIDDEN_PREFIXES = ("proxy-", "sec-")


class CheckUsageError(ValueError):
    """The command's input cannot be checked; the message says what to give."""


@dataclass(frozen=True, slots=True)
class BrowserRequest:
    """What a browser on `origin` sends: the method after Fetch's normalisation,
    the names it lists in ACRH (lower case, sorted, unique) and whether it adds
    credentials (cookies, HTTP authentication)."""

    origin: str
    method: str = "GET"
    headers: tuple[str, ...] = ()
    credentials: bool = False

    @property
    def needs_preflight(self) -> bool:
        """Fetch, "CORS-preflight fetch" is needed for an unsafe method or header."""
        return self.method not in SAFELISTED_METHODS or bool(self.headers)

    @property
    def acrh(self) -> str:
        """Access-Control-Request-Headers as browsers write it."""
        return ",".join(self.headers)


def browser_request(
    origin: str,
    method: str = "GET",
    headers: Sequence[str] = (),
    credentials: bool = False,
) -> BrowserRequest:
    """Build the request a browser would send; CheckUsageError when it cannot.

    `headers` are names as a browser lists them in ACRH, given one by one or
    comma-separated; `origin` is taken literally, as the browser's console
    shows it, so that a near-miss (trailing '/', upper case) can be explained.
    """
    if origin == "" or not origin.isascii() or not origin.isprintable():
        hint = ""
        try:
            hint = f", e.g. {normalise_origin(origin)}"
        except OriginError:
            pass
        raise CheckUsageError(
            f"--origin {origin!r}: give the origin as the browser sends it, "
            f"printable ASCII (punycode for international names){hint}"
        )

    # Fetch, "normalize a method": six names are upper-cased, others kept.
    if not TOKEN.fullmatch(method):
        raise CheckUsageError(f"--method {method!r}: expected one method, e.g. GET")
    if method.upper() in NORMALISED_METHODS:
        method = method.upper()

    names: set[str] = set()
    for given in headers:
        for item in given.split(","):
            name = item.strip(" \t").lower()
            if not name:
                continue
            names.add(_header_name(name))
    return BrowserRequest(origin, method, tuple(sorted(names)), credentials)


def _header_name(name: str) -> str:
    if ":" in name:
        # The value is not echoed: it may hold a token.
        raise CheckUsageError(
            "--header takes a header name only, e.g. --header authorization; "
            "the browser lists names, never values, in its preflight"
        )
    if not TOKEN.fullmatch(name) or name == "*":
        raise CheckUsageError(f"--header {name!r}: not a header name")
    if name == "cookie":
        raise CheckUsageError(
            "--header cookie: the browser adds cookies by itself and never lists "
            "them in a preflight; use --credentials for a request with cookies"
        )
    if name in FORBIDDEN_NAMES or name.startswith(FORBIDDEN_PREFIXES):
        raise CheckUsageError(
            f"--header {name!r}: scripts cannot set this header (Fetch, forbidden "
            "request-header), so a browser never lists it in a preflight"
        )
    return name
