"""What --verbose shows: the preflight a browser sends and the CORS headers of
each answer, as lines indented under the verdict."""

from __future__ import annotations

from .answer import Answer
from .request import BrowserRequest


def show_preflight(request_line: str, request: BrowserRequest) -> list[str]:
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


def show_answer(answer: Answer) -> list[str]:
    lines = [f"  {answer.label}: {answer.status}"]
    for name, value in answer.headers:
        if name.startswith("access-control-") or name == "vary":
            lines.append(f"    {title(name)}: {value}")
    if answer.refusal is not None:
        lines.append(
            f"    (text) CORS preflight refused ({answer.refusal.check}): "
            f"{answer.refusal.reason}"
        )
    return lines


def title(name: str) -> str:
    """A lower-case header name as the standards write it, e.g. Vary."""
    return "-".join(part.capitalize() for part in name.split("-"))
