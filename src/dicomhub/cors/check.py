"""``dicomhub cors check``: would a browser on a given origin be let through?

The answer comes from one of two places:

- the settings ``dicomhub serve`` would use (a TOML file and the DICOMHUB_*
  environment), decided by the same `CorsPlan` the CORS layer runs; or
- a running server (``--url``), asked with a real preflight that is built as a
  browser builds it (Fetch, "CORS-preflight fetch"): ``Origin``, ACRM and ACRH
  with lower-case names, sorted, without duplicates, joined by ``,``. For GET
  and HEAD the request itself is sent too; POST, PUT and DELETE never are,
  since they could change data.

Either way the answer's headers then go through the checks a browser makes
(Fetch, "CORS check" and the preflight's method and header checks), so a
proxy in front that strips or duplicates ``Access-Control-*`` headers is caught
as well. The verdict is one line; explanations follow, naming the setting to
change and the protocol reason (docs/cors.md §2, §3 and D1-D17).

Known limits: with ``--url`` the command carries no cookies, so a server that
answers differently to a signed-in browser is judged as for an anonymous one;
Private Network Access preflights (D14) are not simulated; near-misses of a
refused origin are named against the server's list only when it answers
``GET /admin/cors``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from .origin import DEFAULT_PORTS, OriginError, normalise_origin
from .plan import SAFELISTED_NAMES, CorsPlan
from .policy import ALL_METHODS, CHROMIUM_MAX_AGE, TOKEN, CorsPolicy

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

# Fetch, "Access-Control-Max-Age": a passed preflight without it is cached 5 s.
DEFAULT_MAX_AGE = 5

# Why a DICOMweb client sends a header that makes the browser preflight
# (docs/cors.md §2; Fetch, "CORS-safelisted request-header").
HEADER_REASONS = {
    "authorization": (
        "authorization: a bearer token (Authorization: Bearer ...) is never "
        "CORS-safelisted, so the browser always asks first, and '*' in "
        "Access-Control-Allow-Headers never covers it (Fetch, CORS non-wildcard "
        "request-header name)"
    ),
    "accept": (
        "accept: WADO-RS frames and bulk data ask for Accept: multipart/related; "
        'type="application/octet-stream"; the quoted type="..." makes that value '
        "non-safelisted, so the browser lists accept"
    ),
    "content-type": (
        "content-type: STOW-RS sends Content-Type: multipart/related; "
        'type="application/dicom"; boundary=..., and only '
        "application/x-www-form-urlencoded, multipart/form-data and text/plain "
        "are safelisted types"
    ),
    "range": (
        "range: a suffix range (bytes=-1024) or several ranges are not "
        "safelisted; only one bytes=N- or bytes=N-M range is"
    ),
    "accept-language": (
        "accept-language: values with characters other than letters, digits, "
        "space and *,-.;= are not safelisted"
    ),
    "content-language": (
        "content-language: values with characters other than letters, digits, "
        "space and *,-.;= are not safelisted"
    ),
}

# D6: dicomhub allows these five whatever cors.headers says; a preflight
# answer that does not cover them did not come from dicomhub's CORS layer.
ALWAYS_ALLOWED_NOTE = (
    "dicomhub always allows accept, accept-language, content-language, "
    "content-type and range (docs/cors.md D6): a proxy in front that answers "
    "preflights itself, or rewrites Access-Control-Allow-Headers, is the likely "
    "cause"
)
PROXY_NOTE = (
    "dicomhub sets each Access-Control-* header once (docs/cors.md D13): a "
    "proxy in front that adds CORS headers of its own is the likely cause; let "
    "dicomhub set them"
)
CREDENTIALS_NOTE = (
    "credentials are what the browser adds by itself: cookies, HTTP "
    "authentication, TLS client certificates (fetch credentials: 'include', "
    "XMLHttpRequest withCredentials); a bearer token in Authorization is a "
    "request header and needs no --credentials"
)

_REFUSAL = re.compile(r"CORS preflight refused \((origin|method|headers)\): (.*)")
_REFUSED_ITEM = re.compile(r"(?:origin|method|header) (['\"])(.*)\1 is not allowed")


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


@dataclass(frozen=True, slots=True)
class Refusal:
    """dicomhub's reason for a refused preflight (D2): the failed check and the
    refused value (None when the reason names none, e.g. CORS off)."""

    check: str
    reason: str
    item: str | None

    @classmethod
    def parse(cls, check: str, reason: str) -> Refusal:
        found = _REFUSED_ITEM.match(reason)
        return cls(check, reason, found.group(2) if found else None)

    @classmethod
    def from_body(cls, body: str) -> Refusal | None:
        """The reason of a 403 ``CORS preflight refused (check): reason``."""
        found = _REFUSAL.match(body.strip().splitlines()[0] if body.strip() else "")
        return cls.parse(found.group(1), found.group(2)) if found else None


@dataclass(slots=True)
class Answer:
    """One answer as the browser sees it: status and headers (lower-case names)."""

    status: int
    headers: list[tuple[str, str]]
    refusal: Refusal | None = None
    label: str = "answer"
    first_line: str = ""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def ok(self) -> bool:
        # Fetch, "ok status": 200 to 299.
        return 200 <= self.status <= 299


@dataclass(slots=True)
class Verdict:
    """The outcome: one line, explanations, and what --verbose shows."""

    allowed: bool
    line: str
    notes: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.allowed else 1

    def lines(self, verbose: bool = False) -> list[str]:
        out = [self.line, *(f"  {note}" for note in self.notes)]
        if verbose:
            out += self.shown
        return out


@dataclass(frozen=True, slots=True)
class _Finding:
    line: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Context:
    """Where the answers came from: the settings, or a server at --url."""

    via_server: bool
    known_origins: tuple[str, ...] | None


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


# The settings -------------------------------------------------------------


def check_settings(request: BrowserRequest, policy: CorsPolicy) -> Verdict:
    """Decide with the CORS layer's own plan, then check its answers as a browser."""
    plan = CorsPlan(policy)
    origin = request.origin.encode("ascii")

    # A browser sends ACRH only when it has names to list.
    acrh = [request.acrh.encode("ascii")] if request.headers else []
    decided = plan.preflight(origin, request.method.encode("ascii"), acrh)
    vary = ("vary", ", ".join(v.decode("ascii") for v in plan.preflight_vary))
    if decided.allowed:
        preflight = Answer(
            204, [*_decode(decided.headers), vary], label="preflight answer"
        )
    else:
        refusal = Refusal.parse(decided.check or "", decided.reason)
        preflight = Answer(403, [vary], refusal=refusal, label="preflight answer")

    actual_headers = _decode(plan.actual_headers(origin))
    if plan.actual_vary:
        actual_headers.append(
            ("vary", ", ".join(v.decode("ascii") for v in plan.actual_vary))
        )
    actual = Answer(200, actual_headers, label=f"answer to the {request.method}")

    context = _Context(via_server=False, known_origins=policy.origins)
    verdict = _judge(request, preflight, actual, context)

    if (
        verdict.allowed
        and not request.needs_preflight
        and request.method not in plan.methods
    ):
        verdict.notes.append(
            f"cors.methods does not list {request.method}, but a {request.method} "
            "without non-safelisted headers is sent without a preflight, and "
            "such requests are checked by origin only (docs/cors.md D15)"
        )
    verdict.shown = [
        f"  settings: {json.dumps(policy.to_azure_json())}",
        *_show_preflight("OPTIONS (any path)", request),
        *_show_answer(preflight),
        *_show_answer(actual),
    ]
    return verdict


