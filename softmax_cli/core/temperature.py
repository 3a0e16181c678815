r"""Temperature scaling: the NLL at a temperature, the sweep over temperatures, the fitted temperature.

Temperature scaling (Guo et al. 2017, arXiv:1706.04599) divides every logit by
one ``T > 0``. Writing ``β = 1/T``, the mean negative log-likelihood

.. math:: \mathrm{NLL}(β) = \frac{1}{N}\sum_n \Bigl(\log\sum_c e^{β z_{nc}} - β z_{n y_n}\Bigr)

is convex in ``β`` (a log-sum-exp of linear functions minus a linear one),
with

.. math:: \mathrm{NLL}'(β) = \frac{1}{N}\sum_n \bigl(\mathbb{E}_{p_n}[z_n] - z_{n y_n}\bigr), \quad
          \mathrm{NLL}''(β) = \frac{1}{N}\sum_n \mathrm{Var}_{p_n}[z_n] \ge 0,

so :func:`fit_temperature` brackets the root of ``NLL'`` and runs a
safeguarded Newton iteration on it: the global minimum, to machine precision,
where the reference script's 50 LBFGS steps on ``T`` may stop short or leave
``T`` negative.

The calibration figures of each temperature (ECE, l2 ECE, MCE, classwise ECE,
Brier score, the reliability bins) come from :mod:`.reliability`. Scalar summaries
are computed in float64 whatever the logits' dtype, so a
float32 model's NLL and ECE are not blurred by float32 sums.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from .blocks import as_rows, check_axis, describe_position, float_dtypes, row_blocks
from .labels import check_labels
from .logits import check_logit_rows, check_temperature
from .reliability import (
    BinSums,
    binned_figures,
    brier_terms,
    check_binary,
    check_bins,
    classwise_sums,
    scored_values,
)
from .softmax import log_softmax, softmax

# Newton converges quadratically; this many steps is far more than it needs
# and bounds the work if rounding makes NLL' flicker around its root.
_MAX_NEWTON_STEPS = 200
# Stop when a step moves β by less than this relative amount (T = 1/β moves
# by the same relative amount), well inside the promised 1e-8.
_BETA_RTOL = 1e-13
# Calibration has no --masked-rows policy: a fully masked row can only be left out.
MASKED_REMEDY = "remove the row (or give it the ignore index) to score or calibrate the others"


class NoMinimum(InputError):
    """The mean NLL has no minimum at a finite ``T > 0``: it keeps falling as ``T`` goes ``towards`` 0 or infinity."""

    def __init__(self, message: str, towards: str) -> None:
        super().__init__(message)
        self.towards = towards


# Why the NLL falls forever in each direction; the command line adds what to type instead.
FALLS_TOWARDS_INFINITY = (
    "no finite temperature minimises NLL: the labels' logits are not above their rows' mean "
    "on average, so NLL falls as T grows towards the uniform prediction (T -> inf)"
)
FALLS_TOWARDS_ZERO = (
    "the NLL has no minimum: every label has its row's largest logit (the data are perfectly separated), "
    "so NLL keeps falling towards 0 as T -> 0"
)


def check_has_minimum(slope_at_zero: float, some_label_below_max: bool) -> None:
    """Raise :class:`NoMinimum` unless the convex NLL(β) has its minimum at a finite ``β > 0``."""
    if not slope_at_zero < 0:
        raise NoMinimum(FALLS_TOWARDS_INFINITY, "infinity")
    if not some_label_below_max:
        raise NoMinimum(FALLS_TOWARDS_ZERO, "zero")


def labelled_rows(x: npt.ArrayLike, labels: npt.ArrayLike, axis: int, ignore_index: int):
    """Float64 2-D rows and flat labels of the rows not ignored, the shape, the axis and those rows' numbers."""
    array, _, _ = float_dtypes(x)
    axis = check_axis(array.ndim, axis)
    shape = array.shape
    lead = tuple(np.delete(np.array(shape, dtype=np.intp), axis).tolist())
    flat = check_labels(labels, lead, shape[axis], ignore_index)
    kept = flat != ignore_index
    rows = as_rows(array, axis)[kept].astype(np.float64)
    return rows, flat[kept], shape, axis, np.flatnonzero(kept)


