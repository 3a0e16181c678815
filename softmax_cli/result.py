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


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
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
    # A reduction's per-row arrays (per-sample losses, top-k per row, compare's per-row figures): CSV, TSV
    # and JSON write its summary only and these only when ``per_row`` (--per-row); binary formats always.
    per_row_names: tuple[str, ...] = ()
    per_row: bool = False
    # Arrays asked for as a table of their own (--per-sequence): a one-table format writes them as its rows
    # even without --per-row, with the summary as leading comments.
    table_names: tuple[str, ...] = ()
    # What produced it (the command, each input's path, shape, dtype and key) and what the gates decided:
    # written by JSON, and in the metadata of npz, safetensors and Parquet/Arrow (see :meth:`metadata`).
    command: str | None = None
    inputs: list[dict] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
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

    def metadata(self) -> dict:
        """The provenance and the gates' verdicts as JSON values; empty when no command set them.

        ``{"command", "version", "inputs": [{"role", "path", "shape", "dtype", "key"}], "gates": [...]}``,
        ``gates`` only when a gate was given (docs/ci.md documents the schema).
        """
        if self.command is None:
            return {}
        from . import __version__

        written = {"command": self.command, "version": __version__, "inputs": self.inputs}
        if self.gates:
            written["gates"] = [gate.as_dict() for gate in self.gates]
        return written

    def failed_gates(self) -> list[Gate]:
        return [gate for gate in self.gates if not gate.passed]


@dataclass(frozen=True)
class Gate:
    """One CI gate's verdict: the option and its bound, the figure it holds to it, and whether it passed.

    ``comparison`` is what passing means (``<=``: the figure may not exceed the
    threshold; ``>=``: it may not fall below it); a NaN figure never passes.
    ``given`` is the option's value as typed (``0.99:0.05`` for a quantile; :func:`as_typed`).
    """

    option: str
    figure: str  # the result's name for what was measured (loss, topk_accuracy, kl_mean, kl_quantile_0.99, ...)
    description: str  # the figure in words, for the gate-failed line
    comparison: str
    threshold: float
    measured: float
    given: str

    @property
    def passed(self) -> bool:
        return bool(self.measured <= self.threshold if self.comparison == "<=" else self.measured >= self.threshold)

    @property
    def shown(self) -> str:
        """The measured figure as every line and report prints it: six significant digits, or all of them when six
        would put it at the bound or on the other side of it than its verdict."""
        shown = f"{self.measured:.6g}"
        if (float(shown) <= self.threshold if self.comparison == "<=" else float(shown) >= self.threshold) \
                != self.passed:
            shown = repr(float(self.measured))
        return shown

    @property
    def message(self) -> str:
        sign = ">" if self.comparison == "<=" else "<"
        return f"{self.description} {self.shown} {sign} {self.option} {self.given}"

    def as_dict(self) -> dict:
        """The verdict as JSON values (a NaN figure is null)."""
        import math

        measured = self.measured if math.isfinite(self.measured) else None
        return {"option": self.option, "figure": self.figure, "comparison": self.comparison,
                "threshold": self.threshold, "measured": measured, "passed": self.passed}


def as_typed(value: float) -> str:
    """A number from the command line written back as people type it (``1e-09``, ``10``), every digit kept."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))
