"""Scaled dot-product attention with the semantics of torch's SDPA, in bounded memory.

``attention(q, k, v)`` is ``softmax(q kᵀ · scale + bias) v`` per batch entry and
head, as ``torch.nn.functional.scaled_dot_product_attention``. Without
``return_weights`` the ``(L, S)`` score matrix is never held: query blocks are
walked against key blocks with the online-softmax recurrence of FlashAttention
(a running row maximum and running sum, rescaled whenever the maximum grows),
so memory grows with ``L`` times the block size instead of ``L · S``, and key
blocks that the causal mask hides entirely are never computed. The operands
are checked and laid out in :mod:`.sdpa_operands`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from ..choices import MaskedRows
from ..errors import InputError
from .blocks import PARALLEL_MIN_ELEMENTS, thread_count, threads_or_out_of_memory
from .logits import MaskedRowError, _check_policy
from .sdpa_operands import CausalAlign, Operands, operands, unattended_queries

if TYPE_CHECKING:
    import numpy.typing as npt

# Default (query rows, key columns) of one block, chosen by measurement at
# B=1, H=8, L=S=4096, E=64 float32, causal, on a shared 2-core AMD EPYC
# (best of 10 runs; torch's SDPA took 0.15 s there):
# 256 x 512 took 0.24 s; 128 x 512, 256 x 256 and 256 x 1024 0.25-0.26 s;
# 512 x 512 0.36 s; 1024 x 1024 0.39 s; key blocks alone (4096 x 512) 0.58 s.
# Its score block (4 MiB for 8 heads) stays in the L3 cache across the max,
# subtract and exp passes, and the matmuls are still large enough for BLAS.
DEFAULT_BLOCK_SIZE = (256, 512)

# The score blocks of all batch entries and heads together, over all threads,
# are kept under this many elements (32 MiB of float32) by shrinking the query
# block, so that many heads do not turn a block into a full score matrix.
BLOCK_BUDGET = 1 << 23


def _hide(scores: np.ndarray, ops: Operands, rows: slice, cols: slice) -> None:
    """Apply the user mask and the causal mask to one block of scores, in place."""
    if ops.mask is not None:
        block = ops.mask[..., rows, cols]
        if block.dtype == bool:
            np.copyto(scores, -np.inf, where=block)
        else:
            scores += block
    if ops.offset is not None and cols.stop - 1 > rows.start + ops.offset:
        # Only blocks that cross the diagonal need it; the others are fully visible.
        above = np.arange(cols.start, cols.stop)[None, :] > np.arange(rows.start, rows.stop)[:, None] + ops.offset
        np.copyto(scores, -np.inf, where=above)


def _safe_max(row_max: np.ndarray) -> np.ndarray:
    """Replace a max of ``-inf`` (a row with nothing to attend) by 0.

    Shifting by it would give ``-inf - -inf = NaN``; shifting by 0 leaves the
    row's exponentials at exactly 0, so its output becomes 0 below.
    """
    return np.where(row_max == -np.inf, 0, row_max)


def _scaled(ops: Operands, q: np.ndarray) -> np.ndarray:
    """``q · scale`` in the compute dtype.

    Scaling q (L·E values) instead of the scores (L·S values) saves a pass
    over the scores, and scaling one block at a time saves a copy of q.
    """
    return np.multiply(q, ops.scale, dtype=ops.k.dtype)


def _direct(ops: Operands) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(..., L, S)`` and output, holding the whole score matrix."""
    length, keys = ops.q.shape[-2], ops.k.shape[-2]
    scores = _scaled(ops, ops.q) @ np.swapaxes(ops.k, -1, -2)
    if keys == 0:  # no key at all: every row gives zeros (and there is no max to take)
        return scores, np.zeros(ops.batch + ops.out_shape[-2:], dtype=scores.dtype)
    _hide(scores, ops, slice(0, length), slice(0, keys))
    scores -= _safe_max(scores.max(axis=-1, keepdims=True))
    weights = np.exp(scores, out=scores)
    total = weights.sum(axis=-1, keepdims=True)
    # A row with nothing to attend sums to 0: its weights stay 0 instead of 0/0.
    np.divide(weights, total, out=weights, where=total > 0)
    return weights, weights @ ops.v


