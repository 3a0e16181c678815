"""Softmax's derivatives: the vector-Jacobian product and the full Jacobian.

Per row, with ``s = softmax(z / T)``, the Jacobian of softmax is
``(diag(s) - s s^T) / T`` and that of log-softmax ``(I - 1 s^T) / T``. The
vector-Jacobian product never builds the matrix; the Jacobian is built block
by block, into memory or into a memory-mapped ``.npy`` for outputs too large
for memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypedDict

import numpy as np

from ..errors import InputError
from .blocks import as_rows, check_axis, describe_position, float_dtypes, from_rows, overflow_is_the_limit, row_blocks
from .logits import MaskedRows, _check_policy, check_temperature
from .softmax import probs_block, row_sums

if TYPE_CHECKING:
    import numpy.typing as npt
    from typing_extensions import Unpack


class DerivativeOptions(TypedDict, total=False):
    """The keyword options of the vector-Jacobian product and the Jacobian; defaults and meaning in :func:`softmax_vjp`."""

    axis: int
    temperature: float
    log: bool
    masked_rows: MaskedRows


class _Setup(NamedTuple):
    array: np.ndarray
    compute: np.dtype
    output: np.dtype
    axis: int
    temperature: float
    log: bool
    masked_rows: str


def _checked(
    logits: npt.ArrayLike, *, axis: int = -1, temperature: float = 1.0, log: bool = False,
    masked_rows: MaskedRows = "nan",
) -> _Setup:
    """Validate the logits and options (the one place the options' defaults live)."""
    array, compute, output = float_dtypes(logits)
    _check_policy(masked_rows)
    temperature = check_temperature(temperature, compute)
    axis = check_axis(array.ndim, axis)
    return _Setup(array, compute, output, axis, temperature, bool(log), masked_rows)


@overflow_is_the_limit
def softmax_vjp(logits: npt.ArrayLike, upstream: npt.ArrayLike, **options: Unpack[DerivativeOptions]) -> np.ndarray:
    r"""Vector-Jacobian product of softmax (or log-softmax) at ``logits``: ``g^T J`` per row.

    With ``s = softmax(z / T)`` and the chain rule's ``1 / T``:

    .. math:: \text{softmax: } \frac{s \odot (g - \langle g, s\rangle)}{T},
              \qquad \text{log-softmax: } \frac{g - s \sum_i g_i}{T}

    Parameters
    ----------
    logits : array_like
        Logits; every index but ``axis`` is a row.
    upstream : array_like
        ``g``, the gradient flowing back into the outputs; the logits' shape.
    axis : int
        The class axis (default -1).
    temperature : float
        ``T > 0`` (default 1), as in :func:`~softmax_cli.core.softmax.softmax`.
    log : bool
        Differentiate log-softmax instead (default False).
    masked_rows : {"nan", "zero", "error"}
        As in :func:`~softmax_cli.core.softmax.softmax` (default "nan"); a
        masked row's output does not depend on the logits, so ``"zero"`` gives
        a zero row.

    Examples
    --------
    >>> softmax_vjp([0.0, 0.0], [1.0, 0.0])
    array([ 0.25, -0.25])
    """
    array, compute, output, axis, temperature, log, masked_rows = _checked(logits, **options)
    g_all = np.asarray(upstream)
    if g_all.dtype.kind not in "biuf":
        raise InputError(f"the upstream gradient must be real numbers, got dtype {g_all.dtype}", operand="upstream")
    if g_all.shape != array.shape:
        raise InputError(f"upstream gradient of shape {g_all.shape} does not match logits of shape {array.shape}",
                         operand="upstream")
    rows, g_rows = as_rows(array, axis), as_rows(g_all, axis)
    result = np.empty(rows.shape, dtype=compute)
    for block in row_blocks(*rows.shape):
        out = result[block]
        p, masked = probs_block(rows, block, compute, temperature, array.shape, axis, masked_rows, out)
        g = g_rows[block].astype(compute, copy=False)
        if not np.isfinite(g).all():
            row, column = (int(i) for i in np.unravel_index(int(np.argmax(~np.isfinite(g))), g.shape))
            raise InputError("the upstream gradient must be finite",
                             where=describe_position(array.shape, axis, block.start + row, column) or None,
                             operand="upstream")
        if log:
            p *= -row_sums(g)[:, None]
            p += g
        else:
            p *= g - np.einsum("ij,ij->i", g, p)[:, None]
        if temperature != 1.0:
            p /= temperature
        if masked is not None and masked_rows == "zero":
            p[masked] = 0.0
    return from_rows(result, array.shape, axis).astype(output, copy=False)


def jacobian_shape(shape: tuple[int, ...], axis: int = -1) -> tuple[int, ...]:
    """Shape of :func:`softmax_jacobian`'s output: the rows' shape, then ``(C, C)``."""
    axis = check_axis(len(shape), axis)
    return tuple(shape[:axis]) + tuple(shape[axis + 1 :]) + (shape[axis], shape[axis])


def jacobian_nbytes(shape: tuple[int, ...], dtype: npt.DTypeLike, axis: int = -1) -> int:
    """Bytes :func:`softmax_jacobian` would allocate for logits of ``shape`` and ``dtype``.

    Examples
    --------
    >>> jacobian_nbytes((1000, 1000), "float32")
    4000000000
    """
    output = float_dtypes(np.empty(0, dtype=dtype))[2]
    count = 1
    for size in jacobian_shape(tuple(shape), axis):
        count *= int(size)  # Python ints: no overflow for absurd shapes
    return count * output.itemsize


@overflow_is_the_limit
def softmax_jacobian_into(out: np.ndarray, logits: npt.ArrayLike, **options: Unpack[DerivativeOptions]) -> np.ndarray:
    r"""Fill ``out`` with :func:`softmax_jacobian` block by block; return ``out``.

    ``out`` may be a memory map (``np.lib.format.open_memmap``): only
    O(block) memory is used beyond it, so a Jacobian larger than memory can be
    streamed to a ``.npy`` file. It must be C-contiguous with shape
    :func:`jacobian_shape` (its dtype may differ from the logits'; values
    are cast on writing). Options as in :func:`softmax_vjp`.

    Examples
    --------
    >>> softmax_jacobian_into(np.empty((2, 2)), [0.0, 0.0])
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    array, compute, _, axis, temperature, log, masked_rows = _checked(logits, **options)
    expected = jacobian_shape(array.shape, axis)
    if out.shape != expected or not out.flags.c_contiguous:
        raise InputError(f"the Jacobian needs a C-contiguous output of shape {expected}, got {out.shape}")
    rows = as_rows(array, axis)
    n_rows, n_cols = rows.shape
    flat = out.reshape(n_rows, n_cols, n_cols)
    blocks = list(row_blocks(n_rows, n_cols * n_cols))
    buf = np.empty((blocks[0].stop if blocks else 0, n_cols), dtype=compute)
    for block in blocks:
        p, masked = probs_block(rows, block, compute, temperature, array.shape, axis, masked_rows, buf)
        matrices = flat[block]
        # Off the diagonal: -s_j / T, or -(s_i s_j) / T with the product first so
        # the matrix is exactly symmetric. The diagonal is then written from
        # s (1 - s), which keeps its digits where s is near 1 and s - s^2 cancels.
        if log:
            matrices[...] = (p / -temperature)[:, None, :]
        else:
            np.multiply(p[:, :, None], p[:, None, :], out=matrices)
            matrices /= -temperature  # not * (-1 / T): 0 * inf would be NaN for a tiny T
        diagonal = matrices.reshape(len(p), n_cols * n_cols)[:, :: n_cols + 1]
        diagonal[...] = (1 - p) / temperature if log else p * (1 - p) / temperature
        if masked is not None:
            matrices[masked] = np.nan if masked_rows == "nan" else 0.0
    return out


def softmax_jacobian(logits: npt.ArrayLike, **options: Unpack[DerivativeOptions]) -> np.ndarray:
    r"""Jacobian of softmax (or log-softmax) per row, ``J[..., i, j] = d out_i / d z_j``.

    .. math:: J = \frac{\mathrm{diag}(s) - s s^\top}{T}, \qquad
              J_{\log} = \frac{I - \mathbf{1} s^\top}{T}
              \;(\text{row } i = (e_i - s)/T), \qquad s = \mathrm{softmax}(z / T)

    The class axis moves last and becomes two: shape ``(..., C, C)``. Check
    :func:`jacobian_nbytes` first for large inputs, and use
    :func:`softmax_jacobian_into` with a memory map to stream one to disk.
    Options as in :func:`softmax_vjp`; masked rows follow ``masked_rows``
    (``"zero"`` gives a zero matrix: a masked row's output does not depend on
    the logits).

    Examples
    --------
    >>> softmax_jacobian([0.0, 0.0])
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    inputs = _checked(logits, **options)
    out = np.empty(jacobian_shape(inputs.array.shape, inputs.axis), dtype=inputs.output)
    return softmax_jacobian_into(out, inputs.array, **options)
