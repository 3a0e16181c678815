"""Files larger than memory: logits read in row blocks (:class:`~.formats.base.FileRows`) through the same core.

Each block of rows is read into one of two reused buffers while the one
before is computed, and its result is written out (or reduced) while the
next is computed, so the peak stays at a few blocks whatever the file's
size. Errors still name positions in the whole file
(:func:`softmax_cli.core.blocks.block_of`), and results are bit-identical to
one in-memory pass because every row's arithmetic is the same in any block.

A source that cannot be streamed (text, ``.npz``, standard input, Fortran
order, a class axis that is not the last) is one in-memory block. Streamed
files are ``.npy`` and ``.safetensors`` (their registry entries' ``row_blocks``).

A table shows only a file's first and last rows: :func:`for_table` computes
just those (:class:`ShownRows`) and streams the file once to check every row
and to sum the figures the table summarises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from . import core
from .core.blocks import block_of
from .errors import InputError
from .formats import registry
from .formats.base import FileRows
from .inputs import Loaded
from .limits import block_bytes
from .render import OutputFormat, Sink

# Input bytes per block: large enough that Python's per-block work is noise
# and the core splits each block over the cores, small enough that a few
# blocks in flight stay far below the 256 MiB budget. SOFTMAX_BLOCK_BYTES
# overrides it (the tests force tiny blocks with it; limits.block_bytes).
STREAM_BLOCK_BYTES = 16 << 20


def npy_rows(loaded: Loaded, axis: int) -> FileRows | None:
    """The logits' file as streamable rows, or None when it must be read whole (see the module docstring)."""
    if loaded.source is None or not loaded.paths or loaded.derived:
        return None
    fmt = registry.by_suffix(loaded.paths[0])
    if fmt is None or fmt.streams is None:
        return None
    rows = fmt.row_blocks(loaded.paths[0], block_bytes(STREAM_BLOCK_BYTES), loaded.key)
    if rows is None or axis not in (-1, len(rows.shape) - 1):
        return None
    # The loader may have read the bytes as another dtype of the same size (--void-as bfloat16).
    return rows if rows.dtype == loaded.array.dtype else replace(rows, dtype=loaded.array.dtype)


def rows_for_output(logits: Loaded, axis: int, sink: Sink, masked_rows: str,
                    keep: np.ndarray | None = None) -> FileRows | None:
    """The logits' file as streamable rows when the output is a machine format, else None.

    A pipe cannot take back what it was sent, so a streamed result to standard
    output is preceded by a validation pass (of the rows ``keep`` keeps).
    """
    if sink.fmt is OutputFormat.table:
        return None
    rows = npy_rows(logits, axis)
    if rows is not None and sink.path is None:
        check_logits(rows, masked_rows, keep)
    return rows


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
class LazyArray:
    """An output computed block by block as it is written: ``(rows, C)`` blocks of ``shape``."""

    shape: tuple[int, ...]
    dtype: np.dtype
    produce: Callable[[], Iterator[np.ndarray]]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def blocks(self) -> Iterator[np.ndarray]:
        return self.produce()

    def materialise(self) -> np.ndarray:
        return np.concatenate(list(self.blocks())).reshape(self.shape)


def map_rows(source: FileRows, function: Callable[[np.ndarray, slice], np.ndarray], dtype: np.dtype) -> LazyArray:
    """``function(block, rows)`` over every block, lazily; its result has the logits' shape.

    ``rows`` is the block's slice of the flattened rows, for per-row side
    inputs such as labels.
    """

    def produce() -> Iterator[np.ndarray]:
        for start, block in source.blocks():
            with block_of(source.shape, -1, start):
                yield function(block, slice(start, start + block.shape[0]))

    return LazyArray(source.shape, np.dtype(dtype), produce)