def check_labelled_rows(rows: np.ndarray, labels: np.ndarray, shape, axis, row_ids) -> None:
    """Refuse what has no NLL: bad logit rows and labels whose logit is ``-inf`` (infinite NLL).

    ``rows`` may be a subset (the labelled rows); ``row_ids`` maps them back
    to the original row numbers so that errors name the user's position.
    """
    check_logit_rows(rows, shape, axis, row_ids=row_ids, remedy=MASKED_REMEDY)
    if rows.shape[0] == 0:
        return
    at_label = np.isneginf(rows[np.arange(rows.shape[0]), labels])
    if at_label.any():
        row = int(np.argmax(at_label))
        raise InputError(
            "the label's logit is -inf (a masked class), so its NLL is infinite at every temperature",
            where=describe_position(shape, axis, int(row_ids[row]), int(labels[row])),
        )


def log_probs(rows: np.ndarray, temperature: float) -> np.ndarray:
    return log_softmax(rows, axis=1, temperature=temperature, masked_rows="error")


def nll(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    temperature: float = 1.0,
    axis: int = -1,
    ignore_index: int = -100,
) -> float:
    r"""Mean negative log-likelihood of the labels under ``softmax(logits / T)``.

    .. math:: \mathrm{NLL} = \frac{1}{|R|}\sum_{n \in R}
              \Bigl(\log\sum_c e^{z_{nc}/T} - z_{n y_n}/T\Bigr)

    over the rows ``R`` not labelled ``ignore_index``: exact via log-softmax
    (never ``log(softmax)``), in float64, equal to
    ``torch.nn.functional.cross_entropy(z / T, y)``.

    Raises
    ------
    InputError
        On labels out of range or of the wrong shape, a temperature that is not
        finite and positive, NaN/``+inf`` logits, rows that are all ``-inf``,
        or a label whose logit is ``-inf``.

    Examples
    --------
    >>> round(nll([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], [0, 1]), 5)
    0.31854
    """
    temperature = check_temperature(temperature)
    rows, flat, shape, axis, row_ids = labelled_rows(logits, labels, axis, ignore_index)
    if rows.shape[0] == 0:
        return float("nan")
    check_labelled_rows(rows, flat, shape, axis, row_ids)
    log_p = log_probs(rows, temperature)
    return float(-log_p[np.arange(rows.shape[0]), flat].mean())


