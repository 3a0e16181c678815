r"""Expected calibration error and reliability bins, from predicted probabilities and labels.

A row's confidence is its largest probability and it is correct when that
class (the lower index on ties) is the label. Rows are binned by confidence
into ``M`` equal-width bins ``(lower, upper]`` of ``[0, 1]``, as the reference
script and torchmetrics do; the ECE is the count-weighted mean of
``|accuracy - confidence|`` over the bins. Everything is computed in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ._arrays import as_rows, check_axis, describe_position
from .labels import check_labels


class ReliabilityBins(NamedTuple):
    """Per-bin summary of a reliability diagram; empty bins hold NaN confidence and accuracy."""

    lower: np.ndarray
    upper: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def check_bins(bins: int) -> int:
    """Return ``bins`` as an int if it is a whole number >= 1, else raise."""
    try:
        whole = not isinstance(bins, (bool, np.bool_)) and float(bins) == int(bins)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or int(bins) < 1:
        raise InputError(f"bins must be a whole number >= 1, got {bins!r}")
    return int(bins)


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each confidence among ``bins`` equal-width bins ``(lower, upper]`` of ``[0, 1]``."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # side="left" puts a value equal to an edge into the bin that edge closes,
    # the (lower, upper] of the reference script; a confidence of exactly 0
    # (only an all-zero row) joins the first bin rather than vanishing.
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)


def _reliability(confidence: np.ndarray, correct: np.ndarray, bins: int) -> ReliabilityBins:
    index = _bin_index(confidence, bins)
    count = np.bincount(index, minlength=bins)
    sum_conf = np.bincount(index, weights=confidence, minlength=bins)
    sum_acc = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, sum_conf / count, np.nan)
        mean_acc = np.where(count > 0, sum_acc / count, np.nan)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return ReliabilityBins(edges[:-1], edges[1:], mean_conf, mean_acc, count.astype(np.int64))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """The ECE of rows with these confidences and correctness over ``bins`` bins; NaN for no rows."""
    if confidence.size == 0:
        return float("nan")
    index = _bin_index(confidence, bins)
    sum_conf = np.bincount(index, weights=confidence, minlength=bins)
    sum_acc = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    # |B|/n · |acc(B) - conf(B)| = |Σ_B correct - Σ_B conf| / n; an empty bin adds 0.
    return float(np.abs(sum_acc - sum_conf).sum() / confidence.size)


def _confidence_and_correct(probs: npt.ArrayLike, labels, axis: int, ignore_index: int):
    array = np.asarray(probs)
    if array.dtype.kind not in "fiub":
        raise InputError(f"cannot use probabilities of dtype {array.dtype}")
    axis = check_axis(array.ndim, axis)
    shape = array.shape
    lead = tuple(np.delete(np.array(shape, dtype=np.intp), axis).tolist())
    flat = check_labels(labels, lead, shape[axis], ignore_index)
    rows = as_rows(array, axis).astype(np.float64)
    if rows.shape[1] == 0:
        raise InputError("probabilities have no classes")
    bad = ~((rows >= 0) & (rows <= 1))
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"probability {float(rows[row, column])!r} is outside [0, 1]",
            where=describe_position(shape, axis, row, column) or None,
        )
    kept = flat != ignore_index
    rows, flat = rows[kept], flat[kept]
    # argmax takes the first maximum: ties to the lower class, as topk does.
    predicted = np.argmax(rows, axis=1)
    return rows[np.arange(rows.shape[0]), predicted], predicted == flat


def expected_calibration_error(
    probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = 15, axis: int = -1, ignore_index: int = -100
) -> float:
    r"""Expected calibration error of predicted probabilities over equal-width bins.

    .. math:: \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,\bigl|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\bigr|

    where ``B_m`` holds the rows whose confidence (largest probability) lies in
    ``((m-1)/M, m/M]``, ``acc`` is the fraction of them whose most probable
    class (the lower index on ties) is the label and ``conf`` their mean
    confidence; empty bins add nothing. This is the reference script's and
    torchmetrics' ``l1`` ECE with ``M = 15``.

    Parameters
    ----------
    probs : array_like
        Probabilities in ``[0, 1]``, e.g. from :func:`softmax`.
    labels : array_like of int
        One class index per row.
    bins : int
        Number of bins ``M >= 1``.
    axis : int
        The class axis.
    ignore_index : int
        Rows with this label are left out.

    Returns
    -------
    float
        ECE in ``[0, 1]``; NaN when every row is ignored.

    Examples
    --------
    >>> round(expected_calibration_error([[0.9, 0.1], [0.6, 0.4]], [0, 1], bins=10), 6)
    0.35
    """
    confidence, correct = _confidence_and_correct(probs, labels, axis, ignore_index)
    return ece(confidence, correct, check_bins(bins))


def reliability_bins(
    probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = 15, axis: int = -1, ignore_index: int = -100
) -> ReliabilityBins:
    r"""Per-bin confidence, accuracy and count: the data of a reliability diagram.

    Bins are those of :func:`expected_calibration_error`, and

    .. math:: \mathrm{ECE} = \sum_m \frac{\mathrm{count}_m}{n}\,|\mathrm{accuracy}_m - \mathrm{confidence}_m|

    Returns
    -------
    ReliabilityBins
        ``lower``, ``upper`` (bin edges), ``confidence`` and ``accuracy`` (means
        over the bin, NaN for an empty bin), ``count`` (int64); each of length ``bins``.

    Examples
    --------
    >>> r = reliability_bins([[0.9, 0.1], [0.6, 0.4]], [0, 1], bins=2)
    >>> r.count, r.confidence, r.accuracy
    (array([0, 2]), array([ nan, 0.75]), array([nan, 0.5]))
    """
    confidence, correct = _confidence_and_correct(probs, labels, axis, ignore_index)
    return _reliability(confidence, correct, check_bins(bins))
