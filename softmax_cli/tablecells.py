"""What goes in a table's cells, which rows and columns fit, and how they are drawn.

A table never cuts or wraps a number. Every column of one quantity shares one
format chosen from the values shown, and the columns that do not fit the
console are left out as a block, counted in a "… N more" column whose width
is measured with the others before anything is drawn. Rich shrinks a table
wider than the console by cutting its cells, so none is ever handed to it:
what cannot be drawn as a table even so is drawn as ``label  value`` lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The largest value of a quantity shows this many significant digits ...
SIGNIFICANT = 4
# ... and the smallest nonzero one at least this many, if that costs at most EXTRA_DECIMALS more decimals.
SMALLEST_SIGNIFICANT = 2
EXTRA_DECIMALS = 1
# Magnitudes from which fixed decimals would be too long or too empty: scientific notation instead.
LARGE, SMALL = 1e7, 1e-4
# float64 needs 16 decimals to tell 1 - 2**-53 from 1.
MAX_DECIMALS = 17

# A table shows at most this many rows: the first and the last half of them.
MAX_ROWS = 20
BAR_WIDTH = 30
# A column of labels (class names) may fold its cells down to this many characters, and no further.
LEAST_LABEL = 5
# Between a label and its value on a line of their own.
LABEL_GAP = 2
_EIGHTHS = " ▏▎▍▌▋▊▉"

Formatter = Callable[[object], str]


def _decimals_for(magnitude: float, significant: int) -> int:
    return max(0, significant - 1 - math.floor(math.log10(magnitude)))


def number_format(values, precision: int | None = None, probability: bool = False) -> Formatter:
    """One format for every value of a quantity (one column, or a block of columns of one kind).

    Fixed decimals, the same for all: enough for the largest value's four
    significant digits (``--precision N``: N). A nonzero value that would show
    fewer than two significant digits is written in scientific notation
    instead, so ``1e-07`` never reads as ``0``. With ``probability`` the decimals grow until no value
    below 1 shows as 1 (``0.9999998``).
    """
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return lambda value: str(int(value))
    magnitudes = np.abs(values[np.isfinite(values)].astype(np.float64))
    nonzero = magnitudes[magnitudes > 0]
    largest = float(nonzero.max()) if nonzero.size else 0.0
    scientific = largest >= LARGE or (precision is None and 0 < largest < SMALL)
    if precision is not None:
        decimals = precision
    elif largest == 0:
        decimals = 1
    else:
        decimals = _decimals_for(largest, SIGNIFICANT)
        smallest = _decimals_for(float(nonzero.min()), SMALLEST_SIGNIFICANT)
        decimals = max(decimals, min(smallest, decimals + EXTRA_DECIMALS))
        if probability:
            below_one = nonzero[nonzero < 1]
            while decimals < MAX_DECIMALS and any(f"{v:.{decimals}f}" == f"{1:.{decimals}f}" for v in below_one):
                decimals += 1
    mantissa = SIGNIFICANT - 1 if precision is None else precision

    def text(value) -> str:
        value = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
        if not math.isfinite(value):
            return str(value)
        if scientific:
            return f"{value:.{mantissa}e}"
        if precision is None and 0 < abs(value) < 10.0 ** (1 - decimals):
            return f"{value:.1e}"  # fewer than two significant digits would show, or none
        return f"{value:.{decimals}f}"

    return text


def texts(values, precision: int | None = None, probability: bool = False) -> list[str]:
    """One column's values, in the format chosen for that column."""
    format_ = number_format(values, precision, probability)
    return [format_(value) for value in values]


def scalar(value, precision: int | None) -> str:
    """A single figure (a loss, an accuracy) on its own: its own format."""
    return number_format(np.asarray(value).reshape(1), precision)(np.asarray(value).item())


_PLURALS = {"class": "classes", "weight matrix": "weight matrices"}


def more(count: int, what: str) -> str:
    """The elision note: ``… 3 more classes``."""
    noun = what if count == 1 else _PLURALS.get(what, what + "s")
    return f"… {count} more {noun}"


def text_width(cell: str | Text) -> int:
    plain = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in plain.split("\n")), default=0)


@dataclass
class Column:
    """A column to be: header, the cells of the rows shown, and how it is drawn.

    Only a ``wrap`` column (the elision note) may break its header, at spaces;
    every other column is exactly as wide as its widest cell or header.
    """

    header: str
    cells: list
    justify: str = "right"
    style: str | None = None
    wrap: bool = False

    @property
    def width(self) -> int:
        header = max(cell_len(word) for word in self.header.split()) if self.wrap and self.header else cell_len(self.header)
        return max([header, *(text_width(cell) for cell in self.cells)])

    @property
    def least(self) -> int:
        """The narrowest it may be drawn: a ``wrap`` column folds its cells (labels), any other is its width."""
        if not self.wrap:
            return self.width
        header = max((cell_len(word) for word in self.header.split()), default=0)
        return max(header, min(LEAST_LABEL, max((text_width(cell) for cell in self.cells), default=0)))


def table_width(columns: list[Column], least: bool = False) -> int:
    """Characters a boxed Rich table of these columns takes: one space of padding each side, one border between.

    With ``least``, the fewest it can take, its ``wrap`` columns folded as far as they may be.
    """
    return sum((column.least if least else column.width) + 3 for column in columns) + 1


