"""The gradient of cross-entropy with respect to its logits (or probabilities), block by block.

The loss and its options are those of :mod:`.crossentropy`; the validated
inputs and the per-row coefficients ``a`` come from :mod:`.crossentropy_inputs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .blocks import from_rows, row_blocks
from .crossentropy_inputs import (
    Reduction,
    Setup,
    check_probs,
    checked_inputs,
    counted_masked,
    index_coefficients,
    target_coefficients,
)
from .softmax import probs_block

if TYPE_CHECKING:
    import numpy.typing as npt

    from .logits import MaskedRows


def _grad_from_logits(setup: Setup, block: slice, kept, out: np.ndarray) -> None:
    """Write ``p A - a`` into ``out`` for a block: ``d l / d s`` with ``A = sum_c a_c``."""
    p, masked = probs_block(setup.rows, block, setup.compute, setup.temperature, setup.shape, setup.axis, "nan", out)
    masked = counted_masked(masked, kept, setup, block.start)
    if masked is not None and setup.masked_rows == "zero":
        p[masked] = 0
    if setup.index is not None:
        y, coef, spread = index_coefficients(setup, block)
        w = setup.weights
        p *= (coef + spread * (float(w.sum()) if w is not None else p.shape[1]))[:, None]
        p[np.arange(p.shape[0]), y] -= coef
        if spread:
            p -= spread * w if w is not None else spread
    else:
        a = target_coefficients(setup, block)
        p *= a.sum(axis=1)[:, None]
        p -= a


def _grad_from_probs(setup: Setup, block: slice, out: np.ndarray) -> None:
    """Write ``-a / p`` into ``out`` (0 where ``a = 0`` or where ``eps`` clipped ``p``)."""
    src = setup.rows[block].astype(setup.compute, copy=False)
    check_probs(src, setup.shape, setup.axis, block.start, setup.rows.dtype)
    if setup.index is not None:
        y, coef, spread = index_coefficients(setup, block)
        w = setup.weights if setup.weights is not None else np.ones(src.shape[1], dtype=setup.compute)
        a = np.broadcast_to(spread * w, src.shape).astype(setup.compute)
        a[np.arange(src.shape[0]), y] += coef
    else:
        a = target_coefficients(setup, block)
    p = src if setup.eps is None else np.maximum(src, setup.eps)
    with np.errstate(divide="ignore", invalid="ignore"):  # a > 0 = p gives -inf: exact
        np.divide(-a, p, out=out)
    out[a == 0] = 0
    if setup.eps is not None:
        out[src < setup.eps] = 0  # the clipped loss is flat there


def cross_entropy_grad(
    logits: npt.ArrayLike, labels: npt.ArrayLike, *, weights: npt.ArrayLike | None = None, ignore_index: int = -100,
    reduction: Reduction = "mean", label_smoothing: float = 0.0, axis: int = -1, temperature: float = 1.0,
    from_probs: bool = False, eps: float | None = None, masked_rows: MaskedRows = "nan",
    denominator: float | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`cross_entropy` (same options) with respect to its first argument.

    Row ``n`` of the loss is :math:`\sum_c a_{n,c}(\mathrm{lse}(s_n) - s_{n,c})`
    with ``s = z / T`` and ``a`` the weighted, smoothed target
    (:math:`a = (1-\varepsilon) w_y e_y + \frac{\varepsilon}{C} w` for an index
    label, :math:`a = w \odot t'` for a distribution), so

    .. math:: \frac{\partial L}{\partial z_n} = \frac{p_n \sum_c a_{n,c} - a_n}{T\,D}

    where ``D`` is the mean's denominator (``D = 1`` for ``sum``). Without
    weights and smoothing this is torch's ``(softmax - onehot) / D``; with
    weights *and* smoothing it is exact where "(p - t') w_y" is not. Ignored
    rows get exactly 0 (also when every row is ignored and the mean is NaN).

    ``denominator`` overrides ``D`` for ``mean`` when the logits are a block
    of a larger batch (see :func:`mean_denominator`).

    ``reduction="none"`` returns the gradient of the **sum** of the per-row
    losses (what ``backward`` of ``loss.sum()`` gives; each row's gradient is
    its own row's).

    With ``from_probs`` the inputs are probabilities treated as independent
    variables (no simplex constraint): the gradient is
    :math:`-a_{n,c} / (p_{n,c} D)`, ``-inf`` where a labelled probability is 0,
    0 where ``a = 0`` or where ``eps`` clipped the probability.

    Returns an array of the logits' shape and output dtype (float16 in,
    float16 out, computed in float32; integers give float64). A masked row
    (all ``-inf``) gives NaN, or with ``masked_rows="zero"`` ``-a / (T D)``
    (its probabilities taken as 0).

    Examples
    --------
    >>> cross_entropy_grad([[0.0, 0.0]], [1])
    array([[ 0.5, -0.5]])
    """
    inputs = checked_inputs(logits, labels, denominator=denominator, weights=weights, ignore_index=ignore_index, reduction=reduction,
                            label_smoothing=label_smoothing, axis=axis, temperature=temperature,
                            from_probs=from_probs, eps=eps, masked_rows=masked_rows)
    n_rows, n_cols = inputs.rows.shape
    result = np.empty((n_rows, n_cols), dtype=inputs.compute)
    # Every row ignored makes D = 0; those rows are zeroed below all the same.
    scale = (1.0 / inputs.denominator if inputs.denominator else np.inf) if inputs.reduction == "mean" else 1.0
    for block in row_blocks(n_rows, n_cols):
        kept = inputs.kept[block] if inputs.kept is not None else None
        out = result[block]
        with np.errstate(invalid="ignore"):
            if inputs.from_probs:
                _grad_from_probs(inputs, block, out)
            else:
                _grad_from_logits(inputs, block, kept, out)
            if scale != 1.0:
                out *= scale
            if inputs.temperature != 1.0:  # divided, not times 1 / T: that overflows to inf, and 0 * inf is NaN
                with np.errstate(over="ignore"):
                    out /= inputs.temperature
        if kept is not None:
            out[~kept] = 0
    with np.errstate(over="ignore"):  # a float16 gradient past 65504 (a tiny -t) rounds to inf, as it should
        return from_rows(result, inputs.shape, inputs.axis).astype(inputs.output, copy=False)
