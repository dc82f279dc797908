"""The audit log of setting changes: logger ``dicomhub.audit``, level INFO.

One line per change or refused change through the admin API: what was asked
(method and path), who asked (the subject from `dicomhub.auth.subject` and the
client's address), and either the old and new settings as compact JSON or the
reason of the refusal. When: the log record's own time. Settings hold no
patient data; text taken from the request is kept on one line, so a crafted
value cannot forge a line of its own.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request

from ..auth import subject

audit = logging.getLogger("dicomhub.audit")


def changed(request: Request, what: str, old: Any, new: Any, version: int) -> None:
    audit.info(
        "%s changed (%s %s) by %s from %s, version %d: old=%s new=%s",
        what,
        request.method,
        request.url.path,
        subject(request),
        _address(request),
        version,
        _compact(old),
        _compact(new),
    )


def refused(request: Request, what: str, status: int, reason: str) -> None:
    audit.info(
        "%s change refused (%s %s) for %s from %s: %d %s",
        what,
        request.method,
        request.url.path,
        subject(request),
        _address(request),
        status,
        _one_line(reason),
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


def _compact(value: Any) -> str:
    # JSON escapes every control character, so the text stays on one line.
    return json.dumps(value, separators=(",", ":"))


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
