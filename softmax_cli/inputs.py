"""Arrays from arguments, files and standard input, as the commands ask for them.

Numbers typed as arguments are parsed here; a file is read by the format its
extension names, standard input by the format its content shows (both chosen
in :mod:`softmax_cli.formats.registry`). Either way the result is an ndarray
(plus class names when the source has them). Every problem is an
:class:`InputError` naming the file, line and column.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import check_temperature
from .errors import InputError, SoftmaxError, UsageError
from .formats import registry
from .formats.base import Source
from .formats.text import parse_number

STDIN = "-"
STDIN_NAME = "<stdin>"
# Separators between numbers typed as arguments: commas and white space; ';' ends a row.
_FIELD_SPLIT = re.compile(r"[,\s]+")
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


Operands = Mapping[str, "Loaded | None"]


def locate(error: SoftmaxError, logits_source: str | None, operands: Operands) -> SoftmaxError:
    """Name the source that holds the bad value: the operand's the error is about, else the logits'.

    The core tags errors about an input other than the logits with ``operand``
    (``labels``, ``weights``, ``upstream``, ``mask``, ``q``...); ``operands``
    maps those names to what was loaded for them. An operand the command did
    not load names no file rather than the wrong one. A source already named
    (by the loader) is not named twice.
    """
    if error.operand is None:
        name = logits_source
    else:
        holder = operands.get(error.operand)
        name = holder.source if holder is not None else None
    where = error.where or ""
    if not name or where == name or where.startswith(f"{name}, "):
        return error
    return error.located(name)


@contextmanager
def naming_sources(logits: Loaded | None, operands: Operands) -> Iterator[None]:
    """Within this block, errors name the source holding the bad value (see :func:`locate`)."""
    try:
        yield
    except SoftmaxError as error:
        raise locate(error, logits.source if logits else None, operands) from None


def check_dtype(array: np.ndarray) -> np.ndarray:
    """Refuse dtypes that are not real numbers (complex, object, strings, records, dates)."""
    if array.dtype.kind not in "fiub":
        raise InputError(f"arrays of dtype {array.dtype} are not supported; expected real numbers")
    if array.ndim == 0:
        raise InputError("expected an array, got a single scalar")
    if array.size == 0:
        raise InputError(f"the array is empty (shape {array.shape})")
    return array


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
            given = Source(None, read_stdin())
            array, classes = registry.sniff(given).read(given, key, preferred)
        except InputError as error:
            raise error.located(STDIN_NAME) from None
        return Loaded(check_dtype(array), STDIN_NAME, classes)
    path = Path(source)
    fmt = registry.by_suffix(path)
    if fmt is None or fmt.read is None:
        raise InputError(f"cannot tell the format of {source!r}; use one of {', '.join(registry.SUFFIXES)} "
                         "or - for standard input")
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", where=source)
    try:
        array, classes = fmt.read(Source(path), key, preferred)
        check_dtype(array)
    except InputError as error:
        raise error.located(source) from None
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=source) from None
    return Loaded(array, source, classes, [path])


# ---------------------------------------------------------------- numbers typed as arguments

def _typed_rows(token: str) -> list[list[float]] | None:
    """Rows of numbers in one argument (``"1 2; 3 4"``), or None if it is not numbers."""
    rows = []
    for part in token.split(";"):
        fields = [f for f in _FIELD_SPLIT.split(part.strip()) if f]
        values = [parse_number(f) for f in fields]
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


# ---------------------------------------------------------------- sources

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
    if inputs and len(inputs) == 1 and registry.by_suffix(inputs[0]) is registry.named("npz"):
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