def _decode(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]


# A server at --url --------------------------------------------------------


def check_server(
    request: BrowserRequest,
    url: str,
    path: str | None = None,
    timeout: float = 10.0,
) -> Verdict:
    """Send a real preflight (and, for GET and HEAD, the request) and judge the
    answers as a browser would. CheckUsageError when the server cannot be asked.

    `url` is the server's base URL or its DICOMweb root; `path`, when given,
    is the request path on that server (starting with '/').
    """
    base = _parse_url(url)
    root = base.path.rstrip("/") or "/v2"
    if path is not None and not path.startswith("/"):
        raise CheckUsageError(
            f"--path {path!r}: expected a path on the server, starting with '/', "
            "e.g. /v2/studies"
        )
    target = (
        base.join(path) if path else base.copy_with(path=f"{root}/studies", query=None)
    )

    preflight_headers = {
        "Origin": request.origin,
        "Access-Control-Request-Method": request.method,
        "Accept": "*/*",
    }
    if request.headers:
        preflight_headers["Access-Control-Request-Headers"] = request.acrh

    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        try:
            preflight = _ask(client, "OPTIONS", target, preflight_headers)
            preflight.label = "preflight answer"

            # The request itself, only when it cannot change anything; QIDO's
            # limit=1 keeps the default query small (PS3.18 §10.6.1).
            actual = None
            if request.method in ("GET", "HEAD") and (
                not request.needs_preflight or preflight.ok
            ):
                actual_target = target
                if path is None and request.method == "GET":
                    actual_target = target.copy_with(params={"limit": "1"})
                actual = _ask(
                    client,
                    request.method,
                    actual_target,
                    {"Origin": request.origin},
                    stream=True,
                )
                actual.label = f"answer to the {request.method}"
        except httpx.HTTPError as exc:
            raise CheckUsageError(
                f"cannot ask {target.copy_with(query=None)}: {exc}"
            ) from None

        known = None
        if preflight.refusal is not None and preflight.refusal.check == "origin":
            known = _server_origins(client, base, root)

    context = _Context(via_server=True, known_origins=known)
    verdict = _judge(request, preflight, actual, context)
    verdict.shown = [
        *_show_preflight(f"OPTIONS {target.raw_path.decode('ascii')}", request),
        *_show_answer(preflight),
    ]
    if actual is not None:
        verdict.shown += _show_answer(actual)
    else:
        verdict.shown.append(
            f"  the {request.method} itself was not sent: it could change data"
        )
    return verdict


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise CheckUsageError(
            f"--url {url!r}: expected the server's address or its DICOMweb root, "
            "e.g. http://127.0.0.1:8080 or http://127.0.0.1:8080/v2"
        )
    return parsed


