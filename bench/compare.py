"""Side-by-side figures: dicomhub against a peer server, over alternated repeats.

A figure (instances/s, MB/s, a latency) is measured once per repeat on every
server; within a repeat the servers take turns, and the one that goes first
changes from repeat to repeat, so that neither always meets a cold disk cache or
the machine's busy moments first. The ratio dicomhub/peer is the median of the
per-repeat ratios (both measured side by side, so drift between repeats
cancels); min/median/max show the spread over repeats. A floor (nginx sending
the same file, a bare ASGI endpoint) is measured in the same turns.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

DICOMHUB = "dicomhub"
PEER = "Orthanc"


@dataclass
class Figure:
    """One measured quantity and its value per repeat for each server."""

    phase: str
    name: str
    unit: str
    higher_is_better: bool
    client: str
    floor: str = ""  # the floor's name, when one is measured for this figure
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, server: str, value: float) -> None:
        self.values.setdefault(server, []).append(value)

    def median(self, server: str) -> float | None:
        values = self.values.get(server)
        return statistics.median(values) if values else None

    def ratio(self) -> float | None:
        """Median over repeats of dicomhub's value over the peer's."""
        ours, theirs = self.values.get(DICOMHUB), self.values.get(PEER)
        if not ours or not theirs:
            return None
        pairs = [(a, b) for a, b in zip(ours, theirs, strict=False) if b]
        return statistics.median(a / b for a, b in pairs) if pairs else None


@dataclass
class Line:
    """One row of the table, every cell already text."""

    figure: str
    client: str
    dicomhub: str
    peer: str
    ratio: str
    floor: str
    spread: str


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}"


def spread(figure: Figure, servers: Sequence[str]) -> str:
    parts = []
    for server in servers:
        values = sorted(figure.values.get(server, []))
        if len(values) > 1:
            median = statistics.median(values)
            parts.append(
                f"{server} {number(values[0], '').strip()} / "
                f"{number(median, '').strip()} / {number(values[-1], '').strip()}"
            )
    return "; ".join(parts)


def line(figure: Figure) -> Line:
    ratio = figure.ratio()
    way = "higher" if figure.higher_is_better else "lower"
    floor = ""
    if figure.floor:
        floor = f"{figure.floor}: {number(figure.median(figure.floor), figure.unit)}"
    return Line(
        figure.name,
        figure.client,
        number(figure.median(DICOMHUB), figure.unit),
        number(figure.median(PEER), figure.unit),
        f"{ratio:.2f} ({way} is better)" if ratio is not None else "n/a",
        floor,
        spread(
            figure, [DICOMHUB, PEER, figure.floor] if figure.floor else [DICOMHUB, PEER]
        ),
    )


HEADER = (
    "| figure | client | dicomhub | Orthanc | dicomhub/Orthanc | floor "
    "| min / median / max over repeats |"
)


def table(lines: Sequence[Line]) -> str:
    rows = [HEADER, "|---|---|---|---|---|---|---|"]
    rows += [
        f"| {x.figure} | {x.client} | {x.dicomhub} | {x.peer} | {x.ratio} "
        f"| {x.floor} | {x.spread} |"
        for x in lines
    ]
    return "\n".join(rows)
