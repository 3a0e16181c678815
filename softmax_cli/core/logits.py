"""The logit rules, checked in one place: finite values and ``-inf`` only, the masked-row policy, the temperature.

A logit may be any finite number or ``-inf`` (a masked class); NaN and
``+inf`` are refused, naming the first position. A row whose logits are all
``-inf`` has no distribution: it is an error, NaN or zeros as the caller's
``masked_rows`` policy says. The row maximum that every softmax needs anyway
finds all of these, so the checks cost nothing extra inside the kernels of
:mod:`.softmax`, and one max per row when run on their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..choices import MASKED_ROW_POLICIES, MaskedRows
from ..errors import InputError
from .blocks import as_rows, check_axis, describe_position, float_dtypes, row_blocks

if TYPE_CHECKING:
    import numpy.typing as npt



class MaskedRowError(InputError):
    """A row has every logit ``-inf``, so it has no distribution."""


def check_temperature(temperature: float, compute: npt.DTypeLike | None = None) -> float:
    """Return ``temperature`` as a float if it is finite and positive, else raise.

    With ``compute``, the dtype arrays are divided by it in: a temperature that
    is 0 there (``-t 1e-320`` on float32 logits) comes back as a float64 scalar,
    so the division is made in float64 (and its quotient rounds to the limit,
    a one-hot row) instead of by a Python float NumPy rounds to 0 (NaN rows).
    """
    value = float(temperature)
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"temperature must be finite and > 0, got {temperature!r}")
    with np.errstate(over="ignore"):  # -t 1e300 is inf in float32: not 0, which is all this asks
        vanishes = compute is not None and np.dtype(compute).type(value) == 0
    if vanishes:
        return np.float64(value)
    return value


# What a user can do about a fully masked row, where the --masked-rows policy applies.
MASKED_ROWS_REMEDY = "choose --masked-rows zero or --masked-rows nan to allow such rows"


def masked_row_error(where: str | None, remedy: str = MASKED_ROWS_REMEDY) -> MaskedRowError:
    """The error for a row whose logits are all ``-inf``, at ``where``, saying what to do about it."""
    return MaskedRowError(f"every logit in the row is -inf, so it has no distribution; {remedy}",
                          where=where or "the only row")


def _checked_row_max(block, row_max, shape, axis, first_row, masked_rows, row_ids=None, remedy=MASKED_ROWS_REMEDY):
    """Validate a block by its row maxima; return the mask of all ``-inf`` rows, or None.

    The max finds NaN and ``+inf`` for free. A masked row's max is set to 0 in
    place: shifting by ``-inf`` would give ``-inf - -inf = NaN``. Block row
    ``r`` is row ``first_row + r`` of the whole array, or ``row_ids[r]`` when
    the block holds a subset of its rows.
    """
    if np.isfinite(row_max).all():
        return None

    def where(row: int, column: int | None = None) -> str:
        return describe_position(shape, axis, first_row + row if row_ids is None else int(row_ids[row]), column)

    bad_value = np.isnan(row_max) | (row_max == np.inf)
    if bad_value.any():
        row = int(np.argmax(bad_value))
        values = block[row]
        column = int(np.argmax(np.isnan(values) | (values == np.inf)))
        name = "NaN" if np.isnan(values[column]) else "+inf"
        raise InputError(f"{name} in logits; only finite values and -inf (a masked logit) are allowed",
                         where=where(row, column))
    masked = row_max == -np.inf
    if masked_rows == "error":
        raise masked_row_error(where(int(np.argmax(masked))), remedy)
    row_max[masked] = 0
    return masked


def _check_policy(masked_rows: str) -> None:
    if masked_rows not in MASKED_ROW_POLICIES:
        raise InputError(f"masked_rows must be one of {', '.join(MASKED_ROW_POLICIES)}, got {masked_rows!r}")


def check_logits(x: npt.ArrayLike, axis: int = -1, masked_rows: MaskedRows = "error") -> None:
    """Raise on what :func:`softmax` would refuse (NaN, ``+inf``, masked rows under "error").

    One max per row and nothing else: cheap enough to run over a whole file
    before a streamed result goes anywhere it cannot be taken back from.
    """
    array, _, _ = float_dtypes(x)
    _check_policy(masked_rows)
    axis = check_axis(array.ndim, axis)
    check_logit_rows(as_rows(array, axis), array.shape, axis, masked_rows)


def check_logit_rows(
    rows: np.ndarray, shape: tuple[int, ...], axis: int, masked_rows: MaskedRows = "error",
    row_ids: np.ndarray | None = None, remedy: str = MASKED_ROWS_REMEDY,
) -> None:
    """:func:`check_logits` for 2-D ``rows`` of logits of ``shape``, possibly a subset of its rows.

    ``row_ids[r]`` is the row (of :func:`~softmax_cli.core.blocks.as_rows`)
    that ``rows[r]`` was taken from, so errors name the user's position;
    without it the rows are all of them, in order. ``remedy`` says what to do
    about a fully masked row.
    """
    if rows.shape[1] == 0:
        return
    for block in row_blocks(*rows.shape):
        source = rows[block]
        ids = None if row_ids is None else row_ids[block]
        _checked_row_max(source, source.max(axis=1), shape, axis, block.start, masked_rows, ids, remedy)
