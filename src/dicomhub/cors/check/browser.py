"""The checks a browser makes on the answers, in Fetch's order.

For a request that needs one, the preflight (Fetch #cors-preflight-fetch): an
ok status, the CORS check, then its methods and headers; then the answer to
the request itself (Fetch #cors-check: one Access-Control-Allow-Origin, and
Access-Control-Allow-Credentials ``true`` with credentials). The first failure
is the verdict; a pass says how long the browser caches the preflight.
"""

from __future__ import annotations

from ..policy import CHROMIUM_MAX_AGE, TOKEN
from .answer import Answer, Context, Finding, Verdict
from .findings import (
    CREDENTIALS_NOTE,
    PROXY_NOTE,
    header_finding,
    method_finding,
    refusal_finding,
    status_finding,
    unparsable,
)
from .request import SAFELISTED_METHODS, BrowserRequest, CheckUsageError

# Fetch, "Access-Control-Max-Age": a passed preflight without it is cached 5 s.
DEFAULT_MAX_AGE = 5


def judge(
    request: BrowserRequest,
    preflight: Answer,
    actual: Answer | None,
    context: Context,
) -> Verdict:
    """Fetch's order: the preflight when one is needed, then the answer's CORS
    check; the first failure is the verdict."""
    origin_refusal = (
        preflight.refusal
        if preflight.refusal is not None and preflight.refusal.check == "origin"
        else None
    )

    finding: Finding | None = None
    if request.needs_preflight:
        finding = _check_preflight(request, preflight, context)
        if finding is None and actual is not None:
            finding = _cors_check(request, actual, context)
    elif actual is not None:
        finding = _cors_check(request, actual, context)
        if finding is not None and origin_refusal is not None:
            # The preflight's reason says more than a missing header.
            finding = refusal_finding(origin_refusal, request, context)
    elif origin_refusal is not None:
        finding = refusal_finding(origin_refusal, request, context)
    elif preflight.ok:
        # A POST without non-safelisted headers, never sent: dicomhub decides
        # its origin as the preflight's, so the preflight's ACAO stands in.
        finding = _cors_check(request, preflight, context)
    elif preflight.refusal is None:
        raise CheckUsageError(
            f"cannot judge a {request.method} without sending it: the preflight "
            f"got {preflight.status}; check the origin with --method GET"
        )

    if finding is not None:
        return Verdict(False, finding.line, list(finding.notes))
    return _allowed(request, preflight)


def _allowed(request: BrowserRequest, preflight: Answer) -> Verdict:
    extras = []
    if request.credentials:
        extras.append("credentials")
    if request.headers:
        extras.append("headers " + ", ".join(request.headers))
    line = f"allowed: {request.origin} may {request.method}"
    if extras:
        line += " with " + " and ".join(extras)

    notes: list[str] = []
    if not request.needs_preflight:
        return Verdict(True, line + " (no preflight needed)", notes)

    max_age = _max_age(preflight)
    if max_age is None:
        line += (
            f" (preflight cached {DEFAULT_MAX_AGE} s, the browsers' default: no "
            "max age set)"
        )
    elif max_age == 0:
        line += " (preflight not cached: max age 0)"
    else:
        line += f" (preflight cached {max_age} s)"
        if max_age > 600:
            notes.append(
                f"browsers keep a preflight at most: Chromium {CHROMIUM_MAX_AGE} s, "
                "Firefox 86400 s, Safari 600 s"
            )
    return Verdict(True, line, notes)


def _max_age(answer: Answer) -> int | None:
    """Fetch: one ACMA of digits, else the default (5 s) applies."""
    values = answer.values("access-control-max-age")
    if len(values) != 1 or not values[0].strip(" \t").isdigit():
        return None
    return int(values[0].strip(" \t"))


