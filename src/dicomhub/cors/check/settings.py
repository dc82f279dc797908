"""Checking against the settings ``dicomhub serve`` would use.

The CORS layer's own `CorsPlan` decides the preflight and the actual answer;
the browser's checks then judge those answers, as they would a server's.
"""

from __future__ import annotations

import json

from ..plan import CorsPlan
from ..policy import CorsPolicy
from .answer import Answer, Context, Refusal, Verdict
from .browser import judge
from .request import BrowserRequest
from .verbose import show_answer, show_preflight


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

    context = Context(via_server=False, known_origins=policy.origins)
    verdict = judge(request, preflight, actual, context)

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
        *show_preflight("OPTIONS (any path)", request),
        *show_answer(preflight),
        *show_answer(actual),
    ]
    return verdict


def _decode(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
