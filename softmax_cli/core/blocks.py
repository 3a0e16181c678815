"""Array plumbing shared by the core: dtype rules, row views, position names."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import numpy.typing as npt

# A block of this many elements (256 KiB of float32) stays in L2 cache while
# the max, subtract, exp and sum passes walk over it.
BLOCK_ELEMENTS = 1 << 16
# Below this many elements (4 MiB of float32) starting threads costs more
# than the second core saves.
PARALLEL_MIN_ELEMENTS = 1 << 20


# Logits 2e308 apart, or (x - max) / T for a tiny T, shift below -1.8e308 and
# overflow to -inf: that is their correctly rounded value and exp of it is the
# exact 0, so the overflow is the answer, not a fault to warn about. (The row's
# max shifts to exactly 0 and never overflows, so no row turns to NaN.) A
# derivative divided by a tiny T overflows to +-inf the same way. Functions doing
# that arithmetic are decorated with this.
overflow_is_the_limit = np.errstate(over="ignore")


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# A context variable, not a global: a command line's --threads ends with its invocation
# (each runs in a copy of the context), and a Dask worker's thread keeps its own.
_threads: ContextVar[int | None] = ContextVar("softmax_threads", default=None)


def set_threads(count: int) -> None:
    """How many threads large arrays are split over (default: the available cores), in the current context.

    Rows are independent and every row's arithmetic is the same in any chunk,
    so the result is bit-identical for any count.
    """
    if count < 1:
        raise InputError(f"threads must be 1 or more, got {count}")
    _threads.set(int(count))


def thread_count() -> int:
    """The number of threads large arrays are split over (see :func:`set_threads`)."""
    chosen = _threads.get()
    return available_cores() if chosen is None else chosen


@contextmanager
def threads_or_out_of_memory() -> Iterator[None]:
    """Starting a thread the system cannot give raises RuntimeError ("can't start new thread"): under a memory
    limit (``ulimit -v``) its stack is what does not fit, so it is the process running out of memory, which the
    command line reports as such (a MemoryError) rather than as a crash."""
    try:
        yield
    except RuntimeError as error:
        if "can't start new thread" not in str(error):
            raise
        raise MemoryError("no memory left to start a thread") from None


def in_row_chunks(n_rows: int, n_cols: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(start, stop)`` over contiguous row ranges, in threads for large arrays.

    NumPy releases the GIL inside ufuncs, so the threads really run together.
    If several chunks fail, the error of the earliest chunk is raised, so the
    first bad position is the one reported, as in a single pass.
    """
    threads = min(thread_count(), n_rows) if n_rows * n_cols >= PARALLEL_MIN_ELEMENTS else 1
    if threads <= 1:
        work(0, n_rows)
        return
    from concurrent.futures import ThreadPoolExecutor

    bounds = [n_rows * i // threads for i in range(threads + 1)]
    with ThreadPoolExecutor(threads) as pool, threads_or_out_of_memory():
        # Each thread runs in a copy of this context, so positions keep their block origin.
        futures = [pool.submit(copy_context().run, work, start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]
    for future in futures:
        if future.exception() is not None:
            raise future.exception()


def float_dtypes(x: npt.ArrayLike) -> tuple[np.ndarray, np.dtype, np.dtype]:
    """Return ``(array, compute_dtype, output_dtype)`` under the contract's dtype rules.

    float32/float64 are computed and returned as themselves; float16 and
    ml_dtypes' bfloat16 are computed in float32 (half precision loses digits in
    the sums) and returned as themselves; integers and booleans become float64.
    Everything else is refused.
    """
    array = np.asarray(x)
    kind = array.dtype.kind
    if kind == "V" and array.dtype.name == "bfloat16":
        return array, np.dtype(np.float32), array.dtype
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


def row_blocks(n_rows: int, n_cols: int, start: int = 0, elements: int | None = None) -> Iterator[slice]:
    """Slices of consecutive rows from ``start`` to ``n_rows``, each about ``elements`` (:data:`BLOCK_ELEMENTS`)."""
    step = max(1, (elements or BLOCK_ELEMENTS) // max(1, n_cols))
    for first in range(start, n_rows, step):
        yield slice(first, min(first + step, n_rows))


# Set while the core works on a block cut from a larger array (a file streamed
# in parts): (the whole array's shape, its class axis, the block's first row).
_block_origin: ContextVar[tuple[tuple[int, ...], int, int] | None] = ContextVar("block_origin", default=None)


@contextmanager
def block_of(shape: tuple[int, ...], axis: int, first_row: int):
    """Within this block, errors name positions in the whole array of ``shape``.

    The block is 2-D ``(rows, classes)``: rows ``first_row ...`` of the whole
    array seen as :func:`as_rows` would see it.
    """
    token = _block_origin.set((tuple(shape), axis % len(shape), first_row))
    try:
        yield
    finally:
        _block_origin.reset(token)


def describe_position(shape: tuple[int, ...], axis: int, flat_row: int, column: int | None = None) -> str:
    """Name a position as the contract does: ``row R, column C``.

    ``flat_row`` indexes the rows of :func:`as_rows`; ``R`` is the index over
    every axis but the class axis (an integer for 2-D input, a tuple for N-d)
    and ``C`` the class index. 1-D input has no row, only a column. Inside
    :func:`block_of`, the position is named in the whole array.
    """
    origin = _block_origin.get()
    if origin is not None:
        shape, axis, first_row = origin
        flat_row += first_row
    lead = tuple(int(i) for i in np.unravel_index(flat_row, tuple(np.delete(np.array(shape), axis))))
    parts = []
    if lead:
        parts.append(f"row {lead[0] if len(lead) == 1 else lead}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)


def value_text(value) -> str:
    """A value as an error message shows it: ``5`` for a whole number, ``1.5``/``nan``/``1e+30`` otherwise.

    Never ``np.float64(1.5)``; whole floats beyond int64 keep their float form.
    """
    value = np.asarray(value).item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value)
