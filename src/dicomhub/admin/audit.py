"""The audit log of setting changes: logger ``dicomhub.audit``, level INFO.

One line per change or refused change through the admin API: what was asked
(method and path), who asked (the subject from `dicomhub.auth.subject` and the
client's address), and either the old and new settings as compact JSON (with
the validator's warnings, if any) or the reason of the refusal. When: the log
record's own time. Settings hold no patient data; text taken from the request
is kept on one line, so a crafted value cannot forge a line of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from ..auth import subject

audit = logging.getLogger("dicomhub.audit")


def changed(
    request: Request,
    what: str,
    old: Any,
    new: Any,
    version: int,
    warnings: Sequence[str] = (),
) -> None:
    """A change: the old and new settings, then the validator's warnings (all
    of them: the answer's Warning fields are capped)."""
    audit.info(
        "%s changed (%s %s) by %s from %s, version %d: old=%s new=%s%s",
        what,
        request.method,
        request.url.path,
        subject(request),
        _address(request),
        version,
        _compact(old),
        _compact(new),
        f" warnings={_compact(list(warnings))}" if warnings else "",
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
