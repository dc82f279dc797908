"""Configured origins, brought into the form browsers send them in.

A browser serialises an origin as ``scheme://host[:port]``: scheme and host in
lower case, an IDN host as punycode, no default port, no path and no trailing
slash; an opaque origin is the literal ``null`` (Fetch, "Origin header").
The request's ``Origin`` is later compared with the configured entries by
exact string equality (docs/cors.md, D4), so every entry is normalised once,
here, when the settings load.

IDN hosts are converted with UTS #46 non-transitional processing, as the
WHATWG URL standard (and so every browser) does: ``straße`` stays distinct
from ``strasse``, and a name UTS #46 refuses is refused here too.
"""

from __future__ import annotations

import ipaddress
import re

import idna

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")

# Host names as browsers send them after punycode: LDH labels (RFC 1123), plus
# the underscore some internal names carry.
_ASCII_HOST = re.compile(r"[a-z0-9_\-]+(\.[a-z0-9_\-]+)*\.?")

DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginError(ValueError):
    """An entry that is not an origin; the message is the rule it breaks."""


def normalise_origin(text: str) -> str:
    """Return `text` as a browser would serialise the origin, or raise OriginError.

    Lower-cases scheme and host, converts an IDN host to punycode, compresses
    an IPv6 address, drops the scheme's default port and one trailing ``/``.
    Refuses ``null``, wildcards, userinfo, a path, a query and a fragment.
    """
    if text == "":
        raise OriginError("an empty string is not an origin")
    if text.strip().lower() == "null":
        raise OriginError(
            "'null' is the origin of sandboxed frames and data: documents, which "
            "any web page can create; allowing it would allow everyone "
            "(docs/cors.md, D12)"
        )
    if "*" in text:
        raise OriginError(
            "wildcards inside an origin are not supported; list each origin, "
            'or use origins = ["*"] alone'
        )

    scheme, separator, rest = text.strip().partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise OriginError(
            "an origin is scheme://host[:port], for example https://viewer.example.org"
        )
    scheme = scheme.lower()

    # Split the authority from whatever follows it; only one "/" may follow.
    end = min((rest.find(c) for c in "/?#" if c in rest), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "?" in tail:
        raise OriginError("an origin has no query ('?...'); use scheme://host[:port]")
    if "#" in tail:
        raise OriginError(
            "an origin has no fragment ('#...'); use scheme://host[:port]"
        )
    if tail not in ("", "/"):
        raise OriginError(
            "an origin has no path: browsers send only scheme://host[:port], so "
            "an entry with a path would never match"
        )
    if "@" in authority:
        raise OriginError("an origin has no user name or password ('user@')")

    host, port = _split_port(authority)
    host = _normalise_host(host)
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _split_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        host, bracket, after = authority.partition("]")
        if not bracket:
            raise OriginError("an IPv6 host needs its closing ']'")
        host += "]"
        if after and not after.startswith(":"):
            raise OriginError("only ':port' may follow an IPv6 host")
        port_text = after[1:] if after else ""
    elif authority.count(":") > 1:
        raise OriginError("an IPv6 host must be written in brackets, as [::1]")
    else:
        host, _, port_text = authority.partition(":")

    if port_text == "":
        return host, None
    if not port_text.isascii() or not port_text.isdigit():
        raise OriginError(f"port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise OriginError(f"port {port} is above 65535")
    return host, port


def _normalise_host(host: str) -> str:
    if host == "":
        raise OriginError("an origin needs a host")

    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise OriginError(f"{host} is not an IPv6 address") from None
        return f"[{_serialise_ipv6(address)}]"

    host = host.lower()
    if not host.isascii() or "xn--" in host:
        # Browsers send internationalised host names as punycode (xn--...),
        # made by UTS #46 non-transitional processing (WHATWG URL, host parser).
        try:
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            raise OriginError(f"host {host!r} is not a valid domain name") from None
    if not _ASCII_HOST.fullmatch(host):
        raise OriginError(f"host {host!r} is not a valid host name")
    if _looks_numeric(host):
        # The URL standard reads a last label of digits (or 0x...) as IPv4 and
        # browsers then send the dotted-quad form; anything else never matches.
        address = _parse_ipv4(host)
        if address is None:
            raise OriginError(
                f"host {host!r} is not an IPv4 address in dotted-quad form "
                "(browsers send e.g. 127.0.0.1)"
            )
        if address != host:
            raise OriginError(f"write the IPv4 host {host!r} as {address}")
    return host


def _parse_ipv4(host: str) -> str | None:
    """The WHATWG URL IPv4 parser: 1 to 4 parts, each decimal, 0x-hex or
    0-octal, the last filling the remaining bytes; None when invalid."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None

    numbers = []
    for part in parts:
        try:
            if part[:2] in ("0x", "0X"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part[1:], 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None

    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _looks_numeric(host: str) -> bool:
    """True when the URL standard would parse `host` as an IPv4 address."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return last.isdigit() or (last.startswith("0x") and len(last) >= 2)


def _serialise_ipv6(address: ipaddress.IPv6Address) -> str:
    """WHATWG URL's IPv6 serialiser: hex groups, the first longest run of two
    or more zero groups written as ``::`` (never the dotted IPv4 form that
    newer Pythons print for IPv4-mapped addresses)."""
    groups = [int.from_bytes(address.packed[i : i + 2]) for i in range(0, 16, 2)]

    start, length = -1, 1
    run_start, run_length = -1, 0
    for i, group in enumerate(groups + [1]):
        if group == 0:
            run_start, run_length = (
                (i, 1) if run_length == 0 else (run_start, run_length + 1)
            )
            continue
        if run_length > length:
            start, length = run_start, run_length
        run_length = 0

    text = [f"{g:x}" for g in groups]
    if start < 0:
        return ":".join(text)
    return ":".join(text[:start]) + "::" + ":".join(text[start + length :])
