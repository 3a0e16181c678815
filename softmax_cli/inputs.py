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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import cycle
from pathlib import Path

import numpy as np

from .errors import InputError, UsageError
from .formats import registry
from .formats.base import Source, Table, bfloat16, check_unique_names, is_bfloat16, parse_number
from .limits import describe_bytes

STDIN = "-"
STDIN_NAME = "<stdin>"
# Separators between numbers typed as arguments: commas and white space; ';' ends a row.
FIELD_SPLIT = re.compile(r"[,\s]+")
NUMBER_RUN = re.compile(r"(\d+)")  # split keeps the runs: text and numbers alternate, text first
USAGE_EXAMPLE = (
    "give logits as numbers (softmax probs 3 2 1), as a file (softmax probs logits.npy) "
    "or on standard input (cat logits.csv | softmax probs)"
)


@dataclass(repr=False, eq=False)  # arrays: no meaningful ==; no generated __repr__/__eq__ to compile at start-up
class Loaded:
    """An array read from one source, with what is known about it."""

    array: np.ndarray
    source: str | None = None  # a file path, "<stdin>", or None for typed numbers
    classes: list[str] | None = None
    paths: list[Path] = field(default_factory=list)  # files read, never to be overwritten
    rows: list[str] | None = None  # row names from an index column, as the file writes them
    index_name: str | None = None  # the index column's header field ("" for pandas' unnamed index)
    notes: list[str] = field(default_factory=list)  # how the source was read, for the user
    from_text: bool = False  # numbers written as text (typed, or a text file), so no dtype says what they are
    numbered_first_row: bool = False  # a first row 0..C-1 read as data (see Table)
    locate: Callable[[tuple[int, ...]], tuple[int, int]] | None = None  # an array index as (line, column) in the text
    key: str | None = None  # the --key it was read with, so a streamed pass reads the same member
    derived: bool = False  # computed from the file's values (--from-probs' logs): the file cannot stand in for it
    integer_columns: int = 0  # leading named columns of integer text (see Table)
    range_rows: bool = False  # rows named 0..N-1 by a RangeIndex kept in the file's metadata (see Table)
    first_column_as_rows: bool = False  # --index-col would read the first column as row names (see Table)

    @classmethod
    def of(cls, table: Table, source: str, paths: list[Path], from_text: bool, key: str | None = None) -> Loaded:
        return cls(check_dtype(table.array), source, table.classes, paths, table.rows, table.index_name,
                   table.notes, from_text, table.numbered_first_row, table.locate, key,
                   integer_columns=table.integer_columns, range_rows=table.range_rows,
                   first_column_as_rows=table.first_column_as_rows)

    @property
    def row_names(self) -> list[str] | None:
        """The rows' names: an index column's, or 0..N-1 of a RangeIndex kept in the metadata (as pandas reads it)."""
        if self.rows is None and self.range_rows and self.array.ndim:
            return [str(position) for position in range(len(self.array))]
        return self.rows


def check_dtype(array: np.ndarray) -> np.ndarray:
    """Refuse dtypes that are not real numbers (complex, object, strings, records, dates)."""
    if array.dtype.kind not in "fiub" and not is_bfloat16(array.dtype):
        raise InputError(f"arrays of dtype {array.dtype} are not supported; expected real numbers")
    if array.ndim == 0:
        raise InputError("expected an array, got a single scalar")
    refuse_empty(array.shape)
    return array


def in_natural_order(paths: Iterable[Path]) -> list[Path]:
    """A folder's files as people number them: ``part-2`` before ``part-10`` (runs of digits compared as numbers),
    so shards written without zero padding are read in the order they were written."""
    def key(path: Path) -> tuple[list, str]:
        return [int(part) if odd else part for odd, part in zip(cycle((0, 1)), NUMBER_RUN.split(path.name))], path.name

    return sorted(paths, key=key)


