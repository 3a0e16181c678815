"""Arrays from arguments, files and standard input.

Numbers typed as arguments, delimited text, JSON, JSON lines, ``.npy`` and
``.npz`` all become an ndarray (plus class names when the source has them).
Every problem is an :class:`InputError` naming the file, line and column.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, UsageError

STDIN = "-"
STDIN_NAME = "<stdin>"
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
SUFFIXES = (".npy", ".npz", *TEXT_SUFFIXES, ".json", ".jsonl")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
USAGE_EXAMPLE = (
    "give logits as numbers (softmax probs 3 2 1), as a file (softmax probs logits.npy) "
    "or on standard input (cat logits.csv | softmax probs)"
)

# Separators between numbers typed as arguments: commas and white space; ';' ends a row.
_FIELD_SPLIT = re.compile(r"[,\s]+")


@dataclass
class Loaded:
    """An array read from one source, with what is known about it."""

    array: np.ndarray
    source: str | None = None  # a file path, "<stdin>", or None for typed numbers
    classes: list[str] | None = None
    paths: list[Path] = field(default_factory=list)  # files read, never to be overwritten


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


def check_dtype(array: np.ndarray) -> np.ndarray:
    """Refuse dtypes that are not real numbers (complex, object, strings, records, dates)."""
    if array.dtype.kind not in "fiub":
        raise InputError(f"arrays of dtype {array.dtype} are not supported; expected real numbers")
    if array.ndim == 0:
        raise InputError("expected an array, got a single scalar")
    if array.size == 0:
        raise InputError(f"the array is empty (shape {array.shape})")
    return array


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


def _pick(names: list[str], key: str | None, preferred: str) -> str:
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
        name = _pick(names, key, preferred)
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


# ---------------------------------------------------------------- binary

def load_npy(source, mmap: bool) -> np.ndarray:
    """Read ``.npy`` with pickles disallowed; files are memory-mapped, not copied."""
    try:
        return np.load(source, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as error:
        raise InputError(f"cannot read this .npy file: {error}") from None
    except (OSError, EOFError) as error:
        raise InputError(f"cannot read this .npy file: {error}") from None


def load_npz(source, key: str | None, preferred: str) -> np.ndarray:
    """One member of an ``.npz`` archive, chosen by :func:`_pick`, pickles disallowed."""
    import zipfile

    try:
        with np.load(source, allow_pickle=False) as archive:
            name = _pick(list(archive.files), key, preferred)
            try:
                return archive[name]
            except ValueError as error:
                raise InputError(f"cannot read array {name!r}: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise InputError(f"cannot read this .npz file: {error}") from None


# ---------------------------------------------------------------- sources

def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text, .npy or .npz (byte {error.start})") from None


def _sniffed(data: bytes, key: str | None, preferred: str) -> tuple[np.ndarray, list[str] | None]:
    """Standard input by its content: .npy magic, .npz (zip) magic, JSON, else delimited text."""
    if data.startswith(NPY_MAGIC):
        return load_npy(io.BytesIO(data), mmap=False), None
    if data.startswith(ZIP_MAGIC):
        return load_npz(io.BytesIO(data), key, preferred), None
    text = _decode(data)
    if text.lstrip()[:1] in ("[", "{"):
        return parse_json(text, key, preferred)
    return parse_delimited(text)


def read_stdin() -> bytes:
    """All of standard input; empty input is a usage error with an example."""
    data = sys.stdin.buffer.read()
    if not data.strip():
        raise UsageError(f"standard input is empty; {USAGE_EXAMPLE}")
    return data


def load_source(source: str, key: str | None = None, preferred: str = "logits") -> Loaded:
    """Read one file (by extension) or ``-`` (standard input, sniffed)."""
    if source == STDIN:
        try:
            array, classes = _sniffed(read_stdin(), key, preferred)
        except InputError as error:
            raise error.located(STDIN_NAME) from None
        return Loaded(check_dtype(array), STDIN_NAME, classes)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"cannot tell the format of {source!r}; use one of {', '.join(SUFFIXES)} or - for standard input")
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", where=source)
    classes = None
    try:
        if suffix == ".npy":
            array = load_npy(path, mmap=True)
        elif suffix == ".npz":
            array = load_npz(path, key, preferred)
        else:
            text = _decode(path.read_bytes())
            if suffix == ".json":
                array, classes = parse_json(text, key, preferred)
            elif suffix == ".jsonl":
                array = parse_json_lines(text)
            else:
                array, classes = parse_delimited(text)
        check_dtype(array)
    except InputError as error:
        raise error.located(source) from None
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=source) from None
    return Loaded(array, source, classes, [path])


def load_array(inputs: list[str] | None, key: str | None = None, preferred: str = "logits") -> Loaded:
    """The array given by positional ``INPUTS``: typed numbers, one source, or piped stdin."""
    if not inputs:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(f"no input; {USAGE_EXAMPLE}")
        return load_source(STDIN, key, preferred)
    typed = parse_typed_numbers(inputs)
    if typed is not None:
        return Loaded(typed)
    if any(is_number_text(token) for token in inputs):
        odd = next(token for token in inputs if not is_number_text(token))
        raise UsageError(f"{odd!r} is not a number; INPUTS are either all numbers or all sources")
    if len(inputs) > 1:
        raise UsageError(f"expected one source, got {len(inputs)}: {' '.join(inputs)}")
    return load_source(inputs[0], key, preferred)


def parse_class_names(value: str) -> list[str]:
    """``--classes``: a file with one name a line, else comma-separated names."""
    path = Path(value)
    if path.is_file():
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read class names: {error}", where=value) from None
    else:
        names = [name.strip() for name in value.split(",")]
    if not names or any(not name for name in names):
        raise InputError(f"--classes needs non-empty names, got {value!r}")
    return names


def load_logits(inputs: list[str] | None, *, key: str | None, classes: str | None, axis: int) -> Loaded:
    """Logits plus class names (``--classes`` wins over a header), checked against the class axis."""
    loaded = load_array(inputs, key)
    names = parse_class_names(classes) if classes is not None else loaded.classes
    array = loaded.array
    if not -array.ndim <= axis < array.ndim:
        raise UsageError(f"--axis {axis} is out of range for an array of shape {array.shape}")
    if names is not None and len(names) != array.shape[axis]:
        where = "--classes" if classes is not None else "header"
        raise InputError(
            f"{len(names)} class names for {array.shape[axis]} classes (shape {array.shape}, axis {axis})",
            where=where,
        )
    loaded.classes = names
    return loaded


def load_option_array(spec: str, option: str, preferred: str) -> Loaded:
    """An array given to an option (``--labels 0,2,1``, ``--weights w.npy``): numbers or a source.

    From an ``.npz`` or a JSON object, the array named ``preferred`` is taken
    when there are several.
    """
    typed = parse_typed_numbers([spec])
    if typed is not None:
        return Loaded(typed, option)
    try:
        return load_source(spec, None, preferred=preferred)
    except InputError as error:
        raise error.located(option) from None
