"""What comes back, and what the command makes of it.

An `Answer` is one HTTP answer as the browser sees it (status and headers),
with dicomhub's `Refusal` reason when a preflight was refused; a `Finding` is
one failed check in words; the `Verdict` is what the command prints and the
exit code it returns. `Context` says where the answers came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The text of dicomhub's 403 to a refused preflight (docs/cors.md D2).
_REFUSAL = re.compile(r"CORS preflight refused \((origin|method|headers)\): (.*)")
_REFUSED_ITEM = re.compile(r"(?:origin|method|header) (['\"])(.*)\1 is not allowed")


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
class Finding:
    line: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """Where the answers came from: the settings, or a server at --url."""

    via_server: bool
    known_origins: tuple[str, ...] | None
