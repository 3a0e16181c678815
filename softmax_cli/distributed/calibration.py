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
    from ..core.calibration import _check_logit_rows, _labelled_rows

    with _located_block(unit):
        rows, flat, shape, axis, row_ids = _labelled_rows(read_rows(unit), labels, -1, ignore_index)
        _check_logit_rows(rows, flat, shape, axis, row_ids)
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
    if not slope_at_zero < 0:
        raise InputError(
            "no finite temperature minimises NLL: the labels' logits are not above their rows' mean "
            "on average, so NLL falls as T grows towards the uniform prediction (T -> inf)"
        )
    if not any(below for _, _, below in parts.values()):
        raise InputError(
            "no finite temperature minimises NLL: every label has its row's largest logit, "
            "so NLL keeps falling towards 0 as T -> 0"
        )

    def derivatives(beta: float) -> tuple[float, float]:
        sums = engine.run(run.units, _fit_step_unit, lambda u: (*arguments(u), ignore_index, beta))
        if len(sums) != len(run.units):
            raise engine.failures[0]
        slope = sum((s for s, _ in sums.values()), ExactSum()).value() / count
        return slope, sum((c for _, c in sums.values()), ExactSum()).value() / count

    return Outcome(1.0 / solve_beta(derivatives), engine.failures)


def solve_beta(derivatives, rtol: float = 1e-13, max_steps: int = 200) -> float:
    """Root of a nondecreasing ``NLL'(β)`` in ``(0, ∞)``, given ``derivatives(β) -> (NLL', NLL'')``.

    The bracket-then-safeguarded-Newton of ``core.calibration._solve_beta``,
    with the derivatives supplied by the caller.
    """
    beta = 1.0
    slope, curvature = derivatives(beta)
    lower, upper = 0.0, np.inf
    for _ in range(2200):
        if slope == 0:
            return beta
        if slope < 0:
            lower = beta
            if upper < np.inf:
                break
            beta *= 2.0
        else:
            upper = beta
            if lower > 0:
                break
            beta *= 0.5
        if not 0 < beta < np.inf:
            raise InputError("could not bracket the NLL minimum; the logits are too extreme to fit a temperature")
        slope, curvature = derivatives(beta)
    for _ in range(max_steps):
        step = slope / curvature if curvature > 0 else np.inf
        candidate = beta - step
        if not lower < candidate < upper:
            candidate = np.sqrt(lower * upper)
        if abs(candidate - beta) <= rtol * beta:
            return candidate
        beta = candidate
        slope, curvature = derivatives(beta)
        if slope == 0:
            return beta
        if slope < 0:
            lower = beta
        else:
            upper = beta
        if upper - lower <= rtol * beta:
            return beta
    return beta
