r"""Calibration of predicted probabilities against labels: binned errors, the Brier score, reliability bins.

A row's *confidence* is its largest probability and it is *correct* when that
class (the lower index on ties) is the label; in the binary mode
(``binary=True``, two classes) the scored value is ``P(class 1)`` and the hit
is ``label == 1``, as torchmetrics' ``binary_calibration_error`` and netcal
score two-class data. Rows are binned by that value into ``M`` bins:

- ``binning="uniform"``: equal-width bins of ``[0, 1]``;
- ``binning="quantile"``: equal-mass (adaptive) bins whose inner edges are
  the ``1/M, ..., (M-1)/M`` quantiles of the scored values (NumPy's linear
  rule) and outer edges 0 and 1, netcal's ``equal_intervals=False``;

and a value on an edge goes by ``bin_edges``:

- ``"right"``: bins ``(lower, upper]``, the gpleiss script's rule; a value
  of exactly 0 joins the first bin;
- ``"left"``: bins ``[lower, upper)`` with the top edge in the last bin,
  ``numpy.histogram``'s rule and so netcal's (``binned_statistic_dd``, after
  clipping values into ``[eps, 1 - eps]``);
- ``"bucketize"``: bins ``[lower, upper)`` and a value on the top edge (a
  confidence of exactly 1) in a bin of its own after them, ``M + 1`` bins:
  torchmetrics' rule (``torch.bucketize(values, edges, right=True) - 1``).

From the bins (``count_m`` rows, mean value ``conf_m``, hit rate ``acc_m``,
``n`` rows in all), the errors are torchmetrics' three ``norm`` choices:

.. math:: \mathrm{ECE} = \sum_m \frac{\mathrm{count}_m}{n}|\mathrm{acc}_m - \mathrm{conf}_m|, \quad
          \mathrm{ECE}_2 = \Bigl(\sum_m \frac{\mathrm{count}_m}{n}(\mathrm{acc}_m - \mathrm{conf}_m)^2\Bigr)^{1/2}, \quad
          \mathrm{MCE} = \max_{m:\,\mathrm{count}_m > 0} |\mathrm{acc}_m - \mathrm{conf}_m|

Everything is computed in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ..choices import BIN_EDGES, BINNINGS
from ..errors import InputError
from .blocks import as_rows, check_axis, describe_position
from .labels import check_labels

# Names of the figures :func:`calibration_errors` and :func:`brier_score` give, in the order results list them.
CALIBRATION_METRICS = ("ece", "ece_l2", "mce", "classwise_ece", "brier")
# The reliability bins as results, one name per field of ReliabilityBins, in the order results list them.
BIN_NAMES = ("bin_lower", "bin_upper", "bin_count", "bin_confidence", "bin_accuracy")


class ReliabilityBins(NamedTuple):
    """Per-bin summary of a reliability diagram; empty bins hold NaN confidence and accuracy."""

    lower: np.ndarray
    upper: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    def as_results(self) -> dict[str, np.ndarray]:
        """The bins under their result names (:data:`BIN_NAMES`), in that order."""
        return {name: getattr(self, name.removeprefix("bin_")) for name in BIN_NAMES}

    @classmethod
    def from_results(cls, results: dict, index) -> ReliabilityBins:
        """The bins at ``results[name][index]`` for each result name: a sweep's bins at one temperature."""
        return cls(**{name.removeprefix("bin_"): results[name][index] for name in BIN_NAMES})


class BinSums(NamedTuple):
    """Sums over the rows of each bin: how many, their scored values, their hits; mergeable by adding."""

    count: np.ndarray  # int64, (..., M)
    values: np.ndarray  # float64, (..., M)
    hits: np.ndarray  # int64, (..., M)


def check_bins(bins: int) -> int:
    """Return ``bins`` as an int if it is a whole number >= 1, else raise."""
    try:
        whole = not isinstance(bins, (bool, np.bool_)) and float(bins) == int(bins)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or int(bins) < 1:
        raise InputError(f"bins must be a whole number >= 1, got {bins!r}")
    return int(bins)


