"""Arrays from arguments, files and standard input.

Numbers typed as arguments, delimited text, JSON, JSON lines, ``.npy`` and
``.npz`` all become an ndarray (plus class names when the source has them).
Every problem is an :class:`InputError` naming the file, line and column.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import check_temperature
from .errors import InputError, UsageError
from .textformats import (
    is_number_text,
    parse_delimited,
    parse_json,
    parse_json_lines,
    parse_typed_numbers,
    pick_member,
)

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


@dataclass
class Loaded:
    """An array read from one source, with what is known about it."""

    array: np.ndarray
    source: str | None = None  # a file path, "<stdin>", or None for typed numbers
    classes: list[str] | None = None
    paths: list[Path] = field(default_factory=list)  # files read, never to be overwritten


def check_dtype(array: np.ndarray) -> np.ndarray:
    """Refuse dtypes that are not real numbers (complex, object, strings, records, dates)."""
    if array.dtype.kind not in "fiub":
        raise InputError(f"arrays of dtype {array.dtype} are not supported; expected real numbers")
    if array.ndim == 0:
        raise InputError("expected an array, got a single scalar")
    if array.size == 0:
        raise InputError(f"the array is empty (shape {array.shape})")
    return array


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
            name = pick_member(list(archive.files), key, preferred)
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


DEFAULT_TEMPERATURES = "0.1,0.178,0.316,0.562,1,1.78,3.16,5.62,10"


def parse_temperatures(temperatures: str | None, temperature_range: str | None, log_space: bool) -> np.ndarray:
    """``--temperatures 0.5,1,2`` or ``--range START:STOP:NUM`` (``--log-space``), checked."""
    if temperatures is not None and temperature_range is not None:
        raise UsageError("give --temperatures or --range, not both")
    if temperature_range is None:
        values = []
        for text in (temperatures or DEFAULT_TEMPERATURES).split(","):
            try:
                values.append(check_temperature(float(text)))
            except ValueError:
                raise InputError(f"temperature {text.strip()!r} is not a number", where="--temperatures") from None
        return np.array(values)
    parts = temperature_range.split(":")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise UsageError(f"--range takes START:STOP:NUM, e.g. 0.5:4:8, got {temperature_range!r}") from None
    for end in (start, stop):
        check_temperature(end)
    if count < 1:
        raise UsageError(f"--range needs NUM >= 1, got {count}")
    return np.geomspace(start, stop, count) if log_space else np.linspace(start, stop, count)


def load_attention_operands(inputs: list[str] | None, mask: str | None) -> tuple[list[Loaded], Loaded | None]:
    """Q, K and V (and the mask) from three sources or numbers, or one .npz holding q, k, v (and mask)."""
    if inputs and len(inputs) == 1 and inputs[0].lower().endswith(".npz"):
        operands = [load_source(inputs[0], name, name) for name in ("q", "k", "v")]
        if mask is None:
            try:
                return operands, load_source(inputs[0], "mask", "mask")
            except InputError:  # the archive has no mask: none was asked for
                return operands, None
    elif inputs and len(inputs) == 3:
        operands = [load_option_array(item, name, name) for item, name in zip(inputs, ("Q", "K", "V"))]
    else:
        raise UsageError("give Q K V (three sources or quoted numbers like '1 0; 0 1'), or one .npz holding "
                         "q, k and v")
    return operands, None if mask is None else load_option_array(mask, "--mask", "mask")
