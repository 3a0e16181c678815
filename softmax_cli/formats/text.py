"""Delimited text (``.csv``, ``.tsv``, ``.txt``): parsed with the separator detected, and written.

Reading: ``#`` starts a comment, blank lines are skipped, a first row with any
non-numeric field is a header giving the class names; every problem is an
:class:`InputError` naming the line and column. Writing: every float in the
shortest form that reads back to the same value *of its dtype* (float32
``0.66524094``, not ``0.6652409434318542``); ``--precision N`` rounds first.
The number conversion here is shared by the JSON writer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TextIO

import numpy as np

from ..errors import InputError
from .base import Format, Source, bfloat16_strings, is_bfloat16

# Rows converted to text per chunk: big enough to amortise the conversion,
# small enough that `| head` stops us early and memory stays flat.
TEXT_CHUNK_ROWS = 4096


def parse_number(text: str) -> float | None:
    """``float(text)`` for plain numeric text, else None (no ``1_000`` or empty fields)."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------- reading

def _split_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _delimiter(lines: list[str]) -> str | None:
    """The field separator of delimited text: tab, comma, semicolon, else white space (None)."""
    for candidate in ("\t", ",", ";"):
        if any(candidate in line for line in lines):
            return candidate
    return None


def _fields(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    import csv  # imported here, like json and zipfile, to keep start-up fast

    return [f.strip() for f in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))]


def parse_delimited(text: str) -> tuple[np.ndarray, list[str] | None]:
    """Parse comma/tab/semicolon/white-space separated numbers.

    ``#`` starts a comment; blank lines are skipped; a first row with any
    non-numeric field is a header giving the class names. One data row, or
    one column, is a vector, as ``np.loadtxt`` gives.
    """
    numbered = [(n, _split_comment(line)) for n, line in enumerate(text.splitlines(), start=1)]
    numbered = [(n, line) for n, line in numbered if line]
    delimiter = _delimiter([line for _, line in numbered])
    header: list[str] | None = None
    rows: list[list[float]] = []
    width = None
    for index, (line_no, line) in enumerate(numbered):
        fields = _fields(line, delimiter)
        values = [parse_number(f) for f in fields]
        if index == 0 and any(v is None for v in values):
            header = fields
            width = len(fields)
            continue
        if width is None:
            width = len(fields)
        if len(fields) != width:
            raise InputError(f"{len(fields)} fields where the first row has {width}", where=f"line {line_no}")
        for column, (text_field, value) in enumerate(zip(fields, values), start=1):
            if value is None:
                what = "an empty field" if not text_field else f"{text_field!r} is not a number"
                raise InputError(what, where=f"line {line_no}, column {column}")
        rows.append(values)  # type: ignore[arg-type]
    if not rows:
        raise InputError("no numbers found" + (" below the header" if header else ""))
    array = np.array(rows, dtype=np.float64)
    # As np.loadtxt: one row or one column is a vector (labels one per line, a
    # single row of logits).
    return (array.reshape(-1) if 1 in array.shape else array), header


def read(source: Source, key: str | None, preferred: str) -> tuple[np.ndarray, list[str] | None]:
    return parse_delimited(source.text)


# ---------------------------------------------------------------- writing

def number_strings(array: np.ndarray, precision: int | None) -> np.ndarray:
    """Shortest round-trip strings for the array's own dtype (NumPy's dragon4)."""
    if is_bfloat16(array.dtype):  # ml_dtypes' type: rounded as float32, else in its own shortest form
        return number_strings(array.astype(np.float32), precision) if precision is not None else bfloat16_strings(array)
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


def row_chunks(array, column: bool) -> Iterator[np.ndarray]:
    """2-D chunks of at most :data:`TEXT_CHUNK_ROWS` lines, from an array or a streamed one."""
    blocks = array.blocks() if hasattr(array, "blocks") else [_rows(array, column)]
    for block in blocks:
        for start in range(0, block.shape[0], TEXT_CHUNK_ROWS):
            yield np.asarray(block[start : start + TEXT_CHUNK_ROWS])


def delimited_lines(result, delimiter: str, precision: int | None) -> Iterator[str]:
    """CSV/TSV text of the primary array, in chunks of lines."""
    if result.header is not None:
        import csv  # only for quoting class names; kept off the start-up path

        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(result.header)
        yield buffer.getvalue()
    for chunk in row_chunks(result.primary, result.column):
        strings = number_strings(chunk, precision)
        yield "".join(delimiter.join(line) + "\n" for line in strings.tolist())


def _writer(delimiter: str):
    def write(result, stream: TextIO, precision: int | None, label: str | None) -> None:
        """The primary array, one row per line; in a printed batch, under a ``# SOURCE`` comment line."""
        if label is not None:
            stream.write(f"# {label}\n")  # a comment line: the output still reads back
        for chunk in delimited_lines(result, delimiter, precision):
            stream.write(chunk)

    return write


FORMATS = (
    Format("csv", (".csv",), binary=False, read=read, write=_writer(",")),
    Format("tsv", (".tsv",), binary=False, read=read, write=_writer("\t")),
    # White-space text is read like the others; a batch writes it as TSV, the nearest format we write.
    Format("txt", (".txt",), binary=False, read=read, batch_output="tsv"),
)
