"""The findings, in words.

Each failed check becomes one line that names the setting to change, with
notes giving the protocol reason (docs/cors.md §2, §3 and D1-D17).
"""

from __future__ import annotations

from ..plan import SAFELISTED_NAMES
from ..policy import ALL_METHODS
from .answer import Answer, Context, Finding, Refusal
from .nearmiss import browser_form, near_miss
from .request import BrowserRequest
from .verbose import title

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


def refusal_finding(
    refusal: Refusal, request: BrowserRequest, context: Context
) -> Finding:
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
        return Finding(
            f"blocked: method {item!r} is not in cors.methods (add it to methods, "
            'or use ["*"])',
            tuple(notes),
        )
    if refusal.check == "headers" and item is not None:
        notes = [HEADER_REASONS[item]] if item in HEADER_REASONS else []
        return Finding(
            f"blocked: header {item!r} is not in cors.headers (add it to headers, "
            'or use ["*"])',
            tuple(notes),
        )
    return Finding(f"blocked: {refusal.reason}")


def _origin_finding(
    refusal: Refusal, request: BrowserRequest, context: Context
) -> Finding:
    origin = request.origin
    if refusal.item is None:
        return Finding(
            "blocked: CORS is off: cors.origins is empty (list the viewer's "
            f'origin, e.g. origins = ["{browser_form(origin) or origin}"])'
        )
    if origin == "null":
        return Finding(
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
        browser = browser_form(origin)
        if browser is not None and browser != origin:
            notes.append(
                f"browsers send this origin as {browser!r}; check again with "
                f"--origin {browser}"
            )
    return Finding(line, tuple(notes))


def status_finding(answer: Answer) -> Finding:
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
    return Finding(line, tuple(notes))


def unparsable(answer: Answer, name: str, what: str) -> Finding:
    shown = ", ".join(answer.values(name))[:200]
    return Finding(
        f"blocked: {title(name)} {shown!r} cannot be parsed; browsers need a "
        f"comma-separated list of {what}",
        (PROXY_NOTE,),
    )


def method_finding(request: BrowserRequest, methods: list[str]) -> Finding:
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
    return Finding(
        f"blocked: method {method!r} is not in the preflight answer's "
        f"Access-Control-Allow-Methods ({listed}); add it to cors.methods",
        tuple(notes),
    )


def header_finding(
    request: BrowserRequest, name: str, allowed: set[str], context: Context
) -> Finding:
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
    return Finding(
        f"blocked: header {name!r} is not in the preflight answer's "
        f"Access-Control-Allow-Headers ({fix})",
        tuple(notes),
    )
