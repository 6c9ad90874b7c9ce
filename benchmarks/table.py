"""Figures, their targets, and the plain-text table the benchmark prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# How each unit is written: (format of the number, suffix).
_UNITS: dict[str, tuple[str, str]] = {
    "x": ("{:.3f}", "x"),
    "ms": ("{:.2f}", " ms"),
    "s": ("{:.2f}", " s"),
    "cpu-s": ("{:.3f}", " CPU s"),
    "MB": ("{:.1f}", " MB"),
    "events/s": ("{:,.0f}", " events/s"),
    "req/s": ("{:,.0f}", " req/s"),
    "us": ("{:.1f}", " µs"),
    "rows/s": ("{:,.0f}", " rows/s"),
}


def format_value(value: float, unit: str) -> str:
    number, suffix = _UNITS[unit]
    return number.format(value) + suffix


@dataclass(frozen=True)
class Target:
    """A bound a figure should stay within, e.g. Target("<=", 1.05)."""

    op: Literal["<=", ">="]
    bound: float

    def is_met(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound


@dataclass(frozen=True)
class Figure:
    """One line of the table; `detail` carries the raw numbers behind a ratio or a difference."""

    name: str
    value: float
    unit: str
    target: Target | None = None
    detail: str = ""

    @property
    def met(self) -> str:
        if self.target is None:
            return "-"
        return "yes" if self.target.is_met(self.value) else "NO"

    def row(self) -> tuple[str, str, str, str, str]:
        target = f"{self.target.op} {format_value(self.target.bound, self.unit)}" if self.target else "-"
        return (self.name, format_value(self.value, self.unit), target, self.met, self.detail)


HEADER = ("figure", "value", "target", "met?", "detail")


def render(figures: Sequence[Figure]) -> str:
    """An aligned text table, one figure per line."""
    rows = [HEADER, *(figure.row() for figure in figures)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER) - 1)]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in [*widths, len(HEADER[-1])]))
    return "\n".join(lines)
