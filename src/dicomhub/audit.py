"""The audit log: logger ``dicomhub.audit``, level INFO, one line per event.

Who (`subject`, set by `dicomhub.auth`, and the client's address), what
(method, path and the outcome) and when (the log record's own time), for every
STOW-RS store or replace, every DELETE, and every settings change
(``dicomhub.admin.audit``); `dicomhub.auth` adds each refused write, delete
and admin request. Lines name instances by their UIDs only, never by a patient
attribute. Text taken from the request is kept on one line (control
characters escaped), so a crafted value cannot forge a line of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from .accesslog import sent_path

audit = logging.getLogger("dicomhub.audit")

# The request scope key under which `dicomhub.auth` names who sent a request.
SUBJECT = "dicomhub.subject"


def subject(request: Request) -> str:
    """Who sent `request`, as the audit log names them: the API key's name, the
    access token's `sub` (or `preferred_username`), or "anonymous" when
    authentication is off."""
    return request.scope.get(SUBJECT, "anonymous")


def refused(request: Request, status: int, reason: str) -> None:
    """A store, delete or admin request that authentication or authorisation
    refused, guesses included."""
    audit.info(
        "refused %s %s from %s (%s): %d %s",
        request.method,
        sent_path(request.scope),
        address(request),
        # A token's subject is the issuer's text.
        one_line(subject(request)),
        status,
        reason,
    )


def stored(
    request: Request,
    status: int,
    stored: int,
    replaced: int,
    failed: int,
    studies: Iterable[str],
) -> None:
    """A STOW-RS request (PS3.18 §10.5), POST or PUT, whatever its outcome:
    instances stored new, replacing earlier ones (PUT), and refused, with the
    Study Instance UIDs they belong to."""
    audit.info(
        "instances stored (%s %s) by %s from %s: %d, stored=%d replaced=%d "
        "failed=%d studies=%s",
        request.method,
        sent_path(request.scope),
        one_line(subject(request)),
        address(request),
        status,
        stored,
        replaced,
        failed,
        ",".join(one_line(uid) for uid in sorted(set(studies))) or "-",
    )


def deleted(
    request: Request,
    status: int,
    removed: int,
    uids: tuple[str | None, str | None, str | None],
) -> None:
    """A DELETE of a study, series or instance, whatever its outcome: the
    UIDs of the resource and the number of instances removed."""
    study, series, instance = (one_line(uid) if uid else "-" for uid in uids)
    audit.info(
        "instances deleted (%s %s) by %s from %s: %d, removed=%d study=%s "
        "series=%s instance=%s",
        request.method,
        sent_path(request.scope),
        one_line(subject(request)),
        address(request),
        status,
        removed,
        study,
        series,
        instance,
    )


def address(request: Request) -> str:
    return request.client.host if request.client else "-"


def compact(value: Any) -> str:
    # JSON escapes every control character, so the text stays on one line.
    return json.dumps(value, separators=(",", ":"))


def one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
