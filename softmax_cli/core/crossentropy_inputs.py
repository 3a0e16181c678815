"""What cross-entropy and its gradient score against, validated once: options, labels, weights, targets.

Which labels are which is decided by shape alone, because the two kinds differ
in their number of dimensions:

* labels of the logits' shape without the class axis are **class indices**
  (checked by :func:`~softmax_cli.core.labels.check_labels`);
* labels of the logits' full shape are **target distributions** (one-hot or
  soft; any real dtype, so an integer one-hot matrix works);
* a single label for a single row may be given as a scalar or a length-1 array.

Both kinds become per-row coefficients ``a`` (the weighted, smoothed target),
so that the loss is ``sum_c a_c (lse - s_c)`` and its gradient ``p sum(a) - a``;
:func:`index_coefficients` and :func:`target_coefficients` build them a block
of rows at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..choices import REDUCTIONS, Reduction
from ..errors import InputError, UsageError
from .blocks import as_rows, check_axis, describe_position, float_dtypes, row_blocks, value_text
from .labels import check_labels
from .logits import MaskedRows, _check_policy, check_temperature, masked_row_error

if TYPE_CHECKING:
    import numpy.typing as npt


# A target row whose sum is further than this from 1 is reported (not refused);
# float16 targets get their own rounding slack on top.
TARGET_ROW_RTOL = 1e-6


class Setup(NamedTuple):
    """The validated inputs of one cross-entropy call."""

    rows: np.ndarray  # (n, C) view of the logits
    shape: tuple[int, ...]
    axis: int
    compute: np.dtype
    output: np.dtype
    index: np.ndarray | None  # (n,) int64, ignored rows set to 0
    kept: np.ndarray | None  # (n,) bool, False for ignored rows
    targets: np.ndarray | None  # (n, C) view of the target distributions
    weights: np.ndarray | None  # (C,) in the compute dtype
    reduction: str
    smoothing: float
    temperature: float
    eps: float | None
    from_probs: bool
    masked_rows: str
    denominator: float

    @property
    def label_shape(self) -> tuple[int, ...]:
        return self.shape[: self.axis] + self.shape[self.axis + 1 :]


def _where(shape, axis, row, column=None) -> str | None:
    return describe_position(shape, axis, row, column) or None


def _check_options(reduction, label_smoothing, temperature, from_probs, eps, masked_rows, compute):
    if reduction not in REDUCTIONS:
        raise InputError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    smoothing = float(label_smoothing)
    if not 0.0 <= smoothing <= 1.0:  # also refuses NaN
        raise InputError(f"label smoothing must be between 0 and 1, got {label_smoothing!r}")
    _check_policy(masked_rows)
    temperature = check_temperature(temperature, compute)
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
        raise InputError(f"class weights must be real numbers, got dtype {w.dtype}", operand="weights")
    if w.ndim != 1 or w.size != n_classes:
        raise InputError(f"class weights have shape {w.shape}; expected {n_classes} values, one per class",
                         operand="weights")
    w = w.astype(np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        c = int(np.argmax(bad))
        raise InputError(f"class weight {value_text(w[c])} for class {c} must be finite and >= 0", operand="weights")
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
        f"(class indices) or {shape} (target distributions)", operand="labels",
    )


def _index_labels(labels: np.ndarray, shape: tuple[int, ...], axis: int, ignore_index: int):
    """Validate class indices; return ``(index, kept)`` with ignored rows' index set to 0."""
    lead = shape[:axis] + shape[axis + 1 :]
    flat = check_labels(labels.reshape(lead), lead, shape[axis], ignore_index)
    kept = flat != ignore_index
    return np.where(kept, flat, 0), kept


def _check_targets(t: np.ndarray, shape, axis, start: int) -> None:
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        row, column = (int(i) for i in np.unravel_index(int(np.argmax(bad)), t.shape))
        value = t[row, column]
        what = "negative" if value < 0 else "not finite"
        raise InputError(f"target probability {value_text(value)} is {what}",
                         where=_where(shape, axis, start + row, column), operand="labels")


