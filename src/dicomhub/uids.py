"""UID syntax checks (PS3.5 §9.1), done before a UID touches a path or a query."""

from __future__ import annotations

import re

from starlette.requests import Request

from .errors import BadRequest

# PS3.5 §9.1: components of digits separated by '.', no leading zero in a
# multi-digit component, at most 64 characters in all. The class is ASCII
# digits only (not str.isdigit, which takes '١' or '²'), and fullmatch leaves
# no room for the trailing newline that '$' would let through.
MAX_UID_LENGTH = 64
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_COMPONENT = re.compile(r"0|[1-9][0-9]*")
_CHARACTERS = re.compile(r"[0-9.]*")


def is_valid_uid(value: str) -> bool:
    return len(value) <= MAX_UID_LENGTH and _UID.fullmatch(value) is not None


def uid_problem(value: str) -> str | None:
    """Which rule of PS3.5 §9.1 `value` breaks, in words; None when it is a UID."""
    if not value:
        return "it is empty"
    if len(value) > MAX_UID_LENGTH:
        return f"it is {len(value)} characters long, over the {MAX_UID_LENGTH} allowed"
    if _CHARACTERS.fullmatch(value) is None:
        return "it holds a character other than the digits 0-9 and '.'"
    components = value.split(".")
    if "" in components:
        return "it has an empty component (a leading, trailing or doubled '.')"
    if not all(_COMPONENT.fullmatch(component) for component in components):
        return "a component of several digits starts with 0"
    return None


def shown(value: str) -> str:
    """`value` fit for an error message: at most 64 characters, quoted, with
    control and non-ASCII characters escaped, so nothing can be smuggled into
    a log line or a client's display. A UID is not patient data."""
    text = ascii(value[:MAX_UID_LENGTH])
    return text + "..." if len(value) > MAX_UID_LENGTH else text


def check_uid(value: str, name: str) -> str:
    """Return `value` if it is a valid UID, else raise 400 naming the parameter
    and the rule it breaks."""
    problem = uid_problem(value)
    if problem is not None:
        raise BadRequest(
            f"{name} {shown(value)} is not a valid UID: {problem} (PS3.5 §9.1: "
            "components of digits 0-9 separated by '.', no leading zero in a "
            "component of several digits, at most 64 characters); check the URL"
        )
    return value


def path_uids(request: Request) -> tuple[str, str | None, str | None]:
    """The study, series and SOP instance UIDs of a DICOMweb URL, each checked."""
    params = request.path_params
    study = check_uid(params["study"], "StudyInstanceUID")
    series = params.get("series")
    sop = params.get("instance")
    if series is not None:
        check_uid(series, "SeriesInstanceUID")
    if sop is not None:
        check_uid(sop, "SOPInstanceUID")
    return study, series, sop
