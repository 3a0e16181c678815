"""What a command hands to a renderer: named arrays, primary first."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Layout(str, Enum):
    """What kind of result a :class:`Result` is: how a table draws it (``tables.LAYOUTS``) and how a tidy table
    lays out its arrays (:mod:`softmax_cli.tidy`)."""

    grid = "grid"  # any array: rows and columns as they are
    distribution = "distribution"  # one distribution per row over the classes (probs)
    jacobian = "jacobian"
    loss = "loss"
    sweep = "sweep"
    # Per row, the k best classes: ``indices``, ``probs`` (and ``names``) of shape (..., k), rank-major columns.
    topk = "topk"
    attention = "attention"
    compare = "compare"

    @property
    def ranked(self) -> bool:
        """Its per-row arrays are ranks (one column per rank and array, rank1_index, rank1_prob, ...)."""
        return self is Layout.topk


@dataclass
class Result:
    """A command's output.

    ``arrays`` holds every named result in order, the primary one first; a
    scalar is a 0-d array. ``header`` names the primary array's last axis in
    CSV/TSV (the class names, when known and when that axis is the classes).
    ``column`` marks a 1-D primary array whose entries are rows (per-sample
    losses, temperatures), written one per line instead of as one line.
    ``layout`` says what kind of result it is (a :class:`Layout`; its name is
    accepted too) for the table renderer and the tidy table; ``display`` holds
    arrays shown in the table only (an entropy column, say), never in the
    machine formats.
    """

    arrays: dict[str, np.ndarray]
    classes: list[str] | None = None
    rows: list[str] | None = None
    header: list[str] | None = None
    column: bool = False
    layout: Layout = Layout.grid
    title: str = ""
    display: dict[str, np.ndarray] = field(default_factory=dict)
    # ``rows`` names each row (a pandas index, as text); ``rows_name`` is that
    # column's header, written back over it ("" for pandas' unnamed index).
    rows_name: str = ""

    def __post_init__(self) -> None:
        self.layout = Layout(self.layout)

    @property
    def primary_name(self) -> str:
        return next(iter(self.arrays))

    @property
    def primary(self) -> np.ndarray:
        return self.arrays[self.primary_name]
