"""Softmax, log-softmax and log-sum-exp, exact and blocked.

Every function shifts each row by its maximum before exponentiating, so no
finite input overflows, and log-probabilities are computed as
``x - max - log1p(sum of exp(x - max) over the other terms)``: never as
``log(softmax(x))``, which is ``-inf`` wherever a probability underflows
(``[1000, 1]`` gives ``log_softmax = [0, -999]`` but ``log(softmax) = [0, -inf]``),
and never as ``log(1 + s)``, which is 0 for a confident row (scipy gh-18295).
The logits are checked by :mod:`.logits` on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .blocks import as_rows, check_axis, float_dtypes, from_rows, in_row_chunks, overflow_is_the_limit, row_blocks
from .logits import MaskedRows, _check_policy, _checked_row_max, check_temperature

if TYPE_CHECKING:
    import numpy.typing as npt

@overflow_is_the_limit
def _shifted(block, out, temperature, shape, axis, first_row, masked_rows, find_top=False, remainder=None):
    """Write ``(block - rowmax) / T`` into ``out``; return ``(masked, top)``.

    ``masked`` is the mask of all ``-inf`` rows (or None) and ``top``, with
    ``find_top``, each row's first maximum, where ``out`` is exactly 0 (see
    :func:`log_sum_shifted`), else None. With ``remainder``, the subtraction's
    rounding error (over ``T``) is written there too (see
    :func:`_subtraction_error`). Raises on NaN or ``+inf`` and, with
    ``masked_rows="error"``, on a row whose logits are all ``-inf``.
    """
    if find_top:
        # Along rows argmax costs what max costs, and finds the NaN or +inf a max would.
        top = block.argmax(axis=1)
        row_max = block[np.arange(block.shape[0]), top]
    else:
        top, row_max = None, block.max(axis=1)
    masked = _checked_row_max(block, row_max, shape, axis, first_row, masked_rows)
    np.subtract(block, row_max[:, None], out=out)
    if remainder is not None:
        _subtraction_error(block, row_max[:, None], out, remainder)
    if temperature != 1.0:
        np.divide(out, temperature, out=out)
        if remainder is not None:
            np.divide(remainder, temperature, out=remainder)
    return masked, top


def log_sum_shifted(exps: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``log(sum(exps))`` per row for the exponentials of max-shifted rows, ``exps`` being overwritten.

    Each row's entry at ``top`` is ``exp(0) = 1``, so the sum is ``1 + s`` with
    ``s`` the other entries' sum; when ``s`` is below half an ULP of 1, ``log``
    rounds ``1 + s`` to 1 and gives 0, and a confident row's loss is lost
    (scipy gh-18295: ``[0, -40]`` gives 0, not ``4.25e-18``). ``log1p(s)``
    keeps it. Only the one entry at ``top`` is taken out: a tie with the
    maximum still counts as 1. A fully masked row (all 0) gives 0; callers
    overwrite it.
    """
    exps[np.arange(exps.shape[0]), top] = 0
    return np.log1p(row_sums(exps))


def _log_sum_shifted_columns(exps: np.ndarray) -> np.ndarray:
    """:func:`log_sum_shifted` for the narrow kernel's columns, where an argmax across rows is slow.

    Every entry that is exactly 1 (the maximum and any tie) leaves the sum,
    and all but one come back as a whole number, which the sum holds exactly.
    ``floor`` finds them without a boolean mask (entries are in ``[0, 1]``);
    masked selections cost 5-10 times as much here. A masked row (no such
    entry) gives ``-inf``; callers overwrite it.
    """
    ones = np.floor(exps)
    exps -= ones
    with np.errstate(divide="ignore"):
        return np.log1p(exps.sum(axis=0) + (ones.sum(axis=0) - 1))


def _subtraction_error(x: np.ndarray, m: np.ndarray, hi: np.ndarray, out: np.ndarray) -> None:
    """Write into ``out`` the exact error of ``hi = fl(x - m)``, so that ``x - m = hi + out`` exactly.

    Knuth's TwoSum, branch-free, so it holds whether ``x`` or ``m`` is larger
    in magnitude. ``exp(x - m) = exp(hi) (1 + out)`` to within ``out**2``
    (``|out| <= 2**-53 |hi|``), which removes the error ``exp`` amplifies
    from the rounded shift: ``|x - m| * 2**-53`` relative, 1000 x 2**-53 on a
    row spanning 1000. A masked logit (``-inf``) gives NaN here; its error is 0.
    """
    with np.errstate(invalid="ignore"):
        np.subtract(hi, x, out=out)  # the part of hi that came from x...
        x_part = np.subtract(hi, out)
        np.subtract(x, x_part, out=x_part)  # ...what of x it missed...
        np.subtract(-m, out, out=out)  # ...and what of -m
        np.add(out, x_part, out=out)
    np.nan_to_num(out, copy=False, nan=0.0)