def _online_rows(ops: Operands, rows: slice, key_block: int, out: np.ndarray, scratch: np.ndarray) -> None:
    """Attention for one block of query rows, walking the visible key blocks once.

    The FlashAttention recurrence: with running max ``m``, running sum ``l``
    and running numerator ``acc``, a key block with scores ``s`` and max
    ``m' = max(m, max s)`` updates ``l <- l·e^(m-m') + Σ e^(s-m')`` and
    ``acc <- acc·e^(m-m') + e^(s-m') v``; the output is ``acc / l``.
    Every score block is written into the flat ``scratch`` buffer, so only one
    exists at a time and its pages are not faulted in again for each block.
    """
    q = _scaled(ops, ops.q[..., rows, :])
    keys = ops.k.shape[-2]
    # Causal: the last row of the block sees keys up to rows.stop - 1 + offset.
    end = keys if ops.offset is None else max(0, min(keys, rows.stop + ops.offset))
    target = out[..., rows, :]
    if end == 0:
        target[...] = 0
        return
    k_t = np.swapaxes(ops.k, -1, -2)
    ones = np.ones((key_block, 1), dtype=q.dtype)
    running_max = running_sum = acc = None
    for start in range(0, end, key_block):
        cols = slice(start, min(start + key_block, end))
        shape = np.broadcast_shapes(q.shape[:-1], k_t.shape[:-2] + (1,)) + (cols.stop - cols.start,)
        scores = np.matmul(q, k_t[..., cols], out=scratch[: np.prod(shape)].reshape(shape))
        _hide(scores, ops, rows, cols)
        block_max = scores.max(axis=-1, keepdims=True)
        new_max = block_max if running_max is None else np.maximum(running_max, block_max)
        # The running max itself stays -inf for a row that has seen nothing yet,
        # so a later block is shifted by its true max, not by the stand-in 0.
        shift = _safe_max(new_max)
        scores -= shift
        np.exp(scores, out=scores)
        # A matrix-vector product sums rows several times faster than np.sum.
        block_sum = scores @ ones[: cols.stop - cols.start]
        if running_max is None:
            running_sum, acc = block_sum, scores @ ops.v[..., cols, :]
        else:
            # The shift is never below the old max, so the factor is at most 1
            # (and 0 for a row whose old max was -inf).
            factor = np.exp(running_max - shift)
            running_sum = running_sum * factor + block_sum
            acc = acc * factor + scores @ ops.v[..., cols, :]
        running_max = new_max
    # A row with nothing to attend has a running sum of 0 and gives zeros.
    np.divide(acc, running_sum, out=target, where=running_sum > 0)
    np.copyto(target, 0, where=running_sum == 0)