def uniform_edges(bins: int) -> np.ndarray:
    """``i / M`` for ``i = 0..M``, each rounded once: a confidence of exactly 0.6 lies on an edge of five bins
    (``np.linspace`` gives 0.6000000000000001 there, and would bin it differently)."""
    return np.arange(bins + 1) / bins


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


def bin_edges(values: np.ndarray, bins: int, binning: str = "uniform") -> np.ndarray:
    """The ``bins + 1`` edges: equal-width over ``[0, 1]``, or the quantiles of ``values`` (equal mass).

    Quantile edges are NumPy's linear-interpolation quantiles of the values,
    the outer two set to 0 and 1 as netcal sets them; with no values they are
    the equal-width ones.
    """
    bins = check_bins(bins)
    uniform = uniform_edges(bins)
    if _check_choice(binning, BINNINGS, "binning") == "uniform" or np.size(values) == 0:
        return uniform
    edges = np.quantile(np.asarray(values, dtype=np.float64), uniform)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def bin_index(values: np.ndarray, bins: int | np.ndarray, closed: str = "right") -> np.ndarray:
    """Bin of each value among the bins of ``edges`` (or ``bins`` equal-width ones), by the ``closed`` rule.

    ``searchsorted(side="left")`` puts a value equal to an edge into the bin
    that edge closes, ``(lower, upper]`` (``"right"``); ``side="right"`` into the
    bin it opens, ``[lower, upper)`` (``"left"``, ``"bucketize"``). Clipping
    keeps the ends inside: a value on the first edge joins the first bin under
    ``"right"`` (the reference script would drop a confidence of exactly 0),
    one on the last edge the last bin under ``"left"`` (``numpy.histogram``'s
    closed last bin); ``"bucketize"`` keeps it in one more bin of its own, as
    ``torch.bucketize(values, edges, right=True) - 1`` does for torchmetrics.
    """
    edges = uniform_edges(bins) if np.ndim(bins) == 0 else np.asarray(bins)
    side = "left" if _check_choice(closed, BIN_EDGES, "bin_edges") == "right" else "right"
    return np.clip(np.searchsorted(edges, values, side=side) - 1, 0, bin_count(edges, closed) - 1)


def bin_count(edges: np.ndarray, closed: str) -> int:
    """``M`` bins from ``M + 1`` edges, and one more (the top edge alone) under ``"bucketize"``."""
    return edges.size - (0 if closed == "bucketize" else 1)


def bin_sums(values: np.ndarray, hits: np.ndarray, edges: np.ndarray, closed: str = "right") -> BinSums:
    """Per bin of ``edges``: the row count, the sum of ``values`` and the number of ``hits``."""
    bins = bin_count(edges, closed)
    index = bin_index(values, edges, closed)
    return BinSums(np.bincount(index, minlength=bins).astype(np.int64),
                   np.bincount(index, weights=values, minlength=bins),
                   np.bincount(index, weights=hits, minlength=bins).astype(np.int64))


def classwise_sums(probs: np.ndarray, labels: np.ndarray, bins: int, closed: str = "right") -> BinSums:
    """Per class (rows) and equal-width bin of ``p_c`` (columns): count, sum of ``p_c``, rows labelled ``c``."""
    classes = probs.shape[1]
    width = bin_count(uniform_edges(bins), closed)
    index = bin_index(probs, bins, closed) + width * np.arange(classes)
    hits = (labels[:, None] == np.arange(classes)).astype(np.float64)
    size = classes * width
    return BinSums(np.bincount(index.ravel(), minlength=size).reshape(classes, width).astype(np.int64),
                   np.bincount(index.ravel(), weights=probs.ravel(), minlength=size).reshape(classes, width),
                   np.bincount(index.ravel(), weights=hits.ravel(), minlength=size).reshape(classes, width)
                   .astype(np.int64))


