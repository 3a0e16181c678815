"""Attention's operands, checked and laid out: dtypes, shapes, grouped-query heads, masks and causality.

:func:`operands` validates ``q, k, v`` and the mask once and returns them in
the layout the kernels of :mod:`.sdpa` walk: grouped-query heads split into
(key/value heads, group) without copying, the mask as a broadcast view, and
the causal mask as a diagonal offset instead of a matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..choices import CAUSAL_ALIGNMENTS, CausalAlign
from ..errors import InputError
from .blocks import float_dtypes

if TYPE_CHECKING:
    import numpy.typing as npt



@dataclass
class Operands:
    """q, k, v and the mask in the GQA layout; k and v in the compute dtype."""

    q: np.ndarray  # as given: each block is scaled and cast on its own, no full copy
    scale: float
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None  # bool (True attends) or float (added), shape (..., L, S) as a view
    offset: int | None  # causal: query i sees key j iff j <= i + offset; None without causal
    batch: tuple[int, ...]  # broadcast leading shape in the GQA layout (..., Hkv, group)
    out_shape: tuple[int, ...]  # the output's shape, heads folded back
    output: np.dtype


def _checked(x: npt.ArrayLike, name: str) -> tuple[np.ndarray, np.dtype, np.dtype]:
    """Apply the dtype rules to one operand and refuse NaN, infinities and scalars."""
    try:
        array, compute, output = float_dtypes(x)
    except InputError:
        raise InputError(f"{name} has dtype {np.asarray(x).dtype}; {name} must hold real numbers",
                         operand=name) from None
    if array.ndim < 2:
        raise InputError(f"{name} must have at least 2 dimensions (..., rows, features), got shape {array.shape}",
                         operand=name)
    # min and max see NaN and infinities without a boolean copy of the array;
    # only a bad array pays for finding the first position.
    if array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        bad = ~np.isfinite(array)
        position = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
        value = array[position]
        kind = "NaN" if np.isnan(value) else f"{'+' if value > 0 else '-'}inf"
        raise InputError(f"{kind} in {name}; attention inputs must be finite (use a mask to hide keys)",
                         where=f"{name} index {position}", operand=name)
    return array, compute, output


def _broadcast_batch(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[int, ...]:
    """The broadcast leading shape of the three operands, or an error naming their shapes."""
    try:
        return np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise InputError(
            f"leading dimensions of q {q.shape}, k {k.shape} and v {v.shape} do not broadcast"
        ) from None


def _gqa_group(q: np.ndarray, k: np.ndarray, v: np.ndarray, enable_gqa: bool) -> int:
    """How many query heads share one key/value head (1 when GQA does not apply).

    As torch's ``enable_gqa``: the heads are dimension -3, key and value have
    the same number of heads, and that number divides the query heads. A single
    key/value head is left to ordinary broadcasting.
    """
    if not enable_gqa or min(q.ndim, k.ndim, v.ndim) < 3:
        return 1
    hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
    if hk != hv or hk in (1, hq) or hq % hk:
        return 1
    return hq // hk


def _grouped(array: np.ndarray, group: int) -> np.ndarray:
    """Split the heads (dim -3) of a query-side array into (kv heads, group)."""
    shape = array.shape
    return array.reshape(shape[:-3] + (shape[-3] // group, group) + shape[-2:])


def _prepared_mask(mask: npt.ArrayLike, target: tuple[int, ...], group: int, compute: np.dtype) -> np.ndarray:
    """Check the mask against ``target = (..., L, S)`` and bring it to the compute layout.

    A boolean mask is returned inverted (True = hidden), ready for ``np.copyto``;
    a float mask in the compute dtype, ready to add. The last two dimensions
    are broadcast as a view, so slicing a block of it costs nothing.
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "bf":
        raise InputError(f"mask must be boolean (True attends) or floating point (added to the scores), "
                         f"got dtype {mask.dtype}", operand="mask")
    if not _fits(mask.shape, target):
        raise InputError(f"mask of shape {mask.shape} does not broadcast to the scores' shape {target}",
                         operand="mask")
    if mask.dtype.kind == "f":
        bad = np.isnan(mask) | (mask == np.inf)
        if bad.any():
            position = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), mask.shape))
            raise InputError("the float mask holds NaN or +inf; only finite values and -inf (hide) are allowed",
                             where=f"index {position}", operand="mask")
        mask = mask.astype(compute, copy=False)
    else:
        mask = ~mask
    # Full rank, so that the heads (dim -3) and the (L, S) dimensions exist.
    mask = mask.reshape((1,) * (len(target) - mask.ndim) + mask.shape)
    if group > 1:
        mask = _grouped(mask, group) if mask.shape[-3] != 1 else mask[..., None, :, :]
    return np.broadcast_to(mask, mask.shape[:-2] + target[-2:])


