"""Temperature fitting over a run: the workers sum NLL's derivatives, the client runs the Newton iteration.

:func:`softmax_cli.core.fit_temperature` minimises the convex mean NLL in
``β = 1/T`` with a bracketed Newton iteration on ``NLL'``. Each evaluation of
``NLL'(β)`` and ``NLL''(β)`` is a sum over rows, so here every step is one
pass of the cluster over the units, each returning exact sums
(:class:`~softmax_cli.distributed.units.ExactSum`); the client divides by the
number of labelled rows and takes the same steps as the core.
"""

from __future__ import annotations

import numpy as np

from .. import core
from ..errors import InputError
from .cluster import Engine
from .operations import Outcome, Run, _located_block
from .units import ExactSum, Unit, read_rows


def _shifted_rows(unit: Unit, labels, ignore_index: int):
    """The unit's labelled rows shifted to max 0 (masked logits as 0), their mask and label logits."""
    from ..core.temperature import _check_labelled_rows, _labelled_rows

    with _located_block(unit):
        rows, flat, shape, axis, row_ids = _labelled_rows(read_rows(unit), labels, -1, ignore_index)
        _check_labelled_rows(rows, flat, shape, axis, row_ids)
    rows = rows - rows.max(axis=1, keepdims=True) if rows.shape[0] else rows
    finite = np.isfinite(rows)
    rows = np.where(finite, rows, 0.0)
    return rows, finite, rows[np.arange(rows.shape[0]), flat]


def _fit_start_unit(unit: Unit, labels, ignore_index: int):
    """Labelled rows, the sum of ``NLL'(0)`` terms, and whether some label is below its row's maximum."""
    rows, finite, at_label = _shifted_rows(unit, labels, ignore_index)
    if rows.shape[0] == 0:
        return 0, ExactSum(), False
    return rows.shape[0], ExactSum.of(rows.sum(axis=1) / finite.sum(axis=1) - at_label), bool((at_label < 0).any())


def _fit_step_unit(unit: Unit, labels, ignore_index: int, beta: float):
    """Sums over the unit's labelled rows of ``E_p[z] - z_y`` and ``Var_p[z]`` at ``β``."""
    rows, finite, at_label = _shifted_rows(unit, labels, ignore_index)
    p = core.softmax(np.where(finite, beta * rows, -np.inf), axis=1)
    mean = (p * rows).sum(axis=1)
    variance = (p * (rows - mean[:, None]) ** 2).sum(axis=1)
    return ExactSum.of(mean - at_label), ExactSum.of(variance)


def fit_temperature(run: Run, labels, ignore_index: int = -100) -> Outcome:
    """:func:`core.fit_temperature` over the run: ``value`` is the fitted ``T``.

    Equal to the in-process fit to the Newton tolerance (1e-13 relative in
    ``β``), and the same for any split of the rows, since every sum is exact.
    """
    engine: Engine = run.engine
    arguments = run.labels_for(labels)
    parts = engine.run(run.units, _fit_start_unit, lambda u: (*arguments(u), ignore_index))
    if engine.failures:
        raise engine.failures[0]
    count = sum(n for n, _, _ in parts.values())
    if count == 0:
        raise InputError("no labelled rows to fit a temperature on (every label is the ignore index)")
    slope_at_zero = sum((s for _, s, _ in parts.values()), ExactSum()).value() / count
    from ..core.temperature import check_has_minimum

    check_has_minimum(slope_at_zero, any(below for _, _, below in parts.values()))

    def derivatives(beta: float) -> tuple[float, float]:
        sums = engine.run(run.units, _fit_step_unit, lambda u: (*arguments(u), ignore_index, beta))
        if len(sums) != len(run.units):
            raise engine.failures[0]
        slope = sum((s for s, _ in sums.values()), ExactSum()).value() / count
        return slope, sum((c for _, c in sums.values()), ExactSum()).value() / count

    from ..core.temperature import (
        _solve_beta,  # the core's own iteration, fed with the cluster's sums
    )

    return Outcome(1.0 / _solve_beta(derivatives), engine.failures)


def _sweep_unit(unit: Unit, labels, temperatures: np.ndarray, bins: int, ignore_index: int):
    """Per temperature: exact sums of entropy and confidence, and with labels of NLL and the ECE bins."""
    from ..core.logits import check_logit_rows
    from ..core.reliability import _bin_index
    from ..core.temperature import _MASKED_REMEDY, _log_probs, _sweep_labels

    with _located_block(unit):
        rows = read_rows(unit).astype(np.float64)
        shape = (unit.source.n_rows, unit.source.n_cols)
        check_logit_rows(rows, shape, 1, remedy=_MASKED_REMEDY)
        labelled = None if labels is None else _sweep_labels(rows, labels, rows.shape, 1, ignore_index)
    sums = []
    for t in temperatures:
        log_p = _log_probs(rows, t)
        confidence = np.exp(log_p).max(axis=1)
        at_t = {"entropy": ExactSum.of(core.entropy(rows, axis=1, temperature=t)),
                "max_prob": ExactSum.of(confidence)}
        if labelled is not None:
            kept, flat, correct = labelled
            index = _bin_index(confidence[kept], bins)
            at_t.update(nll=ExactSum.of(-log_p[kept, flat]), correct=int(correct.sum()), labelled=kept.size,
                        bin_confidence=[ExactSum.of(confidence[kept][index == b]) for b in range(bins)],
                        bin_correct=np.bincount(index, weights=correct, minlength=bins).astype(np.int64))
        sums.append(at_t)
    return rows.shape[0], sums


def temperature_sweep(run: Run, temperatures, labels=None, bins: int = 15, ignore_index: int = -100) -> Outcome:
    """:func:`core.temperature_sweep`'s summaries over the run, from exact sums: ``value`` is a dict of arrays.

    ``temperatures``, ``entropy`` and ``max_prob``, and with labels ``nll``,
    ``accuracy`` and ``ece``; not ``probs`` (the core gives it for a single
    row only, which needs no cluster).
    """
    from ..core.reliability import check_bins
    from ..core.temperature import _check_temperatures

    temps, bins = _check_temperatures(temperatures), check_bins(bins)
    arguments = run.labels_for(labels)
    parts = run.engine.run(run.units, _sweep_unit, lambda u: (*arguments(u), temps, bins, ignore_index))
    ordered = [parts[p] for p in sorted(parts)]
    n_rows = sum(n for n, _ in ordered)
    result = {"temperatures": temps}
    per_t = [[sums[i] for _, sums in ordered] for i in range(temps.size)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in ("entropy", "max_prob"):
            result[name] = np.array([sum((s[name] for s in at_t), ExactSum()).value() / n_rows for at_t in per_t])
        if labels is not None:
            labelled = sum(s["labelled"] for s in per_t[0]) if per_t else 0
            result["nll"] = np.array([sum((s["nll"] for s in at_t), ExactSum()).value() / labelled
                                      if labelled else np.nan for at_t in per_t])
            result["accuracy"] = np.array([sum(s["correct"] for s in at_t) / labelled if labelled else np.nan
                                           for at_t in per_t])
            result["ece"] = np.array([_sweep_ece(at_t, bins, labelled) for at_t in per_t])
    return Outcome(result, run.engine.failures)


def _sweep_ece(at_t: list[dict], bins: int, labelled: int) -> float:
    if not labelled:
        return float("nan")
    confidence = [sum((s["bin_confidence"][b] for s in at_t), ExactSum()).value() for b in range(bins)]
    correct = sum(s["bin_correct"] for s in at_t)
    return float(np.abs(correct - np.array(confidence)).sum() / labelled)
