r"""How far apart two models' output distributions are: KL, JS, TV and label figures per row.

``P = softmax(reference)`` and ``Q = softmax(candidate)`` row by row. Every
figure is computed from the log-probabilities ``log p`` and ``log q`` (the
core's :func:`~softmax_cli.core.softmax.log_softmax`), never from clipped
probabilities, and written in terms of the per-class log-ratio
``r = log q - log p`` so that identical rows give exactly 0 and close rows
keep their digits. A float32 ``log p`` of a row of thousands of classes is
off by about ``eps * |log p| ~ 1e-6``, as large as a quantised model's whole
KL; the forms below cancel that error to second order (on float32 logits of
8192 classes against themselves rounded to bfloat16, the plain float32 sum
``Σ p (log p - log q)`` is 0.6% off the float64 KL, these forms 1e-5):

* KL per class, in its Bregman form (equal to the plain sum because
  ``sum p = sum q = 1``): ``p log(p/q) - p + q = p (expm1(r) - r)``, which is
  never negative, so a row's KL is ``>= 0`` exactly. Where ``q > e p``
  (``r > 1``) it is ``q - p - p r``, which cannot overflow.
* JS per class, with ``m = (p + q) / 2``: ``log p - log m = -log1p(expm1(r) / 2)``
  and ``log q - log m = -log1p(expm1(-r) / 2)``, the same as
  ``log M = logaddexp(log p, log q) - log 2`` but without subtracting two
  nearly equal logarithms.
* Where ``|r| <= 1/4`` (1/8 in float64), nearly every class when two models
  agree, both per-class functions, ``expm1(r) - r`` and the JS term over
  ``p``, are their Taylor series in ``r`` times ``p r^2``, cut where the first
  term left out is below a quarter ULP: as exact as expm1 and log1p, which
  NumPy does not vectorise and which took 40% of a comparison's time.
* A side's probabilities come from the exponentials its log-softmax computes
  anyway (:func:`~softmax_cli.core.softmax.log_probs_and_probs`), with its
  argmax: one ``exp`` pass per side (logits of 64 classes or more; fewer
  classes, and probabilities, take the core's own log-softmax and ``exp``).

A ``-inf`` log-probability (a masked logit, or a probability of 0 with
``from_probs``) is exact: ``0 log 0 = 0``, and a class that P gives mass and
Q does not makes the row's KL ``inf``. Rows holding such classes have those
classes corrected after the common computation; other rows pay nothing for it.

The rows are independent and each is computed the same way in any block, so
a caller may stream two files in lockstep through :func:`divergence_rows`
block by block, join the parts with :meth:`RowDivergence.concatenate`, and
get from :func:`~softmax_cli.core.divergence_stats.divergence_summary` bit
for bit what one in-memory call gives, for any block size and thread count::

    parts = []
    for first_row, (ref_block, cand_block) in lockstep_blocks:   # 2-D (rows, classes)
        with block_of(whole_shape, -1, first_row):                # errors name the file's rows
            parts.append(divergence_rows(ref_block, cand_block, labels[first_row:first_row + len(ref_block)],
                                         names=(ref_path, cand_path), masked_rows=...))
    summary = divergence_summary(RowDivergence.concatenate(parts))
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import InputError, SoftmaxError, UsageError
from .blocks import (
    _block_origin,
    as_rows,
    block_of,
    check_axis,
    describe_position,
    float_dtypes,
    in_row_chunks,
    row_blocks,
)
from .crossentropy_inputs import check_probs
from .labels import check_labels
from .logits import MaskedRowError, MaskedRows, _check_policy, check_temperature
from .padding import check_mask
from .softmax import NARROW_CLASSES, log_probs_and_probs, log_softmax

if TYPE_CHECKING:
    import numpy.typing as npt

_LN2 = float(np.log(2.0))


class RowDivergence(NamedTuple):
    """Per-row figures of :func:`divergence_rows`, each of the inputs' shape without the class axis."""

    kl: np.ndarray
    """KL(P‖Q) in nats, ``>= 0``; ``inf`` where Q gives 0 to a class P does not."""
    js: np.ndarray
    """Jensen–Shannon divergence in nats, in ``[0, log 2]``."""
    tv: np.ndarray
    """Total variation ``½ Σ |p - q|``, in ``[0, 1]``."""
    row_max_abs_dp: np.ndarray
    """``max_c |p_c - q_c|``."""
    top1_same: np.ndarray
    """bool: both argmaxes agree (ties to the lower index)."""
    nll_ref: np.ndarray | None = None
    """``-log p[y]`` (0 for rows labelled ``ignore_index``), with labels only."""
    nll_cand: np.ndarray | None = None
    """``-log q[y]`` (0 for ignored rows), with labels only."""
    dp: np.ndarray | None = None
    """``q[y] - p[y]`` (0 for ignored rows), with labels only."""
    labelled: np.ndarray | None = None
    """bool: the row's label is not ``ignore_index``."""
    scored: np.ndarray | None = None
    """bool: the row enters every statistic: kept by the mask and, with labels, labelled (None: every row)."""

    @classmethod
    def concatenate(cls, parts: list[RowDivergence]) -> RowDivergence:
        """Join the flat per-row figures of consecutive blocks (in order) into one.

        Examples
        --------
        >>> a = divergence_rows([[0.0, 1.0]], [[0.0, 2.0]])
        >>> b = divergence_rows([[1.0, 0.0]], [[1.0, 0.0]])
        >>> RowDivergence.concatenate([a, b]).kl.round(6)
        array([0.082608, 0.      ])
        """
        if not parts:
            raise ValueError("concatenate needs at least one part")
        return cls(*(None if field[0] is None else np.concatenate([np.ravel(f) for f in field])
                     for field in zip(*parts)))


