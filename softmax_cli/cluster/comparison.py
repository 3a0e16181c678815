"""``compare`` over a run: two row-aligned inputs read in lockstep units, per-row figures gathered in row order.

A unit here is a pair of :class:`~softmax_cli.cluster.units.Unit` over the
same rows of the run, one in the reference's sources and one in the
candidate's, which may be split into shards at different rows: the run is cut
at every shard boundary of either side, so each unit reads one shard of each.
The worker calls :func:`softmax_cli.core.divergence_rows` on the two blocks as
:func:`softmax_cli.stream.divergence_rows` does on a streamed block; the
per-row figures (one float per row per figure) come back to the client and are
joined in row order, so they are bit-identical to the in-process run for any
split, and the client computes the summary from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import core
from ..errors import InputError, SoftmaxError
from .engine import Engine, Failure
from .operations import located_block
from .units import Source, Unit, read_rows, rows_for_bytes


@dataclass(frozen=True)
class PairUnit:
    """The same rows of the reference and of the candidate; the engine sees the reference's unit."""

    reference: Unit
    candidate: Unit

    @property
    def source(self) -> Source:
        return self.reference.source

    @property
    def source_index(self) -> int:
        return self.reference.source_index

    @property
    def n_rows(self) -> int:
        return self.reference.n_rows

    @property
    def first_row(self) -> int:
        return self.reference.first_row

    def rows(self) -> str:
        return self.reference.rows()


def check_aligned(reference: list[Source], candidate: list[Source], names: tuple[str, str]) -> None:
    """Refuse two inputs whose rows do not pair up: another shape (one array each), else another row count."""
    if len(reference) == 1 and len(candidate) == 1:
        if reference[0].shape != candidate[0].shape:
            raise InputError(f"{names[0]} has shape {reference[0].shape} but {names[1]} has shape "
                             f"{candidate[0].shape}; the two must have the same shape")
        return
    ref_rows, cand_rows = (sum(s.n_rows for s in sources) for sources in (reference, candidate))
    if (ref_rows, reference[0].n_cols) != (cand_rows, candidate[0].n_cols):
        raise InputError(f"{names[0]} has {ref_rows:,} rows of {reference[0].n_cols} classes but {names[1]} has "
                         f"{cand_rows:,} rows of {candidate[0].n_cols}; the two must have the same rows")


def _starts(sources: list[Source]) -> list[int]:
    return np.cumsum([0] + [s.n_rows for s in sources]).tolist()


def _unit_at(sources: list[Source], starts: list[int], first: int, last: int) -> Unit:
    """The unit of rows ``first:last`` of the run, which lie in one of ``sources``."""
    index = int(np.searchsorted(starts, first, side="right")) - 1
    return Unit(sources[index], index, first - starts[index], last - starts[index], first)


def plan_pairs(reference: list[Source], candidate: list[Source], rows_per_unit: int) -> list[PairUnit]:
    """Units of about ``rows_per_unit`` rows covering the run in order, none crossing a shard of either side.

    On a Zarr side the units follow its chunks where the shards allow it
    (a unit that cuts a chunk reads the chunk whole and keeps its rows).
    """
    step = max(1, rows_per_unit)
    chunked = [s.chunk_rows for s in reference + candidate if s.kind == "zarr"]
    if chunked:
        step = max(1, round(step / chunked[0])) * chunked[0]
    ref_starts, cand_starts = _starts(reference), _starts(candidate)
    cuts = sorted(set(ref_starts) | set(cand_starts))
    units = []
    for low, high in zip(cuts, cuts[1:]):
        for first in range(low, high, step):
            last = min(high, first + step)
            units.append(PairUnit(_unit_at(reference, ref_starts, first, last),
                                  _unit_at(candidate, cand_starts, first, last)))
    return units


def _read(unit: Unit) -> np.ndarray:
    """The unit's rows; an input error names its source (the engine names only the reference's)."""
    try:
        return read_rows(unit)
    except SoftmaxError as error:
        raise error.located(unit.source.path) from None


def _divergence_unit(pair: PairUnit, labels, mask, options: dict):
    """The pair's per-row figures, as :func:`softmax_cli.stream.divergence_rows` computes a block's."""
    try:
        reference, candidate = _read(pair.reference), _read(pair.candidate)
        names = (pair.reference.source.path, pair.candidate.source.path)
        with located_block(pair.reference):
            return core.divergence_rows(reference, candidate, labels, names=names, mask=mask, **options)
    except SoftmaxError as error:  # already named (a file, or --labels): not the reference's path in front
        return Failure(error)


def divergence_rows(engine: Engine, reference: list[Source], candidate: list[Source], labels: np.ndarray | None,
                    mask: np.ndarray | None, unit_bytes: int, **options) -> core.RowDivergence:
    """:func:`core.divergence_rows` over two row-aligned runs; flat per-row figures, in row order.

    ``labels`` and ``mask`` are flat, one entry per row of the run (the
    client's, sliced per unit); ``options`` are the core's (temperature,
    from_probs, masked_rows, ignore_index). A failed unit is raised.
    """
    wider = max(reference[0], candidate[0], key=lambda s: np.dtype(s.dtype).itemsize)
    pairs = plan_pairs(reference, candidate, rows_for_bytes(wider, unit_bytes))

    def arguments(pair: PairUnit) -> tuple:
        rows = slice(pair.first_row, pair.first_row + pair.n_rows)
        return (None if labels is None else labels[rows], None if mask is None else mask[rows], options)

    parts = engine.run(pairs, _divergence_unit, arguments)
    if engine.failures:
        raise engine.failures[0]
    return core.RowDivergence.concatenate([parts[p] for p in sorted(parts)])