def temperature_sweep(
    logits: npt.ArrayLike,
    temperatures: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    bins: int = 15,
    axis: int = -1,
    ignore_index: int = -100,
    binning: str = "uniform",
    bin_edges: str = "right",
    binary: bool = False,
) -> dict[str, np.ndarray]:
    r"""Probabilities and summaries of ``softmax(logits / T)`` for each temperature.

    .. math:: H_T = \overline{-\textstyle\sum_c p_c \log p_c}, \quad
              \mathrm{max\_prob}_T = \overline{\max_c p_c}, \quad p = \mathrm{softmax}(z / T)

    (bars are means over rows). Accuracy uses the largest logit (the lower
    class on ties), which no temperature changes; ECE pairs it with the
    confidence ``max_c p_c`` at each ``T``.

    Parameters
    ----------
    logits : array_like
        Logits; every row needs at least one finite logit.
    temperatures : array_like of float
        One or more temperatures, each finite and ``> 0``. ``T -> 0`` tends to
        one-hot (``1e-6`` works), never NaN.
    labels : array_like of int, optional
        One class index per row; adds ``nll``, ``accuracy``, the calibration
        figures and the reliability bins.
    bins : int
        Calibration bins.
    axis : int
        The class axis.
    ignore_index : int
        Rows with this label are left out of everything the labels add.
    binning, bin_edges, binary
        How rows are binned and what is scored: see
        :func:`~softmax_cli.core.calibration_metrics`.

    Returns
    -------
    dict of str to ndarray
        ``temperatures`` (float64, ``(M,)``); ``probs`` of shape ``(M, C)``, only
        when the logits are a single row (1-D, or one row), in the logits' dtype;
        ``entropy`` and ``max_prob`` (``(M,)``, means over rows); with labels
        ``nll``, ``accuracy``, ``ece``, ``ece_l2``, ``mce``, ``classwise_ece``,
        ``brier`` (``(M,)``) and the reliability bins at each temperature,
        ``bin_lower``, ``bin_upper``, ``bin_count``, ``bin_confidence``,
        ``bin_accuracy`` (``(M, bins)``; NaN confidence and accuracy in an empty bin).

    Examples
    --------
    >>> sweep = temperature_sweep([2.0, 0.0], [1e-6, 1.0, 1e6])
    >>> sweep["probs"].round(4)
    array([[1.    , 0.    ],
           [0.8808, 0.1192],
           [0.5   , 0.5   ]])
    """
    temps = check_temperatures(temperatures)
    bins = check_bins(bins)
    array, _, output = float_dtypes(logits)
    axis = check_axis(array.ndim, axis)
    # A view: a memory-mapped file stays on disk, read one block of rows at a time below.
    rows = as_rows(array, axis)
    if rows.shape[1] == 0:
        raise InputError("logits have no classes")
    flat = None
    if labels is not None:
        lead = tuple(np.delete(np.array(array.shape, dtype=np.intp), axis).tolist())
        flat = check_labels(labels, lead, array.shape[axis], ignore_index)
        check_binary(rows.shape[1], binary)
    parts = [_SweepParts() for _ in temps]
    for block in row_blocks(*rows.shape):
        block_rows = rows[block].astype(np.float64)
        row_ids = np.arange(block.start, block.stop)
        check_logit_rows(block_rows, array.shape, axis, row_ids=row_ids, remedy=MASKED_REMEDY)
        labelled = None
        if flat is not None:
            kept = np.flatnonzero(flat[block] != ignore_index)
            check_labelled_rows(block_rows[kept], flat[block][kept], array.shape, axis, row_ids[kept])
            # Dividing by one T > 0 never moves the argmax, so correctness is fixed for the sweep.
            labelled = kept, flat[block][kept], np.argmax(block_rows[kept], axis=1) == flat[block][kept]
        for part, t in zip(parts, temps):
            part.add(block_rows, t, labelled, bins, bin_edges, binary)
    per_t = [part.summaries(flat is not None, bins, binning, bin_edges) for part in parts]
    result: dict[str, np.ndarray] = {"temperatures": temps}
    if rows.shape[0] == 1:
        one = rows.astype(np.float64)
        result["probs"] = np.stack([np.exp(log_probs(one, t)[0]) for t in temps]).astype(output)
    result.update({name: np.array([s[name] for s in per_t]) for name in per_t[0]})
    return result


def sweep_labels(rows: np.ndarray, labels: npt.ArrayLike, shape, axis: int, ignore_index: int):
    """Row numbers and labels of the labelled rows, and whether each row's argmax is right."""
    lead = tuple(np.delete(np.array(shape, dtype=np.intp), axis).tolist())
    flat = check_labels(labels, lead, shape[axis], ignore_index)
    kept = np.flatnonzero(flat != ignore_index)
    check_labelled_rows(rows[kept], flat[kept], shape, axis, kept)
    # Dividing by one T > 0 never moves the argmax, so correctness is fixed for the sweep.
    return kept, flat[kept], np.argmax(rows[kept], axis=1) == flat[kept]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0)


def _mean(values: np.ndarray) -> float:
    """The mean, NaN for no values (without NumPy's warning about an empty slice)."""
    return float(values.mean()) if values.size else float("nan")


