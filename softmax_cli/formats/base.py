"""What a file format declares (:class:`Format`) and what a reader is given (:class:`Source`).

A format module builds :class:`Format` values; :mod:`.registry` collects them
and is the only place that maps extensions, magic bytes and names to formats.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from ..errors import InputError
from ..result import Result


@dataclass
class Source:
    """One input: a file, or the bytes of standard input; read and decoded at most once.

    ``header`` and ``index_col`` are how the user asked a table to be read
    (``--header auto|yes|no``, ``--index-col/--no-index-col``; None: decide);
    formats without a header or an index ignore them.
    """

    path: Path | None
    given: bytes | None = None  # standard input's bytes, when there is no path
    header: str = "auto"
    index_col: bool | None = None

    @cached_property
    def data(self) -> bytes:
        return self.given if self.path is None else self.path.read_bytes()

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
    """A file seen as ``(rows, classes)`` and read a block of rows at a time (:class:`.npy.NpyRows`)."""

    path: Path
    shape: tuple[int, ...]  # the whole array's; the class axis is the last
    dtype: np.dtype

    @property
    def n_rows(self) -> int: ...

    @property
    def n_cols(self) -> int: ...

    def blocks(self, task: str = "") -> Iterator[tuple[int, np.ndarray]]: ...


@dataclass
class Table:
    """What a table's reader found: the numbers, the column names, the row names (an index column).

    ``index_name`` is the index column's header field ("" for pandas' unnamed
    index); ``notes`` are lines for the user about how the file was read;
    ``locate(index)`` names an array index as a position in the file (``line
    2, column 3``), when the format knows it; ``numbered_first_row`` says the
    first row was ``0..C-1`` and read as data (a header by another reading).
    """

    array: np.ndarray
    classes: list[str] | None = None
    rows: list[str] | None = None
    index_name: str | None = None
    notes: list[str] = field(default_factory=list)
    locate: Callable[[tuple[int, ...]], str] | None = None
    numbered_first_row: bool = False


Read = Callable[[Source, str | None, str], tuple[np.ndarray, list[str] | None]]
Write = Callable[[Result, IO, int | None, str | None], None]


@dataclass(frozen=True)
class Format:
    """One file format: how it is recognised, read, streamed and written.

    ``read(source, key, preferred)`` gives ``(array, class names or None)``;
    ``key``/``preferred`` choose a member of an archive or a JSON object.
    ``write(result, stream, precision, label)`` writes a :class:`Result` to a
    binary stream when ``binary``, else to a text stream; ``label`` names the
    input a result comes from when a batch prints several to one stream. An
    array may be streamed (it has ``blocks()``, see ``stream.LazyArray``): a
    writer writes it block by block, never whole.
    ``row_blocks(path, block_bytes)`` opens a file as streamable rows (see
    :class:`.npy.NpyRows`), or gives None when it must be read whole.
    A format whose files are tables declares ``read_table(source, key,
    preferred)`` too, giving a :class:`Table` with row names (an index column)
    and notes; :meth:`table` is how every input is read.
    """

    name: str
    extensions: tuple[str, ...]
    binary: bool
    read: Read | None = None
    write: Write | None = None
    magic: bytes | None = None  # how standard input is recognised: its first bytes
    sniff: Callable[[Source], bool] | None = None  # or a test of its content
    row_blocks: Callable[[Path, int], RowBlocks | None] | None = None
    batch_output: str | None = None  # the format a batch writes for this input (default: its own)
    # A format whose files are tables (a header, perhaps an index column) reads them whole with this;
    # ``read`` then gives the same array and class names.
    read_table: Callable[[Source, str | None, str], Table] | None = None

    def table(self, source: Source, key: str | None, preferred: str) -> Table:
        """What ``source`` holds, as a :class:`Table` (row names and notes where the format has them)."""
        if self.read_table is not None:
            return self.read_table(source, key, preferred)
        # A plain reader gives (array, classes), or (array, classes, row names) for a table it reads whole.
        array, classes, *rows = self.read(source, key, preferred)
        return Table(array, classes, rows[0] if rows else None)


_noted: set[str] = set()


def note(message: str) -> None:
    """One ``note:`` line on standard error, once per process (a batch would repeat it per input)."""
    if message not in _noted:
        _noted.add(message)
        print(f"note: {message}", file=sys.stderr)


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
