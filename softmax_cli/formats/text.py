"""Delimited text (``.csv``, ``.tsv``, ``.txt``): parsed with the separator detected, and written.

Reading: ``#`` starts a comment, blank lines are skipped, a first row with any
non-numeric field is a header giving the class names; every problem is an
:class:`InputError` naming the line and column. Writing: every float in the
shortest form that reads back to the same value *of its dtype* (float32
``0.66524094``, not ``0.6652409434318542``); ``--precision N`` rounds first.
The number conversion here is shared by the JSON writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

import numpy as np

from .. import tidy
from ..errors import InputError
from .base import Format, Source, note

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
    if precision is not None and array.dtype.kind == "f":
        array = np.round(array, precision)
    return array.astype(str)


def _quoted(field: str, delimiter: str) -> str:
    """A text field as the csv module writes it: quoted only when it holds a separator, quote or newline."""
    if delimiter in field or any(c in field for c in '"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def _cells(block: np.ndarray, delimiter: str, precision: int | None) -> np.ndarray:
    if block.dtype.kind in "US":  # row and class names
        return np.array([[_quoted(str(v), delimiter) for v in row] for row in block.tolist()], dtype=object)
    return number_strings(block, precision)


def delimited_lines(result, delimiter: str, precision: int | None) -> Iterator[str]:
    """CSV/TSV text of the result's tidy table (:func:`softmax_cli.tidy.tidy`), a bounded chunk at a time.

    The header line when the table has one, then the rows, then the scalars
    as ``# name: value`` lines.
    """
    table = tidy.tidy(result)
    if table.left_out:
        note(f"left out of the {'CSV' if delimiter == ',' else 'TSV'} table (their rows differ): "
             f"{', '.join(table.left_out)}; -f json or -f npz holds every result")
    if table.header is not None:
        yield delimiter.join(_quoted(name, delimiter) for name in table.header) + "\n"
    for chunk in tidy.row_chunks(table):
        parts = [_cells(part, delimiter, precision) for part in chunk]
        strings = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        yield "".join(delimiter.join(line) + "\n" for line in strings.tolist())
    for name, value in table.scalars.items():
        yield f"# {name}: {number_strings(value, precision)}\n"


def _writer(delimiter: str):
    def write(result, stream: TextIO, precision: int | None, label: str | None) -> None:
        """The result's tidy table; in a printed batch, under a ``# SOURCE`` comment line."""
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