class _SweepParts:
    """One temperature's per-row figures, block by block, and the classwise bins' sums.

    Per-row arrays (a few floats a row) are kept and reduced once at the end,
    so those figures do not depend on where blocks start; the classwise sums
    (classes x bins) are added block by block, in blocks fixed by the shape.
    """

    def __init__(self) -> None:
        self.entropy, self.confidence = [], []
        self.nll, self.correct, self.values, self.hits, self.brier = [], [], [], [], []
        self.classwise = None

    def add(self, rows: np.ndarray, temperature: float, labelled, bins: int, closed: str, binary: bool) -> None:
        log_p = log_probs(rows, temperature)
        p = np.exp(log_p)
        # 0 · log 0 is 0 (a masked class or an underflowed one), not NaN.
        self.entropy.append(0.0 - np.where(p > 0, p * np.where(p > 0, log_p, 0), 0).sum(axis=1))
        self.confidence.append(p.max(axis=1))
        if labelled is None:
            return
        kept, flat, correct = labelled
        self.nll.append(-log_p[kept, flat])
        self.correct.append(correct)
        values, hits = scored_values(p[kept], correct, flat, binary)
        self.values.append(values)
        self.hits.append(hits)
        self.brier.append(brier_terms(p[kept], flat))
        sums = classwise_sums(p[kept], flat, bins, closed)
        self.classwise = sums if self.classwise is None else BinSums(*(a + b for a, b in zip(self.classwise, sums)))

    def summaries(self, labelled: bool, bins: int, binning: str, closed: str) -> dict[str, float]:
        entropy, confidence = _joined(self.entropy), _joined(self.confidence)
        summary = {"entropy": _mean(entropy), "max_prob": _mean(confidence)}
        if not labelled:
            return summary
        summary["nll"] = _mean(_joined(self.nll))
        summary["accuracy"] = _mean(_joined(self.correct))
        errors, reliability = binned_figures(_joined(self.values), _joined(self.hits), _joined(self.brier),
                                             self.classwise, bins, binning, closed)
        summary.update(errors)
        summary.update(reliability.as_results())
        return summary


def check_temperatures(temperatures: npt.ArrayLike) -> np.ndarray:
    values = np.atleast_1d(np.asarray(temperatures))
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"temperatures must be a non-empty list of numbers, got shape {values.shape}")
    return np.array([check_temperature(t) for t in values], dtype=np.float64)


