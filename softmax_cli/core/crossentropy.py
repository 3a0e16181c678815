"""Cross-entropy: per-row losses, their reduction and the accuracy, in one blocked pass.

Semantics are those of ``torch.nn.functional.cross_entropy``. Each row's loss is
computed from its shifted logits ``s = (z - max z) / T`` as ``lse(s) - s[y]``
(and, with label smoothing, ``W lse(s) - sum_c w_c s_c``), so no one-hot
matrix and no full log-probability matrix is ever built: the rows are walked in
blocks of about :data:`~softmax_cli.core.blocks.BLOCK_ELEMENTS` elements, and
the memory used beyond the input and the output is O(block). The inputs are
validated in :mod:`.crossentropy_inputs`; the gradient is in
:mod:`.crossentropy_grad`.

Where a class's coefficient in the loss is zero (a zero target probability or
a zero class weight) and its logit is ``-inf``, the term ``0 * log 0`` counts
as 0, as in the entropy; torch gives NaN there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .blocks import row_blocks
from .crossentropy_inputs import (
    REDUCTIONS,
    Reduction,
    Setup,
    check_probs,
    checked_inputs,
    counted_masked,
    index_coefficients,
    off_rows,
    target_coefficients,
)
from .softmax import _shifted, log_sum_shifted

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from .logits import MaskedRows

__all__ = ["REDUCTIONS", "CrossEntropyTerms", "cross_entropy", "cross_entropy_terms", "merge_cross_entropy_terms",
           "reduce_losses"]


class CrossEntropyTerms(NamedTuple):
    """Everything ``softmax loss`` reports, from one pass over the logits."""

    loss: np.ndarray
    """The reduced loss: 0-d for ``mean``/``sum``, :attr:`per_sample` for ``none``."""
    per_sample: np.ndarray
    """Per-row losses (weighted, smoothed; ignored rows 0), the logits' shape without the class axis."""
    denominator: float
    """What ``mean`` divides by: the summed weights of the kept rows (indices) or the row count (targets)."""
    accuracy: float
    """Fraction of kept rows whose argmax matches the label (NaN when no row is kept)."""
    correct: int
    """How many kept rows' argmax matches the label (``accuracy = correct / counted``)."""
    counted: int
    """How many rows the accuracy is over."""
    unnormalised_rows: np.ndarray
    """Flat row indices (see :func:`~softmax_cli.core.blocks.describe_position`) of target rows not summing to 1."""
    target_kind: str
    """``"index"`` or ``"probs"``: how the labels were read."""
    unrounded: np.ndarray | None = None
    """The per-row losses as computed (float32 for float16 logits), before :attr:`per_sample` rounds them to
    the logits' dtype; None when that changes nothing (float32, float64 logits)."""

    def exact_per_sample(self) -> np.ndarray:
        """The per-row losses in float64 from those computed, not rounded to the logits' dtype (bfloat16, float16):
        what a gate and a sequence's mean are taken over."""
        return np.asarray(self.per_sample if self.unrounded is None else self.unrounded, dtype=np.float64)

    def unrounded_mean(self) -> float:
        """The mean loss from the per-row losses before rounding (float64): what a perplexity is the exp of.

        A float16 mean near 7.8 is a multiple of 2**-8, 0.2 % in its exp. For float64 logits it is
        :attr:`loss` itself; streamed or on a cluster it is the same bits as in one pass, as the loss is.
        """
        rows = self.per_sample if self.unrounded is None else self.unrounded
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return float(np.float64(rows.sum(dtype=np.float64)) / np.float64(self.denominator))


def _log_inputs(setup: Setup, block: slice, kept, buf: np.ndarray, scratch: np.ndarray):
    """Return ``(s, lse, masked, predicted)``: the block's log-domain values, per-row log-normaliser, argmax.

    For logits ``s = (z - max) / T`` and ``lse = log(sum(exp(s)))`` (a masked
    row's is 0 and its losses are overwritten by the caller), so
    ``log p = s - lse``; for probabilities ``s = log p`` and ``lse = 0``.
    ``predicted`` is each row's first largest logit when the shift found it
    in the logits as given (no cast), else None.
    """
    src = setup.rows[block].astype(setup.compute, copy=False)
    s = buf[: src.shape[0]]
    if setup.from_probs:
        check_probs(src, setup.shape, setup.axis, block.start, setup.rows.dtype)
        with np.errstate(divide="ignore"):  # log(0) = -inf is the exact answer
            np.log(src if setup.eps is None else np.maximum(src, setup.eps), out=s)
        return s, np.zeros(s.shape[0], dtype=setup.compute), None, None
    masked, top = _shifted(src, s, setup.temperature, setup.shape, setup.axis, block.start, "nan", find_top=True)
    masked = counted_masked(masked, kept, setup, block.start)
    # log1p of the terms other than the maximum: a confident, correct row keeps its tiny loss.
    lse = log_sum_shifted(np.exp(s, out=scratch[: s.shape[0]]), top)
    # A cast (float16, integers beyond 2**53) could merge values the label is compared against.
    return s, lse, masked, top if setup.rows.dtype == setup.compute else None


