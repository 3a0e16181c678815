"""What a format's functions are given and give (:class:`Source`, :class:`Table`, :class:`WriteOptions`), and rows read from a file.

A format module implements the functions that :mod:`.registry` names for
its formats (:data:`Read`, :data:`Write`); the registry is the only place
that maps extensions, magic bytes and names to formats.
:class:`FileRows` streams C-ordered data stored raw at an offset, which is
what both ``.npy`` and ``.safetensors`` hold; :func:`bfloat16` is the one
place the optional ``ml_dtypes`` is imported.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from ..errors import InputError, tell
from ..progress import Progress
from ..result import Result

HEAD_BYTES = 64


@dataclass
class Source:
    """One input: a file, or the bytes of standard input; read and decoded at most once.

    ``header`` and ``index_col`` are how the user asked a table to be read
    (``--header auto|yes|no``, ``--index-col/--no-index-col``; None: decide);
    formats without a header or an index ignore them. ``leave_out`` names a
    table's column that is not logits: the labels ``--labels-key`` reads from
    the same file. A reader of named columns leaves it out.
    """

    path: Path | None
    given: bytes | None = None  # standard input's bytes, when there is no path
    header: str = "auto"
    index_col: bool | None = None
    leave_out: str | None = None

    @cached_property
    def data(self) -> bytes:
        return self.given if self.path is None else self.path.read_bytes()

    @cached_property
    def head(self) -> bytes:
        """The first bytes, where magic numbers are: a file is not read whole to sniff it."""
        if self.path is None or "data" in self.__dict__:
            return self.data[:HEAD_BYTES]
        with open(self.path, "rb") as file:
            return file.read(HEAD_BYTES)

    @cached_property
    def text(self) -> str:
        try:
            return self.data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InputError(f"not UTF-8 text, .npy or .npz (byte {error.start})") from None

    def file(self) -> Path | io.BytesIO:
        """The file's path (so NumPy can memory-map it), or standard input's bytes as a stream."""
        return self.path if self.path is not None else io.BytesIO(self.data)


class RowBlocks(Protocol):
    """A file seen as ``(rows, classes)`` and read a block of rows at a time (:class:`FileRows`)."""

    path: Path
    shape: tuple[int, ...]  # the whole array's; the class axis is the last
    dtype: np.dtype

    @property
    def n_rows(self) -> int: ...

    @property
    def n_cols(self) -> int: ...

    def blocks(self, task: str = "") -> Iterator[tuple[int, np.ndarray]]: ...


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
class Table:
    """What a table's reader found: the numbers, the column names, the row names (an index column).

    ``index_name`` is the index column's header field ("" for pandas' unnamed
    index); ``notes`` are lines for the user about how the file was read;
    ``locate(index)`` names an array index as a position in the file (``(line,
    column)``), when the format knows it; ``numbered_first_row`` says the
    first row was ``0..C-1`` and read as data (a header by another reading);
    ``integer_columns`` counts the leading named columns read as classes
    whose text is integers only (as pandas writes an index level, or an
    integer column), which a float's text ("3.0") never is.
    """

    array: np.ndarray
    classes: list[str] | None = None
    rows: list[str] | None = None
    index_name: str | None = None
    notes: list[str] = field(default_factory=list)
    locate: Callable[[tuple[int, ...]], tuple[int, int]] | None = None
    numbered_first_row: bool = False
    integer_columns: int = 0
    range_rows: bool = False  # rows named 0..N-1 by pandas' default RangeIndex, which Parquet keeps as metadata only
    first_column_as_rows: bool = False  # --index-col would read the first column as row names


# Between the levels of a multi-level index in one row name (pandas' MultiIndex ("x", 1) is "x/1").
LEVEL_SEPARATOR = "/"


def join_levels(levels: list[str]) -> str:
    """One row name from the values of an index's levels (a single level is itself)."""
    return LEVEL_SEPARATOR.join(levels)


def joined_rows(levels: list[Sequence[str]]) -> list[str]:
    """Each row's name from its index levels (:func:`join_levels`), refusing two rows whose distinct levels
    join to one name (``("a/b", "c")`` and ``("a", "b/c")``): names pair rows, so each must name one."""
    names = [join_levels(list(values)) for values in levels]
    if levels and len(levels[0]) > 1:
        first: dict[str, Sequence[str]] = {}
        for values, name in zip(levels, names):
            seen = first.setdefault(name, values)
            if tuple(seen) != tuple(values):
                raise InputError(f"rows {tuple(seen)!r} and {tuple(values)!r} both read as {name!r}, as the index's "
                                 f"levels are joined by {LEVEL_SEPARATOR!r}; use index values without "
                                 f"{LEVEL_SEPARATOR!r}")
    return names


class RowsOfShape:
    """An array's ``shape`` seen as ``(rows, classes)``: the class axis last, every other index a row."""

    shape: tuple[int, ...]

    @property
    def n_cols(self) -> int:
        return self.shape[-1]

    @property
    def n_rows(self) -> int:
        return int(np.prod(self.shape[:-1], dtype=np.int64))


