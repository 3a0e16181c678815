"""Writing a :class:`Result`: table, csv, tsv, json, npy, npz; atomic file output.

Machine formats print every float in the shortest form that reads back to the
same value *of its dtype* (float32 ``0.66524094``, not the float64 expansion
``0.6652409434318542``); ``--precision N`` rounds to N decimals first.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import UsageError
from .result import Result


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    npy = "npy"
    npz = "npz"


BINARY_FORMATS = (OutputFormat.npy, OutputFormat.npz)
SUFFIX_FORMATS = {f".{fmt.value}": fmt for fmt in OutputFormat if fmt is not OutputFormat.table}
# Rows converted to text per chunk: big enough to amortise the conversion,
# small enough that `| head` stops us early and memory stays flat.
TEXT_CHUNK_ROWS = 4096


@dataclass
class Sink:
    """Where and how a result is written, decided before any work is done."""

    fmt: OutputFormat
    path: Path | None
    force: bool
    precision: int | None
    label: str | None = None  # in a batch printed to stdout: the input each result comes from


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def stdout_format() -> OutputFormat:
    """The format standard output gets without ``-f``: a table for people, CSV for pipes."""
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.csv


def open_sink(
    fmt: OutputFormat | None,
    output: Path | None,
    force: bool,
    precision: int | None,
    inputs: Sequence[Path] = (),
) -> Sink:
    """Resolve the format and check the destination, so bad usage fails before computing."""
    if precision is not None and precision < 0:
        raise UsageError(f"--precision must be 0 or more, got {precision}")
    if fmt is None:
        if output is not None:
            fmt = SUFFIX_FORMATS.get(output.suffix.lower())
            if fmt is None:
                raise UsageError(
                    f"cannot tell the output format from {output.name!r}; "
                    f"pass -f {'|'.join(f.value for f in OutputFormat)}"
                )
        else:
            fmt = stdout_format()
    if output is None:
        if fmt in BINARY_FORMATS and sys.stdout.isatty():
            raise UsageError(f"refusing to write binary {fmt.value} to a terminal; redirect it or use -o FILE")
        return Sink(fmt, None, force, precision)
    check_destination(output, force, inputs)
    return Sink(fmt, output, force, precision)


def check_destination(output: Path, force: bool, inputs: Sequence[Path]) -> None:
    """Refuse an output that is an input, a folder, in a missing folder, or exists without ``--force``."""
    for source in inputs:
        if _same_file(output, source) or output.resolve() == source.resolve():
            raise UsageError(f"the output {str(output)!r} is an input; inputs are never overwritten")
    if output.is_dir():
        raise UsageError(f"the output {str(output)!r} is a directory")
    if not output.parent.is_dir():
        raise UsageError(f"the output folder {str(output.parent)!r} does not exist")
    if output.exists() and not force:
        raise UsageError(f"{str(output)!r} exists; pass --force to replace it")


# ---------------------------------------------------------------- text conversion

def number_strings(array: np.ndarray, precision: int | None) -> np.ndarray:
    """Shortest round-trip strings for the array's own dtype (NumPy's dragon4)."""
    if precision is not None and array.dtype.kind == "f":
        array = np.round(array, precision)
    return array.astype(str)


def _rows(array: np.ndarray, column: bool) -> np.ndarray:
    """The array as 2-D lines of values: leading axes flattened, the last one across."""
    if array.ndim == 0:
        return array.reshape(1, 1)
    if array.ndim == 1:
        return array.reshape(-1, 1) if column else array.reshape(1, -1)
    return array.reshape(-1, array.shape[-1])


def _row_chunks(array, column: bool) -> Iterator[np.ndarray]:
    """2-D chunks of at most :data:`TEXT_CHUNK_ROWS` lines, from an array or a streamed one."""
    blocks = array.blocks() if hasattr(array, "blocks") else [_rows(array, column)]
    for block in blocks:
        for start in range(0, block.shape[0], TEXT_CHUNK_ROWS):
            yield np.asarray(block[start : start + TEXT_CHUNK_ROWS])


def delimited_lines(result: Result, delimiter: str, precision: int | None) -> Iterator[str]:
    """CSV/TSV text of the primary array, in chunks of lines."""
    if result.header is not None:
        import csv  # only for quoting class names; kept off the start-up path

        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(result.header)
        yield buffer.getvalue()
    for chunk in _row_chunks(result.primary, result.column):
        strings = number_strings(chunk, precision)
        yield "".join(delimiter.join(line) + "\n" for line in strings.tolist())


def _json_nested(strings: np.ndarray) -> str:
    if strings.ndim == 0:
        return str(strings)
    if strings.ndim == 1:
        return "[" + ",".join(strings.tolist()) + "]"
    return "[" + ",".join(_json_nested(part) for part in strings) + "]"


def _json_strings(array: np.ndarray, precision: int | None) -> np.ndarray:
    """Each element as JSON text; JSON has no NaN or infinity, so they are ``null``."""
    if array.dtype.kind == "U":  # class names
        import json

        quoted = [json.dumps(str(name)) for name in array.reshape(-1)]
        return np.array(quoted, dtype=object).reshape(array.shape).astype(str)
    strings = number_strings(array, precision)
    if array.dtype.kind == "f":
        strings = np.where(np.isfinite(array), strings, "null")
    elif array.dtype.kind == "b":
        strings = np.where(array, "true", "false")
    return strings


def json_value(array: np.ndarray, precision: int | None) -> str:
    """A JSON number, string or nested lists."""
    return _json_nested(_json_strings(np.asarray(array), precision))


def _json_streamed(array, precision: int | None) -> Iterator[str]:
    """Nested lists of a streamed array, row by row: brackets open and close where its index rolls over."""
    lead = array.shape[:-1]
    index = [0] * len(lead)
    first = True
    for chunk in _row_chunks(array, column=False):
        pieces = []
        for line in _json_strings(chunk, precision).tolist():
            opens = next((n for n, i in enumerate(reversed(index)) if i != 0), len(index))
            pieces.append(("" if first else ",") + "[" * opens + "[" + ",".join(line) + "]")
            first = False
            closes = 0
            for d in reversed(range(len(lead))):  # advance the row index like an odometer
                index[d] += 1
                if index[d] < lead[d]:
                    break
                index[d] = 0
                closes += 1
            pieces.append("]" * closes)
        yield "".join(pieces)


def json_lines(result: Result, precision: int | None, label: str | None = None) -> Iterator[str]:
    """One JSON object on one line, so a batch's results make JSON lines (each with its ``source``)."""
    import json

    yield "{" if label is None else f'{{"source": {json.dumps(label)}, '
    for position, (name, value) in enumerate(result.arrays.items()):
        yield ("" if position == 0 else ", ") + f"{json.dumps(name)}: "
        if hasattr(value, "blocks"):
            yield from _json_streamed(value, precision)
        else:
            yield json_value(value, precision)
    if result.classes is not None:
        yield f', "classes": {json.dumps(result.classes)}'
    yield "}\n"


