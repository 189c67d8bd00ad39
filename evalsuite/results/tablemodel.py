"""A built table, independent of its output format: columns, cells and a footer.

Builders (``tablebuild``, ``paper``) produce a ``Table``; renderers (``render``) turn it into
Markdown, CSV, LaTeX or HTML. Numbers stay numbers until rendering, so every format rounds
the same way, in one place (``format_number``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# Cell marks: a cell that has no number says why, in every format.
NOT_MEASURED = "n/m"  # evalsuite can measure it, but no matching record exists (yet)
NOT_MEASURABLE = "n/a"  # evalsuite cannot measure it (the reason is in the footer)
NOT_PUBLISHED = "n/p"  # the paper does not report it
UNRELIABLE = "†"  # a value the metric itself marks unreliable (the reason is in the footer)
MARKS = {
    NOT_MEASURED: "not measured: no matching record",
    NOT_MEASURABLE: "not measurable by evalsuite",
    NOT_PUBLISHED: "not published",
}


@dataclass
class Cell:
    """A number (with an optional interval), a text, or a mark saying why there is no number."""

    value: float | int | str | None = None
    ci: tuple[float, float] | None = None
    mark: str | None = None
    tip: str | None = None  # more about the cell (a variant's full spec): HTML tooltip
    flag: str | None = None  # a footnote mark after the value (UNRELIABLE)

    @property
    def number(self) -> float | None:
        return float(self.value) if isinstance(self.value, (int, float)) and self.mark is None else None


@dataclass
class Column:
    """How a column is shown: label, digits after the point, thousands separators, sign."""

    label: str
    digits: int | None = None  # None: text, or a number shown as it is
    thousands: bool = False
    signed: bool = False  # deltas: always show + or -
    suffix: str = ""  # "%" for relative deltas
    kind: str = "value"  # label | value | delta | delta_pct | theirs | ours
    # The metric's direction (None: a figure with no better side, e.g. a parameter count):
    # a delta column is coloured by improvement, not by sign (a lower FID is better).
    higher_is_better: bool | None = None

    def verdict(self, cell: "Cell") -> str | None:
        """'better' / 'worse' for a non-zero delta of a metric with a direction, else None."""
        if not self.kind.startswith("delta") or self.higher_is_better is None or not cell.number:
            return None
        return "better" if (cell.number > 0) == self.higher_is_better else "worse"


@dataclass
class Table:
    """Rows of cells under columns, plus the footer that says what the numbers are."""

    name: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]]
    footer: list[str] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)
    # footer line -> its one-line summary: HTML folds the line under it (<details>)
    folds: dict[str, str] = field(default_factory=dict)

    def column(self, label: str) -> list[Cell]:
        """The cells of the column labelled ``label`` (top to bottom)."""
        idx = [c.label for c in self.columns].index(label)
        return [row[idx] for row in self.rows]

    def values(self, label: str) -> list[Any]:
        """Plain values of a column (marks as their text), for tests and scripts."""
        return [c.mark if c.mark else c.value for c in self.column(label)]


def round_half_up(value: float, digits: int) -> Decimal:
    """Round like a person does (0.125 -> 0.13), from the shortest repr of the float."""
    quantum = Decimal(1).scaleb(-digits)
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)


def format_number(value: float | int, digits: int | None, thousands: bool = False,
                  signed: bool = False) -> str:
    """``value`` with ``digits`` after the point (None: as it is), optional separators and sign."""
    if isinstance(value, float) and value != value:  # NaN
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return ("+" if signed and value > 0 else "") + ("inf" if value > 0 else "-inf")
    if digits is None:
        text = f"{value:,}" if thousands and isinstance(value, int) else str(value)
    else:
        d = round_half_up(value, digits)
        text = f"{d:,.{digits}f}" if thousands else f"{d:.{digits}f}"
        if d == 0:
            text = text.lstrip("-")  # -0.00 reads as a difference; it is none
    if signed and not text.startswith("-") and text.strip("0.,") != "":
        text = "+" + text
    return text


def format_cell(cell: Cell, column: Column, show_ci: bool = True) -> str:
    """The text of a cell in a human-readable format (Markdown, LaTeX, HTML)."""
    if cell.mark:
        return cell.mark
    if cell.value is None:
        return ""
    if isinstance(cell.value, str):
        return cell.value
    text = format_number(cell.value, column.digits, column.thousands, column.signed) + column.suffix
    if show_ci and cell.ci is not None:
        half = (cell.ci[1] - cell.ci[0]) / 2
        text += " ± " + format_number(half, column.digits, column.thousands)
    return text + (cell.flag or "")