def refuse_empty(shape: tuple[int, ...]) -> None:
    """Refuse an array with no values: no rows, or rows of no classes (the cluster checks its headers' shapes)."""
    if 0 in shape:
        raise InputError(f"the array is empty (shape {tuple(shape)})")


def read_stdin() -> bytes:
    """All of standard input; empty input is a usage error with an example."""
    data = sys.stdin.buffer.read()
    if not data.strip():
        raise UsageError(f"standard input is empty; {USAGE_EXAMPLE}")
    return data


def read_voids(array: np.ndarray, void_as: str | None) -> np.ndarray:
    """2-byte voids (how ``np.save`` writes ml_dtypes' bfloat16) as ``void_as``, which must be asked for."""
    dtype = array.dtype
    if dtype.kind != "V" or dtype.names or dtype.itemsize != 2 or is_bfloat16(dtype):
        return array
    if void_as is None:
        raise InputError("the array holds 2-byte void values, which is how np.save writes bfloat16; "
                         "read them as bfloat16 with --void-as bfloat16")
    return array.view(bfloat16())


def _loaded(fmt, given: Source, key: str | None, preferred: str, void_as: str | None, name: str,
            paths: list[Path]) -> Loaded:
    """What ``fmt`` reads from ``given``, its voids read as ``void_as``, named ``name``."""
    table = fmt.read(given, key, preferred)
    table.array = read_voids(table.array, void_as)
    return Loaded.of(table, name, paths, not fmt.binary, key)


def load_source(source: str, key: str | None = None, preferred: str = "logits", void_as: str | None = None,
                **choices) -> Loaded:
    """Read one file (by extension; sniffed like standard input without one) or ``-`` (standard input).

    ``choices`` are how a table is read (:class:`~softmax_cli.formats.base.Source`'s
    ``header`` and ``index_col``); ``void_as`` is the dtype 2-byte voids are read as.
    """
    if source == STDIN:
        try:
            given = Source(None, read_stdin(), **choices)
            return _loaded(registry.sniff(given), given, key, preferred, void_as, STDIN_NAME, [])
        except InputError as error:
            raise error.located(STDIN_NAME) from None
    path = Path(source)
    if registry.is_zarr_array(path):
        raise UsageError(registry.zarr_refusal(path, preferred), where=source)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", where=source)
    refusal = registry.refusal(path)
    if refusal is not None:
        raise InputError(refusal, where=source)
    fmt, given = registry.by_suffix(path), Source(path, **choices)
    try:
        if fmt is None and not path.suffix:
            fmt = registry.sniff(given)
        if fmt is None or fmt.reads is None:
            raise InputError(f"cannot tell the format of {source!r}; use one of {', '.join(registry.SUFFIXES)} "
                             "or - for standard input")
        return _loaded(fmt, given, key, preferred, void_as, source, [path])
    except InputError as error:
        raise error.located(source) from None
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=source) from None
    except MemoryError:
        # A text file's numbers take many times its size while parsed; binary sizes are checked up front.
        raise InputError(f"the file ({describe_bytes(path.stat().st_size)}) does not fit in the memory this "
                         "process can use once parsed; a large input is best given as .npy", where=source) from None


# ---------------------------------------------------------------- numbers typed as arguments

