"""Top-k classes per row, with a promised order, and top-k accuracy.

``torch.topk`` promises no order among tied values (``[3, 1, 3, 2, 3]`` with
``k=2`` gives ``[2, 4]``); a stable argsort and ``jax.lax.top_k`` give
``[0, 2]``. We promise the latter, ties to the lower class index, and still
find the k in O(N·C) with a partition rather than a full sort. sklearn's
``top_k_accuracy_score`` reverses a stable ascending argsort, so its ties go
to the higher index (``[4, 2]``): ``ties="high"`` ranks that way.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..choices import TIES
from ..errors import InputError
from .blocks import as_rows, check_axis, in_row_chunks, row_blocks
from .labels import check_labels
from .logits import MaskedRows
from .softmax import softmax


def check_k(k: int, n_classes: int) -> int:
    """``k`` as an int, if it is a whole number of classes from 1 to ``n_classes``; else raise."""
    try:
        whole = not isinstance(k, (bool, np.bool_)) and float(k) == int(k)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 1 <= int(k) <= n_classes:
        raise InputError(
            f"k must be a whole number between 1 and the number of classes C = {n_classes}, got k = {k!r}"
        )
    return int(k)


def _topk_exact(rows: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values per row, largest first, ties to the lower position."""
    n_rows, n_cols = rows.shape
    # The k-th largest value of each row in O(C). argpartition's own choice among
    # values equal to it is arbitrary, so the set is rebuilt from the threshold:
    # every value above it, then the leftmost values equal to it until there are k.
    threshold = np.partition(rows, n_cols - k, axis=1)[:, n_cols - k, None]
    above = rows > threshold
    at = rows == threshold
    needed = k - above.sum(axis=1, keepdims=True)
    if (at.sum(axis=1, keepdims=True) == needed).all():
        chosen = above | at  # no surplus ties at the threshold (the usual case): skip the running count
    else:
        chosen = above | (at & (np.cumsum(at, axis=1, dtype=np.int32) <= needed))
    # nonzero walks each row left to right, so the k columns come in index order...
    columns = np.nonzero(chosen)[1].reshape(n_rows, k)
    values = np.take_along_axis(rows, columns, axis=1)
    # ...and a stable sort on the negated values keeps that order among ties.
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


# Columns per group when bounding the k-th largest value by group maxima.
_GROUP = 64