def _write_npy(stream: BinaryIO, array) -> None:
    """An ``.npy`` of an array, or of a streamed one block by block."""
    if not hasattr(array, "blocks"):
        np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)
        return
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
    try:
        np.lib.format.write_array_header_1_0(stream, header)
    except ValueError:  # a header over 64 KiB (a very long shape) needs version 2.0
        np.lib.format.write_array_header_2_0(stream, header)
    _reserve(stream, int(np.prod(array.shape)) * array.dtype.itemsize)
    _write_behind(stream, (np.ascontiguousarray(block, dtype=array.dtype) for block in array.blocks()))


def _reserve(stream: BinaryIO, size: int) -> None:
    """Allocate a file's remaining ``size`` bytes up front (ext4 then writes 2 GiB in a third of the time).

    Pipes and archives cannot, and need not: they are left as they are.
    """
    try:
        os.posix_fallocate(stream.fileno(), stream.tell(), size)
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass


def _write_behind(stream: BinaryIO, blocks: Iterator[np.ndarray]) -> None:
    """Write each block on a second thread while the next is computed (writes release the GIL).

    At most two computed blocks wait, so memory stays bounded; an error on
    either side (a closed pipe, bad input in a later block) stops both.
    """
    import queue
    import threading

    pending: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def writer() -> None:
        while (block := pending.get()) is not None:
            if not failure:
                try:
                    stream.write(block.data)
                except BaseException as error:  # handed to the main thread below
                    failure.append(error)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for block in blocks:
            if failure:
                break
            pending.put(block)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


