"""Asking a server at ``--url``, as a browser would.

A real preflight is sent, built as a browser builds it (Fetch, "CORS-preflight
fetch"); for GET and HEAD the request itself is sent too, while POST, PUT and
DELETE never are, since they could change data. Only status and headers are
read: an answer's body may hold patient data. The answers then go through the
browser's checks.
"""

from __future__ import annotations

import re

import httpx

from .answer import Answer, Context, Refusal, Verdict
from .browser import judge
from .request import BrowserRequest, CheckUsageError
from .verbose import show_answer, show_preflight


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

    context = Context(via_server=True, known_origins=known)
    verdict = judge(request, preflight, actual, context)
    verdict.shown = [
        *show_preflight(f"OPTIONS {target.raw_path.decode('ascii')}", request),
        *show_answer(preflight),
    ]
    if actual is not None:
        verdict.shown += show_answer(actual)
    else:
        reason = (
            "it could change data"
            if request.method not in ("GET", "HEAD")
            else "the preflight already decided"
        )
        verdict.shown.append(f"  the {request.method} itself was not sent: {reason}")
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
