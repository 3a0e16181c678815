"""Class-index labels: the one validator of the label rules, shared by every command that takes labels.

A label is a class index: an integer (or a float holding a whole number, as
read from text) in ``[0, C)``, or the ignore index, allowed anywhere. The
range is compared in the labels' own dtype, before any cast could wrap a huge
value (``1e30``, ``2**64 - 1``) into range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .blocks import describe_position, value_text

if TYPE_CHECKING:
    import numpy.typing as npt


def check_labels(
    labels: npt.ArrayLike, lead_shape: tuple[int, ...], n_classes: int | None, ignore_index: int = -100
) -> np.ndarray:
    """Return index labels as a flat int64 array, one per row, or raise.

    ``lead_shape`` is the shape of the rows (every axis but the class axis).
    Labels of that shape, or flat with one label per row in C order, are
    accepted. Whole-number floats (as read from CSV) become integers.
    ``ignore_index`` is allowed anywhere and kept as it is; any other label
    must lie in ``[0, n_classes)`` (only ``>= 0`` is checked when
    ``n_classes`` is None). Errors name the label's row in the labels as
    given (flat labels by their flat index) and have ``operand="labels"``.

    Examples
    --------
    >>> check_labels([2.0, -100], (2,), 3)
    array([   2, -100])
    """
    array = np.asarray(labels)
    lead_shape = tuple(lead_shape)
    n_rows = int(np.prod(lead_shape, dtype=np.int64))
    if array.shape != lead_shape and not (array.ndim == 1 and array.size == n_rows):
        raise InputError(
            f"labels have shape {array.shape} but the logits have {n_rows} row(s) of shape {lead_shape}; "
            "give one class index per row", operand="labels",
        )
    flat = array.reshape(-1)
    if flat.dtype.kind == "f":
        whole = np.isfinite(flat) & (flat == np.trunc(flat))
        if not whole.all():
            row = int(np.argmin(whole))
            raise InputError(f"label {value_text(flat[row])} is not a class index (a whole number)",
                             where=_row(array.shape, row), operand="labels")
    elif flat.dtype.kind not in "iu":
        raise InputError(f"class indices must be integers, got dtype {flat.dtype}", operand="labels")
    upper = np.iinfo(np.int64).max if n_classes is None else n_classes
    bad = (flat != ignore_index) & ((flat < 0) | (flat >= upper))
    if bad.any():
        row = int(np.argmax(bad))
        limit = f"for {n_classes} classes" if n_classes is not None else "(class indices are 0 or more)"
        hint = _one_based(flat, ignore_index, n_classes) or _class_numbers(flat, ignore_index, n_classes)
        raise InputError(f"label {value_text(flat[row])} is out of range {limit}{hint}", where=_row(array.shape, row),
                         operand="labels")
    return flat.astype(np.int64)


# Each distinct label this many times or more before labels out of range are taken for class numbers.
CLASS_NUMBER_MIN_COUNT = 3


def _class_numbers(flat: np.ndarray, ignore_index: int, n_classes: int | None) -> str:
    """What to say when the labels hold exactly C distinct values, not 0..C-1, each several times: they name the
    classes (scikit-learn's ``classes_``, such as 0, 2, 5) rather than count the columns. A few labels with one
    out of range are more likely a typo, and get no guess."""
    kept, counts = np.unique(flat[flat != ignore_index], return_counts=True)
    if n_classes is None or len(kept) != n_classes or kept.min() < 0 or counts.min() < CLASS_NUMBER_MIN_COUNT:
        return ""
    shown = ", ".join(value_text(value) for value in kept[:6]) + (", ..." if len(kept) > 6 else "")
    return (f"; the labels hold {n_classes} distinct values ({shown}), one a class: class numbers, as a "
            "classifier's classes_ are, not column positions; give np.searchsorted(classes_, y), or name the logits' "
            "columns by these numbers")


def _one_based(flat: np.ndarray, ignore_index: int, n_classes: int | None) -> str:
    """What to say when the labels span exactly ``1..C``: they count from 1."""
    kept = flat[flat != ignore_index]
    if n_classes is None or not kept.size or kept.min() != 1 or kept.max() != n_classes:
        return ""
    return f"; labels look 1-based (they span 1..{n_classes}): subtract 1 to give class indices 0..{n_classes - 1}"


def _row(shape: tuple[int, ...], row: int) -> str | None:
    """The flat ``row``'s position in labels of ``shape`` (None for a single label)."""
    return describe_position(shape + (1,), len(shape), row) or None