def row_sums(block: np.ndarray) -> np.ndarray:
    """Sum each row of a 2-D block.

    ``np.sum`` along a row is pairwise, so float32 sums of 32000 terms keep
    their digits (einsum's running sums lost about half of them), and each row
    gets the same bits whatever block it sits in, unlike ``block @ ones``
    (BLAS gemv), so blocked, streamed and threaded results are identical.
    """
    return block.sum(axis=1)


# Below this many classes a row is too short for NumPy's per-row reductions to
# run at speed; the block is transposed so max and sum run across rows instead.
NARROW_CLASSES = 64


@overflow_is_the_limit
def _normalise_narrow(source, out, temperature, shape, axis, first_row, masked_rows, log, exact):
    """:func:`normalise_block` for few classes, on the transposed block (4x faster at C = 10)."""
    # Always a copy: for a single row, source.T is already contiguous, and a
    # view would let the arithmetic below overwrite the caller's logits.
    logits = source.T.copy()
    row_max = logits.max(axis=0)
    masked = _checked_row_max(source, row_max, shape, axis, first_row, masked_rows)
    columns = np.subtract(logits, row_max, out=None if exact else logits)
    if exact:
        remainder = np.empty_like(columns)
        _subtraction_error(logits, row_max, columns, remainder)
    if temperature != 1.0:
        columns /= temperature
        if exact:
            remainder /= temperature
    # A masked row's 0/0 is overwritten by the caller.
    with np.errstate(invalid="ignore"):
        if log:
            columns -= _log_sum_shifted_columns(np.exp(columns))
        else:
            np.exp(columns, out=columns)
            if exact:
                _times_one_plus(columns, remainder)
            columns /= columns.sum(axis=0)
    out[...] = columns.T
    return masked


def _times_one_plus(p: np.ndarray, remainder: np.ndarray) -> None:
    """``p *= 1 + remainder`` in place, as ``p + p * remainder`` (rounded once, not twice); ``remainder`` is overwritten."""
    np.multiply(p, remainder, out=remainder)
    np.add(p, remainder, out=p)


def normalise_block(source, out, temperature, shape, axis, first_row, masked_rows, log, scratch=None, exact=False):
    """Softmax (or log-softmax) of the 2-D row block ``source`` into ``out``.

    ``shape``, ``axis`` and ``first_row`` place the block in the whole array so
    that errors name the user's position. ``scratch`` (the block's shape) is
    needed for ``log`` and ``exact`` (probabilities that carry the shift's
    rounding error). Returns the mask of fully masked rows, or None.
    """
    if source.shape[1] < NARROW_CLASSES:
        masked = _normalise_narrow(source, out, temperature, shape, axis, first_row, masked_rows, log, exact)
    else:
        remainder = scratch[: out.shape[0]] if exact and not log else None
        masked, top = _shifted(source, out, temperature, shape, axis, first_row, masked_rows, log, remainder)
        if log:
            exps = np.exp(out, out=scratch[: out.shape[0]])
            np.subtract(out, log_sum_shifted(exps, top)[:, None], out=out)
        else:
            np.exp(out, out=out)
            if remainder is not None:
                _times_one_plus(out, remainder)
            # A masked row sums to 0; its 0/0 is overwritten just below.
            with np.errstate(invalid="ignore"):
                np.divide(out, row_sums(out)[:, None], out=out)
    if masked is not None and masked.any():
        if masked_rows == "nan":
            out[masked] = np.nan
        else:
            out[masked] = -np.inf if log else 0.0
        return masked
    return None


def log_probs_and_probs(source, log_out, out, temperature):
    """Log-softmax of the 2-D block ``source`` into ``log_out`` and softmax into ``out``, from one ``exp`` pass.

    For rows of at least :data:`NARROW_CLASSES` classes. ``log_out`` gets the
    bits :func:`log_softmax` gives; ``out`` is each shifted row's
    exponentials times ``exp(-log sum)``, which saves a second ``exp`` over the
    block. Returns ``(top, masked)``: each row's first maximum (its argmax)
    and the mask of all ``-inf`` rows (or None), which come out as ``-inf`` and
    0. Raises on NaN and ``+inf`` as :func:`log_softmax` does.
    """
    masked, top = _shifted(source, log_out, temperature, source.shape, 1, 0, "zero", find_top=True)
    exps = np.exp(log_out, out=out)
    log_sum = log_sum_shifted(exps, top)
    exps[np.arange(exps.shape[0]), top] = 1  # exp(0), taken out for log1p
    np.subtract(log_out, log_sum[:, None], out=log_out)
    np.multiply(exps, np.exp(-log_sum)[:, None], out=exps)
    if masked is not None and masked.any():
        log_out[masked] = -np.inf
        exps[masked] = 0.0
    return top, masked