def _ask(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    stream: bool = False,
) -> Answer:
    if stream:
        # Only the status and headers count; the body (which may hold patient
        # data) is never read.
        with client.stream(method, url, headers=headers) as response:
            return Answer(response.status_code, _raw_headers(response))

    response = client.request(method, url, headers=headers)
    answer = Answer(response.status_code, _raw_headers(response))
    if not answer.ok:
        text = response.text if _is_text(response) else ""
        answer.first_line = text.strip().splitlines()[0][:300] if text.strip() else ""
        if response.status_code == 403:
            answer.refusal = Refusal.from_body(text)
    return answer


def _raw_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in response.headers.raw
    ]


def _is_text(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/plain")


def _server_origins(
    client: httpx.Client, base: httpx.URL, root: str
) -> tuple[str, ...] | None:
    """The server's allowed origins from its admin API, for near-miss hints;
    None when it does not answer (another server, a proxy, authentication)."""
    found = re.fullmatch(r"(.*)/v[12]", root)
    if found is None:
        return None
    try:
        response = client.get(
            base.copy_with(path=f"{found.group(1)}/admin/cors", query=None)
        )
        origins = (
            response.json().get("origins") if response.status_code == 200 else None
        )
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        return None
    return tuple(origins)


# The browser's checks -----------------------------------------------------


def _judge(
    request: BrowserRequest,
    preflight: Answer,
    actual: Answer | None,
    context: _Context,
) -> Verdict:
    """Fetch's order: the preflight when one is needed, then the answer's CORS
    check; the first failure is the verdict."""
    origin_refusal = (
        preflight.refusal
        if preflight.refusal is not None and preflight.refusal.check == "origin"
        else None
    )

    finding: _Finding | None = None
    if request.needs_preflight:
        finding = _check_preflight(request, preflight, context)
        if finding is None and actual is not None:
            finding = _cors_check(request, actual, context)
    elif actual is not None:
        finding = _cors_check(request, actual, context)
        if finding is not None and origin_refusal is not None:
            # The preflight's reason says more than a missing header.
            finding = _refusal_finding(origin_refusal, request, context)
    elif origin_refusal is not None:
        finding = _refusal_finding(origin_refusal, request, context)
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
    request: BrowserRequest, answer: Answer, context: _Context
) -> _Finding | None:
    """Fetch, "CORS-preflight fetch": ok status, CORS check, methods, headers."""
    if answer.refusal is not None:
        return _refusal_finding(answer.refusal, request, context)
    if not answer.ok:
        return _status_finding(answer)

    finding = _cors_check(request, answer, context)
    if finding is not None:
        return finding

    methods = _list_values(answer, "access-control-allow-methods")
    if methods is None:
        return _unparsable(answer, "access-control-allow-methods", "method names")
    if (
        request.method not in methods
        and request.method not in SAFELISTED_METHODS
        and (request.credentials or "*" not in methods)
    ):
        return _method_finding(request, methods)

    names = _list_values(answer, "access-control-allow-headers")
    if names is None:
        return _unparsable(answer, "access-control-allow-headers", "header names")
    allowed = {name.lower() for name in names}
    for name in request.headers:
        if name in allowed:
            continue
        # Fetch: '*' counts only without credentials and never for
        # Authorization (CORS non-wildcard request-header name).
        if "*" in allowed and not request.credentials and name != "authorization":
            continue
        return _header_finding(request, name, allowed, context)
    return None


