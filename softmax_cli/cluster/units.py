"""Work units of a distributed run: row ranges of ``.npy`` files or Zarr arrays, read by the workers.

A unit names a path and a row range, never the data: each worker reads its
own rows (``.npy`` through the header offset and ``readinto``, never a
pickle; Zarr chunk by chunk), so the client sends a few bytes per task and
the files must sit on storage every worker reaches. Array results are written
by the workers into one pre-allocated ``.npy`` temporary file per output, at
their rows' offsets, and put into place by the client (:class:`NpyOutput`).

:class:`ExactSum` makes reductions independent of how the rows were split.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, tell
from ..formats import registry
from ..formats.base import RowsOfShape
from ..inputs import in_natural_order
from ..limits import declared_bytes
from ..reporter import check_signals


@dataclass(frozen=True)
class Source(RowsOfShape):
    """One input seen as ``(rows, classes)``: a C-ordered ``.npy`` file or a Zarr array."""

    path: str
    kind: str  # "npy" or "zarr"
    shape: tuple[int, ...]
    dtype: str
    offset: int = 0  # .npy: where the data starts
    chunk_rows: int = 1  # rows per Zarr chunk along the first axis (units align to it)


@dataclass(frozen=True)
class Unit:
    """Rows ``start:stop`` of ``source`` (flattened rows), which are rows ``first_row...`` of the whole run."""

    source: Source
    source_index: int
    start: int
    stop: int
    first_row: int

    @property
    def n_rows(self) -> int:
        return self.stop - self.start

    def rows(self) -> str:
        return f"rows {self.start}..{self.stop - 1}"


def _npy_source(path: Path) -> Source:
    """The ``.npy`` file's header, checked by the same :func:`~softmax_cli.formats.npy.header_of` as in process.

    So a header declaring more data than the file holds is refused here,
    before any unit is planned.
    """
    from ..formats.npy import header_of

    try:
        with open(path, "rb") as file:
            header = header_of(file, os.fstat(file.fileno()).st_size)
    except OSError as error:
        raise InputError(f"cannot read this .npy file: {error.strerror or error}", where=str(path)) from None
    except InputError as error:
        raise error.located(str(path)) from None
    dtype = header.dtype
    if dtype.names or dtype.kind not in "fiub":
        raise InputError(f"cannot use values of dtype {dtype} (pickled or structured data is never loaded)",
                         where=str(path))
    if header.fortran or len(header.shape) == 0:
        raise InputError("a distributed run needs a C-ordered array of rows (at least 1-D)", where=str(path))
    return Source(str(path), "npy", tuple(int(n) for n in header.shape), dtype.str, header.offset)


def _zarr_source(path: Path) -> Source:
    try:
        import zarr  # noqa: F401 -- here only to say which extra is missing
    except ImportError:
        raise InputError("reading Zarr arrays needs the zarr extra: pip install 'softmax-toolkit[zarr]'",
                         where=str(path)) from None
    if registry.zarr_group_arrays(path) is not None:
        raise InputError(registry.zarr_refusal(path, "logits"), where=str(path))
    try:
        array = open_zarr(path)
    except Exception as error:  # zarr raises many types for "not an array here"; name the path and stop
        raise InputError(f"cannot open this Zarr array: {error}", where=str(path)) from None
    if array.ndim == 0 or array.dtype.kind not in "fiub":
        raise InputError(f"cannot use a Zarr array of shape {array.shape} and dtype {array.dtype}", where=str(path))
    try:  # the declared shape, through the check .npy headers pass, before any unit is planned
        declared_bytes(tuple(array.shape), np.dtype(array.dtype), "the Zarr array's metadata")
    except InputError as error:
        raise error.located(str(path)) from None
    if any(not isinstance(n, int) or n < 1 for n in array.chunks):
        raise InputError(f"the Zarr array declares chunks of shape {array.chunks}; every chunk side must be >= 1",
                         where=str(path))
    _tell_missing_chunks(array, path)
    inner = int(np.prod(array.shape[1:-1], dtype=np.int64)) if array.ndim > 1 else 1
    chunk_rows = int(array.chunks[0]) * inner if array.ndim > 1 else 1  # a 1-D array is one row of classes
    return Source(str(path), "zarr", tuple(int(n) for n in array.shape), np.dtype(array.dtype).str,
                  chunk_rows=max(1, chunk_rows))


def _tell_missing_chunks(array, path: Path) -> None:
    """Warn of chunks the array's store does not hold: Zarr reads them as the fill value, which is right for a chunk
    it left out because it held only that value, and wrong for a copy cut short; only the user can tell which."""
    try:
        missing = int(array.nchunks) - int(array.nchunks_initialized)
    except Exception:  # a store that cannot list its keys (remote, read-only views): nothing to count
        return
    if missing > 0:
        tell(f"warning: {missing} of {array.nchunks} chunks of {path} are not stored and are read as its fill value "
             f"{array.fill_value}; Zarr leaves out chunks that hold only that value, but a copy cut short loses "
             "them too: check the array is whole")


def open_zarr(path: str | os.PathLike):
    """The Zarr array at ``path``, read-only, without the warnings its metadata may raise.

    A fill value past the dtype's range (1e300 in float32) is cast to inf by
    zarr with NumPy's overflow warning, printed by every worker; the value it
    gives is what the array holds, and the core judges it where it is read.
    """
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return zarr.open_array(str(path), mode="r")


def open_source(path: str | os.PathLike) -> Source:
    """The source at ``path``: a ``.npy`` file, or a ``.zarr`` directory (or any directory holding ``zarr.json``).

    An empty array is refused with the in-process error line, from its
    declared shape: before any unit is planned or any cluster starts.
    """
    from ..inputs import refuse_empty

    path = Path(path)
    if path.suffix.lower() == ".zarr" or registry.is_zarr_array(path):
        source = _zarr_source(path)
    elif path.suffix.lower() != ".npy":
        raise InputError("a distributed run reads .npy files and Zarr arrays", where=str(path))
    else:
        source = _npy_source(path)
    try:
        refuse_empty(source.shape)
    except InputError as error:
        raise error.located(str(path)) from None
    return source


def expand_sources(inputs: list[str | os.PathLike] | str | os.PathLike) -> list[Source]:
    """Sources of the inputs, in order; a plain directory stands for its ``.npy`` files and Zarr arrays, in
    natural order (``part-2`` before ``part-10``)."""
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths: list[Path] = []
    for entry in map(Path, inputs):
        if entry.is_dir() and not registry.is_zarr_array(entry):
            members = in_natural_order(p for p in entry.iterdir() if p.suffix.lower() in (".npy", ".zarr"))
            if not members:
                raise InputError("the directory holds no .npy file or Zarr array", where=str(entry))
            paths.extend(members)
        else:
            paths.append(entry)
    sources = [open_source(p) for p in paths]
    columns = {s.n_cols for s in sources}
    if len(columns) > 1:
        raise InputError(f"the shards disagree on the number of classes: {sorted(columns)}",
                         where=", ".join(s.path for s in sources if s.n_cols != sources[0].n_cols))
    return sources


def plan_units(sources: list[Source], rows_per_unit: int) -> list[Unit]:
    """Row ranges of about ``rows_per_unit`` rows covering every source in order (Zarr ranges on chunk edges)."""
    units, first_row = [], 0
    for index, source in enumerate(sources):
        step = max(1, rows_per_unit)
        if source.kind == "zarr":
            step = max(1, round(step / source.chunk_rows)) * source.chunk_rows
        for start in range(0, source.n_rows, step):
            stop = min(source.n_rows, start + step)
            units.append(Unit(source, index, start, stop, first_row + start))
        first_row += source.n_rows
    return units


def rows_for_bytes(source: Source, unit_bytes: int) -> int:
    """How many of the source's rows make about ``unit_bytes`` of input."""
    return max(1, unit_bytes // max(1, source.n_cols * np.dtype(source.dtype).itemsize))


def read_rows(unit: Unit) -> np.ndarray:
    """The unit's rows as a ``(rows, classes)`` array, read by the calling worker."""
    source = unit.source
    if source.kind == "zarr":
        return _zarr_rows(unit)
    dtype = np.dtype(source.dtype)
    row_bytes = source.n_cols * dtype.itemsize
    block = np.empty((unit.n_rows, source.n_cols), dtype=dtype)
    target = memoryview(block.reshape(-1)).cast("B")
    with open(source.path, "rb", buffering=0) as file:
        file.seek(source.offset + unit.start * row_bytes)
        filled = 0
        while filled < len(target):
            count = file.readinto(target[filled:])
            if not count:
                raise InputError("the .npy file ends before its data does (truncated?)")  # located by the caller
            filled += count
    return block


def _zarr_rows(unit: Unit) -> np.ndarray:
    """The unit's rows of a Zarr array; a chunk that does not decode is an input error naming the rows."""
    source = unit.source
    # Rows per index of the first axis; a 1-D array is one row, its first axis the classes.
    inner = int(np.prod(source.shape[1:-1], dtype=np.int64))
    # compare's units may cut an (..., seq, vocab) array inside a sequence: read the sequences they touch.
    first, last = unit.start // inner, -(-unit.stop // inner)
    try:
        array = open_zarr(source.path)
        block = np.asarray(array[first:last]).reshape(-1, source.n_cols) if array.ndim > 1 \
            else np.asarray(array[:]).reshape(1, source.n_cols)
        return block[unit.start - first * inner : unit.stop - first * inner]
    except OSError:
        raise  # a lost file or a storage fault: retried elsewhere, as for .npy
    except Exception as error:  # noqa: BLE001 -- codecs raise their own types for a damaged chunk
        _drop_pending_reads_noise()
        raise InputError(f"cannot read this Zarr array's rows {unit.start}..{unit.stop - 1}: "
                         f"{type(error).__name__}: {str(error)[:200]}") from None


def _drop_pending_reads_noise() -> None:
    """Keep this process's end quiet about the chunk reads a failed Zarr read left pending.

    zarr reads chunks as tasks on its own event loop; the first to fail ends the
    read and the others stay pending. When the process ends (the client, or a
    worker when the cluster closes), asyncio logs each as "destroyed but it is
    pending", their coroutines' errors reach the unraisable hook, and those
    never started warn that they were never awaited: dozens of lines around
    the one ``error:`` line the failure already gives. ``SOFTMAX_DEBUG=1``
    keeps them.
    """
    import inspect
    import logging
    import sys
    import warnings

    if os.environ.get("SOFTMAX_DEBUG") == "1":
        return
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    previous = sys.unraisablehook
    if getattr(previous, "drops_coroutines", False):  # a worker whose earlier unit failed the same way
        return

    def unless_a_coroutine(unraisable) -> None:
        if not inspect.iscoroutine(unraisable.object):
            previous(unraisable)

    unless_a_coroutine.drops_coroutines = True
    sys.unraisablehook = unless_a_coroutine


@dataclass(frozen=True)
class OutputSlot:
    """Where a worker writes rows of one output: the temporary file, its data offset and bytes per row."""

    temporary: str
    offset: int
    row_bytes: int
    dtype: str

    def write(self, first_row: int, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=np.dtype(self.dtype))
        with open(self.temporary, "r+b", buffering=0) as file:
            file.seek(self.offset + first_row * self.row_bytes)
            view = memoryview(data.reshape(-1)).cast("B")
            while view:
                view = view[file.write(view):]


class NpyOutput:
    """A ``.npy`` output made by the workers: header written and space reserved here, renamed into place at the end."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = Path(path)
        self.temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        file = None
        try:
            with open(self.temporary, "xb") as file:
                np.lib.format.write_array_header_2_0(file, header) if size >= 2**32 \
                    else np.lib.format.write_array_header_1_0(file, header)
                offset = file.tell()
                if size:
                    if hasattr(os, "posix_fallocate"):
                        os.posix_fallocate(file.fileno(), offset, size)
                    else:
                        file.truncate(offset + size)
        except OSError as error:
            if file is not None:  # none was made on a read-only file system, where removing it fails too
                self.discard()
            raise InputError(f"cannot reserve {size} bytes for the output: {error.strerror}",
                             where=str(self.path)) from None
        self.slot = OutputSlot(str(self.temporary), offset, int(shape[-1]) * dtype.itemsize if shape else 0,
                               dtype.str)

    def commit(self) -> None:
        check_signals()
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)


class ExactSum:
    """The exact sum of float64 values, mergeable in any order: an integer count of ``2**-1127``.

    Every finite float64 is an integer multiple of ``2**-1074``; scaling by
    ``2**1127`` leaves room for the 53 bits of the mantissa, so the sum is a
    Python integer and :meth:`value` rounds it once (int division is correctly
    rounded). The total is the same for any split of the values into parts.
    """

    _SCALE = 1127

    def __init__(self, fixed: int = 0, nan: bool = False, pos_inf: bool = False, neg_inf: bool = False) -> None:
        self.fixed, self.nan, self.pos_inf, self.neg_inf = fixed, nan, pos_inf, neg_inf

    @classmethod
    def of(cls, values) -> "ExactSum":
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        finite = np.isfinite(v)
        total = cls(0, bool(np.isnan(v).any()), bool((v == np.inf).any()), bool((v == -np.inf).any()))
        v = v[finite & (v != 0)]
        if v.size == 0:
            return total
        fraction, exponent = np.frexp(v)
        mantissa = (fraction * 2.0**53).astype(np.int64)
        shift = exponent.astype(np.int64) - 53 + cls._SCALE
        order = np.argsort(shift, kind="stable")
        mantissa, shift = mantissa[order], shift[order]
        starts = np.flatnonzero(np.r_[True, shift[1:] != shift[:-1]])
        # Split each mantissa into 32-bit halves so int64 sums of up to 2**31 values cannot overflow.
        high = np.add.reduceat(mantissa >> 32, starts)
        low = np.add.reduceat(mantissa & 0xFFFFFFFF, starts)
        total.fixed = sum(((int(h) << 32) + int(lo)) << int(s) for h, lo, s in zip(high, low, shift[starts]))
        return total

    def __add__(self, other: "ExactSum") -> "ExactSum":
        return ExactSum(self.fixed + other.fixed, self.nan or other.nan, self.pos_inf or other.pos_inf,
                        self.neg_inf or other.neg_inf)

    def value(self) -> float:
        if self.nan or (self.pos_inf and self.neg_inf):
            return float("nan")
        if self.pos_inf or self.neg_inf:
            return float("inf") if self.pos_inf else float("-inf")
        try:
            return self.fixed / (1 << self._SCALE)
        except OverflowError:
            return float("inf") if self.fixed > 0 else float("-inf")