def check_logits(source: FileRows, masked_rows: str, keep: np.ndarray | None = None) -> None:
    """Validate every block (NaN, +inf, masked rows) before anything goes to a pipe.

    Standard output cannot be taken back, so a streamed result sent there is
    preceded by this cheap pass; a file output needs none (it is renamed into
    place only when complete). Rows ``keep`` drops are not read.
    """
    for start, block in source.blocks("checking"):
        if keep is not None:
            block = core.blank_rows(block, keep[start : start + block.shape[0]])
        with block_of(source.shape, -1, start):
            core.check_logits(block, masked_rows=masked_rows)


def per_row_labels(labels: np.ndarray, source: FileRows) -> np.ndarray:
    """Labels as one entry (index) or one row (distribution) per flattened logits row."""
    if labels.shape == source.shape:
        return labels.reshape(source.n_rows, source.n_cols)
    if labels.size == source.n_rows:
        return labels.reshape(source.n_rows)
    raise InputError(
        f"labels of shape {labels.shape} do not fit logits of shape {source.shape}: expected "
        f"{source.shape[:-1]} (class indices) or {source.shape} (target distributions)", operand="labels",
    )


def cross_entropy_terms(source: FileRows, labels: np.ndarray, keep: np.ndarray | None = None,
                        **options) -> core.CrossEntropyTerms:
    """:func:`core.cross_entropy_terms` over a streamed file, one block at a time.

    ``keep`` (flat, one flag per row) blanks the rows it drops before they are
    read, as :func:`core.blank_rows` does in memory.
    """
    reduction = options.pop("reduction")
    denominator = core.mean_denominator(labels, source.shape, weights=options.get("weights"),
                                        ignore_index=options.get("ignore_index", -100))
    rows_labels = per_row_labels(labels, source)
    blocks = []
    for start, block in source.blocks():
        if keep is not None:
            block = core.blank_rows(block, keep[start : start + block.shape[0]])
        with block_of(source.shape, -1, start):
            blocks.append((start, core.cross_entropy_terms(block, rows_labels[start : start + block.shape[0]],
                                                           reduction="none", **options)))
    terms = core.merge_cross_entropy_terms(blocks, denominator, reduction)
    per_sample = terms.per_sample.reshape(source.shape[:-1])
    return terms._replace(per_sample=per_sample, loss=per_sample if reduction == "none" else terms.loss)


