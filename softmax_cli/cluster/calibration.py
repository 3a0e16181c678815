"""Temperature fitting over a run: the workers sum NLL's derivatives, the client runs the Newton iteration.

:func:`softmax_cli.core.fit_temperature` minimises the convex mean NLL in
``β = 1/T`` with a bracketed Newton iteration on ``NLL'``. Each evaluation of
``NLL'(β)`` and ``NLL''(β)`` is a sum over rows, so here every step is one
pass of the cluster over the units, each returning exact sums
(:class:`~softmax_cli.cluster.units.ExactSum`); the client divides by the
number of labelled rows and takes the same steps as the core.
"""

from __future__ import annotations

import numpy as np

from .. import core
from ..errors import InputError
from .engine import Engine
from .operations import Outcome, Run, located_block
from .units import ExactSum, Unit, read_rows


def _shifted_rows(unit: Unit, labels, ignore_index: int):
    """The unit's labelled rows shifted to max 0 (masked logits as 0), their mask and label logits."""
    from ..core.temperature import check_labelled_rows, labelled_rows

    with located_block(unit):
        rows, flat, shape, axis, row_ids = labelled_rows(read_rows(unit), labels, -1, ignore_index)
        check_labelled_rows(rows, flat, shape, axis, row_ids)
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
        solve_beta,  # the core's own iteration, fed with the cluster's sums
    )

    return Outcome(1.0 / solve_beta(derivatives), engine.failures)


def _exact_per_bin(index: np.ndarray, values: np.ndarray, size: int) -> list[ExactSum]:
    """The exact sum of ``values`` in each of ``size`` bins, so that any split of the rows gives the same total."""
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(size + 1))
    ordered = values[order]
    return [ExactSum.of(ordered[bounds[b]:bounds[b + 1]]) for b in range(size)]


def _labelled_probs(unit: Unit, labels, ignore_index: int):
    """The unit's rows (checked), and with labels the labelled rows' numbers, labels and correctness."""
    from ..core.logits import check_logit_rows
    from ..core.temperature import MASKED_REMEDY, sweep_labels

    with located_block(unit):
        rows = read_rows(unit).astype(np.float64)
        shape = (unit.source.n_rows, unit.source.n_cols)
        check_logit_rows(rows, shape, 1, remedy=MASKED_REMEDY)
        labelled = None if labels is None else sweep_labels(rows, labels, rows.shape, 1, ignore_index)
    return rows, labelled


def _values_unit(unit: Unit, labels, temperatures: np.ndarray, ignore_index: int, binary: bool):
    """Per temperature, the scored values of the unit's labelled rows: what equal-mass bin edges are cut from."""
    from ..core.reliability import scored_values
    from ..core.temperature import log_probs

    rows, (kept, flat, correct) = _labelled_probs(unit, labels, ignore_index)
    return [scored_values(np.exp(log_probs(rows, t))[kept], correct, flat, binary)[0] for t in temperatures]


def _sweep_unit(unit: Unit, labels, temperatures: np.ndarray, edges: np.ndarray | None, binned: dict,
                ignore_index: int):
    """Per temperature: exact sums of entropy and confidence, and with labels of NLL, Brier and every bin."""
    from ..core.reliability import (
        bin_count,
        bin_index,
        brier_terms,
        scored_values,
        uniform_edges,
    )
    from ..core.temperature import log_probs

    rows, labelled = _labelled_probs(unit, labels, ignore_index)
    closed, bins = binned["bin_edges"], binned["bins"]
    sums = []
    for i, t in enumerate(temperatures):
        log_p = log_probs(rows, t)
        p = np.exp(log_p)
        at_t = {"entropy": ExactSum.of(core.entropy(rows, axis=1, temperature=t)),
                "max_prob": ExactSum.of(p.max(axis=1))}
        if labelled is not None:
            kept, flat, correct = labelled
            values, hits = scored_values(p[kept], correct, flat, binned["binary"])
            width = bin_count(edges[i], closed)
            index = bin_index(values, edges[i], closed)
            classes = p.shape[1]
            class_width = bin_count(uniform_edges(bins), closed)
            class_index = (bin_index(p[kept], bins, closed) + class_width * np.arange(classes)).ravel()
            size = classes * class_width
            at_t.update(nll=ExactSum.of(-log_p[kept, flat]), correct=int(correct.sum()), labelled=kept.size,
                        brier=ExactSum.of(brier_terms(p[kept], flat)),
                        count=np.bincount(index, minlength=width).astype(np.int64),
                        values=_exact_per_bin(index, values, width),
                        hits=np.bincount(index, weights=hits, minlength=width).astype(np.int64),
                        class_count=np.bincount(class_index, minlength=size).astype(np.int64),
                        class_values=_exact_per_bin(class_index, p[kept].ravel(), size),
                        class_hits=np.bincount(class_index, weights=(flat[:, None] == np.arange(classes)).ravel(),
                                               minlength=size).astype(np.int64))
        sums.append(at_t)
    return rows.shape[0], sums