def _block_sizes(block_size: int | tuple[int, int] | None, rows_per_query: int) -> tuple[int, int]:
    """Validate ``block_size`` (int or (query, key) pair), or choose the default."""
    if block_size is None:
        query_block, key_block = DEFAULT_BLOCK_SIZE
        # Many heads or batch entries: shrink the query block to stay in budget
        # (shared by the threads, each holding one score block).
        budget = BLOCK_BUDGET // thread_count()
        query_block = max(16, min(query_block, budget // max(1, rows_per_query * key_block)))
        return query_block, key_block
    sizes = (block_size, block_size) if np.ndim(block_size) == 0 else tuple(block_size)
    if len(sizes) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
        raise InputError(f"block_size must be a positive integer or a (query, key) pair of them, got {block_size!r}")
    return int(sizes[0]), int(sizes[1])


def _online(ops: Operands, query_block: int, key_block: int) -> np.ndarray:
    """The output without the score matrix: query blocks times visible key blocks.

    Query blocks are independent, so they are shared out over threads (each
    with its own scratch buffer; BLAS and the ufuncs release the GIL). They
    are handed out one at a time rather than in contiguous halves because a
    causal mask gives later blocks more keys to see. Each block's arithmetic
    is the same on any thread, so the result does not depend on the count.
    """
    out = np.empty(ops.batch + ops.out_shape[-2:], dtype=ops.k.dtype)
    length, keys = ops.q.shape[-2], ops.k.shape[-2]
    score_batch = int(np.prod(np.broadcast_shapes(ops.q.shape[:-2], ops.k.shape[:-2])))
    scratch_size = score_batch * min(query_block, length) * min(key_block, keys)
    starts = range(0, length, query_block)
    large = score_batch * length * keys >= PARALLEL_MIN_ELEMENTS
    threads = min(thread_count(), len(starts)) if large else 1
    local = threading.local()

    def run_block(start: int) -> None:
        if not hasattr(local, "scratch"):
            local.scratch = np.empty(scratch_size, dtype=ops.k.dtype)
        _online_rows(ops, slice(start, min(start + query_block, length)), key_block, out, local.scratch)

    if threads <= 1:
        for start in starts:
            run_block(start)
        return out
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool, threads_or_out_of_memory():
        for _ in pool.map(run_block, starts):  # re-raises a block's error
            pass
    return out


def attention(
    q: npt.ArrayLike,
    k: npt.ArrayLike,
    v: npt.ArrayLike,
    *,
    mask: npt.ArrayLike | None = None,
    causal: bool = False,
    causal_align: CausalAlign = "upper-left",
    scale: float | None = None,
    return_weights: bool = False,
    block_size: int | tuple[int, int] | None = None,
    enable_gqa: bool = True,
    masked_rows: MaskedRows = "zero",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""Scaled dot-product attention, as ``torch.nn.functional.scaled_dot_product_attention``.

    .. math:: \mathrm{out} = \mathrm{softmax}\!\left(s\, q k^\top + B\right) v,
              \quad s = 1/\sqrt{E} \text{ by default}

    where the bias ``B`` is 0 where a key is attended and ``-inf`` where it
    is hidden (plus a float mask's values). The softmax runs over the keys.

    Parameters
    ----------
    q, k, v : array_like
        Queries ``(..., L, E)``, keys ``(..., S, E)`` and values
        ``(..., S, Ev)``; the leading dimensions broadcast. float16 is
        computed in float32 and returned as float16; integers become float64.
        NaN and infinities are refused (hide keys with ``mask`` instead).
    mask : array_like, optional
        Broadcastable to ``(..., L, S)``. Boolean: True attends, as torch.
        Floating point: added to the scores (``-inf`` hides a key).
    causal : bool
        Query ``i`` attends key ``j`` only if ``j <= i`` (``causal_align``
        ``"upper-left"``, torch's ``is_causal``: ``tril(ones(L, S))``) or
        ``j <= i + S - L`` (``"lower-right"``, torch's ``causal_lower_right``:
        the last query sees every key, as in decoding). Unlike torch, which
        refuses the pair, ``mask`` and ``causal`` combine: a boolean mask is
        ANDed with the causal mask, a float mask is added to the scores and
        the keys above the causal diagonal get ``-inf`` on top.
    causal_align : {"upper-left", "lower-right"}
        Where the causal diagonal starts when ``L != S``.
    scale : float, optional
        Multiplies ``q kᵀ``; default ``1/sqrt(E)``.
    return_weights : bool
        Also return the attention weights ``(..., L, S)``; this holds the full
        score matrix. Without it, memory grows with ``L`` times the block
        size, not with ``L · S``.
    block_size : int or (int, int), optional
        Query rows and key columns per block of the online softmax (one int
        for both). The default, :data:`DEFAULT_BLOCK_SIZE`, was measured; the
        query block shrinks when many heads would make a block large. The
        result does not depend on it beyond rounding; ``return_weights``
        does not use blocks.
    enable_gqa : bool
        Grouped-query attention: when the query heads (dimension -3) are a
        multiple of the key/value heads, each key/value head serves
        ``Hq / Hkv`` consecutive query heads (torch's repeat-interleave),
        without copying the keys and values.
    masked_rows : {"zero", "error", "nan"}
        A query row that can attend no key: zeros (and zero weights), as
        torch >= 2.5 does; refused with :class:`MaskedRowError` naming the
        first such query; or NaN, as a plain softmax of all ``-inf`` gives.

    Returns
    -------
    output : ndarray
        ``(..., L, Ev)``.
    weights : ndarray
        ``(..., L, S)``, only with ``return_weights``.

    Raises
    ------
    InputError
        On NaN or infinite inputs (naming the array and position), shapes that
        do not fit (naming them), a mask that does not broadcast or is neither
        boolean nor floating point (or holds NaN or ``+inf``), a non-finite
        scale, an unknown ``causal_align`` or ``masked_rows``, a block size that
        is not a positive integer, or (``MaskedRowError``) a query that can
        attend no key under ``masked_rows="error"``.

    Examples
    --------
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> k = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> v = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> attention(q, k, v, causal=True).round(4)
    array([[1.    , 2.    ],
           [2.3395, 3.3395]])
    """
    _check_policy(masked_rows)
    ops = operands(q, k, v, mask, causal, causal_align, scale, enable_gqa)
    blocks = _block_sizes(block_size, int(np.prod(ops.batch)))
    if not return_weights:
        out = _online(ops, *blocks).reshape(ops.out_shape).astype(ops.output, copy=False)
        return _unattended_as(masked_rows, out, None, mask, causal, causal_align, ops)[0]
    weights, out = _direct(ops)
    # Broadcast to every batch entry (v alone may add some), then fold GQA back.
    weights = np.broadcast_to(weights, ops.batch + weights.shape[-2:]).reshape(ops.out_shape[:-1] + weights.shape[-1:])
    out, weights = out.reshape(ops.out_shape).astype(ops.output, copy=False), weights.astype(ops.output, copy=False)
    return _unattended_as(masked_rows, out, weights, mask, causal, causal_align, ops)


def _unattended_as(masked_rows: MaskedRows, out: np.ndarray, weights: np.ndarray | None, mask, causal: bool,
                   causal_align: CausalAlign, ops: Operands) -> tuple[np.ndarray, np.ndarray | None]:
    """The masked-row policy for queries that can attend no key: the kernels' zeros kept, refused, or NaN."""
    if masked_rows == "zero":
        return out, weights
    length, keys = out.shape[-2], ops.k.shape[-2]
    unattended = np.broadcast_to(unattended_queries(length, keys, mask, causal, causal_align), out.shape[:-1])
    if not unattended.any():
        return out, weights
    if masked_rows == "error":
        row = tuple(int(i) for i in np.argwhere(unattended)[0])
        raise MaskedRowError("the query can attend no key (every key is masked); choose --masked-rows zero "
                             "(torch's zeros) or nan", where=f"query {row[0] if len(row) == 1 else row}")
    out = np.where(unattended[..., None], np.nan, out).astype(out.dtype)
    if weights is not None:
        weights = np.where(unattended[..., None], np.nan, weights).astype(out.dtype)
    return out, weights