@dataclass
class FileRows(RowsOfShape):
    """C-ordered data at ``offset`` in a file, seen as ``(rows, classes)``, read about ``block_bytes`` at a time.

    ``np.load(mmap_mode="r")`` keeps every page it touches in the resident set
    (a 2 GiB file peaks at over 4 GiB by the end), and any view of a memory
    map dies by SIGBUS when the file is cut short under it; each block here is
    read with ``readinto`` into one of two reused buffers instead, so the peak
    stays at a few blocks whatever the file's size, and a file that shrinks
    mid-run is one error.
    """

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int
    block_bytes: int

    def block_rows(self) -> int:
        return max(1, self.block_bytes // max(1, self.n_cols * self.dtype.itemsize))

    def blocks(self, task: str | None = "") -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, block)`` pairs; a block is only valid until the next is asked for.

        The next block is read on a second thread while this one is computed
        (:func:`_read_ahead`), so the disk and the cores work at once. A
        progress bar (``task`` and the file name) appears on a terminal when
        the pass takes over a second; ``task=None`` draws none (a second file
        read in lockstep with one that has a bar).
        """
        if os.stat(self.path).st_size < self.offset + self.n_rows * self.n_cols * self.dtype.itemsize:
            raise InputError("the file ends before its data does (truncated?)", where=str(self.path))
        height = min(self.block_rows(), self.n_rows)
        spans = [(start, min(height, self.n_rows - start)) for start in range(0, self.n_rows, height)]
        with Progress(self.n_rows, "rows", f"{task} {self.path.name}".strip(), shown=task is not None) as progress:
            for (start, rows), flat in zip(spans, _read_ahead(self, height * self.n_cols, spans)):
                yield start, flat[: rows * self.n_cols].reshape(rows, self.n_cols)
                progress.advance(rows)


# Buffers in flight: the block being computed and the one being read.
READ_AHEAD_BUFFERS = 2


def _read_ahead(rows: FileRows, buffer_size: int, spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """Each span's rows read into a small ring of reused buffers by a reader thread, in order.

    ``readinto`` releases the GIL, so the next block arrives while the caller
    computes on this one; a buffer goes back to the reader only when the
    caller asks for the next block, which keeps "valid until the next is
    asked for". A read error reaches the caller at the block it belongs to; a
    caller that stops early (an error, a signal) stops the reader.
    """
    import queue
    import threading

    from ..core.blocks import threads_or_out_of_memory

    free: queue.Queue = queue.Queue()
    for _ in range(min(READ_AHEAD_BUFFERS, len(spans))):
        free.put(np.empty(buffer_size, dtype=rows.dtype))
    filled: queue.Queue = queue.Queue()
    stopped = threading.Event()

    def reader() -> None:
        try:
            with open(rows.path, "rb", buffering=0) as file:
                if hasattr(os, "posix_fadvise"):  # not on macOS or Windows
                    os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
                file.seek(rows.offset)
                for _, count in spans:
                    buffer = free.get()
                    if stopped.is_set():
                        return
                    view = buffer[: count * rows.n_cols]
                    _read_exactly(file, view.view(np.uint8), rows.path)
                    filled.put(buffer)
        except BaseException as error:  # handed to the caller, at the block it belongs to
            filled.put(error)

    thread = threading.Thread(target=reader, name="softmax-read-ahead", daemon=True)
    with threads_or_out_of_memory():
        thread.start()
    try:
        for _ in spans:
            item = filled.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            free.put(item)
    finally:
        stopped.set()
        free.put(np.empty(0, dtype=rows.dtype))  # wakes a reader waiting for a buffer
        thread.join()


def _read_exactly(file, target: np.ndarray, path: Path) -> None:
    filled = 0
    while filled < len(target):
        count = file.readinto(memoryview(target[filled:]))
        if not count:
            raise InputError("the file ends before its data does (truncated?)", where=str(path))
        filled += count


EXTRA_HINT = "pip install 'softmax-toolkit[{extra}]'"


def bfloat16() -> np.dtype:
    """ml_dtypes' bfloat16 (JAX's and TensorFlow's), imported only when a bfloat16 array is met."""
    try:
        import ml_dtypes
    except ImportError:
        raise InputError(f"bfloat16 needs ml_dtypes: {EXTRA_HINT.format(extra='bfloat16')}") from None
    return np.dtype(ml_dtypes.bfloat16)


