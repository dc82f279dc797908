"""The bench's table: one row per measure, a result and the detail behind it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    measure: str
    result: str
    detail: str


def table(rows: list[Row]) -> str:
    lines = ["| measure | result | detail |", "|---|---|---|"]
    lines += [f"| {r.measure} | {r.result} | {r.detail} |" for r in rows]
    return "\n".join(lines)