def brier_terms(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    r"""Each row's Brier term: :math:`\sum_c (p_c - [y = c])^2`, or :math:`(p_1 - [y = 1])^2` for two classes.

    Two classes take sklearn's binary form (its ``scale_by_half="auto"``),
    exactly half the multiclass sum.
    """
    if probs.shape[1] == 2:
        return (probs[:, 1] - (labels == 1)) ** 2
    onehot = labels[:, None] == np.arange(probs.shape[1])
    return ((probs - onehot) ** 2).sum(axis=1)


def reliability_of(sums: BinSums, edges: np.ndarray) -> ReliabilityBins:
    """The bins' means (NaN where empty) and edges (under ``"bucketize"`` the last bin is ``[1, 1]``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(sums.count > 0, sums.values / sums.count, np.nan)
        accuracy = np.where(sums.count > 0, sums.hits / sums.count, np.nan)
    lower = edges[:sums.count.size]
    upper = np.append(edges[1:], edges[-1])[:sums.count.size]
    return ReliabilityBins(lower=lower.copy(), upper=upper, confidence=confidence, accuracy=accuracy,
                           count=sums.count.copy())


def calibration_errors(sums: BinSums, classwise: BinSums, brier_sum: float, n: int) -> dict[str, float]:
    """``ece``, ``ece_l2``, ``mce``, ``classwise_ece`` and ``brier`` from the bins' sums over ``n`` rows."""
    if n == 0:
        return dict.fromkeys(CALIBRATION_METRICS, float("nan"))
    filled = sums.count > 0
    # count/n · |acc - conf| = |Σ hits - Σ values| / n: no division per bin.
    gap = np.abs(sums.hits - sums.values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(filled, gap / np.maximum(sums.count, 1), 0.0)
    class_gap = np.abs(classwise.hits - classwise.values).sum(axis=1) / n
    return {"ece": float(gap.sum() / n),
            "ece_l2": float(np.sqrt((gap * mean_gap).sum() / n)),
            "mce": float(mean_gap[filled].max()),
            "classwise_ece": float(class_gap.mean()),
            "brier": float(brier_sum / n)}


def scored_values(probs: np.ndarray, correct: np.ndarray, labels: np.ndarray, binary: bool):
    """What is binned and what counts as a hit: the confidence and correctness, or ``P(class 1)`` and ``y == 1``."""
    if binary:
        return probs[:, 1], labels == 1
    return probs.max(axis=1), correct


def binned_figures(
    values: np.ndarray,
    hits: np.ndarray,
    brier: np.ndarray,
    classwise: BinSums | None,
    bins: int,
    binning: str = "uniform",
    bin_edges_rule: str = "right",
) -> tuple[dict[str, float], ReliabilityBins]:
    """The figures and bins from each row's scored value, hit and Brier term, and the classwise sums."""
    edges = bin_edges(values, bins, binning)
    sums = bin_sums(values, hits, edges, bin_edges_rule)
    if classwise is None:  # no labelled rows
        classwise = BinSums(*(np.zeros((0, sums.count.size)) for _ in range(3)))
    return calibration_errors(sums, classwise, float(brier.sum()), values.size), reliability_of(sums, edges)


def calibration(
    probs: np.ndarray,
    labels: np.ndarray,
    correct: np.ndarray,
    bins: int = 15,
    binning: str = "uniform",
    bin_edges_rule: str = "right",
    binary: bool = False,
) -> tuple[dict[str, float], ReliabilityBins]:
    """Every calibration figure of 2-D float64 ``probs`` (rows already labelled), and the reliability bins."""
    values, hits = scored_values(probs, correct, labels, binary)
    return binned_figures(values, hits, brier_terms(probs, labels), classwise_sums(probs, labels, bins, bin_edges_rule),
                          bins, binning, bin_edges_rule)


def check_binary(classes: int, binary: bool) -> None:
    """The binary mode scores ``P(class 1)``: it needs exactly two classes."""
    if binary and classes != 2:
        raise InputError(f"--binary scores P(class 1) of two-class data, but the logits have {classes} classes; "
                         "leave out --binary for the top-label calibration of more classes")


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """The ECE of rows with these confidences and correctness over ``bins`` bins; NaN for no rows."""
    if confidence.size == 0:
        return float("nan")
    sums = bin_sums(confidence, correct, uniform_edges(bins))
    return float(np.abs(sums.hits - sums.values).sum() / confidence.size)


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
    return rows[np.arange(rows.shape[0]), predicted], predicted == flat, rows, flat


def expected_calibration_error(
    probs: npt.ArrayLike, labels: npt.ArrayLike, bins: int = 15, axis: int = -1, ignore_index: int = -100
) -> float:
    r"""Expected calibration error of predicted probabilities over equal-width bins.

    .. math:: \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,\bigl|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\bigr|

    where ``B_m`` holds the rows whose confidence (largest probability) lies in
    ``((m-1)/M, m/M]``, ``acc`` is the fraction of them whose most probable
    class (the lower index on ties) is the label and ``conf`` their mean
    confidence; empty bins add nothing. This is the gpleiss reference script's
    ECE with ``M = 15``; torchmetrics bins ``[lower, upper)`` instead (see
    :func:`calibration_metrics` with ``bin_edges="left"``).

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
    confidence, correct, _, _ = _confidence_and_correct(probs, labels, axis, ignore_index)
    return ece(confidence, correct, check_bins(bins))


def calibration_metrics(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    bins: int = 15,
    binning: str = "uniform",
    bin_edges: str = "right",
    binary: bool = False,
    axis: int = -1,
    ignore_index: int = -100,
) -> dict[str, float]:
    r"""ECE (l1), l2 ECE, MCE, classwise ECE and the Brier score of predicted probabilities.

    The binned errors follow the module docstring. The classwise ECE (Kull et
    al. 2019) bins every class's ``p_c`` into ``bins`` equal-width bins (the
    ``bin_edges`` rule applies; ``binning`` does not) and averages over the
    ``C`` classes:

    .. math:: \mathrm{cwECE} = \frac{1}{C}\sum_c \sum_m \frac{|B_{mc}|}{n}
              \Bigl|\frac{1}{|B_{mc}|}\sum_{n \in B_{mc}} [y_n = c] - \frac{1}{|B_{mc}|}\sum_{n \in B_{mc}} p_{nc}\Bigr|

    The Brier score is sklearn's ``brier_score_loss``: multiclass
    :math:`\frac1n\sum_n\sum_c (p_{nc} - [y_n = c])^2`; for two classes
    :math:`\frac1n\sum_n (p_{n1} - [y_n = 1])^2`, half the multiclass form
    (sklearn's binary form, whether or not ``binary`` is set).

    Examples
    --------
    >>> m = calibration_metrics([[0.9, 0.1], [0.6, 0.4]], [0, 1], bins=10)
    >>> round(m["ece"], 6), round(m["mce"], 6), round(m["brier"], 6)
    (0.35, 0.6, 0.185)
    """
    _, correct, rows, flat = _confidence_and_correct(probs, labels, axis, ignore_index)
    check_binary(rows.shape[1], binary)
    return calibration(rows, flat, correct, bins, binning, bin_edges, binary)[0]


def reliability_bins(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    bins: int = 15,
    axis: int = -1,
    ignore_index: int = -100,
    binning: str = "uniform",
    bin_edges: str = "right",
    binary: bool = False,
) -> ReliabilityBins:
    r"""Per-bin confidence, accuracy and count: the data of a reliability diagram.

    Bins are those of :func:`calibration_metrics`, and

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
    _, correct, rows, flat = _confidence_and_correct(probs, labels, axis, ignore_index)
    check_binary(rows.shape[1], binary)
    return calibration(rows, flat, correct, bins, binning, bin_edges, binary)[1]
