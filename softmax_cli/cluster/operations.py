"""The core's operations over the units of a run: array outputs written by workers, exact reductions.

Each ``_*_unit`` function runs on a worker: it reads its rows, calls the pure
core on them (positions in errors name the whole source, through
``block_of``) and returns something small. The public functions plan the
units, run them on an :class:`~softmax_cli.cluster.engine.Engine` and
combine the parts on the client in a way that does not depend on the split.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import core
from ..core.blocks import block_of
from ..errors import InputError, SoftmaxError
from .engine import Engine
from .units import NpyOutput, OutputSlot, Source, Unit, plan_units, read_rows, rows_for_bytes

# Input bytes per unit: large enough that Dask's per-task cost is noise, small
# enough that a worker holds a few units well inside the streaming memory budget,
# and below glibc's largest mmap threshold (32 MiB): a larger block is a fresh
# mapping at every unit, and its page faults made 32 MiB units 2-4x slower than
# 16 MiB ones here (benchmarks/scheduler.py).
DEFAULT_UNIT_BYTES = 16 << 20


@dataclass
class Run:
    """What to run over: the sources in order, the units covering them, and the engine."""

    engine: Engine
    sources: list[Source]
    units: list[Unit]

    @classmethod
    def plan(cls, engine: Engine, sources: list[Source], unit_bytes: int = DEFAULT_UNIT_BYTES,
             rows_per_unit: int | None = None) -> "Run":
        rows = rows_per_unit or rows_for_bytes(sources[0], unit_bytes)
        return cls(engine, sources, plan_units(sources, rows))

    @property
    def n_rows(self) -> int:
        return sum(s.n_rows for s in self.sources)

    @property
    def n_cols(self) -> int:
        return self.sources[0].n_cols

    def target_rows(self, labels) -> bool:
        """Whether ``labels`` are target distributions (one row per logits row), not class indices."""
        labels = np.asarray(labels)
        return labels.ndim > 1 and labels.size == self.n_rows * self.n_cols

    def labels_for(self, labels: np.ndarray | None) -> Callable[[Unit], tuple]:
        """Per-unit arguments: the unit's slice of one label (or target row) per row of the whole run."""
        if labels is None:
            return lambda unit: (None,)
        labels = np.asarray(labels)
        flat = labels.reshape(self.n_rows, self.n_cols) if self.target_rows(labels) else labels.reshape(-1)
        if flat.shape[0] != self.n_rows:
            raise InputError(f"labels of shape {labels.shape} do not fit {self.n_rows} rows of "
                             f"{self.n_cols} classes (one label or one target row per row)")
        return lambda unit: (flat[unit.first_row : unit.first_row + unit.n_rows],)


@dataclass
class Outcome:
    """A result, and the sources that failed under ``keep_going`` (their errors, in source order)."""

    value: object
    failures: list[SoftmaxError] = field(default_factory=list)


def located_block(unit: Unit):
    return block_of(unit.source.shape if len(unit.source.shape) > 1 else (unit.source.n_cols,), -1, unit.start)


# --------------------------------------------------------------------------- array outputs


def _map_unit(unit: Unit, labels, slot: OutputSlot, operation: str, options: dict) -> int:
    rows = read_rows(unit)
    with located_block(unit):
        if operation == "grad":
            result = core.cross_entropy_grad(rows, labels, **options)
        else:
            result = getattr(core, operation)(rows, axis=-1, **options)
    slot.write(unit.start, result)
    return unit.n_rows


def map_to_npy(run: Run, operation: str, outputs: list[str | os.PathLike], labels=None, **options) -> Outcome:
    """``operation`` ("softmax", "log_softmax" or "grad") of every source into its ``.npy`` output.

    ``outputs`` has one path per source. Each is written by the workers into a
    reserved temporary file and renamed into place only when all its units
    succeeded; otherwise it is removed. ``grad`` takes ``labels`` for the whole
    run and the core's options; a ``mean`` divides by the whole run's
    denominator, so every shard's gradient is that of the one loss.
    """
    if len(outputs) != len(run.sources):
        raise InputError(f"{len(outputs)} outputs for {len(run.sources)} inputs")
    if operation == "grad":
        options.setdefault("denominator", _mean_denominator(run, labels, options))
    files = []
    try:
        for source, path in zip(run.sources, outputs):
            files.append(NpyOutput(path, source.shape, core.output_dtype(source.dtype)))
        slots = [f.slot for f in files]
        arguments = run.labels_for(labels if operation == "grad" else None)
        done = run.engine.run(run.units, _map_unit,
                              lambda u: (*arguments(u), slots[u.source_index], operation, options))
        planned = Counter(unit.source_index for unit in run.units)
        finished = Counter(run.units[position].source_index for position in done)
        complete = {i for i in range(len(run.sources)) if finished[i] == planned[i]}
        for index, output in enumerate(files):
            if index in complete:
                output.commit()
    finally:
        for output in files:
            output.discard()
    return Outcome([os.fspath(outputs[i]) for i in sorted(complete)], run.engine.failures)