def _candidates(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The few columns that can be in a row's top k, packed left, or None when that saves nothing.

    The k-th largest of the rows' group maxima is a lower bound of the k-th
    largest value (k groups have a maximum at least that large), so only
    values at or above it can be chosen. Candidates keep their column order
    and padding (``-inf`` at column C) comes last, so ties still go to the
    lower column.
    """
    n_rows, n_cols = rows.shape
    whole = n_cols // _GROUP * _GROUP
    maxima = rows[:, :whole].reshape(n_rows, -1, _GROUP).max(axis=2)
    if whole < n_cols:
        maxima = np.concatenate([maxima, rows[:, whole:].max(axis=1, keepdims=True)], axis=1)
    if maxima.shape[1] < k:
        return None
    bound = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k, None]
    keep = rows >= bound
    counts = keep.sum(axis=1)
    width = int(counts.max())
    if 4 * width > n_cols:
        return None
    row, column = np.nonzero(keep)
    position = np.arange(column.size) - np.repeat(np.cumsum(counts) - counts, counts)
    values = np.full((n_rows, width), -np.inf, dtype=rows.dtype)
    columns = np.full((n_rows, width), n_cols, dtype=np.intp)
    values[row, position] = rows[row, column]
    columns[row, position] = column
    return values, columns


def _topk_rows(rows: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values per row of a 2-D block, largest first, ties to the lower index."""
    if k == 1:
        # argmax returns the first maximum: exactly the tie rule.
        return np.argmax(rows, axis=1)[:, None]
    # Selecting among a handful of candidates is 2-3x faster than partitioning
    # whole rows of thousands of classes.
    packed = _candidates(rows, k) if rows.shape[1] >= 4 * _GROUP else None
    if packed is None:
        return _topk_exact(rows, k)
    values, columns = packed
    return np.take_along_axis(columns, _topk_exact(values, k), axis=1)


def topk(
    logits: npt.ArrayLike,
    k: int,
    axis: int = -1,
    temperature: float = 1.0,
    masked_rows: MaskedRows = "nan",
    ties: str = "low",
) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``k`` most probable classes of each row, most probable first.

    .. math:: \mathrm{topk}(x) = (i_1, \dots, i_k), \quad
              x_{i_1} \ge x_{i_2} \ge \dots \ge x_{i_k} \ge x_j \;\; \forall j \notin \{i_1..i_k\}

    with equal values ordered by class index, so the result equals the first
    ``k`` entries of a stable argsort of ``-x`` but costs O(N·C), not
    O(N·C log C). Classes are ranked by their logits, which order the
    probabilities exactly even where those round to equal floats
    (``[1000, 0, -1]`` ranks ``0, 1, 2`` though the last two probabilities
    are both 0). A ``-inf`` (masked) logit ranks below every finite one.

    Parameters
    ----------
    logits : array_like
        Logits, any number of dimensions; dtype rules as :func:`softmax`.
    k : int
        How many classes per row, ``1 <= k <= C``.
    axis : int
        The class axis; every other index is a row.
    temperature : float
        ``T > 0`` applied to the probabilities; it never changes the ranking.
    masked_rows : {"nan", "zero", "error"}
        As :func:`softmax`, for rows whose logits are all ``-inf``; such a row
        ranks its classes ``0, 1, ..., k - 1`` (``C - 1, C - 2, ...`` with
        ``ties="high"``).
    ties : {"low", "high"}
        Which of equal values ranks first: the lower class index (a stable
        argsort of ``-x``, ``jax.lax.top_k``), or the higher one (sklearn's
        ``top_k_accuracy_score``, which reverses a stable ascending argsort).

    Returns
    -------
    indices : ndarray of intp, shape ``(..., k)``
        Class indices. The class axis is moved last: logits of shape
        ``(A, C, B)`` with ``axis=1`` give ``(A, B, k)``.
    probs : ndarray, shape ``(..., k)``
        ``softmax(logits / T)`` at those indices, in the dtype of :func:`softmax`.

    Raises
    ------
    InputError
        If ``k`` is outside ``[1, C]``, or on NaN / ``+inf`` logits.

    Examples
    --------
    >>> indices, probs = topk([3.0, 1.0, 3.0, 2.0, 3.0], k=2)
    >>> indices
    array([0, 2])
    >>> probs.round(4)
    array([0.2855, 0.2855])
    """
    array = np.asarray(logits)
    if array.dtype.kind in "biu":
        # Ranked as float64, the dtype rule for integers and booleans: negating
        # a bool fails and negating an unsigned integer wraps around.
        array = array.astype(np.float64)
    axis = check_axis(array.ndim, axis)
    k = check_k(k, array.shape[axis])
    if ties not in TIES:
        raise InputError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    # softmax validates the logits (NaN, +inf, masked rows) before any ranking.
    probs = np.moveaxis(softmax(array, axis=axis, temperature=temperature, masked_rows=masked_rows), axis, -1)
    rows = as_rows(array, axis)
    indices = np.empty((rows.shape[0], k), dtype=np.intp)

    last = rows.shape[1] - 1

    def work(start: int, stop: int) -> None:
        for block in row_blocks(stop, rows.shape[1], start):
            if ties == "low":
                indices[block] = _topk_rows(rows[block], k)
            else:
                # Ties to the lower index of the reversed row are ties to the higher index of the row.
                indices[block] = last - _topk_rows(np.ascontiguousarray(rows[block, ::-1]), k)

    in_row_chunks(*rows.shape, work)
    indices = indices.reshape(probs.shape[:-1] + (k,))
    return indices, np.take_along_axis(probs, indices, axis=-1)


def topk_accuracy(
    indices: npt.ArrayLike, labels: npt.ArrayLike, ignore_index: int = -100, num_classes: int | None = None
) -> tuple[float, float]:
    r"""Top-1 and top-k accuracy of ranked predictions from :func:`topk`.

    .. math:: \mathrm{top1} = \frac{1}{|R|}\sum_{n \in R} [i_{n,1} = y_n], \quad
              \mathrm{topk} = \frac{1}{|R|}\sum_{n \in R} [y_n \in \{i_{n,1}, \dots, i_{n,k}\}]

    over the rows ``R`` whose label is not ``ignore_index``.

    Parameters
    ----------
    indices : array_like of int, shape ``(..., k)``
        Ranked class indices, most probable first.
    labels : array_like of int, shape ``(...)``
        One class index per row (or flat, one per row in C order).
    ignore_index : int
        Rows with this label are left out, as in ``torch.nn.functional.cross_entropy``.
    num_classes : int, optional
        When given, labels must be below it.

    Returns
    -------
    (top1, topk) : tuple of float
        Fractions in ``[0, 1]``; NaN when every row is ignored.

    Examples
    --------
    >>> topk_accuracy([[0, 2], [1, 0]], [2, 1])
    (0.5, 1.0)
    """
    ranked = np.asarray(indices)
    if ranked.ndim == 0 or ranked.shape[-1] == 0:
        raise InputError(f"indices must have shape (..., k) with k >= 1, got shape {ranked.shape}")
    ranked = ranked.reshape(-1, ranked.shape[-1])
    flat = check_labels(labels, np.asarray(indices).shape[:-1], num_classes, ignore_index)
    kept = flat != ignore_index
    if not kept.any():
        return float("nan"), float("nan")
    hits = ranked[kept] == flat[kept, None]
    return float(hits[:, 0].mean()), float(hits.any(axis=1).mean())
