"""Cross-entropy and its gradient.

Semantics are those of ``torch.nn.functional.cross_entropy``. Each row's loss is
computed from its shifted logits ``s = (z - max z) / T`` as ``lse(s) - s[y]``
(and, with label smoothing, ``W lse(s) - sum_c w_c s_c``), so no one-hot
matrix and no full log-probability matrix is ever built: the rows are walked in
blocks of about :data:`~softmax_cli.core._arrays.BLOCK_ELEMENTS` elements, and
the memory used beyond the input and the output is O(block).

Which labels are which is decided by shape alone, because the two kinds differ
in their number of dimensions:

* labels of the logits' shape without the class axis are **class indices**;
  they must be integers (floats holding whole numbers, as read from text, are
  accepted; ``1.5`` is refused);
* labels of the logits' full shape are **target distributions** (one-hot or
  soft; any real dtype, so an integer one-hot matrix works);
* a single label for a single row may be given as a scalar or a length-1 array.

Where a class's coefficient in the loss is zero (a zero target probability or
a zero class weight) and its logit is ``-inf``, the term ``0 * log 0`` counts
as 0, as in the entropy; torch gives NaN there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from ..errors import InputError, UsageError
from ._arrays import as_rows, check_axis, describe_position, float_dtypes, from_rows, row_blocks
from .softmax import MaskedRowError, MaskedRows, _check_policy, _shifted, check_temperature, probs_block, row_sums

if TYPE_CHECKING:
    import numpy.typing as npt

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")

# A target row whose sum is further than this from 1 is reported (not refused);
# float16 targets get their own rounding slack on top.
TARGET_ROW_RTOL = 1e-6


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
    """Flat row indices (see :func:`~softmax_cli.core._arrays.describe_position`) of target rows not summing to 1."""
    target_kind: str
    """``"index"`` or ``"probs"``: how the labels were read."""


class _Setup(NamedTuple):
    rows: np.ndarray  # (n, C) view of the logits
    shape: tuple[int, ...]
    axis: int
    compute: np.dtype
    output: np.dtype
    index: np.ndarray | None  # (n,) int64, ignored rows set to 0
    kept: np.ndarray | None  # (n,) bool, False for ignored rows
    targets: np.ndarray | None  # (n, C) view of the target distributions
    weights: np.ndarray | None  # (C,) in the compute dtype
    smoothing: float
    temperature: float
    eps: float | None
    from_probs: bool
    masked_rows: str
    denominator: float

    @property
    def label_shape(self) -> tuple[int, ...]:
        return self.shape[: self.axis] + self.shape[self.axis + 1 :]


# --------------------------------------------------------------------------- validation


def _where(shape, axis, row, column=None) -> str | None:
    return describe_position(shape, axis, row, column) or None


def _number(value) -> str:
    """``5`` for a whole number, ``1.5``/``nan`` otherwise: never ``np.float64(1.5)``."""
    value = np.asarray(value).item()
    return str(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


def _check_options(reduction, label_smoothing, temperature, from_probs, eps, masked_rows):
    if reduction not in REDUCTIONS:
        raise InputError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    smoothing = float(label_smoothing)
    if not 0.0 <= smoothing <= 1.0:  # also refuses NaN
        raise InputError(f"label smoothing must be between 0 and 1, got {label_smoothing!r}")
    _check_policy(masked_rows)
    temperature = check_temperature(temperature)
    if from_probs and temperature != 1.0:
        raise UsageError("a temperature divides logits; it cannot be used with from_probs (probability inputs)")
    if eps is not None:
        if not from_probs:
            raise UsageError("eps clips probabilities; it applies only with from_probs")
        eps = float(eps)
        if not 0.0 < eps < 1.0:
            raise InputError(f"eps must be between 0 and 1 (exclusive), got {eps!r}")
    return smoothing, temperature, eps


def _check_weights(weights: npt.ArrayLike | None, n_classes: int, compute: np.dtype) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise InputError(f"class weights must be real numbers, got dtype {w.dtype}")
    if w.ndim != 1 or w.size != n_classes:
        raise InputError(f"class weights have shape {w.shape}; expected {n_classes} values, one per class")
    w = w.astype(np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        c = int(np.argmax(bad))
        raise InputError(f"class weight {_number(w[c])} for class {c} must be finite and >= 0")
    return w.astype(compute)


def _label_kind(labels: np.ndarray, shape: tuple[int, ...], axis: int) -> str:
    """``"index"`` or ``"probs"`` by shape (see the module docstring), else raise."""
    index_shape = shape[:axis] + shape[axis + 1 :]
    if labels.shape == index_shape:
        return "index"
    if labels.shape == shape:
        return "probs"
    if labels.size == 1 and int(np.prod(index_shape)) == 1:
        return "index"
    raise InputError(
        f"labels of shape {labels.shape} do not fit logits of shape {shape}: expected {index_shape} "
        f"(class indices) or {shape} (target distributions)"
    )


def _index_labels(labels: np.ndarray, n_classes: int, ignore_index: int, shape, axis):
    """Validate class indices; return ``(index, kept)`` with ignored rows' index set to 0."""
    flat = labels.reshape(-1)
    if flat.dtype.kind == "f":
        bad = ~np.isfinite(flat) | (flat != np.trunc(flat))
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(f"label {_number(flat[row])} is not a class index (a whole number)", where=_where(shape, axis, row))
    elif flat.dtype.kind not in "iu":
        raise InputError(f"class indices must be integers, got dtype {flat.dtype}")
    kept = flat != ignore_index
    # Compared in the labels' own dtype, before any cast can wrap a huge value around.
    bad = kept & ((flat < 0) | (flat >= n_classes))
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(f"label {_number(flat[row])} is out of range for {n_classes} classes",
                         where=_where(shape, axis, row))
    index = np.where(kept, flat, 0).astype(np.int64)
    return index, kept