def _dot_rows(s: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``sum_c coef_c s_c`` per row, counting ``0 * -inf`` as 0 (a masked class with no mass)."""
    # einsum, not BLAS, so each row's sum has the same bits in any block.
    out = np.einsum("ij,j->i" if coef.ndim == 1 else "ij,ij->i", s, coef)
    bad = np.isnan(out)
    if bad.any():  # only a masked class (s = -inf) with coefficient 0 gives NaN here
        c = coef if coef.ndim == 1 else coef[bad]
        with np.errstate(invalid="ignore"):
            out[bad] = np.where(c > 0, s[bad] * c, 0).sum(axis=1)
    return out


def _times(coef: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``coef * value`` with ``0 * inf = 0``."""
    with np.errstate(invalid="ignore"):
        return np.where(coef > 0, coef * value, 0)


def _block_losses(setup: Setup, block: slice, s, lse, masked):
    """Per-row loss ``sum_c a_c (lse - s_c)`` for one block (``a``: the row's weighted target)."""
    if setup.index is not None:
        y, coef, spread = index_coefficients(setup, block)
        loss = _times(coef, lse - s[np.arange(s.shape[0]), y])
        mass = coef.copy()
        if spread:
            w = setup.weights if setup.weights is not None else np.ones(s.shape[1], dtype=setup.compute)
            total = float(w.sum())
            # W lse - sum_c w_c s_c: both terms are >= 0 (lse >= 0 >= s), so nothing cancels.
            smooth = spread * (total * lse - _dot_rows(s, w))
            kept = setup.kept[block]
            loss[kept] += smooth[kept]
            mass[kept] += spread * total
    else:
        a = target_coefficients(setup, block)
        mass = a.sum(axis=1)
        loss = _times(mass, lse) - _dot_rows(s, a)
    if masked is not None:
        # Its probabilities are NaN or, with "zero", all 0: -log 0 = inf wherever there is mass.
        loss[masked] = np.nan if setup.masked_rows == "nan" else np.where(mass[masked] > 0, np.inf, 0.0)
    return loss


def _block_hits(setup: Setup, block: slice, masked, predicted=None) -> tuple[int, int]:
    """``(correct, counted)`` for the block's rows: argmax (ties to the lower index) vs the label."""
    if predicted is None:
        predicted = np.argmax(setup.rows[block], axis=1)
    if masked is not None:
        predicted[masked] = -1  # a row with no distribution predicts nothing
    if setup.index is not None:
        kept = setup.kept[block]
        return int((predicted == setup.index[block])[kept].sum()), int(kept.sum())
    truth = np.argmax(setup.targets[block], axis=1)
    return int((predicted == truth).sum()), len(truth)


def reduce_losses(per_sample: np.ndarray, denominator: float, reduction: Reduction = "mean") -> np.ndarray:
    """Reduce per-row losses as :func:`cross_entropy` does (sum in float64, then ``/ denominator``).

    Examples
    --------
    >>> float(reduce_losses(np.array([1.0, 2.0, 0.0]), 2.0))
    1.5
    """
    if reduction == "none":
        return per_sample
    with np.errstate(over="ignore"):  # losses near the float range may sum past it: the sum is then inf
        total = per_sample.sum(dtype=np.float64)
        if reduction == "sum":
            return np.asarray(total, dtype=per_sample.dtype)
        if np.isinf(total) and denominator > 0 and np.isfinite(per_sample).all():
            # Every term is finite, so the mean may be too: sum the terms already divided.
            return np.asarray((per_sample / np.float64(denominator)).sum(dtype=np.float64), dtype=per_sample.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # every row ignored: 0 / 0 = NaN, as torch
        return np.asarray(total / denominator, dtype=per_sample.dtype)


def merge_cross_entropy_terms(blocks: Sequence[tuple[int, CrossEntropyTerms]], denominator: float,
                              reduction: Reduction = "mean", *, dtype: npt.DTypeLike = np.float64,
                              target_kind: str | None = None) -> CrossEntropyTerms:
    """The terms of consecutive row blocks as those of their rows together (streaming and the cluster engine).

    Each block is ``(first_row, terms)`` with ``terms`` computed with
    ``reduction="none"``; their per-row losses are joined in row order and
    reduced once by :func:`reduce_losses` over ``denominator`` (the whole
    input's, :func:`mean_denominator`), so the loss is bit-identical to one
    call over every row for any split. ``dtype`` is the per-row losses' dtype
    when there is no block; ``target_kind`` is the blocks' unless given.

    Examples
    --------
    >>> whole = cross_entropy_terms(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 0]), reduction="none")
    >>> parts = [(row, cross_entropy_terms(np.array([z]), np.array([0]), reduction="none"))
    ...          for row, z in enumerate([[2.0, 0.0], [0.0, 1.0]])]
    >>> float(merge_cross_entropy_terms(parts, 2.0).loss) == float(whole.per_sample.mean())
    True
    """
    per_sample = np.concatenate([terms.per_sample.reshape(-1) for _, terms in blocks]) if blocks \
        else np.empty(0, dtype=dtype)
    correct = sum(terms.correct for _, terms in blocks)
    counted = sum(terms.counted for _, terms in blocks)
    unnormalised = [first + terms.unnormalised_rows for first, terms in blocks]
    return CrossEntropyTerms(
        loss=reduce_losses(per_sample, denominator, reduction),
        per_sample=per_sample,
        denominator=denominator,
        accuracy=correct / counted if counted else float("nan"),
        correct=correct,
        counted=counted,
        unnormalised_rows=np.concatenate(unnormalised) if unnormalised else np.empty(0, dtype=np.intp),
        target_kind=target_kind or (blocks[-1][1].target_kind if blocks else "index"),
        unrounded=np.concatenate([(terms.per_sample if terms.unrounded is None else terms.unrounded).reshape(-1)
                                  for _, terms in blocks]) if any(t.unrounded is not None for _, t in blocks) else None,
    )


def _buffers(setup: Setup):
    """Two work arrays the height of the first (largest) block: shifted logits and their exponentials."""
    n_rows, n_cols = setup.rows.shape
    height = next(iter(row_blocks(n_rows, n_cols)), slice(0, 0)).stop
    return np.empty((height, n_cols), dtype=setup.compute), np.empty((height, n_cols), dtype=setup.compute)


def cross_entropy_terms(
    logits: npt.ArrayLike, labels: npt.ArrayLike, *, weights: npt.ArrayLike | None = None, ignore_index: int = -100,
    reduction: Reduction = "mean", label_smoothing: float = 0.0, axis: int = -1, temperature: float = 1.0,
    from_probs: bool = False, eps: float | None = None, masked_rows: MaskedRows = "nan",
) -> CrossEntropyTerms:
    r"""Cross-entropy with its per-row losses, mean denominator and accuracy, in one pass.

    Parameters are those of :func:`cross_entropy`. Target rows that do not sum
    to 1 are computed anyway and listed in ``unnormalised_rows``.

    Examples
    --------
    >>> terms = cross_entropy_terms([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], [0, 2])
    >>> terms.per_sample.round(5), terms.accuracy
    (array([0.41703, 2.42005]), 0.5)
    """
    inputs = checked_inputs(logits, labels, weights=weights, ignore_index=ignore_index, reduction=reduction,
                            label_smoothing=label_smoothing, axis=axis, temperature=temperature,
                            from_probs=from_probs, eps=eps, masked_rows=masked_rows)
    n_rows = inputs.rows.shape[0]
    per_sample = np.zeros(n_rows, dtype=inputs.compute)
    unnormalised, correct, counted = [], 0, 0
    buf, scratch = _buffers(inputs)
    for block in row_blocks(*inputs.rows.shape):
        kept = inputs.kept[block] if inputs.kept is not None else None
        s, lse, masked, predicted = _log_inputs(inputs, block, kept, buf, scratch)
        # An ignored or masked row may hold -inf - -inf = NaN until it is overwritten.
        with np.errstate(invalid="ignore"):
            per_sample[block] = _block_losses(inputs, block, s, lse, masked)
        hits = _block_hits(inputs, block, masked, predicted)
        correct, counted = correct + hits[0], counted + hits[1]
        if inputs.targets is not None:
            unnormalised.append(block.start + off_rows(inputs.targets[block]))
    with np.errstate(over="ignore"):  # a float16 loss above 65504 rounds to inf, as torch's float16 loss does
        unrounded = per_sample.reshape(inputs.label_shape)
        per_sample = unrounded.astype(inputs.output, copy=False)
    return CrossEntropyTerms(
        loss=reduce_losses(per_sample, inputs.denominator, inputs.reduction),
        per_sample=per_sample,
        denominator=inputs.denominator,
        accuracy=correct / counted if counted else float("nan"),
        correct=correct,
        counted=counted,
        unnormalised_rows=np.concatenate(unnormalised) if unnormalised else np.empty(0, dtype=np.intp),
        target_kind="index" if inputs.index is not None else "probs",
        unrounded=None if per_sample is unrounded else unrounded,
    )


def cross_entropy(
    logits: npt.ArrayLike, labels: npt.ArrayLike, *, weights: npt.ArrayLike | None = None, ignore_index: int = -100,
    reduction: Reduction = "mean", label_smoothing: float = 0.0, axis: int = -1, temperature: float = 1.0,
    from_probs: bool = False, eps: float | None = None, masked_rows: MaskedRows = "nan",
) -> np.ndarray:
    r"""Cross-entropy between ``softmax(logits / T)`` and the labels, as ``torch.nn.functional.cross_entropy``.

    With class indices ``y``, weights ``w`` and label smoothing ``eps`` over
    ``C`` classes, row ``n`` loses

    .. math:: l_n = (1 - \varepsilon)\, w_{y_n} (-\log p_{n,y_n})
              + \frac{\varepsilon}{C} \sum_c w_c (-\log p_{n,c}),
              \qquad -\log p_{n,c} = \mathrm{lse}(s_n) - s_{n,c}

    computed from the shifted logits ``s`` without forming ``log p``; rows
    labelled ``ignore_index`` lose 0 and ``mean`` divides by
    :math:`\sum_n w_{y_n}` over the other rows (NaN when every row is ignored;
    ``sum`` is then 0). With target distributions ``t``,
    :math:`l_n = -\sum_c w_c t'_{n,c} \log p_{n,c}`, ``t' = (1 - eps) t + eps / C``,
    and ``mean`` divides by the number of rows.

    Parameters
    ----------
    logits : array_like
        Logits (or probabilities with ``from_probs``); every index but ``axis``
        is a row. float16 is computed in float32; integers become float64.
    labels : array_like
        Class indices (the logits' shape without ``axis``; integers, or floats
        holding whole numbers) or target distributions (the logits' shape).
    weights : array_like, optional
        ``C`` non-negative class weights.
    ignore_index : int
        Index labels equal to it are skipped (ignored for target distributions).
    reduction : {"mean", "sum", "none"}
        ``none`` returns the per-row losses, the logits' shape without ``axis``.
    label_smoothing : float
        ``0 <= eps <= 1``.
    axis : int
        The class axis.
    temperature : float
        ``T > 0``; the logits are divided by it.
    from_probs : bool
        The inputs are probabilities: ``l = -sum_c a_c log p_c`` exactly, so a
        labelled probability of 0 gives ``inf`` (not clipped).
    eps : float, optional
        With ``from_probs`` only: clip probabilities to at least ``eps`` first.
    masked_rows : {"nan", "zero", "error"}
        A kept row whose logits are all ``-inf``: NaN loss (as torch), zero
        probabilities (so ``inf`` loss wherever it has mass), or a
        :class:`~softmax_cli.core.softmax.MaskedRowError`. Ignored rows are
        never checked: padding may be fully masked.

    Raises
    ------
    InputError
        NaN/``+inf`` logits, labels out of range, non-integer or negative
        labels, shape mismatches, bad weights or options, naming the value and row.

    Examples
    --------
    >>> float(cross_entropy([[0.0, 1000.0]], [0]))
    1000.0
    >>> z = [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]]
    >>> round(float(cross_entropy(z, [0, 1, -100], weights=[1, 2, 3])), 5)
    0.28571
    """
    return cross_entropy_terms(logits, labels, weights=weights, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing, axis=axis, temperature=temperature,
                               from_probs=from_probs, eps=eps, masked_rows=masked_rows).loss