def temperature_sweep(run: Run, temperatures, labels=None, bins: int = 15, ignore_index: int = -100,
                      binning: str = "uniform", bin_edges: str = "right", binary: bool = False) -> Outcome:
    """:func:`core.temperature_sweep`'s summaries over the run, from exact sums: ``value`` is a dict of arrays.

    ``temperatures``, ``entropy`` and ``max_prob``, and with labels ``nll``,
    ``accuracy``, the calibration figures and the reliability bins; not
    ``probs`` (the core gives it for a single row only, which needs no
    cluster). Equal-mass bins take one more pass: the scored values come to
    the client (8 bytes a labelled row and temperature), which cuts the edges.
    """
    from ..core import reliability
    from ..core.temperature import check_temperatures

    temps, bins = check_temperatures(temperatures), reliability.check_bins(bins)
    binned = {"bins": bins, "binning": binning, "bin_edges": bin_edges, "binary": binary}
    arguments = run.labels_for(labels)
    edges = np.tile(reliability.bin_edges([], bins, binning), (temps.size, 1))
    if labels is not None and binning == "quantile":
        parts = run.engine.run(run.units, _values_unit, lambda u: (*arguments(u), temps, ignore_index, binary))
        if run.engine.failures:
            raise run.engine.failures[0]
        ordered = [parts[p] for p in sorted(parts)]
        edges = np.stack([reliability.bin_edges(np.concatenate([part[i] for part in ordered]), bins, binning)
                          for i in range(temps.size)])
    parts = run.engine.run(run.units, _sweep_unit, lambda u: (*arguments(u), temps, edges, binned, ignore_index))
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
            figures = [_calibration(at_t, edges[i], labelled) for i, at_t in enumerate(per_t)]
            for name in reliability.CALIBRATION_METRICS:
                result[name] = np.array([errors[name] for errors, _ in figures])
            for name in reliability.BIN_NAMES:
                result[name] = np.stack([bins_at.as_results()[name] for _, bins_at in figures])
    return Outcome(result, run.engine.failures)


def _calibration(at_t: list[dict], edges: np.ndarray, labelled: int):
    """The core's calibration figures and bins at one temperature, from the units' exact sums."""
    from ..core.reliability import BinSums, calibration_errors, reliability_of

    def merged(prefix: str) -> BinSums:
        count = sum(s[f"{prefix}count"] for s in at_t)
        values = [sum(cells, ExactSum()).value() for cells in zip(*(s[f"{prefix}values"] for s in at_t))]
        return BinSums(count, np.array(values), sum(s[f"{prefix}hits"] for s in at_t))

    top, classwise = merged(""), merged("class_")
    # Every class has as many bins as the top label (the same count of edges, the same rule).
    classwise = BinSums(*(a.reshape(-1, top.count.size) for a in classwise))
    brier = sum((s["brier"] for s in at_t), ExactSum()).value()
    return calibration_errors(top, classwise, brier, labelled), reliability_of(top, edges)