def labelled(rows: list[tuple[str, list[str]] | None], width: int) -> list[Text]:
    """``label  value`` lines for a console too narrow for a table: every value whole, right-aligned.

    A label's values share its line when they fit beside it; otherwise the
    label has a line of its own and its values follow, together when they fit
    in the width, else one a line. Labels may wrap; values never do. A row
    ``None`` is an empty line between blocks.
    """
    indent = " "
    placed = []  # (label, its values on its line or None, the values' lines under it)
    for row in rows:
        if row is None:
            placed.append(("", None, []))
            continue
        label, values = row
        label, text = indent + label, " ".join(values)
        if cell_len(label) + LABEL_GAP + cell_len(text) <= width:
            placed.append((label, text, []))
        else:
            placed.append((label, None, [text] if cell_len(indent + text) <= width else values))
    # One right edge for every value: the widest line holding a label and its values, or a value alone.
    edge = min(width, max([cell_len(label) + LABEL_GAP + cell_len(text) for label, text, _ in placed if text is not None]
                          + [cell_len(indent + value) for _, _, under in placed for value in under], default=0))
    drawn = []
    for label, text, under in placed:
        line = Text(label, style="bold" if label else None)
        drawn.append(line.append(text.rjust(edge - cell_len(label))) if text is not None else line)
        drawn += [Text(value.rjust(edge)) for value in under]
    return drawn


def draw_table(console: Console, title: str | None, columns: list[Column], sections_after: tuple[int, ...] = ()) -> None:
    """Title on its own line (so it wraps at the console's width, not the table's), then the table.

    A table that cannot fit the console even with its labels folded is drawn
    as ``header  cell`` lines instead, a block per row: Rich would cut it.
    """
    if title:
        console.print(Text(title, style="bold"))
    rows = max((len(column.cells) for column in columns), default=0)
    if table_width(columns, least=True) > console.width:
        records: list[tuple[str, list[str]] | None] = []
        for i in range(rows):
            # A bar (a column without a header) only draws the number beside it.
            records += [None] * bool(i) + [(column.header, [text.plain if isinstance(text, Text) else text])
                                           for column in columns if column.header and (text := column.cells[i])]
        for line in labelled(records, console.width):
            console.print(line)
        return
    table = Table()
    for column in columns:
        table.add_column(column.header, justify=column.justify, style=column.style, no_wrap=not column.wrap,
                         overflow="fold")
    for i in range(rows):
        table.add_row(*(column.cells[i] for column in columns), end_section=i in sections_after)
    console.print(table)


def fitting(width: int, fixed: list[Column], groups: list[list[Column]]) -> int:
    """How many leading ``groups`` fit in ``width`` beside the ``fixed`` columns."""
    used, shown = table_width(fixed), 0
    for group in groups:
        used += sum(column.width + 3 for column in group)
        if used > width:
            break
        shown += 1
    return shown


def fit(width: int, before: list[Column], groups: list[list[Column]], after: list[Column],
        what: str | Callable[[int], str], total: int | None = None, also: str = "", give_way: bool = True
        ) -> list[Column]:
    """``before`` + the leading ``groups`` of columns that fit in ``width`` + a "… N more" column + ``after``.

    A group (a class and its probability, say) is shown whole or not at all.
    ``total`` counts every group there is (``groups`` may hold only the
    candidates that could possibly fit); ``what`` names a group, or says from
    how many are shown what the hidden ones are. When not one group fits
    beside ``after``, the ``after`` columns give way (unless not ``give_way``),
    named in the note.
    """
    total = len(groups) if total is None else total
    rows = max((len(column.cells) for column in before + after), default=0)
    shown = fitting(width, before + after, groups)
    if shown == total:
        return before + [column for group in groups for column in group] + after

    def with_note(count: int) -> list[Column]:
        noun = what(count) if callable(what) else what
        note = Column(more(total - count, noun) + also, ["…"] * rows, justify="left", style="dim", wrap=True)
        return before + [column for group in groups[:count] for column in group] + [note] + after

    while shown > 0 and table_width(with_note(shown)) > width:
        shown -= 1
    if shown == 0 and after and groups and give_way:
        alone = fit(width, before, groups, [], what, total, " and " + ", ".join(column.header for column in after))
        # Better one group shown than the ``after`` columns; and they give way anyway when even the note
        # does not fit beside them (Rich would squeeze it to a blank column).
        if len(alone) > len(before) + 1 or table_width(with_note(0)) > width:
            return alone
    return with_note(shown)


def candidates(count: int, width: int) -> int:
    """How many data columns are worth formatting: none narrower than one character fits past this."""
    return min(count, max(1, width // 4))


def head_and_tail(n: int) -> np.ndarray:
    """Which rows a table shows: all that fit, else the first and the last MAX_ROWS // 2."""
    if n <= MAX_ROWS:
        return np.arange(n)
    half = MAX_ROWS // 2
    return np.r_[0:half, n - half:n]


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``fraction`` (0..1) of ``width`` cells, in eighths."""
    if not np.isfinite(fraction):
        return ""
    eighths = int(round(min(max(fraction, 0.0), 1.0) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def line(fraction: float, width: int) -> str:
    """A thin bar in halves of a cell: the second series of a chart, told apart without colour."""
    if not np.isfinite(fraction):
        return ""
    halves = int(round(min(max(fraction, 0.0), 1.0) * width * 2))
    full, half = divmod(halves, 2)
    return "━" * full + ("╸" if half else "")