def _scores_fit_mask(q: np.ndarray, k: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q and the mask such that every block of the mask fits the same block of the scores ``q k^T``.

    The scores have q's and k's leading shape only; the mask is laid out for
    the whole batch, V's dimensions included (2-D q and k with a batched v).
    Leading dimensions of 1 the scores do not have are dropped from the mask;
    where the mask really varies along them, q is broadcast (a view) so that
    the scores get them too.
    """
    scores = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    while mask.ndim - 2 > len(scores) and mask.shape[0] == 1:
        mask = mask[0]
    if np.broadcast_shapes(scores, mask.shape[:-2]) != scores:
        q = np.broadcast_to(q, np.broadcast_shapes(q.shape[:-2], mask.shape[:-2]) + q.shape[-2:])
    return q, mask


def _fits(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without enlarging it."""
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def operands(q, k, v, mask, causal, causal_align, scale, enable_gqa) -> Operands:
    """Validate everything and lay the operands out for the block loops."""
    (q, cq, oq), (k, ck, ok), (v, cv, ov) = _checked(q, "q"), _checked(k, "k"), _checked(v, "v")
    compute, output = np.result_type(cq, ck, cv), np.result_type(oq, ok, ov)
    if q.shape[-1] != k.shape[-1]:
        raise InputError(f"q {q.shape} and k {k.shape} must have the same feature size (last dimension)")
    if k.shape[-2] != v.shape[-2]:
        raise InputError(f"k {k.shape} and v {v.shape} must have the same number of keys (dimension -2)")
    offset = _causal_offset(causal, causal_align, q.shape[-2], k.shape[-2])
    group = _gqa_group(q, k, v, enable_gqa)
    if group > 1:
        q = _grouped(q, group)
        k, v = k[..., None, :, :], v[..., None, :, :]
    batch = _broadcast_batch(q, k, v)
    (length, features), keys = q.shape[-2:], k.shape[-2]
    heads_shape = batch[:-2] + (batch[-2] * batch[-1],) if group > 1 else batch
    if mask is not None:
        mask = _prepared_mask(mask, heads_shape + (length, keys), group, compute)
        q, mask = _scores_fit_mask(q, k, mask)
    scale = _scale(scale, features)
    _check_scores_fit(q, k, scale, mask, compute)
    return Operands(q, scale, k.astype(compute, copy=False), v.astype(compute, copy=False), mask, offset,
                    batch, heads_shape + (length, v.shape[-1]), output)


def _scale(scale: float | None, features: int) -> float:
    """``1/sqrt(E)`` by default; a given scale must be finite."""
    if scale is None:
        # With no features every score is 0 whatever the scale; avoid 1/sqrt(0).
        return 1.0 / np.sqrt(features) if features else 1.0
    value = float(scale)
    if not np.isfinite(value):
        raise InputError(f"scale must be finite, got {scale!r}")
    return value


def _check_scores_fit(q: np.ndarray, k: np.ndarray, scale: float, mask: np.ndarray | None,
                      compute: np.dtype) -> None:
    """Refuse q and k so large that a score ``q·kᵀ·scale`` (plus a float mask) could pass the float range.

    An infinite score gives ``inf - inf = NaN`` in the softmax: NaN weights, or
    a silently wrong row on the online path. ``E·max|q|·max|k|·|scale|`` bounds
    every score; it is computed with Python floats, which overflow to inf
    without a warning.
    """
    largest = float(np.finfo(compute).max)
    bound = q.shape[-1] * _largest_magnitude(q) * _largest_magnitude(k) * abs(scale)
    if mask is not None and mask.dtype.kind == "f":
        bound += _largest_magnitude(np.where(np.isfinite(mask), mask, 0))
    if not bound < largest:
        raise InputError(f"q and k are too large: a score q·kᵀ·scale could pass {compute}'s largest value "
                         f"{largest:.3g} (the softmax of an infinite score is NaN); scale q or k down, or give a "
                         "smaller scale")


def _largest_magnitude(array: np.ndarray) -> float:
    return float(np.max(np.abs(array))) if array.size else 0.0


def _causal_offset(causal: bool, causal_align: CausalAlign, length: int, keys: int) -> int | None:
    """Query ``i`` sees key ``j`` iff ``j <= i + offset``; None without causal. Refuses an unknown alignment."""
    if causal_align not in CAUSAL_ALIGNMENTS:
        raise InputError(f"causal_align must be one of {', '.join(CAUSAL_ALIGNMENTS)}, got {causal_align!r}")
    if not causal:
        return None
    return 0 if causal_align == "upper-left" else keys - length


def unattended_queries(
    length: int,
    keys: int,
    mask: npt.ArrayLike | None = None,
    causal: bool = False,
    causal_align: CausalAlign = "upper-left",
) -> np.ndarray:
    """Which query rows can attend no key at all (their output is zeros).

    Returns a boolean array of the mask's leading dimensions plus ``(L,)``
    (just ``(L,)`` without a mask); it broadcasts against the output's
    ``(..., L)``.

    Examples
    --------
    >>> unattended_queries(3, 2, causal=True, causal_align="lower-right")
    array([ True, False, False])
    """
    offset = _causal_offset(causal, causal_align, length, keys)
    visible = np.ones((length, keys), dtype=bool)
    if offset is not None:
        visible = np.arange(keys)[None, :] <= np.arange(length)[:, None] + offset
    if mask is not None:
        mask = np.asarray(mask)
        visible = visible & (mask if mask.dtype == bool else mask > -np.inf)
    return ~visible.any(axis=-1)
