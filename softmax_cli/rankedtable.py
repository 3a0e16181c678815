"""A batch of probabilities with more classes than the console shows: each row's most probable classes, in order.

The first columns by index (classes 0 to 13 of 32,000) say nothing about a
row; its most probable classes do. Each row shows as many (class, probability)
pairs as fit, highest first with ties to the lower index (as ``topk``), then
how many classes are left out and the probability they hold together. Every
probability of the table is written in one format, chosen once from the
values that can be shown; a per-row figure beside them (entropy, in nats) has
its own.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console

from .tablecells import Column, fit, fitting, number_format, table_width, texts

# The fewest characters a (class, probability) pair takes: how many pairs are worth ranking at all.
PAIR_WIDTH = 8


def fits_by_index(width: int, before: list[Column], classes: list[Column], after: list[Column]) -> bool:
    """Whether every class, one column each, fits beside the other columns."""
    return fitting(width, before + after, [[column] for column in classes]) == len(classes)


def ranked_columns(console: Console, shown_rows: np.ndarray, row_labels: list[str], names: list[str] | None,
                   extra: dict[str, np.ndarray], precision: int | None, log: bool) -> list[Column]:
    """The columns of the table: row, then #1 p#1 #2 p#2 ... as fit, the rest's count and mass, then ``extra``.

    ``shown_rows`` are the rows the table shows (all their classes), ``extra`` per-row columns of those rows.
    """
    n_classes = shown_rows.shape[1]
    block = np.asarray(shown_rows, dtype=np.float64)
    ranks = min(n_classes, max(1, console.width // PAIR_WIDTH))
    # Highest first, ties to the lower index: a stable sort of the negated values.
    order = np.argsort(-block, axis=1, kind="stable")
    ranked = np.take_along_axis(block, order, axis=1)
    top = ranked[:, :ranks]
    # What the classes after rank r hold together, summed from the smallest up (no 1 - 0.9999 cancellation).
    probabilities = np.exp(ranked) if log else ranked
    beyond = np.flip(np.cumsum(np.flip(probabilities, axis=1), axis=1), axis=1)[:, 1:ranks + 1]
    extra_values = [np.asarray(value, dtype=np.float64) for value in extra.values()]
    format_ = number_format(np.concatenate([top.ravel(), [] if log else beyond.ravel()]), precision,
                            probability=not log)
    label = (lambda j: names[j]) if names is not None else str
    groups = [[Column(f"#{r + 1}", [label(int(j)) for j in order[:, r]], justify="left"),
               Column(f"{'log p' if log else 'p'}#{r + 1}", [format_(v) for v in top[:, r]])] for r in range(ranks)]
    before = [Column("row", row_labels, style="dim")]
    after = [Column(key, texts(value, precision), style="cyan") for key, value in zip(extra, extra_values)]
    columns = fit(console.width, before, groups, after, "class", n_classes)
    shown = sum(1 for column in columns if column.header.startswith("#"))
    if shown and shown < n_classes and not log:
        # Beside the count of the left-out classes (the note column fit() added), the probability they hold.
        note = next(i for i, column in enumerate(columns) if column.header.startswith("…"))
        with_mass = [*columns[:note], Column(f"{columns[note].header}, Σp", [format_(v) for v in beyond[:, shown - 1]],
                                             style="dim", wrap=True), *columns[note + 1:]]
        if table_width(with_mass) <= console.width:
            columns = with_mass
    return columns
