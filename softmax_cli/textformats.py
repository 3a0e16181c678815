"""Text into arrays: numbers typed as arguments, delimited text, JSON and JSON lines.

Every problem is an :class:`InputError` naming the line and column (or the
JSON path) where it was found.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import InputError

# Separators between numbers typed as arguments: commas and white space; ';' ends a row.
_FIELD_SPLIT = re.compile(r"[,\s]+")


def _number(text: str) -> float | None:
    """``float(text)`` for plain numeric text, else None (no ``1_000`` or empty fields)."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _typed_rows(token: str) -> list[list[float]] | None:
    """Rows of numbers in one argument (``"1 2; 3 4"``), or None if it is not numbers."""
    rows = []
    for part in token.split(";"):
        fields = [f for f in _FIELD_SPLIT.split(part.strip()) if f]
        values = [_number(f) for f in fields]
        if any(v is None for v in values):
            return None
        if values:
            rows.append(values)
    return rows if rows else None


def is_number_text(token: str) -> bool:
    """Whether an argument is numbers (``3``, ``-inf``, ``"1 2; 3 4"``) rather than a source."""
    return _typed_rows(token) is not None


def parse_typed_numbers(tokens: list[str]) -> np.ndarray | None:
    """The array typed as arguments, or None if the tokens are not all numbers.

    Arguments are joined, so ``3 2 1``, ``3,2,1`` and ``"3 2 1"`` are one row;
    ``;`` splits rows: ``"1 2 3; 4 5 6"``. One row is a vector.
    """
    joined = " ".join(tokens)
    rows = _typed_rows(joined)
    if rows is None:
        return None
    width = len(rows[0])
    for number, row in enumerate(rows):
        if len(row) != width:
            raise InputError(
                f"row {number} has {len(row)} numbers but row 0 has {width}; rows are split by ';'",
                where="arguments",
            )
    array = np.array(rows, dtype=np.float64)
    return array[0] if len(rows) == 1 else array


# ---------------------------------------------------------------- delimited text

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
        values = [_number(f) for f in fields]
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


# ---------------------------------------------------------------- JSON

def _check_json_numbers(value, path: str) -> None:
    """Walk nested lists so a bad element is named by its path, e.g. ``[2][1]``."""
    import json

    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_numbers(item, f"{path}[{i}]")
    elif value is None:
        raise InputError("null is not a number; write -Infinity for a masked logit", where=path)
    elif not isinstance(value, (int, float)):
        raise InputError(f"{json.dumps(value)[:40]} is not a number", where=path)


def _json_array(value, path: str) -> np.ndarray:
    try:
        _check_json_numbers(value, path)
    except RecursionError:
        raise InputError("JSON nested too deeply", where=path or "top level") from None
    try:
        array = np.array(value)
    except ValueError:
        raise InputError("nested lists of unequal lengths", where=path or "top level") from None
    if array.dtype == object:
        raise InputError("nested lists of unequal lengths", where=path or "top level")
    return array


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


def parse_json(text: str, key: str | None, preferred: str) -> tuple[np.ndarray, list[str] | None]:
    """Nested lists, an object of named nested lists (our own JSON output), or JSON lines."""
    import json

    try:
        value = json.loads(text)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if len(lines) < 2:
            raise InputError(f"not valid JSON: {whole_error.msg}", where=f"line {whole_error.lineno}, column {whole_error.colno}") from None
        return parse_json_lines(text), None
    classes = None
    if isinstance(value, dict):
        names = [k for k, v in value.items() if isinstance(v, list) and k != "classes"]
        name = pick_member(names, key, preferred)
        if isinstance(value.get("classes"), list):
            classes = [str(c) for c in value["classes"]]
        return _json_array(value[name], f"{name}"), classes
    return _json_array(value, ""), classes


def parse_json_lines(text: str) -> np.ndarray:
    """One JSON list per line, stacked into rows."""
    import json

    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except RecursionError:
            raise InputError("JSON nested too deeply", where=f"line {line_no}") from None
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON: {error.msg}", where=f"line {line_no}, column {error.colno}") from None
        rows.append((line_no, _json_array(value, f"line {line_no}")))
    if not rows:
        raise InputError("no JSON lines found")
    shape = rows[0][1].shape
    for line_no, row in rows:
        if row.shape != shape:
            raise InputError(f"a list of shape {row.shape} where line {rows[0][0]} has {shape}", where=f"line {line_no}")
    return np.stack([row for _, row in rows])