def _labels_of_sources(run: Run, labels, kept: list[int]):
    """The labels of the rows of the sources ``kept`` (all of them when nothing failed)."""
    if len(kept) == len(run.sources):
        return labels
    starts = np.cumsum([0] + [s.n_rows for s in run.sources])
    flat = np.asarray(labels).reshape(run.n_rows, -1)
    return np.concatenate([flat[starts[i] : starts[i + 1]] for i in kept]).reshape(
        (-1, run.n_cols) if run.target_rows(labels) else (-1,))


def _mean_denominator(run: Run, labels, options: dict) -> float:
    return core.mean_denominator(np.asarray(labels), (run.n_rows, run.n_cols), weights=options.get("weights"),
                                 ignore_index=options.get("ignore_index", -100))


# --------------------------------------------------------------------------- reductions


def _loss_unit(unit: Unit, labels, keep, options: dict) -> tuple[int, core.CrossEntropyTerms]:
    """The unit's terms and its first row in the run, as :func:`core.merge_cross_entropy_terms` takes them.

    Rows ``keep`` drops (padding) are blanked before they are read, as in process.
    """
    rows = read_rows(unit) if keep is None else core.blank_rows(read_rows(unit), keep)
    with located_block(unit):
        return unit.first_row, core.cross_entropy_terms(rows, labels, reduction="none", **options)


def cross_entropy_terms(run: Run, labels, *, reduction: str = "mean", keep: np.ndarray | None = None,
                        **options) -> Outcome:
    """:func:`core.cross_entropy_terms` over the run; ``value`` is a ``core.CrossEntropyTerms``.

    ``keep`` (flat, one flag per row of the run: ``--mask``) blanks the rows
    it drops before the core reads them; their labels are the ignore index.

    The per-row losses (a result of their own, one value per row) are gathered
    in row order and reduced by :func:`core.reduce_losses` over the core's own
    denominator, so ``loss`` is bit-identical to the in-process one for any
    split: the same values in the same order go through the same sum.
    """
    if reduction not in core.REDUCTIONS:
        raise InputError(f"reduction must be one of {', '.join(core.REDUCTIONS)}, got {reduction!r}")
    _mean_denominator(run, labels, options)  # the labels' and weights' errors before any work
    arguments = run.labels_for(labels)
    parts = run.engine.run(run.units, _loss_unit, lambda u: (
        *arguments(u), None if keep is None else keep[u.first_row : u.first_row + u.n_rows], options))
    ordered = [parts[p] for p in sorted(parts)]
    # Under keep_going the mean is over the sources that succeeded.
    kept = sorted({run.units[p].source_index for p in parts})
    done = Run(run.engine, [run.sources[i] for i in kept], []) if len(kept) < len(run.sources) else run
    denominator = _mean_denominator(done, _labels_of_sources(run, labels, kept), options)
    terms = core.merge_cross_entropy_terms(ordered, denominator, reduction,
                                           dtype=core.output_dtype(run.sources[0].dtype),
                                           target_kind="probs" if run.target_rows(labels) else "index")
    return Outcome(terms, run.engine.failures)


def _topk_unit(unit: Unit, _labels, k: int, options: dict):
    rows = read_rows(unit)
    with located_block(unit):
        return core.topk(rows, k, axis=-1, **options)


def topk(run: Run, k: int, **options) -> Outcome:
    """:func:`core.topk` per range, concatenated in row order: ``value`` is ``(indices, probs)`` of ``(rows, k)``."""
    k = core.check_k(k, run.n_cols)  # before any unit runs
    parts = run.engine.run(run.units, _topk_unit, lambda u: (None, k, options))
    ordered = [parts[p] for p in sorted(parts)]
    if not ordered:
        return Outcome((np.empty((0, k), np.int64), np.empty((0, k))), run.engine.failures)
    return Outcome((np.concatenate([i for i, _ in ordered]), np.concatenate([p for _, p in ordered])),
                   run.engine.failures)
