"""Softmax, log-softmax and log-sum-exp, exact and blocked.

Every function shifts each row by its maximum before exponentiating, so no
finite input overflows, and log-probabilities are computed as
``x - max - log(sum(exp(x - max)))``: never as ``log(softmax(x))``, which is
``-inf`` wherever a probability underflows (``[1000, 1]`` gives
``log_softmax = [0, -999]`` but ``log(softmax) = [0, -inf]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt
from ._arrays import as_rows, check_axis, describe_position, float_dtypes, from_rows, in_row_chunks, row_blocks

MaskedRows = Literal["error", "zero", "nan"]
MASKED_ROW_POLICIES: tuple[str, ...] = ("error", "zero", "nan")


class MaskedRowError(InputError):
    """A row has every logit ``-inf``, so it has no distribution."""


def check_temperature(temperature: float) -> float:
    """Return ``temperature`` as a float if it is finite and positive, else raise."""
    value = float(temperature)
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"temperature must be finite and > 0, got {temperature!r}")
    return value


def _checked_row_max(block: np.ndarray, row_max: np.ndarray, shape, axis, first_row, masked_rows):
    """Validate a block by its row maxima; return the mask of all ``-inf`` rows, or None.

    The max finds NaN and ``+inf`` for free. A masked row's max is set to 0 in
    place: shifting by ``-inf`` would give ``-inf - -inf = NaN``.
    """
    if np.isfinite(row_max).all():
        return None
    bad_value = np.isnan(row_max) | (row_max == np.inf)
    if bad_value.any():
        row = int(np.argmax(bad_value))
        values = block[row]
        column = int(np.argmax(np.isnan(values) | (values == np.inf)))
        name = "NaN" if np.isnan(values[column]) else "+inf"
        raise InputError(
            f"{name} in logits; only finite values and -inf (a masked logit) are allowed",
            where=describe_position(shape, axis, first_row + row, column),
        )
    masked = row_max == -np.inf
    if masked_rows == "error":
        where = describe_position(shape, axis, first_row + int(np.argmax(masked)))
        raise MaskedRowError(
            "every logit in the row is -inf, so it has no distribution; "
            "choose --masked-rows zero or --masked-rows nan to allow such rows",
            where=where or "the only row",
        )
    row_max[masked] = 0
    return masked


def _shifted(block: np.ndarray, out: np.ndarray, temperature: float, shape, axis, first_row, masked_rows):
    """Write ``(block - rowmax) / T`` into ``out``; return the mask of all ``-inf`` rows.

    Raises on NaN or ``+inf`` and, with ``masked_rows="error"``, on a row
    whose logits are all ``-inf``.
    """
    row_max = block.max(axis=1)
    masked = _checked_row_max(block, row_max, shape, axis, first_row, masked_rows)
    np.subtract(block, row_max[:, None], out=out)
    if temperature != 1.0:
        np.divide(out, temperature, out=out)
    return masked


def row_sums(block: np.ndarray) -> np.ndarray:
    """Sum each row of a 2-D block.

    ``np.sum`` along a row is pairwise, so float32 sums of 32000 terms keep
    their digits (einsum's running sums lost about half of them), and each row
    gets the same bits whatever block it sits in, unlike ``block @ ones``
    (BLAS gemv), so blocked, streamed and threaded results are identical.
    """
    return block.sum(axis=1)


def _check_policy(masked_rows: str) -> None:
    if masked_rows not in MASKED_ROW_POLICIES:
        raise InputError(f"masked_rows must be one of {', '.join(MASKED_ROW_POLICIES)}, got {masked_rows!r}")


# Below this many classes a row is too short for NumPy's per-row reductions to
# run at speed; the block is transposed so max and sum run across rows instead.
NARROW_CLASSES = 64


def _normalise_narrow(source, out, temperature, shape, axis, first_row, masked_rows, log):
    """:func:`normalise_block` for few classes, on the transposed block (4x faster at C = 10)."""
    # Always a copy: for a single row, source.T is already contiguous, and a
    # view would let the arithmetic below overwrite the caller's logits.
    columns = source.T.copy()
    row_max = columns.max(axis=0)
    masked = _checked_row_max(source, row_max, shape, axis, first_row, masked_rows)
    columns -= row_max
    if temperature != 1.0:
        columns /= temperature
    # A masked row's log(0) or 0/0 is overwritten by the caller.
    with np.errstate(divide="ignore", invalid="ignore"):
        if log:
            columns -= np.log(np.exp(columns).sum(axis=0))
        else:
            np.exp(columns, out=columns)
            columns /= columns.sum(axis=0)
    out[...] = columns.T
    return masked


def normalise_block(source, out, temperature, shape, axis, first_row, masked_rows, log, scratch=None):
    """Softmax (or log-softmax) of the 2-D row block ``source`` into ``out``.

    ``shape``, ``axis`` and ``first_row`` place the block in the whole array so
    that errors name the user's position. ``scratch`` (the block's shape) is
    needed for ``log``. Returns the mask of fully masked rows, or None.
    """
    if source.shape[1] < NARROW_CLASSES:
        masked = _normalise_narrow(source, out, temperature, shape, axis, first_row, masked_rows, log)
    else:
        masked = _shifted(source, out, temperature, shape, axis, first_row, masked_rows)
        if log:
            exps = np.exp(out, out=scratch[: out.shape[0]])
            # A masked row's log(0) is overwritten just below.
            with np.errstate(divide="ignore", invalid="ignore"):
                np.subtract(out, np.log(row_sums(exps))[:, None], out=out)
        else:
            np.exp(out, out=out)
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


def probs_block(rows, block, compute, temperature, shape, axis, masked_rows, buf):
    """Softmax of one block of rows into ``buf``; return ``(p, masked)``.

    A masked row (all ``-inf``) is NaN, or 0 with ``masked_rows="zero"``;
    ``"error"`` raises through the shared check in :mod:`.softmax`.
    """
    src = rows[block].astype(compute, copy=False)
    p = buf[: src.shape[0]]
    masked = normalise_block(src, p, temperature, shape, axis, block.start, masked_rows, log=False)
    return p, masked


def _blocked(x: npt.ArrayLike, axis: int, temperature: float, masked_rows: str, log: bool) -> np.ndarray:
    array, compute, output = float_dtypes(x)
    _check_policy(masked_rows)
    temperature = check_temperature(temperature)
    axis = check_axis(array.ndim, axis)
    shape = array.shape
    rows = as_rows(array, axis)
    n_rows, n_cols = rows.shape
    result = np.empty((n_rows, n_cols), dtype=compute)
    if n_cols == 0:  # no classes: an empty result, as torch gives
        return from_rows(result, shape, axis).astype(output, copy=False)

    def work(start: int, stop: int) -> None:
        scratch = None
        for block in row_blocks(stop, n_cols, start):
            if log and scratch is None:
                scratch = np.empty((block.stop - block.start, n_cols), dtype=compute)
            source = rows[block].astype(compute, copy=False)
            normalise_block(source, result[block], temperature, shape, axis, block.start, masked_rows, log, scratch)

    in_row_chunks(n_rows, n_cols, work)
    return from_rows(result, shape, axis).astype(output, copy=False)


def check_logits(x: npt.ArrayLike, axis: int = -1, masked_rows: MaskedRows = "error") -> None:
    """Raise on what :func:`softmax` would refuse (NaN, ``+inf``, masked rows under "error").

    One max per row and nothing else: cheap enough to run over a whole file
    before a streamed result goes anywhere it cannot be taken back from.
    """
    array, _, _ = float_dtypes(x)
    _check_policy(masked_rows)
    axis = check_axis(array.ndim, axis)
    rows = as_rows(array, axis)
    if rows.shape[1] == 0:
        return
    for block in row_blocks(*rows.shape):
        source = rows[block]
        _checked_row_max(source, source.max(axis=1), array.shape, axis, block.start, masked_rows)


def softmax(
    x: npt.ArrayLike, axis: int = -1, temperature: float = 1.0, masked_rows: MaskedRows = "nan"
) -> np.ndarray:
    r"""Softmax along ``axis``: probabilities that sum to one per row.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{(x_i - m)/T}}{\sum_j e^{(x_j - m)/T}},
              \quad m = \max_j x_j

    Parameters
    ----------
    x : array_like
        Logits. float16 is computed in float32 and returned as float16;
        integers and booleans become float64.
    axis : int
        The class axis; every other index is a row.
    temperature : float
        ``T > 0``; the logits are divided by it. ``T -> 0`` tends to one-hot
        (ties share the mass), never NaN.
    masked_rows : {"nan", "zero", "error"}
        What a row whose logits are all ``-inf`` gives: NaN as scipy/torch,
        zeros as torch's attention, or an :class:`MaskedRowError`.

    Raises
    ------
    InputError
        On NaN or ``+inf`` logits, naming the first position.

    Examples
    --------
    >>> softmax([3.0, 2.0, 1.0]).round(4)
    array([0.6652, 0.2447, 0.09  ])
    """
    return _blocked(x, axis, temperature, masked_rows, log=False)


def log_softmax(
    x: npt.ArrayLike, axis: int = -1, temperature: float = 1.0, masked_rows: MaskedRows = "nan"
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
    return _blocked(x, axis, temperature, masked_rows, log=True)


def logsumexp(x: npt.ArrayLike, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    r"""``log(sum(exp(x)))`` along ``axis`` without overflow.

    .. math:: \mathrm{LSE}(x) = m + \log\sum_j e^{x_j - m}, \quad m = \max_j x_j

    Matches ``scipy.special.logsumexp``: an all ``-inf`` row gives ``-inf``,
    a row holding ``+inf`` gives ``inf``, NaN propagates.

    Examples
    --------
    >>> float(logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    array, compute, output = float_dtypes(x)
    axis = check_axis(array.ndim, axis)
    work = array.astype(compute, copy=False)
    row_max = np.max(work, axis=axis, keepdims=True)
    # Shifting by a non-finite max would turn -inf - -inf and inf - inf into NaN;
    # shifting by 0 instead leaves those rows to the exp/log below.
    safe_max = np.where(np.isfinite(row_max), row_max, 0)
    with np.errstate(divide="ignore"):
        result = np.log(np.sum(np.exp(work - safe_max), axis=axis, keepdims=True)) + safe_max
    if not keepdims:
        result = np.squeeze(result, axis=axis)
    return result.astype(output, copy=False)


def entropy(x: npt.ArrayLike, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    r"""Shannon entropy (nats) of ``softmax(x / T)`` per row, from the logits.

    .. math:: H = -\sum_i p_i \log p_i, \quad 0 \log 0 = 0

    Masked classes contribute nothing; a fully masked row gives NaN.

    Examples
    --------
    >>> round(float(entropy([0.0, 0.0])), 6)
    0.693147
    """
    log_p = log_softmax(x, axis=axis, temperature=temperature, masked_rows="nan")
    p = np.exp(log_p)
    terms = np.where(p > 0, p * np.where(p > 0, log_p, 0), 0)
    masked = np.isnan(log_p).all(axis=axis) if log_p.shape[axis] else False
    # 0.0 - sum turns the -0.0 of a one-hot row into 0.0.
    return np.where(masked, np.nan, 0.0 - terms.sum(axis=axis))