def probs_block(rows, block, compute, temperature, shape, axis, masked_rows, buf):
    """Softmax of one block of rows into ``buf``; return ``(p, masked)``.

    A masked row (all ``-inf``) is NaN, or 0 with ``masked_rows="zero"``;
    ``"error"`` raises through the shared check in :mod:`.softmax`.
    """
    src = rows[block].astype(compute, copy=False)
    p = buf[: src.shape[0]]
    masked = normalise_block(src, p, temperature, shape, axis, block.start, masked_rows, log=False)
    return p, masked


def _blocked(x: npt.ArrayLike, axis: int, temperature: float, masked_rows: str, log: bool,
             exact: bool = False) -> np.ndarray:
    array, compute, output = float_dtypes(x)
    if exact:
        compute = np.dtype(np.float64)  # float32 and float16 are then correctly rounded to within 1 ULP
    _check_policy(masked_rows)
    temperature = check_temperature(temperature, compute)
    axis = check_axis(array.ndim, axis)
    shape = array.shape
    rows = as_rows(array, axis)
    n_rows, n_cols = rows.shape
    # exact computes float32 in float64 block by block, rounding each block into the result once.
    staged = exact and output != compute
    result = np.empty((n_rows, n_cols), dtype=output if staged else compute)
    if n_cols == 0:  # no classes: an empty result, as torch gives
        return from_rows(result, shape, axis).astype(output, copy=False)

    def work(start: int, stop: int) -> None:
        scratch = staging = None
        for block in row_blocks(stop, n_cols, start):
            if (log or exact) and scratch is None:
                scratch = np.empty((block.stop - block.start, n_cols), dtype=compute)
                staging = np.empty_like(scratch) if staged else None
            source = rows[block].astype(compute, copy=False)
            out = staging[: block.stop - block.start] if staged else result[block]
            normalise_block(source, out, temperature, shape, axis, block.start, masked_rows, log, scratch, exact)
            if staged:
                result[block] = out

    in_row_chunks(n_rows, n_cols, work)
    with np.errstate(over="ignore"):  # a float16 log-probability below -65504 rounds to -inf, as it should
        return from_rows(result, shape, axis).astype(output, copy=False)