def _check_targets(t: np.ndarray, shape, axis, start: int) -> None:
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        row, column = (int(i) for i in np.unravel_index(int(np.argmax(bad)), t.shape))
        value = t[row, column]
        what = "negative" if value < 0 else "not finite"
        raise InputError(f"target probability {_number(value)} is {what}", where=_where(shape, axis, start + row, column))


def _check_probs(p: np.ndarray, shape, axis, start: int) -> None:
    # Allow the rounding slack of the inputs' own dtype above 1.
    top = 1 + 4 * np.finfo(p.dtype).eps
    bad = ~np.isfinite(p) | (p < 0) | (p > top)
    if bad.any():
        row, column = (int(i) for i in np.unravel_index(int(np.argmax(bad)), p.shape))
        raise InputError(
            f"probability {_number(p[row, column])} is not between 0 and 1; from_probs reads the inputs as "
            "probabilities, not logits",
            where=_where(shape, axis, start + row, column),
        )


def _off_rows(t: np.ndarray) -> np.ndarray:
    """Row positions (within the block) of target rows whose sum is not 1."""
    tol = max(TARGET_ROW_RTOL, 2 * np.finfo(t.dtype).eps) if t.dtype.kind == "f" else TARGET_ROW_RTOL
    sums = t.sum(axis=1, dtype=np.float64)
    return np.flatnonzero(np.abs(sums - 1) > tol)


