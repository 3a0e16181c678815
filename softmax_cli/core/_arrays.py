"""Array plumbing shared by the core: dtype rules, row views, position names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt

# A block of this many elements (256 KiB of float32) stays in L2 cache while
# the max, subtract, exp and sum passes walk over it.
BLOCK_ELEMENTS = 1 << 16


def float_dtypes(x: npt.ArrayLike) -> tuple[np.ndarray, np.dtype, np.dtype]:
    """Return ``(array, compute_dtype, output_dtype)`` under the contract's dtype rules.

    float32/float64 are computed and returned as themselves; float16 is computed
    in float32 (half precision loses digits in the sums) and returned as float16;
    integers and booleans become float64. Everything else is refused.
    """
    array = np.asarray(x)
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype == np.float16:
            return array, np.dtype(np.float32), np.dtype(np.float16)
        if array.dtype.itemsize > 8:  # long double: no BLAS kernels, keep float64
            return array, np.dtype(np.float64), np.dtype(np.float64)
        return array, array.dtype, array.dtype
    if kind in "biu":
        return array, np.dtype(np.float64), np.dtype(np.float64)
    raise InputError(f"cannot use an array of dtype {array.dtype}; logits must be real numbers")


def output_dtype(dtype: npt.DTypeLike) -> np.dtype:
    """The dtype of array results for inputs of ``dtype`` (see :func:`float_dtypes`)."""
    return float_dtypes(np.empty(0, dtype=dtype))[2]


def check_axis(ndim: int, axis: int) -> int:
    """Normalise ``axis`` for an array of ``ndim`` dimensions, or raise."""
    if ndim == 0:
        raise InputError("expected at least one value per row, got a scalar")
    if not -ndim <= axis < ndim:
        raise InputError(f"axis {axis} is out of range for an array of {ndim} dimension(s)")
    return axis % ndim


def as_rows(array: np.ndarray, axis: int) -> np.ndarray:
    """View (or, when the layout forces it, copy) ``array`` as 2-D ``(rows, classes)``."""
    moved = np.moveaxis(array, axis, -1)
    return moved.reshape(-1, moved.shape[-1]) if moved.ndim else moved.reshape(1, 1)


def from_rows(rows: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Inverse of :func:`as_rows` for an array of the original ``shape``."""
    moved_shape = tuple(np.delete(np.array(shape, dtype=np.intp), axis)) + (shape[axis],)
    return np.moveaxis(rows.reshape(moved_shape), -1, axis)


def row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Slices of consecutive rows, each about :data:`BLOCK_ELEMENTS` elements."""
    step = max(1, BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def describe_position(shape: tuple[int, ...], axis: int, flat_row: int, column: int | None = None) -> str:
    """Name a position as the contract does: ``row R, column C``.

    ``flat_row`` indexes the rows of :func:`as_rows`; ``R`` is the index over
    every axis but the class axis (an integer for 2-D input, a tuple for N-d)
    and ``C`` the class index. 1-D input has no row, only a column.
    """
    lead = tuple(int(i) for i in np.unravel_index(flat_row, tuple(np.delete(np.array(shape), axis))))
    parts = []
    if lead:
        parts.append(f"row {lead[0] if len(lead) == 1 else lead}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)
