"""What a command hands to a renderer: named arrays, primary first."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Result:
    """A command's output.

    ``arrays`` holds every named result in order, the primary one first; a
    scalar is a 0-d array. ``header`` names the primary array's last axis in
    CSV/TSV (the class names, when known and when that axis is the classes).
    ``column`` marks a 1-D primary array whose entries are rows (per-sample
    losses, temperatures), written one per line instead of as one line.
    ``layout`` tells the table renderer how to draw it; ``display`` holds
    arrays shown in the table only (an entropy column, say), never in the
    machine formats.
    """

    arrays: dict[str, np.ndarray]
    classes: list[str] | None = None
    rows: list[str] | None = None
    header: list[str] | None = None
    column: bool = False
    layout: str = "grid"
    title: str = ""
    display: dict[str, np.ndarray] = field(default_factory=dict)
    # ``rows`` names each row (a pandas index, as text); ``rows_name`` is that
    # column's header, written back over it ("" for pandas' unnamed index).
    rows_name: str = ""

    @property
    def primary_name(self) -> str:
        return next(iter(self.arrays))

    @property
    def primary(self) -> np.ndarray:
        return self.arrays[self.primary_name]
