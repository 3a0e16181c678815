"""Files larger than memory: ``.npy`` logits read in row blocks through the same core.

``np.load(mmap_mode="r")`` keeps every page it touches in the resident set (a
2 GiB file peaks at over 4 GiB by the end). Here each block of rows is read
with ``readinto`` into one reused buffer and its result written out (or
reduced) before the next is read, so the peak stays at a few blocks whatever
the file's size. Errors still name positions in the whole file
(:func:`softmax_cli.core._arrays.block_of`), and results are bit-identical to
one in-memory pass because every row's arithmetic is the same in any block.

A source that cannot be streamed (text, ``.npz``, standard input, Fortran
order, a class axis that is not the last) is one in-memory block.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import core
from .core._arrays import block_of
from .errors import InputError
from .inputs import Loaded
from .progress import Progress
from .render import OutputFormat, Sink

# Input bytes per block: large enough that Python's per-block work is noise
# and the core splits each block over the cores, small enough that a few
# blocks in flight stay far below the 256 MiB budget. SOFTMAX_BLOCK_BYTES
# overrides it (the tests force tiny blocks with it).
STREAM_BLOCK_BYTES = int(os.environ.get("SOFTMAX_BLOCK_BYTES", 16 << 20))


@dataclass
class NpyRows:
    """A C-ordered ``.npy`` file seen as ``(rows, classes)``, read a block at a time."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int

    @property
    def n_cols(self) -> int:
        return self.shape[-1]

    @property
    def n_rows(self) -> int:
        return int(np.prod(self.shape[:-1], dtype=np.int64))

    def block_rows(self) -> int:
        return max(1, STREAM_BLOCK_BYTES // max(1, self.n_cols * self.dtype.itemsize))

    def blocks(self, task: str = "") -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, block)`` pairs; a block is only valid until the next is read.

        A progress bar (``task`` and the file name) appears on a terminal when
        the pass takes over a second.
        """
        height = min(self.block_rows(), self.n_rows)
        buffer = np.empty(height * self.n_cols, dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as file, \
                Progress(self.n_rows, "rows", f"{task} {self.path.name}".strip()) as progress:
            file.seek(self.offset)
            for start in range(0, self.n_rows, height):
                rows = min(height, self.n_rows - start)
                view = buffer[: rows * self.n_cols]
                _read_exactly(file, memoryview(view).cast("B"), self.path)
                yield start, view.reshape(rows, self.n_cols)
                progress.advance(rows)


def _read_exactly(file, target: memoryview, path: Path) -> None:
    filled = 0
    while filled < len(target):
        count = file.readinto(target[filled:])
        if not count:
            raise InputError("the .npy file ends before its data does (truncated?)", where=str(path))
        filled += count


def _npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    with open(path, "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                return None  # a newer header: read it whole with np.load
        except ValueError as error:
            raise InputError(f"cannot read this .npy file: {error}", where=str(path)) from None
        return shape, fortran, dtype, file.tell()


def npy_rows(loaded: Loaded, axis: int) -> NpyRows | None:
    """The logits' ``.npy`` file as streamable rows, or None when it must be read whole."""
    if loaded.source is None or not loaded.paths or loaded.paths[0].suffix.lower() != ".npy":
        return None
    header = _npy_header(loaded.paths[0])
    if header is None:
        return None
    shape, fortran, dtype, offset = header
    if fortran or len(shape) == 0 or axis not in (-1, len(shape) - 1) or dtype.hasobject or dtype.names:
        return None
    if 0 in shape:
        return None  # nothing to stream
    return NpyRows(loaded.paths[0], tuple(shape), dtype, offset)


def rows_for_output(logits: Loaded, axis: int, sink: Sink, masked_rows: str) -> NpyRows | None:
    """The logits' ``.npy`` as streamable rows when the output is a machine format, else None.

    A pipe cannot take back what it was sent, so a streamed result to standard
    output is preceded by a validation pass.
    """
    if sink.fmt is OutputFormat.table:
        return None
    rows = npy_rows(logits, axis)
    if rows is not None and sink.path is None:
        check_logits(rows, masked_rows)
    return rows


@dataclass
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


def map_rows(source: NpyRows, function: Callable[[np.ndarray, slice], np.ndarray], dtype: np.dtype) -> LazyArray:
    """``function(block, rows)`` over every block, lazily; its result has the logits' shape.

    ``rows`` is the block's slice of the flattened rows, for per-row side
    inputs such as labels.
    """

    def produce() -> Iterator[np.ndarray]:
        for start, block in source.blocks():
            with block_of(source.shape, -1, start):
                yield function(block, slice(start, start + block.shape[0]))

    return LazyArray(source.shape, np.dtype(dtype), produce)


def check_logits(source: NpyRows, masked_rows: str) -> None:
    """Validate every block (NaN, +inf, masked rows) before anything goes to a pipe.

    Standard output cannot be taken back, so a streamed result sent there is
    preceded by this cheap pass; a file output needs none (it is renamed into
    place only when complete).
    """
    for start, block in source.blocks("checking"):
        with block_of(source.shape, -1, start):
            core.check_logits(block, masked_rows=masked_rows)


def per_row_labels(labels: np.ndarray, source: NpyRows) -> np.ndarray:
    """Labels as one entry (index) or one row (distribution) per flattened logits row."""
    if labels.shape == source.shape:
        return labels.reshape(source.n_rows, source.n_cols)
    if labels.size == source.n_rows:
        return labels.reshape(source.n_rows)
    raise InputError(
        f"labels of shape {labels.shape} do not fit logits of shape {source.shape}: expected "
        f"{source.shape[:-1]} (class indices) or {source.shape} (target distributions)"
    )


def cross_entropy_terms(source: NpyRows, labels: np.ndarray, **options) -> core.CrossEntropyTerms:
    """:func:`core.cross_entropy_terms` over a streamed file, one block at a time."""
    reduction = options.pop("reduction")
    denominator = core.mean_denominator(labels, source.shape, weights=options.get("weights"),
                                        ignore_index=options.get("ignore_index", -100))
    rows_labels = per_row_labels(labels, source)
    parts, off_rows, correct, counted, kind = [], [], 0, 0, "index"
    for start, block in source.blocks():
        with block_of(source.shape, -1, start):
            terms = core.cross_entropy_terms(block, rows_labels[start : start + block.shape[0]],
                                             reduction="none", **options)
        parts.append(terms.per_sample)
        off_rows.append(start + terms.unnormalised_rows)
        correct, counted, kind = correct + terms.correct, counted + terms.counted, terms.target_kind
    per_sample = np.concatenate(parts).reshape(source.shape[:-1])
    return core.CrossEntropyTerms(
        loss=core.reduce_losses(per_sample, denominator, reduction),
        per_sample=per_sample,
        denominator=denominator,
        accuracy=correct / counted if counted else float("nan"),
        correct=correct,
        counted=counted,
        unnormalised_rows=np.concatenate(off_rows),
        target_kind=kind,
    )


def topk(source: NpyRows, k: int, **options) -> tuple[np.ndarray, np.ndarray]:
    """:func:`core.topk` over a streamed file; the ``(..., k)`` results are small and kept."""
    indices, probs = [], []
    for start, block in source.blocks():
        with block_of(source.shape, -1, start):
            block_indices, block_probs = core.topk(block, k, **options)
        indices.append(block_indices)
        probs.append(block_probs)
    lead = source.shape[:-1]
    return (np.concatenate(indices).reshape(lead + (indices[0].shape[-1],)),
            np.concatenate(probs).reshape(lead + (probs[0].shape[-1],)))
