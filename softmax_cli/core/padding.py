"""Which positions of a language model's logits are scored: the padding mask and next-token alignment.

A mask is shaped like the logits without the class axis (Hugging Face's
``attention_mask`` of a (batch, seq, vocab) array is (batch, seq)); 1 or True
keeps a position, 0 or False drops it. A dropped position's logits are never
read as numbers, so padding may hold anything (NaN included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .blocks import describe_position, value_text

if TYPE_CHECKING:
    import numpy.typing as npt


def check_mask(mask: npt.ArrayLike, lead_shape: tuple[int, ...]) -> np.ndarray:
    """Return a keep-mask as a flat bool array, one entry per row, or raise.

    ``lead_shape`` is the rows' shape (the logits' without the class axis);
    the mask has that shape, or is flat with one entry per row in C order.
    Its values are booleans or the numbers 0 and 1 (an ``attention_mask``).
    Errors have ``operand="mask"`` and name the first bad entry.

    Examples
    --------
    >>> check_mask([[1, 1, 0]], (1, 3))
    array([ True,  True, False])
    """
    array = np.asarray(mask)
    lead_shape = tuple(lead_shape)
    n_rows = int(np.prod(lead_shape, dtype=np.int64))
    if array.shape != lead_shape and not (array.ndim == 1 and array.size == n_rows):
        raise InputError(f"the mask has shape {array.shape} but the logits have {n_rows} position(s) of shape "
                         f"{lead_shape}; give one 1 (keep) or 0 (drop) per position, as an attention_mask",
                         operand="mask")
    flat = array.reshape(-1)
    if flat.dtype.kind == "b":
        return flat.astype(bool, copy=False)
    if flat.dtype.kind not in "iuf":
        raise InputError(f"a mask holds 1 (keep) and 0 (drop), got dtype {flat.dtype}", operand="mask")
    bad = (flat != 0) & (flat != 1)
    if bad.any():
        at = int(np.argmax(bad))
        raise InputError(f"mask value {value_text(flat[at])} is neither 1 (keep) nor 0 (drop)",
                         where=describe_position(array.shape + (1,), array.ndim, at) or None, operand="mask")
    return flat == 1


def shift_mask(keep: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The positions next-token scoring keeps, flat: logits ``t`` against label ``t + 1``.

    ``shape`` is the rows' shape (…, seq). As Hugging Face's causal-LM loss,
    position ``t`` is scored when the label at ``t + 1`` is; the last position
    of each sequence has no next token and is never scored. ``keep`` is the
    flat keep-mask of the labels' positions.

    Examples
    --------
    >>> shift_mask(np.array([True, True, True, False]), (1, 4))
    array([ True,  True, False, False])
    """
    grid = keep.reshape(shape)
    shifted = np.zeros_like(grid)
    shifted[..., :-1] = grid[..., 1:]
    return shifted.reshape(-1)


def shift_labels(labels: np.ndarray, shape: tuple[int, ...], ignore_index: int) -> np.ndarray:
    """Flat next-token labels: position ``t`` gets the label at ``t + 1``; the last of a sequence ``ignore_index``.

    ``labels`` are flat, one per position of the rows' ``shape`` (…, seq).

    Examples
    --------
    >>> shift_labels(np.array([5, 6, 7]), (3,), -100)
    array([   6,    7, -100])
    """
    if len(shape) == 0:
        raise InputError("next-token labels need a sequence axis; the logits have a single row", operand="labels")
    grid = labels.reshape(shape)
    shifted = np.full_like(grid, ignore_index)
    shifted[..., :-1] = grid[..., 1:]
    return shifted.reshape(-1)


def blank_rows(logits: npt.ArrayLike, keep: np.ndarray, axis: int = -1, fill: float = 0.0) -> np.ndarray:
    """``logits`` with every row not kept set to ``fill``, so that garbage in padding (NaN) is never read.

    ``keep`` is flat, one flag per row (every index but ``axis``, C order). The
    logits come back as they are when every row is kept, else as a copy of
    their dtype.

    Examples
    --------
    >>> blank_rows(np.array([[1.0, np.nan], [2.0, 3.0]]), np.array([False, True]))
    array([[0., 0.],
           [2., 3.]])
    """
    array = np.asarray(logits)
    if keep.all():
        return array
    moved = np.moveaxis(array, axis, -1)
    blanked = np.where(keep.reshape(moved.shape[:-1])[..., None], moved, np.asarray(fill, dtype=array.dtype))
    return np.moveaxis(blanked, -1, axis)