def _derivative_terms(
    rows: np.ndarray, finite: np.ndarray, at_label: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's terms of ``NLL'(β)`` and ``NLL''(β)``, for max-shifted rows (masked logits as 0 in ``rows``).

    ``finite`` marks the unmasked logits.
    """
    scaled = beta * rows if finite.all() else np.where(finite, beta * rows, -np.inf)
    p = softmax(scaled, axis=1)
    # A masked class has p = 0 exactly, so its placeholder 0 in `rows` adds nothing.
    mean = (p * rows).sum(axis=1)
    variance = (p * (rows - mean[:, None]) ** 2).sum(axis=1)
    return mean - at_label, variance


def fit_temperature(
    logits: npt.ArrayLike, labels: npt.ArrayLike, axis: int = -1, ignore_index: int = -100
) -> float:
    r"""The temperature ``T > 0`` that minimises the mean NLL of the labels.

    Minimises the convex :math:`\mathrm{NLL}(β)` (see the module docstring)
    over ``β = 1/T > 0``: ``β`` is doubled or halved from 1 until
    :math:`\mathrm{NLL}'` changes sign, then a Newton iteration on
    :math:`\mathrm{NLL}'` with the exact second derivative, kept inside the
    bracket by bisection, runs until a step changes ``β`` (and so ``T``) by
    less than 1e-13 relative; this is the global minimum.

    A minimum at a finite, positive ``T`` exists exactly when

    * :math:`\mathrm{NLL}'(0) < 0`: the labels' logits are above their rows'
      mean logit on average (else the model is uninformative or worse, and
      NLL is lowest as ``T -> ∞``, the uniform prediction), and
    * some row's label logit is below that row's maximum (else every row is
      classified correctly or tied for first, and NLL keeps falling as ``T -> 0``).

    Both degenerate cases raise :class:`NoMinimum` (an :class:`InputError`)
    saying which one it is (``towards`` is ``"infinity"`` or ``"zero"``).

    Parameters
    ----------
    logits : array_like
        Held-out logits, never the training set's.
    labels : array_like of int
        One class index per row; rows labelled ``ignore_index`` are left out.
    axis : int
        The class axis.

    Returns
    -------
    float
        The fitted temperature; ``softmax(logits / T)`` is the calibrated model.

    Examples
    --------
    Three of four rows right with margin 4: the fit makes the confidence 3/4,
    ``σ(4/T) = 3/4``, so ``T = 4 / ln 3``.

    >>> round(fit_temperature([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], [0, 0, 0, 0]), 6)
    3.640957
    """
    array, _, _ = float_dtypes(logits)
    axis = check_axis(array.ndim, axis)
    shape = array.shape
    lead = tuple(np.delete(np.array(shape, dtype=np.intp), axis).tolist())
    flat = check_labels(labels, lead, shape[axis], ignore_index)
    if not (flat != ignore_index).any():
        raise InputError("no labelled rows to fit a temperature on (every label is the ignore index)")
    # A view: each evaluation below reads a block of rows at a time, so a memory-mapped file stays on disk.
    source = as_rows(array, axis)
    blocks = list(row_blocks(*source.shape))

    def shifted(block: slice, check: bool = False):
        """The block's labelled rows shifted to max 0 (masked logits as 0), their mask and their label logits."""
        kept = np.flatnonzero(flat[block] != ignore_index)
        rows, labels_kept = source[block][kept].astype(np.float64), flat[block][kept]
        if check:
            check_labelled_rows(rows, labels_kept, shape, axis, block.start + kept)
        # NLL is unchanged by shifting a row, and with the max at 0 no β·z overflows.
        rows = rows - rows.max(axis=1, keepdims=True) if rows.shape[0] else rows
        finite = np.isfinite(rows)
        rows = np.where(finite, rows, 0.0)
        return rows, finite, rows[np.arange(rows.shape[0]), labels_kept]

    slopes, below = [], False
    for block in blocks:
        rows, finite, at_label = shifted(block, check=True)
        # NLL'(0): the mean over finite classes minus the label's logit, averaged over rows.
        slopes.append(rows.sum(axis=1) / finite.sum(axis=1) - at_label)
        below = below or bool((at_label < 0).any())
    check_has_minimum(np.concatenate(slopes).mean(), below)

    def derivatives(beta: float) -> tuple[float, float]:
        terms = [_derivative_terms(*shifted(block), beta) for block in blocks]
        return (float(np.concatenate([slope for slope, _ in terms]).mean()),
                float(np.concatenate([curvature for _, curvature in terms]).mean()))

    return 1.0 / solve_beta(derivatives)


def solve_beta(derivatives) -> float:
    """Root of the nondecreasing ``NLL'(β)``, known to lie in ``(0, ∞)``, from ``derivatives(β) -> (NLL', NLL'')``."""
    beta = 1.0
    slope, curvature = derivatives(beta)
    lower, upper = (0.0, np.inf)
    # Bracket the root: at most ~2000 halvings or doublings span every float64.
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
    for _ in range(_MAX_NEWTON_STEPS):
        step = slope / curvature if curvature > 0 else np.inf
        candidate = beta - step
        if not lower < candidate < upper:
            # Newton would leave the bracket: bisect instead (geometric mean suits a ratio bracket).
            candidate = np.sqrt(lower * upper)
        if abs(candidate - beta) <= _BETA_RTOL * beta:
            return candidate
        beta = candidate
        slope, curvature = derivatives(beta)
        if slope == 0:
            return beta
        if slope < 0:
            lower = beta
        else:
            upper = beta
        if upper - lower <= _BETA_RTOL * beta:
            return beta
    return beta