# --------------------------------------------------------------------------- validation


def _dtypes(array: np.ndarray) -> np.dtype:
    """The dtype an input is computed in: bfloat16 and float16 in float32, else as :func:`float_dtypes`."""
    if array.dtype.name == "bfloat16":  # ml_dtypes; NumPy itself has no bfloat16
        return np.dtype(np.float32)
    return float_dtypes(array)[1]


def _pair(reference, candidate, names) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    arrays = []
    for x, name in zip((reference, candidate), names):
        try:
            array = np.asarray(x)
            arrays.append((array, _dtypes(array)))
        except SoftmaxError as error:
            raise error.located(name) from None
    (ref, ref_dtype), (cand, cand_dtype) = arrays
    if ref.shape != cand.shape:
        raise InputError(f"{names[0]} has shape {ref.shape} but {names[1]} has shape {cand.shape}; "
                         "the two must have the same shape")
    # The wider of the two: a float32 candidate against a float64 reference is compared in float64.
    return ref, cand, np.result_type(ref_dtype, cand_dtype)


# --------------------------------------------------------------------------- per-row kernels


def log_probs(src: np.ndarray, name: str, temperature: float, from_probs: bool,
              dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """Log-probabilities of a 2-D block in its compute dtype; a fully masked row comes back all ``-inf``.

    Probabilities are checked against the rounding of ``dtype``, the inputs' own (``src``'s when not given).
    """
    try:
        if from_probs:
            check_probs(src, src.shape, 1, 0, dtype)
            with np.errstate(divide="ignore"):  # log 0 = -inf is exact
                src = np.log(src)
        if src.shape[0] == 1 and src.shape[1] < NARROW_CLASSES:
            # The core's narrow path sums a lone row pairwise but several rows
            # in order; as two rows, a row gets the same bits in any block.
            return log_softmax(np.repeat(src, 2, axis=0), axis=-1, temperature=temperature, masked_rows="zero")[:1]
        return log_softmax(src, axis=-1, temperature=temperature, masked_rows="zero")
    except SoftmaxError as error:
        raise error.located(name) from None


# Rows per work block: twice the core's block (16 rows of 8192 classes). A
# block takes some 60 NumPy calls, whose overhead was an eighth of the time at
# 8 rows; 16 rows take 9% less CPU, 32 rows 13% less but add 27 MiB to the
# peak (the eight work arrays of each thread), 16 rows 10 MiB.
_BLOCK_ELEMENTS = 1 << 17

# Work arrays of one block, reused from block to block: a fresh array for
# every step costs more (page faults) than most of the steps themselves.
_SCRATCH = ("lp", "lq", "p", "q", "r", "r2", "kl", "js")


def _scratch(height: int, n_classes: int, dtype: np.dtype) -> dict[str, np.ndarray]:
    arrays = {name: np.empty((height, n_classes), dtype=dtype) for name in _SCRATCH}
    arrays["far"] = np.empty((height, n_classes), dtype=bool)
    return arrays


# Taylor coefficients, from r^2 up, of the KL term per unit of p, expm1(r) - r = sum r^k / k!,
# and of the JS term per unit of p, e^r r - (1 + e^r) log((1 + e^r) / 2) (twice the class's JS).
_KL_SERIES = tuple(1 / math.factorial(k) for k in range(2, 12))
_JS_SERIES = (1 / 4, 1 / 8, 1 / 32, 1 / 192, 1 / 1152, 1 / 5760, 1 / 46080, -1 / 1935360, -1 / 19353600,
              11 / 58060800, 11 / 696729600)
# Where |r| <= reach, the series cut after these many terms are within a quarter
# of an ULP of the function (the first term left out is below 2^-26 of the
# first term in float32, 2^-56 in float64), so the polynomial is as exact as
# expm1 and log1p and costs a third of the time: those two are not vectorised.
_SERIES_CUT = {np.dtype(np.float32): (0.25, 6, 6), np.dtype(np.float64): (0.125, 10, 11)}


def _series(r, weight, coefficients, out):
    """``weight * sum_k coefficients[k] r^k`` by Horner's rule, into ``out``."""
    np.multiply(r, coefficients[-1], out=out)
    for coefficient in coefficients[-2:0:-1]:
        out += coefficient
        out *= r
    out += coefficients[0]
    out *= weight
    return out


def _exact_terms(r, p, q):
    """The KL and (twice the) JS terms of classes with log-ratios ``r`` from ``expm1`` and ``log1p``."""
    # Beyond |r| = 80 (a likelihood ratio of e^80) the smaller side's weight is
    # below e^-80 of the larger one's, so clipping changes JS by less than
    # that, and expm1 stays finite even in float32.
    clipped = np.clip(r, -80, 80)
    e = np.expm1(clipped)
    # JS: with u = log(p/m) = -log1p(e/2) and log(q/m) = u + r, the class's
    # p log(p/m) + q log(q/m) is (p + q) u + q r.
    js = q * clipped - (p + q) * np.log1p(e * 0.5)
    # KL: p (e^r - 1 - r); where e was clipped, q - p (1 + r), which cannot overflow.
    kl = np.where(r > 80, q - p * (1 + r), p * (e - r))
    return kl, js


def _terms(lp, lq, p, q, buf):
    """KL and (twice the) JS per class (see the module docstring), in ``buf``: summed along rows by the caller.

    Close classes (``|r|`` within the series' reach, nearly all of them when
    two models agree) take the Taylor series, the others expm1 and log1p: each
    class's value depends on its own ``p``, ``q`` and ``r`` only, so a row has
    the same bits in any block. Exact where every log-probability is finite;
    where one is ``-inf`` the KL term is NaN or inf (which sends the row to
    :func:`_zero_classes`).
    """
    r = np.subtract(lq, lp, out=buf["r"])
    reach, kl_terms, js_terms = _SERIES_CUT[r.dtype]
    r2 = np.multiply(r, r, out=buf["r2"])
    # |r| > reach, and r = +-inf; NaN (both sides -inf) stays NaN from the series.
    far = np.greater(r2, reach * reach, out=buf["far"])
    weight = np.multiply(r2, p, out=r2)  # p r^2, the leading factor of both series
    kl = _series(r, weight, _KL_SERIES[:kl_terms], buf["kl"])
    js = _series(r, weight, _JS_SERIES[:js_terms], buf["js"])
    if far.any():
        at = np.nonzero(far)
        kl[at], js[at] = _exact_terms(r[at], p[at], q[at])
    return kl, js


def _zero_classes(kl, js, lp, lq, p, q):
    """Correct :func:`_terms` of rows holding ``-inf`` log-probabilities, with ``0 log 0 = 0``."""
    in_p, in_q = lp > -np.inf, lq > -np.inf
    # Where p = 0 the Bregman term is q (its share of sum q - sum p = 0); where
    # only q = 0, P has mass that Q lacks: inf. Where both are 0, nothing.
    kl = np.where(in_p, np.where(in_q, kl, np.inf), np.where(in_q, q, 0))
    # Where one side is 0, m is half the other and the class gives exactly (p or q) log 2.
    js = np.where(in_p, np.where(in_q, js, p * _LN2), np.where(in_q, q * _LN2, 0))
    return kl, js


def _label_figures(lp, lq, p, q, y):
    """``(-log p[y], -log q[y], q[y] - p[y])`` per row; Δp as ``p[y] expm1(r)`` keeps small differences' digits."""
    at = np.arange(len(y))
    lpy, lqy, py, qy = lp[at, y], lq[at, y], p[at, y], q[at, y]
    r = lqy - lpy
    # r > 1 (and r = +inf, p[y] = 0) cannot use expm1 without overflow; both -inf gives NaN: q - p = 0 there.
    dp = np.where(r <= 1, py * np.expm1(np.minimum(r, 1)), qy - py)
    return -lpy, -lqy, dp


def _overwrite_masked(figures: dict, masked_p, masked_q, masked_rows: str) -> None:
    """Rows where P or Q has no distribution: NaN under ``"nan"``; the zero vector's figures under ``"zero"``."""
    either = masked_p | masked_q
    if masked_rows == "nan":
        for name in ("kl", "js", "tv", "row_max_abs_dp", "nll_ref", "nll_cand", "dp"):
            if name in figures:
                figures[name][either] = np.nan
        figures["top1_same"][either] = False
        return
    # The general path already gives a zero vector's JS (½ log 2), TV (½), Δp and
    # NLL (inf), and KL(P‖0) = inf; but its Bregman KL(0‖Q) is sum q = 1, where
    # sum 0 log(0/q) = 0.
    figures["kl"][masked_p] = 0.0
    figures["top1_same"][either] = masked_p[either] & masked_q[either]


def _distributions(ref, cand, buf, temperature, from_probs, names, dtypes):
    """``(lp, lq, p, q, top_p, top_q)`` of a block: log-probabilities, probabilities and each row's argmax."""
    if from_probs or ref.shape[1] < NARROW_CLASSES:
        lp = log_probs(ref, names[0], temperature, from_probs, dtypes[0])
        lq = log_probs(cand, names[1], temperature, from_probs, dtypes[1])
        p, q = np.exp(lp, out=buf["p"]), np.exp(lq, out=buf["q"])
        return lp, lq, p, q, np.argmax(ref, axis=1), np.argmax(cand, axis=1)
    tops = []
    for src, side, name in ((ref, "p", names[0]), (cand, "q", names[1])):
        try:
            top, _ = log_probs_and_probs(src, buf["l" + side], buf[side], temperature)
        except SoftmaxError as error:
            raise error.located(name) from None
        tops.append(top)
    return buf["lp"], buf["lq"], buf["p"], buf["q"], tops[0], tops[1]


def _block_figures(ref, cand, y, scratch, temperature, from_probs, masked_rows, names) -> dict:
    """Every per-row figure of one 2-D block (``y``: its labels with ignored rows set to 0, or None)."""
    buf = {name: array[: ref.shape[0]] for name, array in scratch.items()}
    compute, dtypes = buf["p"].dtype, (ref.dtype, cand.dtype)
    ref, cand = ref.astype(compute, copy=False), cand.astype(compute, copy=False)
    lp, lq, p, q, top_p, top_q = _distributions(ref, cand, buf, temperature, from_probs, names, dtypes)
    at = np.arange(ref.shape[0])
    # A row's maximum is -inf (a probability's 0) only when the whole row is.
    empty = 0 if from_probs else -np.inf
    masked_p, masked_q = ref[at, top_p] == empty, cand[at, top_q] == empty
    if masked_rows == "error" and (masked_p.any() or masked_q.any()):
        side = 0 if masked_p.any() else 1
        row = int(np.argmax(masked_p if side == 0 else masked_q))
        what = "probability in the row is 0" if from_probs else "logit in the row is -inf"
        raise MaskedRowError(f"every {what}, so it has no distribution; choose --masked-rows zero or "
                             "--masked-rows nan to allow such rows",
                             where=describe_position(ref.shape, 1, row) or "the only row").located(names[side])
    with np.errstate(invalid="ignore", over="ignore"):
        kl_terms, js_terms = _terms(lp, lq, p, q, buf)
        kl, js = kl_terms.sum(axis=1), js_terms.sum(axis=1)
        careful = np.flatnonzero(~np.isfinite(kl))
        if careful.size:
            kl_terms, js_terms = _zero_classes(kl_terms[careful], js_terms[careful], lp[careful], lq[careful],
                                               p[careful], q[careful])
            kl[careful], js[careful] = kl_terms.sum(axis=1), js_terms.sum(axis=1)
        js *= 0.5
        figures = {"kl": kl, "js": js}
        if y is not None:
            figures["nll_ref"], figures["nll_cand"], figures["dp"] = _label_figures(lp, lq, p, q, y)
    # Rounding may put JS a few ulps outside [0, log 2] and TV above 1; the true values are inside.
    np.clip(figures["js"], 0, _LN2, out=figures["js"])
    # TV and the largest |p - q| from one |p - q|.
    abs_dp = np.subtract(p, q, out=buf["r"])
    np.abs(abs_dp, out=abs_dp)
    figures["tv"] = np.minimum(0.5 * abs_dp.sum(axis=1), 1)
    figures["row_max_abs_dp"] = abs_dp.max(axis=1)
    figures["top1_same"] = top_p == top_q
    if masked_p.any() or masked_q.any():
        _overwrite_masked(figures, masked_p, masked_q, masked_rows)
    return figures


# --------------------------------------------------------------------------- public API


def divergence_rows(
    reference: npt.ArrayLike,
    candidate: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    axis: int = -1,
    temperature: float = 1.0,
    from_probs: bool = False,
    masked_rows: MaskedRows = "nan",
    ignore_index: int = -100,
    mask: npt.ArrayLike | None = None,
    names: tuple[str, str] = ("reference", "candidate"),
) -> RowDivergence:
    r"""Per-row divergence between ``P = softmax(reference / T)`` and ``Q = softmax(candidate / T)``.

    With ``r_c = log q_c - log p_c`` (from log-softmax, so nothing underflows
    to a spurious 0):

    .. math::
        \mathrm{KL} &= \sum_c p_c \log\frac{p_c}{q_c}
                     = \sum_c p_c\,(e^{r_c} - 1 - r_c) \;\ge 0,\\
        \mathrm{JS} &= \tfrac12\,\mathrm{KL}(P\|M) + \tfrac12\,\mathrm{KL}(Q\|M)
                     = \tfrac12 \sum_c \bigl(p_c \log\tfrac{p_c}{m_c} + q_c \log\tfrac{q_c}{m_c}\bigr),
                     \quad m = \tfrac{p + q}{2},\\
        \mathrm{TV} &= \tfrac12 \sum_c |p_c - q_c|, \qquad
        \Delta p = q_y - p_y, \quad \mathrm{nll} = -\log p_y .

    Parameters
    ----------
    reference, candidate : array_like
        Logits (probabilities with ``from_probs``) of the same shape; every
        index but ``axis`` is a row. They may differ in dtype: the pair is
        computed in the wider one (float16 and bfloat16 in float32, float64
        if either is float64), and so are the figures: not in float16 even
        for float16 inputs, whose normal range ends at 6e-5, above many KLs.
    labels : array_like of int, optional
        One class index per row (the inputs' shape without ``axis``, or flat)
        for ``nll_ref``, ``nll_cand`` and ``dp``.
    axis : int
        The class axis.
    temperature : float
        ``T > 0`` dividing both sides' logits.
    from_probs : bool
        The inputs are probabilities (checked to lie in ``[0, 1]``); each row
        is normalised by its sum in the log domain, as ``scipy.stats.entropy``
        does, so float16 probabilities that sum to ``1 ± 1e-3`` compare as
        distributions. Zeros are exact: ``log 0 = -inf``.
    masked_rows : {"nan", "zero", "error"}
        A row with every logit ``-inf`` (every probability 0) on either side
        has no distribution: its figures are NaN (``top1_same`` False); or,
        with ``"zero"``, the formulas applied to the zero vector (KL(0‖Q) = 0,
        KL(P‖0) = inf, JS = ½ log 2, TV = ½, an infinite NLL; 0 and
        ``top1_same`` True when both sides are masked); or a
        :class:`~softmax_cli.core.logits.MaskedRowError`.
    ignore_index : int
        Rows with this label are not scored, as rows the loss ignores: see ``mask``.
    mask : array_like, optional
        1/True keeps a row, 0/False drops it (the inputs' shape without
        ``axis``, or flat; a Hugging Face ``attention_mask``). A dropped row
        (or one labelled ``ignore_index``) is never read: its logits may be
        anything, NaN included. It gets 0 in every figure, ``top1_same``
        False and ``scored`` False, and enters no statistic of
        :func:`~softmax_cli.core.divergence_stats.divergence_summary`.
    names : (str, str)
        What errors call the two inputs (file names, say).

    Returns
    -------
    RowDivergence
        Arrays of the inputs' shape without ``axis``.

    Raises
    ------
    InputError
        Shapes that differ, NaN or ``+inf`` logits, probabilities outside
        ``[0, 1]``, labels out of range, naming the input and position.
    UsageError
        ``temperature`` together with ``from_probs``.

    Examples
    --------
    >>> rows = divergence_rows([[2.0, 1.0, 0.0]], [[2.0, 1.0, 0.5]], labels=[0])
    >>> rows.kl.round(6), rows.tv.round(6), rows.top1_same
    (array([0.011748]), array([0.050214]), array([ True]))
    >>> float(divergence_rows([0.0, 1.0], [0.0, 1.0]).kl)
    0.0
    >>> float(divergence_rows([0.0, 1.0], [0.0, -np.inf], masked_rows="nan").kl)
    inf
    """
    ref, cand, compute = _pair(reference, candidate, names)
    _check_policy(masked_rows)
    temperature = check_temperature(temperature, compute)
    if from_probs and temperature != 1.0:
        raise UsageError("a temperature divides logits; it cannot be used with from_probs (probability inputs)")
    axis = check_axis(ref.ndim, axis)
    n_classes = ref.shape[axis]
    if n_classes == 0:
        raise InputError(f"inputs of shape {ref.shape} have no classes along axis {axis}")
    lead = ref.shape[:axis] + ref.shape[axis + 1:]
    ref_rows, cand_rows = as_rows(ref, axis), as_rows(cand, axis)
    n_rows = ref_rows.shape[0]
    labelled = y = scored = None
    if labels is not None:
        flat = check_labels(labels, lead, n_classes, ignore_index)
        labelled = flat != ignore_index
        y = np.where(labelled, flat, 0)
        scored = labelled
    if mask is not None:
        keep = check_mask(mask, lead)
        scored = keep if scored is None else scored & keep
    # A row that is not scored is read as a row of equal logits (probabilities), so garbage in padding never counts.
    blank = 1.0 if from_probs else 0.0
    names_out = ("kl", "js", "tv", "row_max_abs_dp", "top1_same") + (("nll_ref", "nll_cand", "dp") if y is not None
                                                                      else ())
    out = {name: np.empty(n_rows, dtype=bool if name == "top1_same" else compute) for name in names_out}
    # Errors name positions in the whole array, or in the caller's file when it streams blocks of one.
    origin = _block_origin.get() or (ref.shape, axis, 0)

    def work(start: int, stop: int) -> None:
        scratch = None
        for block in row_blocks(stop, n_classes, start, _BLOCK_ELEMENTS):
            if scratch is None:  # the first block is the tallest
                scratch = _scratch(block.stop - block.start, n_classes, compute)
            ref_block, cand_block = ref_rows[block], cand_rows[block]
            if scored is not None and not scored[block].all():
                ref_block, cand_block = (np.where(scored[block, None], side, blank).astype(side.dtype, copy=False)
                                         for side in (ref_block, cand_block))
            with block_of(origin[0], origin[1], origin[2] + block.start):
                figures = _block_figures(ref_block, cand_block, None if y is None else y[block],
                                         scratch, temperature, from_probs, masked_rows, names)
            for name, values in figures.items():
                out[name][block] = values

    in_row_chunks(n_rows, n_classes, work)
    if scored is not None:
        for name, values in out.items():
            values[~scored] = False if name == "top1_same" else 0
    return RowDivergence(**{name: values.reshape(lead) for name, values in out.items()},
                         labelled=None if labelled is None else labelled.reshape(lead),
                         scored=None if scored is None else scored.reshape(lead))