def _check_preflight(
    request: BrowserRequest, answer: Answer, context: Context
) -> Finding | None:
    """Fetch, "CORS-preflight fetch": ok status, CORS check, methods, headers."""
    if answer.refusal is not None:
        return refusal_finding(answer.refusal, request, context)
    if not answer.ok:
        return status_finding(answer)

    finding = _cors_check(request, answer, context)
    if finding is not None:
        return finding

    methods = _list_values(answer, "access-control-allow-methods")
    if methods is None:
        return unparsable(answer, "access-control-allow-methods", "method names")
    if (
        request.method not in methods
        and request.method not in SAFELISTED_METHODS
        and (request.credentials or "*" not in methods)
    ):
        return method_finding(request, methods)

    names = _list_values(answer, "access-control-allow-headers")
    if names is None:
        return unparsable(answer, "access-control-allow-headers", "header names")
    allowed = {name.lower() for name in names}
    for name in request.headers:
        if name in allowed:
            continue
        # Fetch: '*' counts only without credentials and never for
        # Authorization (CORS non-wildcard request-header name).
        if "*" in allowed and not request.credentials and name != "authorization":
            continue
        return header_finding(request, name, allowed, context)
    return None


def _cors_check(
    request: BrowserRequest, answer: Answer, context: Context
) -> Finding | None:
    """Fetch, "CORS check": one ACAO, `*` or the origin; ACAC `true` with
    credentials."""
    label = answer.label
    acao = answer.values("access-control-allow-origin")
    if not acao:
        notes = []
        if context.via_server:
            notes.append(
                f"the {label} ({answer.status}) carries no CORS headers; dicomhub "
                "puts them on every answer to an allowed origin, errors included "
                "(docs/cors.md D9): a proxy in front that answers by itself or "
                "drops Access-Control-* headers is the likely cause"
            )
        return Finding(
            f"blocked: the {label} has no Access-Control-Allow-Origin", notes
        )
    if len(acao) > 1:
        shown = ", ".join(repr(value) for value in acao)
        return Finding(
            f"blocked: the {label} has {len(acao)} Access-Control-Allow-Origin "
            f"fields ({shown}); browsers accept exactly one",
            (PROXY_NOTE,),
        )

    value = acao[0]
    if value == "*":
        if not request.credentials:
            return None
        return Finding(
            "blocked: Access-Control-Allow-Origin is '*', which browsers never "
            "accept on a request with credentials (list the origin in "
            "cors.origins and set allow_credentials = true)",
            (CREDENTIALS_NOTE,),
        )
    if value != request.origin:
        return Finding(
            f"blocked: Access-Control-Allow-Origin is {value!r}, not the page's "
            f"origin {request.origin!r}",
            (
                "browsers compare it byte for byte with the Origin they sent; a "
                "cache that hands one origin's answer to another (no Vary: Origin) "
                "or a proxy that rewrites the header can cause this",
            ),
        )
    if not request.credentials:
        return None

    acac = answer.values("access-control-allow-credentials")
    if not acac:
        if context.via_server:
            line = (
                f"blocked: the request carries credentials but the {label} has no "
                "Access-Control-Allow-Credentials: true (set cors.allow_credentials "
                "= true, or send the request without cookies)"
            )
        else:
            line = (
                "blocked: the request carries credentials but "
                "cors.allow_credentials is false (set it to true, or send the "
                "request without cookies)"
            )
        return Finding(line, (CREDENTIALS_NOTE,))
    if acac != ["true"]:
        shown = ", ".join(repr(v) for v in acac)
        notes = (PROXY_NOTE,) if len(acac) > 1 else ()
        return Finding(
            f"blocked: Access-Control-Allow-Credentials is {shown}; browsers "
            "accept exactly one field holding 'true'",
            notes,
        )
    return None


def _list_values(answer: Answer, name: str) -> list[str] | None:
    """Fetch, "extract header list values" for a #token list; None on failure."""
    items = []
    for value in answer.values(name):
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue
            if not TOKEN.fullmatch(item):
                return None
            items.append(item)
    return items