def _write_npz(stream: BinaryIO, arrays: dict) -> None:
    """Every named array as ``NAME.npy`` in an uncompressed zip, as ``np.savez`` writes it."""
    import zipfile

    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                _write_npy(member, value)


def table_text(result: Result, precision: int | None, stream, terminal: bool) -> None:
    from . import tables  # Rich is imported only when a table is drawn

    tables.draw(result, precision, stream, terminal)


# ---------------------------------------------------------------- writing

def _write_result(result: Result, sink: Sink, stream: BinaryIO, terminal: bool) -> None:
    fmt = sink.fmt
    if fmt is OutputFormat.npy:
        _write_npy(stream, result.primary)
        return
    if fmt is OutputFormat.npz:
        _write_npz(stream, result.arrays)
        return
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n", write_through=True)
    try:
        if fmt is OutputFormat.table:
            arrays = {k: v.materialise() if hasattr(v, "blocks") else v for k, v in result.arrays.items()}
            title = f"{sink.label}: {result.title}" if sink.label else result.title
            table_text(replace(result, arrays=arrays, title=title), sink.precision, text, terminal)
        else:
            if fmt is OutputFormat.json:
                chunks = json_lines(result, sink.precision, sink.label)
            else:
                if sink.label is not None:
                    text.write(f"# {sink.label}\n")  # a comment line: the output still reads back
                chunks = delimited_lines(result, "," if fmt is OutputFormat.csv else "\t", sink.precision)
            for chunk in chunks:
                text.write(chunk)
        text.flush()
    finally:
        text.detach()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_file(path: Path, force: bool, fill) -> None:
    """Call ``fill(stream, temporary_path)``, then rename the temporary file onto ``path``.

    The temporary file sits in the destination folder, so the rename is atomic
    and an error or an interrupt never leaves a partial output behind. It is
    written through the descriptor ``mkstemp`` opened: reopening it with "wb"
    truncates it, and ext4 then flushes the whole file to disk on close
    (0.6-0.75 s per 2 GiB measured here).
    """
    import tempfile

    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            fill(stream, temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        if path.exists() and not force:
            raise UsageError(f"{str(path)!r} exists; pass --force to replace it")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_npy_in_place(sink: Sink, shape: tuple[int, ...], dtype: np.dtype, fill) -> None:
    """Write an ``.npy`` too large for memory: ``fill(out)`` writes into a memory map of the file."""

    def fill_file(stream, temporary: str) -> None:
        out = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
        fill(out)
        out.flush()
        del out

    atomic_file(sink.path, sink.force, fill_file)


def write(result: Result, sink: Sink) -> None:
    """Write ``result`` to standard output, or to a file atomically (see :func:`atomic_file`).

    An existing file is kept unless ``--force``.
    """
    if sink.path is None:
        stream = sys.stdout.buffer
        _write_result(result, sink, stream, terminal=sys.stdout.isatty())
        stream.flush()
        return

    atomic_file(sink.path, sink.force, lambda stream, _: _write_result(result, sink, stream, terminal=False))