def _over_all_elements(x: npt.ArrayLike) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` as one row of all its elements, and its shape: ``axis=None``, as ``scipy.special.softmax`` reads it."""
    array = np.asarray(x)
    return array.reshape(-1), array.shape


def softmax(
    x: npt.ArrayLike, axis: int | None = -1, temperature: float = 1.0, masked_rows: MaskedRows = "nan",
    exact: bool = False,
) -> np.ndarray:
    r"""Softmax along ``axis``: probabilities that sum to one per row.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{(x_i - m)/T}}{\sum_j e^{(x_j - m)/T}},
              \quad m = \max_j x_j

    Parameters
    ----------
    x : array_like
        Logits. float16 is computed in float32 and returned as float16;
        integers and booleans become float64.
    axis : int or None
        The class axis; every other index is a row. None: every element is a
        class of one distribution, as ``scipy.special.softmax(x, axis=None)``.
    temperature : float
        ``T > 0``; the logits are divided by it. ``T -> 0`` tends to one-hot
        (ties share the mass), never NaN.
    masked_rows : {"nan", "zero", "error"}
        What a row whose logits are all ``-inf`` gives: NaN as scipy/torch,
        zeros as torch's attention, or a :class:`~softmax_cli.core.logits.MaskedRowError`.
    exact : bool
        Carry the rounding error of ``x - m`` into the exponential (see
        :func:`_subtraction_error`), computing in float64 whatever the input.
        With ``T = 1``, float64 probabilities are then within 4 ULP of the
        exact value on rows spanning up to +-1000 (hundreds of ULP without,
        as scipy and torch), and float32/float16 ones within 1 ULP of the correctly
        rounded value. It costs about 2x the time in float64 (4x in float32),
        which is why it is not the default. With
        ``T != 1`` the division ``(x - m) / T`` is itself rounded, so the
        result is the exact softmax of those rounded quotients only to
        ``|x - m| / T * 2**-53`` relative, as without ``exact``.

    Raises
    ------
    InputError
        On NaN or ``+inf`` logits, naming the first position.

    Examples
    --------
    >>> softmax([3.0, 2.0, 1.0]).round(4)
    array([0.6652, 0.2447, 0.09  ])
    >>> softmax([[1.0, 1.0], [1.0, 1.0]], axis=None)
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    if axis is None:
        row, shape = _over_all_elements(x)
        return _blocked(row, -1, temperature, masked_rows, log=False, exact=exact).reshape(shape)
    return _blocked(x, axis, temperature, masked_rows, log=False, exact=exact)


def log_softmax(
    x: npt.ArrayLike, axis: int | None = -1, temperature: float = 1.0, masked_rows: MaskedRows = "nan"
) -> np.ndarray:
    r"""Log-softmax along ``axis``, exact where ``log(softmax(x))`` underflows.

    .. math:: \log\mathrm{softmax}(x)_i = \frac{x_i - m}{T} - \log\sum_j e^{(x_j - m)/T}

    Parameters are those of :func:`softmax`; a masked row gives ``-inf``
    (the log of its zero probabilities) with ``masked_rows="zero"``.

    Examples
    --------
    >>> log_softmax([1000.0, 1.0])
    array([   0., -999.])
    """
    if axis is None:
        row, shape = _over_all_elements(x)
        return _blocked(row, -1, temperature, masked_rows, log=True).reshape(shape)
    return _blocked(x, axis, temperature, masked_rows, log=True)


@overflow_is_the_limit
def logsumexp(x: npt.ArrayLike, axis: int | None = -1, keepdims: bool = False) -> np.ndarray:
    r"""``log(sum(exp(x)))`` along ``axis`` without overflow.

    .. math:: \mathrm{LSE}(x) = m + \operatorname{log1p}\sum_{j \ne k} e^{x_j - m}, \quad m = x_k = \max_j x_j

    Matches ``scipy.special.logsumexp`` (also its gh-18295 fix: the terms
    other than the maximum are summed into ``log1p``, so ``[0, -40]`` gives
    ``4.25e-18``, not 0): an all ``-inf`` row gives ``-inf``, a row holding
    ``+inf`` gives ``inf``, NaN propagates.

    Examples
    --------
    >>> float(logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> float(logsumexp([0.0, -40.0]))
    4.248354255291589e-18

    ``axis=None`` sums over every element, as scipy does.
    """
    if axis is None:
        row, shape = _over_all_elements(x)
        total = logsumexp(row, -1)
        return total.reshape((1,) * len(shape)) if keepdims else total
    array, compute, output = float_dtypes(x)
    axis = check_axis(array.ndim, axis)
    work = array.astype(compute, copy=False)
    top = np.argmax(work, axis=axis, keepdims=True)
    row_max = np.take_along_axis(work, top, axis)
    finite = np.isfinite(row_max)
    # Shifting by a non-finite max would turn -inf - -inf and inf - inf into NaN;
    # shifting by 0 instead leaves those rows to the exp/log below.
    safe_max = np.where(finite, row_max, 0)
    exps = np.exp(work - safe_max)
    # A finite row drops its one exp(0) = 1 for log1p (see log_sum_shifted); a
    # row whose max is not finite keeps it, so its inf, -inf or NaN comes through the log.
    np.put_along_axis(exps, top, np.where(finite, 0, np.take_along_axis(exps, top, axis)), axis)
    total = np.sum(exps, axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        result = np.where(finite, np.log1p(total), np.log(total)) + safe_max
    if not keepdims:
        result = np.squeeze(result, axis=axis)
    return result.astype(output, copy=False)


def entropy(x: npt.ArrayLike, axis: int | None = -1, temperature: float = 1.0) -> np.ndarray:
    r"""Shannon entropy (nats) of ``softmax(x / T)`` per row, from the logits.

    .. math:: H = -\sum_i p_i \log p_i, \quad 0 \log 0 = 0

    Masked classes contribute nothing; a fully masked row gives NaN.

    Examples
    --------
    >>> round(float(entropy([0.0, 0.0])), 6)
    0.693147

    ``axis=None``: the entropy of one distribution over every element.
    """
    if axis is None:
        return entropy(_over_all_elements(x)[0], -1, temperature)
    log_p = log_softmax(x, axis=axis, temperature=temperature, masked_rows="nan")
    p = np.exp(log_p)
    terms = np.where(p > 0, p * np.where(p > 0, log_p, 0), 0)
    masked = np.isnan(log_p).all(axis=axis) if log_p.shape[axis] else False
    # 0.0 - sum turns the -0.0 of a one-hot row into 0.0.
    return np.where(masked, np.nan, 0.0 - terms.sum(axis=axis))
