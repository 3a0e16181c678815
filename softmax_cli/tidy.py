"""The tidy table of a :class:`Result`: what CSV/TSV write (and Parquet, from the same columns).

A result with one name is its primary array as today's table: leading axes
flattened into rows, the last axis across, under the class names when the
result has a ``header`` (no header line otherwise).

A result with several names is one table with a header (issue 11, decision 8):

- each 1-D array is a column under its own name (``temperatures`` is the
  column ``temperature``);
- each array of two or more dimensions is rows (leading axes flattened) by
  ``NAME_J`` columns, J a class name for a per-class array when the class
  names are known, else the index along the last axis;
- topk's ``indices``/``probs``/``names`` are rank-major:
  ``rank1_index,rank1_prob[,rank1_name],rank2_index,...``;
- 0-d arrays cannot be columns: they are :attr:`TidyTable.scalars`, in the
  result's (the contract's) order, written before the table as ``# name: value``
  (a summary comes first);
- an array whose row count differs from the table's is
  :attr:`TidyTable.left_out` (the writer names it on standard error).

``Result.rows`` (row names, e.g. a pandas index) is the first column, under
``Result.rows_name`` (empty for pandas' unnamed index), when there is one
name per table row.

A reduction written without its per-row arrays (``Result.per_row_names``
all absent: CSV/TSV without ``--per-row``) and without a table asked for
(``Result.table_names``: ``--per-sequence``) is its summary on one line: each
0-d figure a column under its name, each vector (compare's quantiles) columns
``NAME_J``.

Columns are read in chunks of rows (:func:`row_chunks`), so a streamed array
(one with ``blocks()``) is never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .result import Result

# Names whose last axis is the classes: their columns take the class names.
PER_CLASS = frozenset({"probs", "log_probs", "grad"})
# Column names that differ from the result's name.
COLUMN_NAMES = {"temperatures": "temperature"}
TOPK_SUFFIXES = {"indices": "index", "probs": "prob", "names": "name"}
# Values converted to text per chunk: enough to amortise NumPy's per-call cost,
# few enough that a chunk's strings (NumPy's fixed-width UCS-4, then Python
# strings) stay a few MiB whatever the row width.
CHUNK_VALUES = 1 << 16


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
class Group:
    """Adjacent columns read together: ``values`` seen as ``(rows, len(names))``."""

    source: str  # the result's name they come from
    names: list[str]
    values: object  # an array, or a streamed one with ``blocks()`` yielding (rows, width) blocks
    rows: int

    @property
    def width(self) -> int:
        return len(self.names)


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
class TidyTable:
    """A result as groups of columns (row names first, when written), the scalars after it, and what fits neither."""

    groups: list[Group]
    header: list[str] | None  # every column's name in order, or None (a one-name result without class names)
    scalars: dict[str, np.ndarray] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.groups[0].rows if self.groups else 0


def _rows_of(array) -> int:
    shape = tuple(array.shape)
    return shape[0] if len(shape) == 1 else int(np.prod(shape[:-1], dtype=np.int64))


def _one_name(result: Result) -> TidyTable:
    array = result.primary
    shape = tuple(array.shape)
    if len(shape) == 0:
        rows, width = 1, 1
    elif len(shape) == 1:
        rows, width = (shape[0], 1) if result.column else (1, shape[0])
    else:
        rows, width = _rows_of(array), shape[-1]
    names = list(result.header) if result.header is not None and len(result.header) == width else None
    group = Group(result.primary_name, names or [str(j) for j in range(width)], array, rows)
    return TidyTable([group], names, {})


def _topk_groups(arrays: dict[str, np.ndarray]) -> list[Group]:
    present = [name for name in TOPK_SUFFIXES if name in arrays]
    k = arrays["indices"].shape[-1]
    flat = {name: np.asarray(arrays[name]).reshape(-1, k) for name in present}
    return [Group(name, [f"rank{r + 1}_{TOPK_SUFFIXES[name]}"], flat[name][:, r], flat[name].shape[0])
            for r in range(k) for name in present]


def _several_names(result: Result) -> TidyTable:
    groups: list[Group] = []
    scalars: dict[str, np.ndarray] = {}
    topk = result.layout.ranked
    for name, array in result.arrays.items():
        if len(array.shape) == 0:
            scalars[name] = np.asarray(array)
        elif topk and name in TOPK_SUFFIXES:
            if name == "indices":
                groups.extend(_topk_groups(result.arrays))
        elif len(array.shape) == 1:
            groups.append(Group(name, [COLUMN_NAMES.get(name, name)], array, array.shape[0]))
        else:
            width = array.shape[-1]
            per_class = name in PER_CLASS and result.classes is not None and len(result.classes) == width
            labels = result.classes if per_class else range(width)
            groups.append(Group(name, [f"{name}_{j}" for j in labels], array, _rows_of(array)))
    rows = groups[0].rows if groups else 0
    left_out = list(dict.fromkeys(g.source for g in groups if g.rows != rows))
    groups = [g for g in groups if g.rows == rows]
    return TidyTable(groups, [n for g in groups for n in g.names] or None, scalars, left_out)


def _summary_line(result: Result) -> TidyTable:
    """A reduction's summary as one line: a 0-d figure is a column NAME, a vector (quantiles) columns NAME_J."""
    groups = []
    for name, array in result.arrays.items():
        values = np.asarray(array).reshape(1, -1)
        names = [name] if np.ndim(array) == 0 else [f"{name}_{j}" for j in range(values.shape[1])]
        groups.append(Group(name, names, values, 1))
    return TidyTable(groups, [n for g in groups for n in g.names])


