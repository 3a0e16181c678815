"""Delimited text (``.csv``, ``.tsv``, ``.txt``): parsed with the separator detected, and written.

Reading: ``#`` starts a comment, blank lines are skipped, a header gives the
class names and an index column the row names (pandas' ``to_csv`` layouts,
see :func:`parse_delimited`); an array as Python or NumPy print it is read
too. Every problem is an :class:`InputError` naming the line and column as an
editor counts them. Writing: every float in the
shortest form that reads back to the same value *of its dtype* (float32
``0.66524094``, not ``0.6652409434318542``); ``--precision N`` rounds first.
The number conversion here is shared by the JSON writer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TextIO

import numpy as np

from .. import tidy
from ..errors import InputError
from .base import (
    Source,
    Table,
    WriteOptions,
    join_levels,
    joined_rows,
    missing_value,
    note,
    number_strings,
    parse_number,
)

# ---------------------------------------------------------------- reading

def _split_comment(line: str) -> str:
    # A leading tab is kept: it is the empty first field of pandas' TSV header (its index column's).
    return line.split("#", 1)[0].rstrip().lstrip(" ")


def _delimiter(lines: list[str]) -> str | None:
    """The field separator of delimited text: tab, comma, semicolon, else white space (None).

    Tab separates only when every line of several fields has one: ``1 2 3`` over
    ``4<TAB>5<TAB>6`` is white space (any run of spaces and tabs, as np.loadtxt).
    """
    if any("\t" in line for line in lines) and all("\t" in line for line in lines if len(line.split()) > 1):
        return "\t"
    if len({line.count(";") for line in lines}) == 1 and ";" in lines[0]:
        return ";"  # every line split alike: a comma in it is a decimal comma or text (sep=";", decimal=",")
    for candidate in (",", ";"):
        if any(candidate in line for line in lines):
            return candidate
    return None


def _fields(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    import csv  # imported here, like json and zipfile, to keep start-up fast

    if len(line) >= csv.field_size_limit():  # a field may be as long as its line (the default stops at 131,072)
        csv.field_size_limit(len(line) + 1)
    return [f.strip() for f in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))]


def _numbered(fields: list[str]) -> bool:
    """Whether a row is exactly ``0,1,...,C-1``: the header pandas writes for unnamed columns."""
    return fields == [str(i) for i in range(len(fields))]


def _is_header(first: list[str], below: list[list[str]], choice: str, notes: list[str], line: int) -> bool:
    """Whether the first row (on ``line``) names the columns (``--header yes|no|auto``); a row that may be
    either is refused (:func:`_integer_names`)."""
    if choice != "auto":
        return choice == "yes"
    if any(parse_number(f) is None for f in first):
        return True
    if below and not _numbered(first) and _integer_names(first, below):
        shown = ", ".join(first[:4]) + (", ..." if len(first) > 4 else "")
        raise InputError(f"the first row ({shown}) holds distinct integers above rows of numbers written with "
                         "decimals: column names, as pandas writes a frame's integer column names "
                         f"(df[[{shown}]].to_csv(index=False)), or a row of logits? Say which with --header yes "
                         "or --header no", line=line)
    if not _numbered(first) or not below:
        return False
    span = f"0..{len(first) - 1}"
    # Whole values written as floats ("2.0") are a float frame's, under pandas' header: only integer text is data.
    if not all(INTEGER_TEXT.fullmatch(f) for row in below for f in row):
        notes.append(f"first row {span} read as column names; --header no to read it as data")
        return True
    if len(first) > 1:  # one column of integers is a label file; its header is settled against the logits
        notes.append(f"first row {span} read as data, as every row is integers; --header yes to read it as names")
    return False


# An index level's integers as pandas writes them; a float column of whole values is written "3.0", a class.
INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def _integer_names(first: list[str], below: list[list[str]]) -> bool:
    """Whether a first row of several distinct integers stands above rows with none (every number written
    with decimals): pandas' header for integer column names that are not ``0..C-1`` (``df[[0, 2, 3]]``), or
    a row of logits typed as integers. Neither reading is safe, so it is refused."""
    return (len(first) > 1 and all(INTEGER_TEXT.fullmatch(field) for field in first)
            and len({int(field) for field in first}) == len(first)
            and not any(INTEGER_TEXT.fullmatch(field) for row in below for field in row))


def _is_integers(rows: list[list[str]], column: int) -> bool:
    return all(INTEGER_TEXT.fullmatch(row[column]) for row in rows if len(row) > column)


def _index_width(header: list[str] | None, rows: list[list[str]], choice: bool | None, notes: list[str]) -> int:
    """How many leading columns hold row names: every index level ``df.to_csv()`` writes.

    A level is a leading column under an empty header field (pandas' unnamed
    level) or holding text under a named one; an empty field is a missing
    value (polars writes a null so), never text. After a level, a named
    column of integers is a level too (a position under a document name)
    unless every column after it is integers as well. At least one column is
    left for the classes. ``--index-col`` makes the first column row names
    (and the levels after it by the same rule); ``--no-index-col`` none.
    """
    if choice is False:
        return 0
    if header is None or len(header) < 2:
        return int(bool(choice))
    width = int(bool(choice))
    while width < len(header) - 1:
        if header[width] == "" or any(row[width] and _cell(row[width]) is None
                                      for row in rows if len(row) > width):
            width += 1
        elif width and _is_integers(rows, width) and not all(
                _is_integers(rows, later) for later in range(width + 1, len(header))):
            notes.append(f"column {header[width]!r} of integers after the row names read as an index level")
            width += 1
        else:
            break
    return width


def _integer_lead(header: list[str] | None, rows: list[list[str]]) -> int:
    """How many leading named columns hold only integers as pandas writes an integer column (a named
    index's levels look so), leaving one column for the classes."""
    if header is None:
        return 0
    return next((column for column in range(len(header) - 1) if not _is_integers(rows, column)), len(header) - 1)


def parse_delimited(text: str, header: str = "auto", index_col: bool | None = None,
                    leave_out: str | None = None, key: str | None = None, preferred: str = "logits") -> Table:
    """Parse comma/tab/semicolon/white-space separated numbers.

    ``#`` starts a comment; blank lines are skipped. The first row is a header
    (giving the class names) if any field is not a number, or if it is exactly
    ``0..C-1`` over rows that are not all integers (``pd.DataFrame(a).to_csv()``);
    ``header`` ("yes"/"no") decides instead. The first column is an index (row
    names) under an empty header field (``df.to_csv()``) or when it holds text
    under a named one, and so is each further level of a multi-level index
    (:func:`_index_width`); ``index_col`` decides instead. The column named
    ``leave_out`` is not read; ``key`` (``--key``, ``--mask-key``) reads the
    column of that name alone, with the row names. One data row, or one column,
    is a vector, as ``np.loadtxt`` gives (a single named row stays a row). An empty
    field is refused saying what to write for what ``preferred`` reads.
    """
    numbered = [(n, _split_comment(line)) for n, line in enumerate(text.splitlines(), start=1)]
    numbered = [(n, line) for n, line in numbered if line]
    if not numbered:
        raise InputError("no numbers found")
    delimiter = _delimiter([line for _, line in numbered])
    lines = [n for n, _ in numbered]
    rows = [_fields(line, delimiter) for _, line in numbered]
    notes: list[str] = []
    names = rows[0] if _is_header(rows[0], rows[1:], header, notes, lines[0]) else None
    if names is not None:
        lines, rows = lines[1:], rows[1:]
    width = len(names) if names is not None else len(rows[0]) if rows else 0
    for line_no, fields in zip(lines, rows):
        if len(fields) != width:
            raise InputError(f"{len(fields)} fields where the {'header' if names else 'first row'} has {width}",
                             line=line_no)
    kept = list(range(width))  # the file's column of each field read (1-based in messages)
    if names is not None and leave_out in names:
        kept.remove(names.index(leave_out))
        names, rows = [names[j] for j in kept], [[fields[j] for j in kept] for fields in rows]
    first = _index_width(names, rows, index_col, notes)
    if key is not None:
        if names is None or key not in names[first:]:
            shown = ", ".join(names[first:]) if names else "none: the file has no header line"
            raise InputError(f"no column named {key!r}; the columns are: {shown}")
        chosen = list(range(first)) + [names.index(key, first)]
        kept, names, rows = [kept[j] for j in chosen], [names[j] for j in chosen], [[f[j] for j in chosen] for f in rows]
    indexed = first > 0
    values: list[list[float]] = []
    for line_no, fields in zip(lines, rows):
        row = []
        for column, text_field in enumerate(fields[first:], start=first):
            value = _cell(text_field)
            if value is None:
                raise InputError(_not_a_number(text_field, names[column] if names else None, preferred), line=line_no,
                                 column=kept[column] + 1)
            row.append(value)
        values.append(row)
    if not values or not values[0]:
        raise InputError("no numbers found" + (" below the header" if names else ""))
    array = np.array(values, dtype=np.float64)
    row_names = joined_rows([fields[:first] for fields in rows]) if indexed else None
    # As np.loadtxt: one row or one column is a vector (labels one per line, a
    # single row of logits); a named row keeps its row axis for its name.
    vector = array.shape[1] == 1 or (array.shape[0] == 1 and not indexed)
    shape = array.shape

    def locate(index: tuple[int, ...]) -> tuple[int, int]:
        row, column = (index[0], 0) if shape[1] == 1 else (0, index[0]) if len(index) == 1 else index
        return lines[row], kept[column + first] + 1

    index_name = (join_levels(names[:first]) if names and any(names[:first]) else "") if indexed else None
    return Table(array.reshape(-1) if vector else array, classes=None if names is None else names[first:],
                 rows=row_names, index_name=index_name, notes=notes, locate=locate,
                 numbered_first_row=names is None and _numbered(rows[0]),
                 integer_columns=_integer_lead(names, rows) if index_col is None and not indexed else 0,
                 first_column_as_rows=True)


# pandas writes a boolean column (a mask, a flag) as True and False: 1 and 0, as NumPy and Arrow read them.
BOOLEAN_TEXT = {"True": 1.0, "False": 0.0}


def _cell(field: str) -> float | None:
    """A table cell's number: a number's text, or pandas' True and False."""
    value = parse_number(field)
    return BOOLEAN_TEXT.get(field) if value is None else value


def _not_a_number(field: str, column: str | None, preferred: str) -> str:
    """What is wrong with a field that is not a number; a label column's text says how to score against it."""
    from ..core.plausibility import is_label_name

    if not field:
        return (f"an empty field: a missing value (polars writes a null so) or a trailing separator; "
                f"write {missing_value(preferred)}")
    if column is not None and is_label_name(column):
        return (f"column {column!r} holds text ({field!r}), as labels written as class names do, not logits; "
                f"score against it with --labels-key {column} and this file as --labels, or drop it from the table")
    why = f"{field!r} in column {column!r} is not a number" if column else f"{field!r} is not a number"
    if DECIMAL_COMMA.fullmatch(field):
        why += "; a decimal comma? write numbers with a decimal point (pandas: df.to_csv(decimal='.'))"
    return why


DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


# ---------------------------------------------------------------- Python's and NumPy's printed arrays

# print((1, 2, 3)), print([(1, 2), (3, 4)]), NumPy's print(a) `[[0.1 0.2]\n [0.3 0.4]]`, repr(a) `array([...])`.
_WRAPPER = re.compile(r"^(?:array|tensor)\((.*?)(?:,\s*dtype=[\w.]+)?\)$", re.DOTALL)
_TOKEN = re.compile(r"[\[\]()]|,|[^\s\[\](),]+")
_NUMBERS_APART = re.compile(r"[\w.][ \t\n]+[-+\w.]")
_PYTHON_SPECIAL = re.compile(r"(?<![A-Za-z])(?:nan|inf)(?![A-Za-z])")


def looks_printed(source: Source) -> bool:
    """Text that is an array as Python or NumPy print it, not JSON: ``(1, 2)``, ``[0.1 0.2]``, ``[nan, 1.0]``."""
    text = source.text.strip()
    if text.startswith(("(", "array(", "tensor(")):
        return True
    return text.startswith("[") and bool("(" in text or _NUMBERS_APART.search(text) or _PYTHON_SPECIAL.search(text))


def parse_printed(text: str) -> np.ndarray:
    """Nested brackets of numbers separated by commas and/or white space, as Python and NumPy print them."""
    text = text.strip()
    wrapped = _WRAPPER.match(text)
    if wrapped:
        text = wrapped.group(1)
    stack: list[list] = [[]]
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[(":
            stack.append([])
        elif token in "])":
            if len(stack) == 1:
                raise InputError(f"unmatched {token!r}", **_text_position(text, match.start()))
            closed = stack.pop()
            stack[-1].append(closed)
        elif token != ",":
            value = parse_number(token)
            if value is None:
                what = ("NumPy left values out ('...'); print with np.set_printoptions(threshold=sys.maxsize) or "
                        "save with np.save" if token == "..." else f"{token!r} is not a number")
                raise InputError(what, **_text_position(text, match.start()))
            stack[-1].append(value)
    if len(stack) != 1:
        raise InputError("a bracket is not closed; expected an array as Python or NumPy prints it")
    value = stack[0][0] if len(stack[0]) == 1 and isinstance(stack[0][0], list) else stack[0]
    try:
        array = np.array(value, dtype=np.float64)
    except ValueError:
        raise InputError("brackets of unequal lengths; expected a rectangular array") from None
    if array.size == 0:
        raise InputError("no numbers found in the brackets")
    return array


def _text_position(text: str, offset: int) -> dict[str, int]:
    return {"line": text.count("\n", 0, offset) + 1, "column": offset - (text.rfind(chr(10), 0, offset) + 1) + 1}


def read_table(source: Source, key: str | None, preferred: str) -> Table:
    """Delimited text, or an array as Python or NumPy print it."""
    if looks_printed(source):
        return Table(parse_printed(source.text))
    return parse_delimited(source.text, source.header, source.index_col, source.leave_out, key, preferred)


# ---------------------------------------------------------------- writing

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

    The scalars that are not columns first, as ``# name: value`` lines (a
    summary comes first; readers skip ``#`` lines), then the header line when
    the table has one, then the rows.
    """
    table = tidy.tidy(result)
    if table.left_out:
        note(f"left out of the {'CSV' if delimiter == ',' else 'TSV'} table (their rows differ): "
             f"{', '.join(table.left_out)}; -f json or -f npz holds every result")
    for name, value in table.scalars.items():
        yield f"# {name}: {number_strings(value, precision)}\n"
    if table.header is not None:
        yield delimiter.join(_quoted(name, delimiter) for name in table.header) + "\n"
    for chunk in tidy.row_chunks(table):
        parts = [_cells(part, delimiter, precision) for part in chunk]
        strings = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        yield "".join(delimiter.join(line) + "\n" for line in strings.tolist())


def _writer(delimiter: str):
    def write(result, stream: TextIO, options: WriteOptions) -> None:
        """The result's tidy table; in a printed batch, under a ``# SOURCE`` comment line."""
        if options.label is not None:
            stream.write(f"# {options.label}\n")  # a comment line: the output still reads back
        for chunk in delimited_lines(result, delimiter, options.precision):
            stream.write(chunk)

    return write


write_csv = _writer(",")
write_tsv = _writer("\t")