def _typed_rows(token: str) -> list[list[float]] | None:
    """Rows of numbers in one argument (``"1 2; 3 4"``), or None if it is not numbers."""
    rows = []
    for part in token.split(";"):
        fields = [f for f in FIELD_SPLIT.split(part.strip()) if f]
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

    Single numbers are joined, so ``3 2 1``, ``3, 2, 1`` and ``"3 2 1"`` are one
    row; ``;`` splits rows: ``"1 2 3; 4 5 6"``. Arguments that each hold several
    numbers (``1,2,3 4,5,6``) are rows each, never run together into one. One
    row is a vector.
    """
    parsed = [_typed_rows(token) for token in tokens]
    several = len(tokens) > 1 and all(parsed) and any(sum(map(len, rows)) > 1 for rows in parsed if rows)
    rows = [row for token_rows in parsed if token_rows for row in token_rows] if several else \
        _typed_rows(" ".join(tokens))
    if rows is None:
        return None
    width = len(rows[0])
    for number, row in enumerate(rows):
        if len(row) != width:
            if several:
                example = "; ".join(token.strip() for token in tokens)
                raise InputError(f"rows of {width} and {len(row)} numbers: an argument holding several numbers is "
                                 f'one row, and rows need the same length (as one argument: "{example}")',
                                 where="arguments")
            raise InputError(
                f"row {number} has {len(row)} numbers but row 0 has {width}; rows are split by ';'",
                where="arguments",
            )
    array = np.array(rows, dtype=np.float64)
    return array[0] if len(rows) == 1 else array


# ---------------------------------------------------------------- sources

def load_array(inputs: list[str] | None, key: str | None = None, preferred: str = "logits",
               void_as: str | None = None, **choices) -> Loaded:
    """The array given by positional ``INPUTS``: typed numbers, one source, or piped stdin."""
    if not inputs:
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(f"no input; {USAGE_EXAMPLE}")
        return load_source(STDIN, key, preferred, void_as, **choices)
    typed = parse_typed_numbers(inputs)
    if typed is not None:
        return Loaded(typed, from_text=True)
    if any(is_number_text(token) for token in inputs):
        odd = next(token for token in inputs if not is_number_text(token))
        raise UsageError(f"{odd!r} is not a number; INPUTS are either all numbers or all sources")
    if len(inputs) > 1:
        raise UsageError(f"expected one source, got {len(inputs)}: {' '.join(inputs)}")
    return load_source(inputs[0], key, preferred, void_as, **choices)


def parse_class_names(value: str) -> list[str]:
    """``--classes``: a file with one name a line, else comma-separated names."""
    path = Path(value)
    if path.is_file():
        try:
            # utf-8-sig: a byte-order mark (Notepad, Excel's "UTF-8 CSV") is not part of the first name.
            names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read class names: {error}", where=value) from None
    else:
        names = [name.strip() for name in value.split(",")]
    if not names or any(not name for name in names):
        raise InputError(f"--classes needs non-empty names, got {value!r}")
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive from the command line as lone surrogates
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InputError(f"class name '{shown}' is not valid UTF-8", where="--classes") from None
    return names


def load_logits(inputs: list[str] | None, *, key: str | None, classes: str | None, axis: int,
                void_as: str | None = None, header: str = "auto", index_col: bool | None = None,
                leave_out: str | None = None) -> Loaded:
    """Logits plus class names (``--classes`` wins over a header), checked against the class axis.

    Row names (an index column) are kept only while the rows are the file's
    rows, that is, when the classes are the last axis.
    """
    loaded = load_array(inputs, key, void_as=void_as, header=header, index_col=index_col, leave_out=leave_out)
    if loaded.array.ndim == 1 and loaded.rows is not None:
        # One column of logits is one vector (as np.loadtxt), so its index names the classes:
        # pd.Series(logits, index=class_names).to_csv().
        loaded.classes, loaded.rows, loaded.index_name = loaded.rows, None, None
    if loaded.array.ndim < 2:
        loaded.range_rows = False  # one vector is one row: its positions are classes
    names = parse_class_names(classes) if classes is not None else loaded.classes
    if classes is not None and loaded.classes is not None and names != loaded.classes \
            and sorted(names) == sorted(loaded.classes):
        moved = next(given for given, header in zip(names, loaded.classes) if given != header)
        raise InputError(f"--classes names the header's classes in another order: it names the columns by "
                         f"position, so the column headed {loaded.classes[names.index(moved)]!r} would be called "
                         f"{moved!r}; leave out --classes to keep the header's names, or give them in its order",
                         where="--classes")
    if classes is not None and Path(classes).is_file():
        loaded.paths.append(Path(classes))  # an input like the logits: never an output
    array = loaded.array
    if not -array.ndim <= axis < array.ndim:
        raise UsageError(f"--axis {axis} is out of range for an array of shape {array.shape}")
    if names is not None:
        where = "--classes" if classes is not None else "header"
        try:
            if len(names) != array.shape[axis]:
                if classes is None and len(names) == 1 and array.ndim == 1:
                    raise InputError(
                        f"one column ({names[0]!r}) of {array.shape[0]} numbers, which is one vector, not "
                        f"{array.shape[0]} rows of logits: logits need one column a class; for a binary classifier's "
                        "scores s, one a row, write two columns, 0 and s", where=where)
                raise InputError(
                    f"{len(names)} class names for {array.shape[axis]} classes (shape {array.shape}, axis {axis})",
                    where=where,
                )
            check_unique_names(names, where)
        except InputError as error:
            # A header is the file's: the error names the file; --classes is named as the option.
            raise (error if classes is not None else error.located(loaded.source or "")) from None
    loaded.classes = names
    if axis % array.ndim != array.ndim - 1:
        loaded.rows = loaded.index_name = None
        loaded.range_rows = False
    if loaded.locate is not None:
        _check_values_in_text(loaded.array, axis, loaded.locate, loaded.source or "arguments")
    return loaded


def _check_values_in_text(array: np.ndarray, axis: int, locate: Callable[[tuple[int, ...]], tuple[int, int]],
                          source: str) -> None:
    """Refuse NaN and +inf in logits read from text, naming the line and column besides the array index."""
    from .core import check_logits

    try:
        check_logits(array, axis=axis, masked_rows="nan")
    except InputError as error:
        # The core names the first bad value in row order along the class axis; find the same one.
        along = np.moveaxis(array, axis, -1)
        flat = int(np.argmax(np.isnan(along) | (along == np.inf)))
        index = list(np.unravel_index(flat, along.shape))
        index.insert(axis % array.ndim, index.pop())
        error.line, error.column = locate(tuple(int(i) for i in index))
        raise error.located(source) from None


def align_classes(reference: Loaded, candidate: Loaded, axis: int, roles: tuple[str, str],
                  remedy: str = "give --classes to compare them by position") -> Loaded:
    """``candidate`` with its classes in ``reference``'s order, when both name them.

    Named classes are matched by name, never by position: the same names in
    another order are reordered along ``axis``; different names are refused
    (the message ends with ``remedy``). A side without names is taken by
    position, except against classes named 0, 1, ... in another order
    (``df[[3, 2, 1, 0]]``): by position or by those numbers, both are likely.
    """
    if (reference.classes is None) != (candidate.classes is None):
        named, (named_role, unnamed_role) = ((reference, roles) if reference.classes is not None
                                             else (candidate, roles[::-1]))
        count = named.array.shape[axis] if named.array.ndim else 0
        if shuffled_positions(named.classes, count) is not None:
            raise InputError(f"the classes of {named_role} are named 0..{count - 1} in another order "
                             f"({', '.join(named.classes[:4])}{', ...' if count > 4 else ''}) and those of "
                             f"{unnamed_role} have no names, so they pair by position or by those numbers, which "
                             "differ; give both sides the same class names, or write both without them")
    if reference.classes is None or candidate.classes is None or reference.classes == candidate.classes:
        return candidate
    missing = [name for name in reference.classes if name not in candidate.classes]
    extra = [name for name in candidate.classes if name not in reference.classes]
    if missing or extra:
        shown = "; ".join(f"{role} alone has {', '.join(map(repr, names[:5]))}{' …' * (len(names) > 5)}"
                          for role, names in zip(roles, (missing, extra)) if names)
        raise InputError(f"{roles[0]} and {roles[1]} name different classes ({shown}); {remedy}")
    order = [candidate.classes.index(name) for name in reference.classes]
    return replace(candidate, array=np.take(candidate.array, order, axis=axis), classes=list(reference.classes))


def align_rows(reference: Loaded, other: Loaded, roles: tuple[str, str]) -> Loaded:
    """``other`` with its rows in ``reference``'s order, when both name them (a table's index column).

    Named rows are matched by name, never by position: the same names in
    another order (``df.sample(frac=1)``, a re-sorted file) are reordered along
    the first axis; other names are refused. A side without names is taken by
    position, except against rows named 0, 1, ... in another order (a shuffled
    pandas RangeIndex): by position or by those numbers, both are likely, so
    that is refused, unless that side is a Parquet file whose RangeIndex is
    kept in its metadata: ``pd.read_parquet`` names its rows 0..N-1 by it, and
    so they pair by name.
    """
    from .formats.base import note

    if reference.rows is None or other.rows is None:
        named, (named_role, unnamed_role) = (other, roles[::-1]) if other.rows is not None else (reference, roles)
        if shuffled_positions(named.rows, len(named.array) if named.array.ndim else 0) is None:
            return other
        unnamed = reference if named is other else other
        if unnamed.range_rows and len(unnamed.row_names or ()) == len(named.rows):
            return align_rows(*(replace(side, rows=side.row_names) for side in (reference, other)), roles)
        raise InputError(f"the rows of {named_role} are named 0..{len(named.rows) - 1} in another order (a "
                         f"shuffled pandas index) and those of {unnamed_role} have no names, so they pair by "
                         "position or by those numbers, which differ; write both with their index, or both without "
                         "(index=False; df.reset_index(drop=True) first to pair by position)")
    if reference.rows == other.rows:
        return other

    unique = len(set(reference.rows)) == len(reference.rows)
    if unique and len(other.rows) == len(reference.rows) and set(other.rows) == set(reference.rows):
        where = {name: position for position, name in enumerate(other.rows)}
        note(f"the rows of {roles[1]} reordered by their names to those of {roles[0]}")
        return replace(other, array=np.take(other.array, [where[name] for name in reference.rows], axis=0),
                       rows=list(reference.rows))
    row = next((i for i, (a, b) in enumerate(zip(reference.rows, other.rows)) if a != b),
               min(len(reference.rows), len(other.rows)))
    named = [f"{role} {names[row]!r}" if row < len(names) else f"{role} no row"
             for role, names in zip(roles, (reference.rows, other.rows))]
    raise InputError(f"{roles[0]} and {roles[1]} name their rows differently (row {row}: {named[0]}, {named[1]}); "
                     "give both the same row names, or write one side without them (pandas: index=False)")


def shuffled_positions(names: list[str] | None, count: int) -> list[int] | None:
    """The positions 0..count-1 that ``names`` spell, in their order, when they are those numbers out of order."""
    numbers = class_numbers(names) if names is not None and len(names) == count else None
    return numbers if numbers is not None and sorted(numbers) == list(range(count)) else None


# A whole number as pandas writes a column name: 3, -1, or 3.0 for a float (never 03).
CLASS_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.0+)?")


def class_numbers(names: list[str] | None) -> list[int] | None:
    """The numbers ``names`` spell, when they are distinct whole numbers as pandas writes them (``3``, ``3.0``,
    ``-1``; not ``03``) and not simply the positions 0, 1, 2, ... (scikit-learn's ``classes_`` [0, 2, 5],
    [1, 2, 3], [-1, 1], [1.0, 2.0, 3.0], or [2, 0, 1])."""
    if names is None or len(names) < 2 or not all(CLASS_NUMBER.fullmatch(name) for name in names):
        return None
    numbers = [int(float(name)) for name in names]
    return numbers if len(set(numbers)) == len(numbers) and numbers != list(range(len(names))) else None


def check_one_stdin(inputs: list[str] | None, what: str = "INPUTS", **options: str | None) -> None:
    """Refuse two readers of standard input (``softmax loss - --labels -``) before either reads it."""
    takers = [what] if not inputs or STDIN in inputs else []
    takers += [f"--{name.replace('_', '-')}" for name, value in options.items() if value == STDIN]
    refuse_readers(takers)


def refuse_readers(takers: list[str]) -> None:
    """One reader of standard input at most: ``takers`` name every argument or option given ``-``."""
    if len(takers) > 1:
        raise UsageError(f"standard input can feed only one of {' and '.join(takers)}; give the other as a file")



# ---------------------------------------------------------------- inputs that are not the logits they stand for

def refuse_label_columns(loaded: Loaded, axis: int, takes_labels: bool, first_is_class: bool = False,
                         probabilities: bool = False) -> None:
    """Refuse a table whose class columns include one that is not a class: the row positions pandas leaves
    as a column (0, 1, ... under ``index``, ``level_0`` or ``Unnamed: 0``, or a first column under any name
    beside fractional logits, or the first column of a text table without a header so, unless
    ``first_is_class``: ``--no-index-col``), the levels of a named index
    (leading columns of a text table written as integers beside fractional logits, unless ``first_is_class``),
    labels (a label's name, whole numbers), or a column whole in every row beside logits that mostly are not
    (an id, a flag), but for ``probabilities`` (``--from-probs``): a class of 0 and 1 beside fractions is what a
    pure leaf gives, and an id or flag would not sum to 1 with the rest, which ``--from-probs`` checks."""
    from .core import (
        first_column_positions,
        index_level_columns,
        label_like_columns,
        row_position_columns,
        whole_number_columns,
    )
    from .core.plausibility import ROW_POSITION_COLUMN

    if axis % loaded.array.ndim != loaded.array.ndim - 1:
        return
    if loaded.classes is None and loaded.from_text and not first_is_class and first_column_positions(loaded.array):
        raise InputError(f"the first column holds the row positions 0..{loaded.array.shape[0] - 1} beside logits that "
                         "are not whole numbers, as an index written without a header does (pandas: "
                         "df.to_csv(header=False)), not a class; read it as row names with --index-col, or keep it "
                         "as a class with --no-index-col", where=loaded.source or "arguments")
    positions = row_position_columns(loaded.classes, loaded.array)
    if positions and first_is_class and not ROW_POSITION_COLUMN.fullmatch(positions[0]):
        positions = []
    if positions:
        last = loaded.array.shape[0] - 1
        if ROW_POSITION_COLUMN.fullmatch(positions[0]):
            raise InputError(f"column {positions[0]!r} holds the row positions 0..{last}, as pandas' reset_index() "
                             "or a re-saved CSV leaves them, not a class; drop it from the table, or keep it as a "
                             "class with --as-logits", where=loaded.source or "arguments")
        remedy = ("read it as row names with --index-col"
                  if loaded.first_column_as_rows and positions[0] == loaded.classes[0] else "drop it from the table")
        raise InputError(f"column {positions[0]!r} holds the row positions 0..{last} beside logits that are not "
                         f"whole numbers, as a named index or a row counter does, not a class; {remedy}, or keep "
                         "it as a class with --as-logits", where=loaded.source or "arguments")
    found = label_like_columns(loaded.classes, loaded.array)
    if found:
        name, where = found[0], loaded.source or "arguments"
        remedy = (f"score against it with --labels {where} --labels-key {name}" if takes_labels and loaded.paths
                  else "drop it from the table")  # standard input cannot be read twice, for the labels too
        raise InputError(f"column {name!r} holds whole numbers under a label's name, so it looks like labels, not "
                         f"a class; {remedy}, or keep it as a class with --as-logits", where=where)
    levels = [] if first_is_class else index_level_columns(loaded.classes, loaded.array, loaded.integer_columns)
    if levels:
        named, hold, them = (f"columns {', '.join(map(repr, levels))}", "hold", "them") if len(levels) > 1 else (
            f"column {levels[0]!r}", "holds", "it")
        raise InputError(f"{named} {hold} only integers beside logits that are not whole numbers, as the levels of "
                         f"a named index do (pandas: df.set_index(...).to_csv()), not classes; read {them} as row "
                         f"names with --index-col, or keep {them} as classes with --no-index-col",
                         where=loaded.source or "arguments")
    whole = [] if probabilities else [name for name in whole_number_columns(loaded.classes, loaded.array)
                                      if not (first_is_class and name == loaded.classes[0])]
    if whole:
        name = whole[0]
        column = loaded.array[:, loaded.classes.index(name)]
        shown = ", ".join(f"{value:g}" for value in column[:3].tolist()) + (", ..." if len(column) > 3 else "")
        remedy = ("read it as row names with --index-col" if loaded.first_column_as_rows and name == loaded.classes[0]
                  else "drop it from the table")
        raise InputError(f"column {name!r} holds whole numbers in every row ({shown}) beside logits that mostly "
                         "are not, as an id, a flag, a count or labels do, not a class; "
                         f"{remedy}, or keep it as a class with --as-logits", where=loaded.source or "arguments")


def refuse_probabilities(loaded: Loaded, axis: int) -> None:
    """Refuse logits that read as probabilities (see :func:`softmax_cli.core.probability_shaped`), along the class
    axis or, for a table, across it."""
    from .core import probability_shaped, probability_tolerance
    from .core.plausibility import PROBABILITY_CHECK_ROWS

    if probability_shaped(loaded.array, axis):
        rounded = not probability_shaped(loaded.array, axis, rounding=False)
        within = "the rounding of their decimals" if rounded else f"{probability_tolerance(loaded.array.dtype):g}"
        read = ("normalise them (p / p.sum(axis=-1, keepdims=True)) and read them as probabilities with --from-probs"
                if rounded else "read them as probabilities with --from-probs")
        raise InputError(f"these look like probabilities, not logits: every row is in [0, 1] and sums to 1 (within "
                         f"{within}); {read}, or insist they are logits with --as-logits",
                         where=loaded.source or "arguments")
    if probability_shaped(loaded.array, axis, total=100):
        raise InputError("these look like percentages, not logits: every row is in [0, 100] and sums to 100; divide "
                         "them by 100 and read them with --from-probs, or insist they are logits with --as-logits",
                         where=loaded.source or "arguments")
    array = loaded.array
    across = 1 - axis % 2 if array.ndim == 2 else None
    # A classifier's probabilities saved one class a row (predict_proba(X).T): their columns are distributions.
    # Only a few rows can be classes; a (N, C) file is not read column by column for this.
    if across is not None and array.shape[across] <= PROBABILITY_CHECK_ROWS and probability_shaped(array, across):
        raise InputError(f"these look like probabilities with the classes along axis {across - 2} (transposed, "
                         f"{array.shape[across]} classes): every {'column' if across == 0 else 'row'} is in [0, 1] "
                         f"and sums to 1; read them with --axis {across - 2} --from-probs (or transpose them, p.T), or "
                         "insist they are logits with --as-logits", where=loaded.source or "arguments")


def log_of_probabilities(loaded: Loaded, axis: int = -1) -> Loaded:
    """``--from-probs`` where logits are computed with: log p (log 0 = -inf), so softmax gives p back.

    Each row along ``axis`` must be a distribution (:func:`softmax_cli.core.crossentropy_inputs.check_probs`,
    as for the loss and compare)."""
    from .core.blocks import as_rows, check_axis
    from .core.crossentropy_inputs import check_probs

    array = np.asarray(loaded.array)
    if array.dtype.kind != "f" and not is_bfloat16(array.dtype):
        array = array.astype(np.float64)
    try:
        axis = check_axis(array.ndim, axis)
        rows = as_rows(array, axis)
        check_probs(rows.astype(np.float64) if is_bfloat16(array.dtype) else rows, array.shape, axis, 0, array.dtype)
    except InputError as error:
        raise error.located(loaded.source or "arguments") from None
    with np.errstate(divide="ignore"):
        logged = np.log(array)
    return replace(loaded, array=logged, derived=True)
