"""The audit log of setting changes: logger ``dicomhub.audit``, level INFO.

One line per change or refused change through the admin API: what was asked
(method and path), who asked (the subject from `dicomhub.audit.subject` and the
client's address), and either the old and new settings as compact JSON (with
the validator's warnings, if any) or the reason of the refusal. When: the log
record's own time. Settings hold no patient data; text taken from the request
is kept on one line, so a crafted value cannot forge a line of its own. The
helpers shared with the audit of stores and deletes are in ``dicomhub.audit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request

from ..accesslog import sent_path
from ..audit import address, audit, compact, one_line, subject


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
        sent_path(request.scope),
        one_line(subject(request)),
        address(request),
        version,
        compact(old),
        compact(new),
        f" warnings={compact(list(warnings))}" if warnings else "",
    )


def refused(request: Request, what: str, status: int, reason: str) -> None:
    audit.info(
        "%s change refused (%s %s) for %s from %s: %d %s",
        what,
        request.method,
        sent_path(request.scope),
        one_line(subject(request)),
        address(request),
        status,
        one_line(reason),
    )