def is_bfloat16(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is ml_dtypes' bfloat16 (told by name, so ml_dtypes need not be imported)."""
    return dtype.kind == "V" and dtype.name == "bfloat16"


def bfloat16_strings(array: np.ndarray) -> np.ndarray:
    """Shortest strings that read back to the same bfloat16 (NumPy's own formatting cannot cast it to text).

    8 significant bits never need more than 4 significant digits; each value
    takes the fewest that round-trip, in NumPy's style (``3.0``, not ``3``).
    """
    values = array.astype(np.float32)
    bits = array.view(np.uint16)
    strings = np.char.mod("%.4g", values)
    for digits in (3, 2, 1):
        shorter = np.char.mod(f"%.{digits}g", values)
        exact = shorter.astype(np.float32).astype(array.dtype).view(np.uint16) == bits
        strings = np.where(exact, shorter, strings)
    bare = ~(np.char.find(strings, ".") >= 0) & ~(np.char.find(strings, "e") >= 0) & ~(np.char.find(strings, "n") >= 0)
    return np.where(bare, np.char.add(strings, ".0"), strings)


def round_decimals(array: np.ndarray, decimals: int) -> np.ndarray:
    """``np.round(array, decimals)``, leaving alone values with no digits that far down.

    NumPy rounds by scaling with ``10**decimals``, which overflows to inf (and
    warns) for large values; a value at or beyond ``2**nmant / 10**decimals``
    is already a whole number of ``10**-decimals`` and is kept as it is.
    """
    whole = ~(np.abs(array) < 2.0 ** np.finfo(array.dtype).nmant / 10.0**decimals)  # NaN and inf too
    # The rest is scaled in float64: 10**17 is past float16's range (and 10**40 past float32's).
    rounded = np.round(np.where(whole, 0, array).astype(np.float64), decimals).astype(array.dtype)
    return np.where(whole, array, rounded)


def number_strings(array: np.ndarray, precision: int | None) -> np.ndarray:
    """Shortest round-trip strings for the array's own dtype (NumPy's dragon4)."""
    if is_bfloat16(array.dtype):  # ml_dtypes' type: rounded as float32, else in its own shortest form
        return number_strings(array.astype(np.float32), precision) if precision is not None else bfloat16_strings(array)
    if precision is not None and array.dtype.kind == "f":
        array = round_decimals(array, precision)
    return array.astype(str)


@dataclass(frozen=True)
class WriteOptions:
    """How a result is written: ``precision`` rounds for text formats (binary ones keep every bit); ``label``
    names the input a result comes from when a batch prints several to one stream."""

    precision: int | None = None
    label: str | None = None


# Every reader gives a Table (row names and notes where the format has them); every writer takes WriteOptions.
Read = Callable[[Source, str | None, str], Table]
Write = Callable[[Result, IO, WriteOptions], None]


def note(message: str) -> None:
    """A ``note:`` line on standard error; the reporter shows a line once per run (a batch would repeat it)."""
    tell(f"note: {message}")


# Text files and numbers typed on the command line are read alike.
def parse_number(text: str) -> float | None:
    """``float(text)`` for plain numeric text, else None (no ``1_000`` or empty fields)."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def label_column_among(names: list[str]) -> InputError | None:
    """The refusal of labels read without ``--labels-key`` from a table holding a column named as labels go by
    beside others (a list column of logits or probabilities, an id, a weight): which one holds the labels is the
    user's to say; read whole, the labels were the model's own outputs, or a table of two columns."""
    from ..core.plausibility import is_label_name

    label = next((name for name in names if is_label_name(name)), None)
    others = [name for name in names if name != label]
    if label is None or not others:
        return None
    return InputError(f"the table has a label column {label!r} beside {', '.join(map(repr, others[:4]))}; choose "
                      f"the labels' column with --labels-key {label}", operand="labels")


def missing_value(preferred: str) -> str:
    """What stands for a missing value where ``preferred`` says what is read: a label, else a logit."""
    return "the ignore index (-100) for a row without a label" if preferred == "labels" else "-inf for a masked logit"


def distinct_ids(values: Sequence[str]) -> bool:
    """Whether a column beside the labels' names the rows: distinct whole numbers, as an id, a named index
    (``Series.to_csv()``) or ``reset_index()``'s positions are written."""
    if not values or not all(value.lstrip("-").isdigit() for value in values):
        return False
    return len(set(map(int, values))) == len(values)


def check_unique_names(names: list[str], where: str) -> None:
    """Refuse a class name given twice: names pick classes, so each must pick one."""
    seen = set()
    for name in names:
        if name in seen:
            raise InputError(f"class name {name!r} is given twice; each class needs its own name", where=where)
        seen.add(name)


def pick_member(names: list[str], key: str | None, preferred: str) -> str:
    """The member to use from an ``.npz`` or a JSON object (``--key``, the only one, or ``preferred``)."""
    if key is not None:
        if key not in names:
            raise InputError(f"no array named {key!r}; the arrays are: {', '.join(names) or 'none'}")
        return key
    if len(names) == 1:
        return names[0]
    if preferred in names:
        return preferred
    raise InputError(
        f"holds {len(names)} arrays ({', '.join(names)}); choose one with --key NAME"
        if names
        else "holds no arrays"
    )