def tidy(result: Result) -> TidyTable:
    """The table CSV/TSV/Parquet write for ``result`` (see the module docstring)."""
    if result.per_row_names and not any(name in result.arrays for name in result.per_row_names + result.table_names):
        return _summary_line(result)
    table = _one_name(result) if len(result.arrays) == 1 else _several_names(result)
    if result.rows is not None and table.groups and len(result.rows) == table.rows:
        names = Group("rows", [result.rows_name], np.asarray(result.rows, dtype=str), table.rows)
        table.groups.insert(0, names)
        table.header = [result.rows_name, *(table.header or table.groups[1].names)]
    return table


# ---------------------------------------------------------------- reading the columns in chunks

def blocks_of(values, rows: int, width: int) -> Iterator[np.ndarray]:
    """An array, or a streamed one (its own blocks), as 2-D ``(rows, width)`` blocks."""
    if hasattr(values, "blocks"):
        for block in values.blocks():
            yield np.asarray(block).reshape(-1, width)
        return
    yield np.asarray(values).reshape(rows, width)


def rechunked(blocks: Iterator[np.ndarray], height: int) -> Iterator[np.ndarray]:
    """Blocks cut and joined into pieces of exactly ``height`` rows (the last may be shorter)."""
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        start = 0
        while start < block.shape[0]:
            piece = block[start : start + height - held]
            start += piece.shape[0]
            pending.append(piece)
            held += piece.shape[0]
            if held == height:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, held = [], 0
        if pending:
            pending[-1] = pending[-1].copy()  # a streamed source reuses its buffer for the next block
    if pending:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)


def chunk_rows(width: int) -> int:
    """Rows per chunk for a table ``width`` values wide (at least one)."""
    return max(1, CHUNK_VALUES // max(1, width))


def row_chunks(table: TidyTable) -> Iterator[list[np.ndarray]]:
    """The table in chunks of rows: per chunk, one ``(rows, width)`` array per group, all of the same height."""
    height = chunk_rows(sum(g.width for g in table.groups))
    yield from zip(*(rechunked(blocks_of(g.values, g.rows, g.width), height) for g in table.groups))