def _cors_check(
    request: BrowserRequest, answer: Answer, context: _Context
) -> _Finding | None:
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
        return _Finding(
            f"blocked: the {label} has no Access-Control-Allow-Origin", notes
        )
    if len(acao) > 1:
        shown = ", ".join(repr(value) for value in acao)
        return _Finding(
            f"blocked: the {label} has {len(acao)} Access-Control-Allow-Origin "
            f"fields ({shown}); browsers accept exactly one",
            (PROXY_NOTE,),
        )

    value = acao[0]
    if value == "*":
        if not request.credentials:
            return None
        return _Finding(
            "blocked: Access-Control-Allow-Origin is '*', which browsers never "
            "accept on a request with credentials (list the origin in "
            "cors.origins and set allow_credentials = true)",
            (CREDENTIALS_NOTE,),
        )
    if value != request.origin:
        return _Finding(
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
        return _Finding(line, (CREDENTIALS_NOTE,))
    if acac != ["true"]:
        shown = ", ".join(repr(v) for v in acac)
        notes = (PROXY_NOTE,) if len(acac) > 1 else ()
        return _Finding(
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


# The findings, in words ---------------------------------------------------


def _refusal_finding(
    refusal: Refusal, request: BrowserRequest, context: _Context
) -> _Finding:
    """dicomhub refused the preflight (D2): name the setting to change."""
    item = refusal.item
    if refusal.check == "origin":
        return _origin_finding(refusal, request, context)
    if refusal.check == "method" and item is not None:
        notes = []
        if item != item.upper() and item.upper() in ALL_METHODS:
            notes.append(
                f"methods compare case-sensitively (docs/cors.md D5), and browsers "
                f"upper-case only DELETE, GET, HEAD, OPTIONS, POST and PUT: write "
                f"{item.upper()!r} in the script"
            )
        return _Finding(
            f"blocked: method {item!r} is not in cors.methods (add it to methods, "
            'or use ["*"])',
            tuple(notes),
        )
    if refusal.check == "headers" and item is not None:
        notes = [HEADER_REASONS[item]] if item in HEADER_REASONS else []
        return _Finding(
            f"blocked: header {item!r} is not in cors.headers (add it to headers, "
            'or use ["*"])',
            tuple(notes),
        )
    return _Finding(f"blocked: {refusal.reason}")


def _origin_finding(
    refusal: Refusal, request: BrowserRequest, context: _Context
) -> _Finding:
    origin = request.origin
    if refusal.item is None:
        return _Finding(
            "blocked: CORS is off: cors.origins is empty (list the viewer's "
            f'origin, e.g. origins = ["{_browser_form(origin) or origin}"])'
        )
    if origin == "null":
        return _Finding(
            "blocked: origin 'null' is never allowed by a list of origins",
            (
                "sandboxed frames, data: documents and some redirects send 'null', "
                "and any page can make itself one, so allowing it would allow "
                "everyone (docs/cors.md D12); serve the viewer from a real origin",
            ),
        )

    line = f"blocked: origin {origin!r} is not in cors.origins"
    notes: list[str] = []
    miss = near_miss(origin, context.known_origins or ())
    if miss is not None:
        configured, how = miss
        line += f"; it nearly matches {configured!r} ({how})"
        notes.append(
            "scheme, host and port must all equal a listed origin, byte for byte "
            "(docs/cors.md D4)"
        )
    else:
        line += " (add it to origins)"
        browser = _browser_form(origin)
        if browser is not None and browser != origin:
            notes.append(
                f"browsers send this origin as {browser!r}; check again with "
                f"--origin {browser}"
            )
    return _Finding(line, tuple(notes))


def _status_finding(answer: Answer) -> _Finding:
    status = answer.status
    line = f"blocked: the preflight got {status}; browsers need a 2xx answer"
    notes: list[str] = []
    if 300 <= status <= 399:
        location = answer.values("location")
        if location:
            line += f" (it redirects to {location[0][:200]!r})"
        notes.append(
            "browsers never follow a redirect for a preflight; ask the address it "
            "points to"
        )
    elif status in (401, 407):
        notes.append(
            "preflights carry no credentials, so they must be answered before "
            "authentication; dicomhub does so (docs/cors.md D10), a proxy in front "
            "asking for authentication on OPTIONS does not"
        )
    elif status in (404, 405, 501):
        notes.append(
            "the server does not answer CORS preflights (OPTIONS with Origin and "
            "Access-Control-Request-Method); dicomhub answers them on every path "
            "(docs/cors.md D10), so check what answers at --url"
        )
    if answer.first_line:
        notes.append(f"its text: {answer.first_line!r}")
    return _Finding(line, tuple(notes))


def _unparsable(answer: Answer, name: str, what: str) -> _Finding:
    shown = ", ".join(answer.values(name))[:200]
    return _Finding(
        f"blocked: {_title(name)} {shown!r} cannot be parsed; browsers need a "
        f"comma-separated list of {what}",
        (PROXY_NOTE,),
    )


def _method_finding(request: BrowserRequest, methods: list[str]) -> _Finding:
    method = request.method
    notes = []
    if "*" in methods and request.credentials:
        notes.append(
            "'*' in Access-Control-Allow-Methods counts only on requests without "
            "credentials (Fetch, CORS-preflight fetch); dicomhub lists methods by "
            "name (docs/cors.md D5)"
        )
    if method.upper() in methods and method != method.upper():
        notes.append(
            "methods compare case-sensitively; browsers upper-case only DELETE, "
            f"GET, HEAD, OPTIONS, POST and PUT: write {method.upper()!r} in the script"
        )
    listed = ", ".join(methods) or "nothing"
    return _Finding(
        f"blocked: method {method!r} is not in the preflight answer's "
        f"Access-Control-Allow-Methods ({listed}); add it to cors.methods",
        tuple(notes),
    )


def _header_finding(
    request: BrowserRequest, name: str, allowed: set[str], context: _Context
) -> _Finding:
    notes = [HEADER_REASONS[name]] if name in HEADER_REASONS else []
    if "*" in allowed and name == "authorization":
        fix = "list Authorization by name"
    elif "*" in allowed and request.credentials:
        fix = "'*' does not count with credentials"
        notes.append(
            "'*' in Access-Control-Allow-Headers counts only on requests without "
            "credentials; dicomhub echoes the names instead (docs/cors.md D5)"
        )
    else:
        fix = "add it to cors.headers"
    if context.via_server and (name in SAFELISTED_NAMES or "*" in allowed):
        notes.append(ALWAYS_ALLOWED_NOTE if name in SAFELISTED_NAMES else PROXY_NOTE)
    return _Finding(
        f"blocked: header {name!r} is not in the preflight answer's "
        f"Access-Control-Allow-Headers ({fix})",
        tuple(notes),
    )


# Near-misses of an origin -------------------------------------------------


def near_miss(origin: str, configured: Sequence[str]) -> tuple[str, str] | None:
    """The configured origin that `origin` nearly matches, and how it differs.

    Covers what makes viewers fail in practice: a trailing '/', upper case, a
    default port or a path written out, http against https, a missing or
    different port, localhost against 127.0.0.1, a subdomain.
    """
    listed = [c for c in configured if c != "*"]
    if not listed or origin in listed:
        return None

    browser = _browser_form(origin)
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


def _browser_form(origin: str) -> str | None:
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


# What --verbose shows -----------------------------------------------------


def _show_preflight(request_line: str, request: BrowserRequest) -> list[str]:
    lines = [
        f"  preflight a browser sends: {request_line}",
        f"    Origin: {request.origin}",
        f"    Access-Control-Request-Method: {request.method}",
    ]
    if request.headers:
        lines.append(f"    Access-Control-Request-Headers: {request.acrh}")
    if not request.needs_preflight:
        lines.append(
            "    (not sent by a browser for this request: no preflight needed)"
        )
    return lines


def _show_answer(answer: Answer) -> list[str]:
    lines = [f"  {answer.label}: {answer.status}"]
    for name, value in answer.headers:
        if name.startswith("access-control-") or name == "vary":
            lines.append(f"    {_title(name)}: {value}")
    if answer.refusal is not None:
        lines.append(
            f"    (text) CORS preflight refused ({answer.refusal.check}): "
            f"{answer.refusal.reason}"
        )
    return lines


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