def topk(source: FileRows, k: int, keep: np.ndarray | None = None, **options) -> tuple[np.ndarray, np.ndarray]:
    """:func:`core.topk` over a streamed file; the ``(..., k)`` results are small and kept.

    ``keep`` (flat, one flag per row) blanks the rows it drops before they are read.
    """
    indices, probs = [], []
    for start, block in source.blocks():
        if keep is not None:
            block = core.blank_rows(block, keep[start : start + block.shape[0]])
        with block_of(source.shape, -1, start):
            block_indices, block_probs = core.topk(block, k, **options)
        indices.append(block_indices)
        probs.append(block_probs)
    lead = source.shape[:-1]
    return (np.concatenate(indices).reshape(lead + (indices[0].shape[-1],)),
            np.concatenate(probs).reshape(lead + (probs[0].shape[-1],)))


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
class ShownRows:
    """The rows of a result that a table shows, standing for the whole result of ``shape``.

    A table draws the first and last rows of a batch (``tablecells.head_and_tail``),
    so for a file larger than memory only those are computed. Like an array, it
    has the whole result's ``shape``, flattens to rows with ``reshape(-1, C)``
    (or ``reshape(-1)`` for one value a row), and gives rows by index; any other
    row was never computed.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    rows: dict[int, np.ndarray]  # flat row index -> that row of the result

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def reshape(self, *shape) -> ShownRows:
        flat = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        row_shape = self.shape[-1:] if len(flat) > 1 else ()
        if len(flat) > 2 or row_shape and flat[-1] != self.shape[-1]:
            raise ValueError(f"ShownRows flattens to rows only, not to {flat}")
        n_rows = int(np.prod(self.shape[: self.ndim - len(row_shape)], dtype=np.int64))
        return ShownRows((n_rows, *row_shape), self.dtype, self.rows)

    def __array__(self, dtype=None, copy=None):
        # np.asarray would need every row; say so rather than let NumPy make an object array of this.
        raise TypeError("ShownRows holds only the rows a table shows; index it by those rows")

    def __getitem__(self, key) -> np.ndarray:
        index, *rest = key if isinstance(key, tuple) else (key,)
        picked = np.stack([self.rows[int(i)] for i in np.atleast_1d(index)])
        return picked[(slice(None), *rest)]


def for_table(logits: Loaded, axis: int, function: Callable[[np.ndarray], np.ndarray], masked_rows: str,
              temperature: float, entropy: bool) -> tuple[ShownRows, dict] | None:
    """A streamable batch's values as a table shows them, and its entropy column and mean; else None.

    ``function(rows)`` computes result rows from logits rows. One pass over the
    file checks every row (as the core would) and, with ``entropy``, sums the
    rows' entropies; then only the shown rows are read again and computed.
    """
    rows = npy_rows(logits, axis)
    if rows is None or len(rows.shape) < 2:
        return None
    from .tablecells import head_and_tail  # a table is being drawn: Rich is loaded for it anyway

    total, counted = 0.0, 0
    for start, block in rows.blocks("summarising" if entropy else "checking"):
        with block_of(rows.shape, -1, start):
            core.check_logits(block, masked_rows=masked_rows)
        if entropy:
            block_total, block_count = known_sum(core.entropy(block, temperature=temperature))
            total, counted = total + block_total, counted + block_count
    shown = head_and_tail(rows.n_rows)
    logits_rows = np.asarray(logits.array.reshape(rows.n_rows, rows.n_cols)[shown])
    values = function(logits_rows)
    result = ShownRows(rows.shape, values.dtype, dict(zip(shown.tolist(), values)))
    if not entropy:
        return result, {}
    per_row = core.entropy(logits_rows, temperature=temperature)
    return result, entropy_display(ShownRows(rows.shape[:-1], per_row.dtype, dict(zip(shown.tolist(), per_row))),
                                   total, counted)


def known_sum(per_row: np.ndarray) -> tuple[float, int]:
    """The sum and count of the values that are not NaN (a masked row, allowed by --masked-rows, has none)."""
    known = per_row[~np.isnan(per_row)]
    return float(known.sum(dtype=np.float64)), int(known.size)


def entropy_display(per_row, total: float, counted: int) -> dict:
    """A table's entropy column and, below it, the mean over the rows that have one."""
    return {"entropy": per_row, "mean entropy": np.float64(total / counted if counted else np.nan)}


def lockstep(first: FileRows, second: FileRows, task: str) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Two files of the same row count read over the same rows: ``(first_row, block, block)``.

    The block height is the one that fits both (their dtypes may differ);
    only the first file draws a progress bar.
    """
    height = min(first.block_rows(), second.block_rows())
    first, second = (replace(rows, block_bytes=height * rows.n_cols * rows.dtype.itemsize) for rows in (first, second))
    for (start, a), (_, b) in zip(first.blocks(task), second.blocks(None)):
        yield start, a, b


def divergence_rows(reference: FileRows, candidate: FileRows, labels: np.ndarray | None,
                    mask: np.ndarray | None = None, **options) -> core.RowDivergence:
    """:func:`core.divergence_rows` over two streamed files of one shape; one float per row per figure is kept.

    ``labels`` are flat, one class index per row, already checked
    (:func:`core.check_labels`); ``mask`` is flat too, one keep flag per row.
    """
    if reference.shape != candidate.shape:
        raise InputError(f"{reference.path} has shape {reference.shape} but {candidate.path} has shape "
                         f"{candidate.shape}; the two must have the same shape")
    names = (str(reference.path), str(candidate.path))
    parts = []
    for start, ref_block, cand_block in lockstep(reference, candidate, "comparing"):
        rows = slice(start, start + ref_block.shape[0])
        block_labels = None if labels is None else labels[rows]
        block_mask = None if mask is None else mask[rows]
        with block_of(reference.shape, -1, start):
            parts.append(core.divergence_rows(ref_block, cand_block, block_labels, names=names, mask=block_mask,
                                              **options))
    return core.RowDivergence.concatenate(parts)
