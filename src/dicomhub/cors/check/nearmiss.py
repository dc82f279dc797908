"""Near-misses of an origin: the listed origin a refused one nearly matches.

Browsers compare origins byte for byte (docs/cors.md D4), so a viewer whose
origin is written a little differently in the settings is refused; naming the
listed origin and the difference tells the user what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..origin import DEFAULT_PORTS, OriginError, normalise_origin


def near_miss(origin: str, configured: Sequence[str]) -> tuple[str, str] | None:
    """The configured origin that `origin` nearly matches, and how it differs.

    Covers what makes viewers fail in practice: a trailing '/', upper case, a
    default port or a path written out, http against https, a missing or
    different port, localhost against 127.0.0.1, a subdomain.
    """
    listed = [c for c in configured if c != "*"]
    if not listed or origin in listed:
        return None

    browser = browser_form(origin)
    if browser is None:
        return None
    if browser in listed:
        differences = _written_differences(origin, browser)
        return browser, f"{', '.join(differences)}: browsers send {browser!r}"

    scheme, host, port = _parts(browser)
    for candidate in listed:
        c_scheme, c_host, c_port = _parts(candidate)
        how = _component_difference(
            (scheme, host, port), (c_scheme, c_host, c_port), browser, candidate
        )
        if how is not None:
            return candidate, how
    return None


def browser_form(origin: str) -> str | None:
    """The origin a browser on that page would send, or None when none fits."""
    try:
        return normalise_origin(origin)
    except OriginError:
        pass

    # A page address pasted instead of the origin: keep scheme://authority.
    scheme, separator, rest = origin.strip().partition("://")
    if not separator:
        return None
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    try:
        return normalise_origin(f"{scheme}://{authority}")
    except OriginError:
        return None


def _written_differences(origin: str, browser: str) -> list[str]:
    """How `origin` is written differently from the form browsers send."""
    text = origin.strip()
    scheme, _, rest = text.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(authority) :]

    differences = []
    if text != origin:
        differences.append("spaces around it")
    if tail == "/":
        differences.append("a trailing '/'")
    elif tail:
        differences.append("a path")
    if scheme + authority != (scheme + authority).lower():
        differences.append("upper-case letters")
    if re.search(r":\d+$", authority) and not re.search(r":\d+$", browser):
        differences.append("the default port written out")
    return differences or ["written differently"]


def _parts(origin: str) -> tuple[str, str, int]:
    """Scheme, host and port (the default one when none is written)."""
    scheme, _, authority = origin.partition("://")
    if authority.startswith("["):
        host, _, after = authority.partition("]")
        host += "]"
        port_text = after[1:]
    else:
        host, _, port_text = authority.partition(":")
    port = int(port_text) if port_text else DEFAULT_PORTS.get(scheme, 0)
    return scheme, host, port


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})


def _component_difference(
    given: tuple[str, str, int],
    listed: tuple[str, str, int],
    browser: str,
    candidate: str,
) -> str | None:
    scheme, host, port = given
    c_scheme, c_host, c_port = listed
    default = DEFAULT_PORTS.get(scheme) == port
    c_default = DEFAULT_PORTS.get(c_scheme) == c_port

    if host == c_host:
        if scheme != c_scheme:
            how = f"{scheme} instead of {c_scheme}"
            if port != c_port and not (default and c_default):
                how += f", {_port_words(port, default, c_port, c_default)}"
            return how
        if port != c_port:
            return _port_words(port, default, c_port, c_default)
        return None

    if scheme != c_scheme or port != c_port:
        return None
    if host in _LOOPBACK and c_host in _LOOPBACK:
        return (
            f"{host} and {c_host} name the same machine but are different "
            "origins to a browser"
        )
    if host.endswith("." + c_host) or c_host.endswith("." + host):
        return "another host name: a site and its subdomains are different origins"
    return None


def _port_words(port: int, default: bool, c_port: int, c_default: bool) -> str:
    if default and not c_default:
        return f"no port, where the listed origin has :{c_port}"
    if c_default and not default:
        return f"port :{port}, which the listed origin does not have"
    return f"port :{port} instead of :{c_port}"