def unnormalised_rows(targets: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Flat indices of the rows of ``targets`` that do not sum to 1 (within 1e-6).

    The core does no I/O; the command line turns these into a warning.

    Examples
    --------
    >>> unnormalised_rows([[0.5, 0.5], [0.5, 0.4]])
    array([1])
    """
    array = np.asarray(targets)
    rows = as_rows(array, check_axis(array.ndim, axis))
    found = [block.start + _off_rows(rows[block]) for block in row_blocks(*rows.shape)]
    return np.concatenate(found) if found else np.empty(0, dtype=np.intp)


def _denominator(index, kept, w, n_rows: int) -> float:
    """What ``mean`` divides by: the kept rows' summed weights (indices), else the row count."""
    if index is None:
        return float(n_rows)
    return float(kept.sum()) if w is None else float(w.astype(np.float64)[index][kept].sum())


def mean_denominator(
    labels: npt.ArrayLike, shape: tuple[int, ...], *, weights: npt.ArrayLike | None = None,
    ignore_index: int = -100, axis: int = -1,
) -> float:
    """The denominator of the ``mean`` reduction for logits of ``shape``, from the labels alone.

    For rows processed in parts (a file streamed in blocks), pass it to
    :func:`cross_entropy_grad` and :func:`reduce_losses` so every part is
    scaled by the whole batch's denominator, exactly as in one pass.

    Examples
    --------
    >>> mean_denominator([0, 1, -100], (3, 3), weights=[1.0, 2.0, 3.0])
    3.0
    """
    labels = np.asarray(labels)
    axis = check_axis(len(shape), axis)
    w = _check_weights(weights, shape[axis], np.dtype(np.float64))
    if _label_kind(labels, tuple(shape), axis) == "probs":
        return float(int(np.prod(shape)) // max(1, shape[axis]))
    index, kept = _index_labels(labels, shape[axis], ignore_index, tuple(shape), axis)
    return _denominator(index, kept, w, index.shape[0])


def _setup(logits, labels, weights, ignore_index, reduction, label_smoothing, axis, temperature, from_probs, eps,
           masked_rows, denominator=None) -> _Setup:
    array, compute, output = float_dtypes(logits)
    smoothing, temperature, eps = _check_options(reduction, label_smoothing, temperature, from_probs, eps, masked_rows)
    axis = check_axis(array.ndim, axis)
    shape = array.shape
    n_classes = shape[axis]
    if n_classes == 0:
        raise InputError(f"logits of shape {shape} have no classes along axis {axis}")
    labels = np.asarray(labels)
    w = _check_weights(weights, n_classes, compute)
    rows = as_rows(array, axis)
    index = kept = targets = None
    if _label_kind(labels, shape, axis) == "index":
        index, kept = _index_labels(labels, n_classes, ignore_index, shape, axis)
    else:
        if labels.dtype.kind not in "biuf":
            raise InputError(f"target distributions must be real numbers, got dtype {labels.dtype}")
        targets = as_rows(labels, axis)
    if denominator is None:
        denominator = _denominator(index, kept, w, rows.shape[0])
    return _Setup(rows, shape, axis, compute, output, index, kept, targets, w, smoothing, temperature, eps,
                  from_probs, masked_rows, denominator)


# --------------------------------------------------------------------------- blocked kernels


def _counted_masked(masked, kept, setup: _Setup, start: int):
    """The fully ``-inf`` rows that take part in the loss; raise for ``masked_rows="error"``."""
    if masked is None:
        return None
    if kept is not None:
        masked = masked & kept
    if not masked.any():
        return None
    if setup.masked_rows == "error":
        raise MaskedRowError(
            "every logit in the row is -inf, so it has no distribution; give the row the ignore index, "
            "or choose --masked-rows zero or --masked-rows nan to allow such rows",
            where=_where(setup.shape, setup.axis, start + int(np.argmax(masked))) or "the only row",
        )
    return masked


def _log_inputs(setup: _Setup, block: slice, kept, buf: np.ndarray, scratch: np.ndarray):
    """Return ``(s, lse, masked)``: the block's log-domain values and per-row log-normaliser.

    For logits ``s = (z - max) / T`` and ``lse = log(sum(exp(s)))``, so
    ``log p = s - lse``; for probabilities ``s = log p`` and ``lse = 0``.
    """
    src = setup.rows[block].astype(setup.compute, copy=False)
    s = buf[: src.shape[0]]
    if setup.from_probs:
        _check_probs(src, setup.shape, setup.axis, block.start)
        with np.errstate(divide="ignore"):  # log(0) = -inf is the exact answer
            np.log(src if setup.eps is None else np.maximum(src, setup.eps), out=s)
        return s, np.zeros(s.shape[0], dtype=setup.compute), None
    masked = _shifted(src, s, setup.temperature, setup.shape, setup.axis, block.start, "nan")
    masked = _counted_masked(masked, kept, setup, block.start)
    exps = np.exp(s, out=scratch[: s.shape[0]])
    # A masked row's log(0) = -inf is replaced by the caller.
    with np.errstate(divide="ignore"):
        lse = np.log(row_sums(exps))
    return s, lse, masked


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


def _target_coefficients(setup: _Setup, block: slice) -> np.ndarray:
    """``a = w * ((1 - eps) t + eps / C)`` for a block of target rows."""
    t = setup.targets[block]
    _check_targets(t, setup.shape, setup.axis, block.start)
    a = t.astype(setup.compute, copy=True)
    if setup.smoothing:
        a *= 1 - setup.smoothing
        a += setup.smoothing / a.shape[1]
    if setup.weights is not None:
        a *= setup.weights
    return a


def _index_coefficients(setup: _Setup, block: slice):
    """Per row: the label, the label's coefficient ``(1 - eps) w_y`` (0 if ignored), and ``eps / C``."""
    y = setup.index[block]
    coef = np.full(y.shape, 1 - setup.smoothing, dtype=setup.compute)
    if setup.weights is not None:
        coef *= setup.weights[y]
    coef[~setup.kept[block]] = 0
    return y, coef, setup.smoothing / setup.rows.shape[1]


def _block_losses(setup: _Setup, block: slice, s, lse, masked):
    """Per-row loss ``sum_c a_c (lse - s_c)`` for one block (``a``: the row's weighted target)."""
    if setup.index is not None:
        y, coef, spread = _index_coefficients(setup, block)
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
        a = _target_coefficients(setup, block)
        mass = a.sum(axis=1)
        loss = _times(mass, lse) - _dot_rows(s, a)
    if masked is not None:
        # Its probabilities are NaN or, with "zero", all 0: -log 0 = inf wherever there is mass.
        loss[masked] = np.nan if setup.masked_rows == "nan" else np.where(mass[masked] > 0, np.inf, 0.0)
    return loss


def _block_hits(setup: _Setup, block: slice, masked) -> tuple[int, int]:
    """``(correct, counted)`` for the block's rows: argmax (ties to the lower index) vs the label."""
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
    total = per_sample.sum(dtype=np.float64)
    if reduction == "sum":
        return np.asarray(total, dtype=per_sample.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # every row ignored: 0 / 0 = NaN, as torch
        return np.asarray(total / denominator, dtype=per_sample.dtype)


def _buffers(setup: _Setup):
    """Two work arrays the height of the first (largest) block: shifted logits and their exponentials."""
    n_rows, n_cols = setup.rows.shape
    height = next(iter(row_blocks(n_rows, n_cols)), slice(0, 0)).stop
    return np.empty((height, n_cols), dtype=setup.compute), np.empty((height, n_cols), dtype=setup.compute)


# --------------------------------------------------------------------------- public API


def cross_entropy_terms(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    axis: int = -1,
    temperature: float = 1.0,
    from_probs: bool = False,
    eps: float | None = None,
    masked_rows: MaskedRows = "nan",
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
    setup = _setup(logits, labels, weights, ignore_index, reduction, label_smoothing, axis, temperature, from_probs,
                   eps, masked_rows)
    n_rows = setup.rows.shape[0]
    per_sample = np.zeros(n_rows, dtype=setup.compute)
    off_rows, correct, counted = [], 0, 0
    buf, scratch = _buffers(setup)
    for block in row_blocks(*setup.rows.shape):
        kept = setup.kept[block] if setup.kept is not None else None
        s, lse, masked = _log_inputs(setup, block, kept, buf, scratch)
        # An ignored or masked row may hold -inf - -inf = NaN until it is overwritten.
        with np.errstate(invalid="ignore"):
            per_sample[block] = _block_losses(setup, block, s, lse, masked)
        hits = _block_hits(setup, block, masked)
        correct, counted = correct + hits[0], counted + hits[1]
        if setup.targets is not None:
            off_rows.append(block.start + _off_rows(setup.targets[block]))
    per_sample = per_sample.reshape(setup.label_shape).astype(setup.output, copy=False)
    return CrossEntropyTerms(
        loss=reduce_losses(per_sample, setup.denominator, reduction),
        per_sample=per_sample,
        denominator=setup.denominator,
        accuracy=correct / counted if counted else float("nan"),
        correct=correct,
        counted=counted,
        unnormalised_rows=np.concatenate(off_rows) if off_rows else np.empty(0, dtype=np.intp),
        target_kind="index" if setup.index is not None else "probs",
    )


def cross_entropy(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    axis: int = -1,
    temperature: float = 1.0,
    from_probs: bool = False,
    eps: float | None = None,
    masked_rows: MaskedRows = "nan",
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
    return cross_entropy_terms(
        logits, labels, weights=weights, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing, axis=axis, temperature=temperature, from_probs=from_probs, eps=eps,
        masked_rows=masked_rows,
    ).loss


def _grad_from_logits(setup: _Setup, block: slice, kept, out: np.ndarray) -> None:
    """Write ``p A - a`` into ``out`` for a block: ``d l / d s`` with ``A = sum_c a_c``."""
    p, masked = probs_block(setup.rows, block, setup.compute, setup.temperature, setup.shape, setup.axis, "nan", out)
    masked = _counted_masked(masked, kept, setup, block.start)
    if masked is not None and setup.masked_rows == "zero":
        p[masked] = 0
    if setup.index is not None:
        y, coef, spread = _index_coefficients(setup, block)
        w = setup.weights
        p *= (coef + spread * (float(w.sum()) if w is not None else p.shape[1]))[:, None]
        p[np.arange(p.shape[0]), y] -= coef
        if spread:
            p -= spread * w if w is not None else spread
    else:
        a = _target_coefficients(setup, block)
        p *= a.sum(axis=1)[:, None]
        p -= a


def _grad_from_probs(setup: _Setup, block: slice, out: np.ndarray) -> None:
    """Write ``-a / p`` into ``out`` (0 where ``a = 0`` or where ``eps`` clipped ``p``)."""
    src = setup.rows[block].astype(setup.compute, copy=False)
    _check_probs(src, setup.shape, setup.axis, block.start)
    if setup.index is not None:
        y, coef, spread = _index_coefficients(setup, block)
        w = setup.weights if setup.weights is not None else np.ones(src.shape[1], dtype=setup.compute)
        a = np.broadcast_to(spread * w, src.shape).astype(setup.compute)
        a[np.arange(src.shape[0]), y] += coef
    else:
        a = _target_coefficients(setup, block)
    p = src if setup.eps is None else np.maximum(src, setup.eps)
    with np.errstate(divide="ignore", invalid="ignore"):  # a > 0 = p gives -inf: exact
        np.divide(-a, p, out=out)
    out[a == 0] = 0
    if setup.eps is not None:
        out[src < setup.eps] = 0  # the clipped loss is flat there


def cross_entropy_grad(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    axis: int = -1,
    temperature: float = 1.0,
    from_probs: bool = False,
    eps: float | None = None,
    masked_rows: MaskedRows = "nan",
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
    setup = _setup(logits, labels, weights, ignore_index, reduction, label_smoothing, axis, temperature, from_probs,
                   eps, masked_rows, denominator)
    n_rows, n_cols = setup.rows.shape
    result = np.empty((n_rows, n_cols), dtype=setup.compute)
    # Every row ignored makes D = 0; those rows are zeroed below all the same.
    scale = (1.0 / setup.denominator if setup.denominator else np.inf) if reduction == "mean" else 1.0
    scale /= setup.temperature
    for block in row_blocks(n_rows, n_cols):
        kept = setup.kept[block] if setup.kept is not None else None
        out = result[block]
        with np.errstate(invalid="ignore"):
            if setup.from_probs:
                _grad_from_probs(setup, block, out)
            else:
                _grad_from_logits(setup, block, kept, out)
            if scale != 1.0:
                out *= scale
        if kept is not None:
            out[~kept] = 0
    return from_rows(result, setup.shape, setup.axis).astype(setup.output, copy=False)