def check_probs(p: np.ndarray, shape, axis, start: int, dtype: npt.DTypeLike | None = None) -> None:
    """Refuse a block of rows (classes last) that are not distributions: a value outside [0, 1], or a row
    whose sum is off 1 by more than :func:`~.plausibility.probability_tolerance` of ``dtype`` (the inputs'
    own, ``p``'s when not given). A row of zeros is a masked row, as one of -inf logits is.

    Rows off 1 were used as given by the loss and renormalised by compare: one input, two answers.
    """
    from .plausibility import probability_tolerance

    # Allow the rounding slack of the inputs' own dtype above 1.
    top = 1 + 4 * np.finfo(p.dtype).eps
    bad = ~np.isfinite(p) | (p < 0) | (p > top)
    if bad.any():
        row, column = (int(i) for i in np.unravel_index(int(np.argmax(bad)), p.shape))
        raise InputError(
            f"probability {value_text(p[row, column])} is not between 0 and 1; from_probs reads the inputs as "
            "probabilities, not logits",
            where=_where(shape, axis, start + row, column),
        )
    sums = p.sum(axis=1, dtype=np.float64)
    off = np.flatnonzero((np.abs(sums - 1) > probability_tolerance(p.dtype if dtype is None else dtype)) & (sums != 0))
    if off.size:
        raise InputError(
            f"this row of probabilities sums to {sums[off[0]]:.6g}, not 1; --from-probs reads each row as a "
            "distribution: normalise the rows (p / p.sum(axis=-1, keepdims=True)), or leave out --from-probs "
            "for logits",
            where=_where(shape, axis, start + int(off[0])),
        )


def off_rows(t: np.ndarray) -> np.ndarray:
    """Row positions (within the block) of target rows whose sum is not 1."""
    tol = max(TARGET_ROW_RTOL, 2 * np.finfo(t.dtype).eps) if t.dtype.kind == "f" else TARGET_ROW_RTOL
    sums = t.sum(axis=1, dtype=np.float64)
    return np.flatnonzero(np.abs(sums - 1) > tol)


def unnormalised_rows(targets: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Flat indices of the rows of ``targets`` that do not sum to 1 (within 1e-6).

    The core does no I/O; the command line turns these into a warning. A
    negative or non-finite target is refused here already, so that a caller
    that warns first and computes later never warns about a row it refuses.

    Examples
    --------
    >>> unnormalised_rows([[0.5, 0.5], [0.5, 0.4]])
    array([1])
    """
    array = np.asarray(targets)
    axis = check_axis(array.ndim, axis)
    rows = as_rows(array, axis)
    found = []
    for block in row_blocks(*rows.shape):
        _check_targets(rows[block], array.shape, axis, block.start)
        found.append(block.start + off_rows(rows[block]))
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
    index, kept = _index_labels(labels, tuple(shape), axis, ignore_index)
    return _denominator(index, kept, w, index.shape[0])


def checked_inputs(
    logits: npt.ArrayLike, labels: npt.ArrayLike, *, weights: npt.ArrayLike | None = None, ignore_index: int = -100,
    reduction: Reduction = "mean", label_smoothing: float = 0.0, axis: int = -1, temperature: float = 1.0,
    from_probs: bool = False, eps: float | None = None, masked_rows: MaskedRows = "nan",
    denominator: float | None = None,
) -> Setup:
    """Validate every input of a cross-entropy call (its keywords and defaults are those of ``cross_entropy``)."""
    array, compute, output = float_dtypes(logits)
    smoothing, temperature, eps = _check_options(reduction, label_smoothing, temperature, from_probs, eps, masked_rows,
                                                 compute)
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
        index, kept = _index_labels(labels, shape, axis, ignore_index)
    else:
        if labels.dtype.kind not in "biuf":
            raise InputError(f"target distributions must be real numbers, got dtype {labels.dtype}", operand="labels")
        targets = as_rows(labels, axis)
    if denominator is None:
        denominator = _denominator(index, kept, w, rows.shape[0])
    return Setup(rows, shape, axis, compute, output, index, kept, targets, w, reduction, smoothing, temperature, eps,
                 from_probs, masked_rows, denominator)


def counted_masked(masked, kept, setup: Setup, start: int):
    """The fully ``-inf`` rows that take part in the loss; raise for ``masked_rows="error"``."""
    if masked is None:
        return None
    if kept is not None:
        masked = masked & kept
    if not masked.any():
        return None
    if setup.masked_rows == "error":
        raise masked_row_error(
            _where(setup.shape, setup.axis, start + int(np.argmax(masked))),
            "give the row the ignore index, or choose --masked-rows zero or --masked-rows nan to allow such rows",
        )
    return masked


def target_coefficients(setup: Setup, block: slice) -> np.ndarray:
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


def index_coefficients(setup: Setup, block: slice):
    """Per row: the label, the label's coefficient ``(1 - eps) w_y`` (0 if ignored), and ``eps / C``."""
    y = setup.index[block]
    coef = np.full(y.shape, 1 - setup.smoothing, dtype=setup.compute)
    if setup.weights is not None:
        coef *= setup.weights[y]
    coef[~setup.kept[block]] = 0
    return y, coef, setup.smoothing / setup.rows.shape[1]

