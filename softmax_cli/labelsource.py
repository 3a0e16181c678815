"""``--labels`` and ``--labels-key``: labels read once, then fitted to each input's logits.

:func:`read_labels` reads what ``--labels`` names (typed numbers or class
names, a labels file, a column of a table or a member of an archive chosen by
``--labels-key``); :meth:`LabelSource.fitted` gives the labels as they fit one
input's logits. Fitting maps class names through the logits' class names,
drops the header line pandas writes above an unnamed Series, reads a column
vector ``(N, 1)`` and flat ``(B*T,)`` labels as one label a row (with a note),
and refuses shapes that are a known mistake (one position short: next-token
labels; a count that fits another class axis) saying what to type instead.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from .core.blocks import value_text
from .errors import InputError, UsageError
from .formats import registry
from .formats.base import Source, distinct_ids, missing_value, note, parse_number
from .inputs import STDIN, Loaded, align_classes, align_rows, class_numbers, load_source, parse_typed_numbers

OPTION = "--labels"


@dataclasses.dataclass
class LabelSource:
    """What ``--labels`` gave: numbers (``loaded.array``), or class names to be looked up in the logits' classes.

    ``names_with_header`` says the first name may be the column's name rather
    than a label: that is settled against the logits' class names. A
    ``refusal`` is raised when the labels are used, after the logits' own
    checks (a labels table that is the logits' file is refused there, in
    the logits' words).
    """

    loaded: Loaded
    key: str | None = None
    names: list[str] | None = None
    names_with_header: bool = False
    refusal: InputError | None = None

    @property
    def source(self) -> str | None:
        return self.loaded.source

    @property
    def paths(self) -> list[Path]:
        return self.loaded.paths

    @property
    def array(self) -> np.ndarray:
        """The labels as read, for a run that has no logits' class names to look names up in (``--scheduler``)."""
        if self.refusal is not None:
            raise self.refusal
        if self.names is not None:
            raise UsageError("class-name labels are looked up in the logits' class names, which --scheduler does "
                             "not read; give class indices (0, 1, ...)", where=self.source)
        return self.loaded.array

    def read_from(self, inputs: list[str] | None) -> bool:
        """Whether the labels were read from the file these ``INPUTS`` name (the logits' own table)."""
        try:
            return bool(self.paths and inputs and len(inputs) == 1 and self.paths[0].samefile(inputs[0]))
        except OSError:
            return False

    def fitted(self, logits: Loaded, axis: int, ignore_index: int = -100) -> np.ndarray:
        """The labels as they fit these logits: class indices, or target distributions of the logits' shape."""
        if self.refusal is not None:
            raise self.refusal
        labels = self._indices(logits.classes) if self.names is not None else self.loaded.array
        shape = logits.array.shape
        numbers = class_numbers(logits.classes) if self.names is None else None
        if numbers is not None and labels.shape != shape and labels.dtype.kind in "iuf":
            labels = self._by_class_number(labels, logits.classes, numbers, ignore_index)
        if labels.shape == shape:
            # Target distributions in a table: its class columns are matched to the logits' by name.
            targets = dataclasses.replace(self.loaded, array=labels)
            try:
                labels = align_classes(logits, targets, axis, ("the logits", "the target distributions"),
                                       "name the targets' columns as the logits' classes, or give them without "
                                       "names (.npy) to match by position").array
            except InputError as error:
                error.operand = "labels"
                raise error.located(self.source) from None
        rows = self.loaded.rows if labels.ndim and len(self.loaded.rows or ()) == len(labels) else None
        own_table = logits.source is not None and self.read_from([logits.source])
        if labels.ndim and (rows is not None or logits.rows is not None) and not own_table:
            # Labels with row names (a pandas Series' index) are matched to the logits' named rows by name.
            try:
                labels = align_rows(logits, dataclasses.replace(self.loaded, array=labels, rows=rows),
                                    ("the logits", "the labels")).array
            except InputError as error:
                error.operand = "labels"
                raise error.located(self.source) from None
        lead = tuple(np.delete(np.array(shape), axis % len(shape)))
        if self.loaded.numbered_first_row and labels.ndim == 1 and lead == (labels.shape[0] - 1,):
            # y.to_csv(index=False) of an unnamed Series: its header is "0".
            note(f"first row 0 read as the column name: {lead[0]} labels for {lead[0]} rows")
            labels = labels[1:]
        return fit_shape(labels, shape, axis, ignore_index)

    def _by_class_number(self, labels: np.ndarray, classes: list[str], numbers: list[int],
                         ignore_index: int) -> np.ndarray:
        """Class indices for labels against classes named by numbers other than their positions: label ``k`` is
        the class named ``k``, as scikit-learn's ``classes_`` names the columns of ``predict_proba``."""
        shown = ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")
        note(f"the logits' classes are named {shown}: label k is the class named k")
        ordered = np.argsort(numbers)
        known = np.array(numbers)[ordered]
        whole = np.isfinite(labels) & (labels == np.trunc(labels)) & (labels != ignore_index)
        at = np.searchsorted(known, np.where(whole, labels, 0)).clip(max=len(known) - 1)
        found = whole & (known[at] == labels)
        if (whole & ~found).any():
            row = int(np.argmax((whole & ~found).reshape(-1)))
            raise InputError(f"label {value_text(labels.reshape(-1)[row])} is not one of the logits' classes "
                             f"({shown}), and against classes named by numbers label k is the class named k; give the labels "
                             "those numbers (y, as classes_ names them)", source=self.source, where=f"row {row}",
                             operand="labels")
        return np.where(found, ordered[at], labels).astype(np.int64 if labels.dtype.kind in "iu" else labels.dtype)

    def _indices(self, classes: list[str] | None) -> np.ndarray:
        names = self.names
        if classes is None:
            raise InputError(f"the labels are class names ({names[0]!r}, ...) but the logits' classes have no names; "
                             "name them with --classes a,b,c (or a header line), or give class indices",
                             where=self.source, operand="labels")
        lookup = {name: index for index, name in enumerate(classes)}
        if (self.names_with_header and len(names) > 1 and names[0] not in lookup
                and all(name in lookup for name in names[1:])):
            note(f"first line {names[0]!r} read as the column's name: it is not a class, and every line below is")
            names = names[1:]
        for row, name in enumerate(names):
            if name not in lookup:
                shown = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
                raise InputError(f"label {name!r} is not one of the logits' classes ({shown})",
                                 source=self.source, where=f"row {row}", operand="labels")
        return np.array([lookup[name] for name in names], dtype=np.int64)


def read_labels(spec: str, key: str | None = None) -> LabelSource:
    """What ``--labels SPEC`` (and ``--labels-key KEY``) names, read once for every input."""
    typed = parse_typed_numbers([spec])
    if typed is not None:
        if key is not None:
            raise UsageError("--labels-key picks a column or array of a labels file; --labels gives numbers here")
        return LabelSource(Loaded(typed, OPTION, from_text=True))
    path = Path(spec)
    fmt = registry.by_suffix(spec)
    if spec != STDIN and fmt is None and not path.exists():
        if key is not None:
            raise InputError("no such file", where=spec)
        # Names typed on the command line: --labels cat,dog,cat
        names = [name for name in re.split(r"[,;\s]+", spec) if name]
        if not names:
            raise UsageError(f"--labels {spec!r} holds no labels; give class indices (--labels 0,2,1), class names "
                             "(--labels cat,dog) or a file")
        return LabelSource(Loaded(np.array(names), OPTION, from_text=True), names=names)
    if spec != STDIN and fmt is not None and fmt.module == "text" and path.is_file():  # JSON is read as JSON
        return _text_labels(spec, key)
    if fmt is registry.named("npy") and path.is_file() and (names := _npy_names(path)) is not None:
        return LabelSource(Loaded(np.array(names), spec, paths=[path]), names=names)
    if fmt is not None and fmt.reads_names is not None and path.is_file():
        try:
            table = fmt.read_names(Source(path), key)
        except InputError as error:
            raise error.located(spec) from None
        if table is not None:
            names = table.array.tolist()
            return LabelSource(Loaded(table.array, spec, paths=[path], rows=table.rows), key, names=names)
    try:
        return LabelSource(load_source(spec, key, preferred="labels"), key)
    except InputError as error:
        # The labels' member is chosen by --labels-key; --key chooses the logits'.
        error.message = error.message.replace("--key NAME", "--labels-key NAME")
        raise error.located(OPTION) from None


def _text_labels(spec: str, key: str | None) -> LabelSource:
    """A text labels file: one label a line (numbers or class names), or a column of a table (``--labels-key``)."""
    try:
        text = Source(Path(spec)).text
        _refuse_missing_labels(text)
        rows = _fields(text)
    except InputError as error:
        raise error.located(spec) from None
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=spec) from None
    header = rows[0] if rows else []
    refusal = None
    if key is None and len(header) > 1 and any(parse_number(field) is None for field in header):
        # A table's header: its one named column (beside pandas' unnamed index) holds the labels.
        named = [field for position, field in enumerate(header) if field or position]
        if len(named) == 1:
            key = named[0]
        elif (beside_ids := _label_column_beside_ids(header, rows[1:])) is not None:
            key = beside_ids
        else:
            refusal = _label_column_among_others(header, rows[1:], spec)
    if key is not None:
        if key not in header:
            raise InputError(f"no column named {key!r}; the columns are: {', '.join(header) or 'none'}", where=spec)
        column = header.index(key)
        values = [row[column] if column < len(row) else "" for row in rows[1:]]
        if "" in values:
            raise InputError(f"an empty label in column {key!r}, as polars writes a missing one (null); write "
                             f"{missing_value('labels')}", where=spec)
        numbers = [parse_number(value) for value in values]
        if not values:
            raise InputError(f"column {key!r} has no labels below its name", where=spec)
        # pandas' unnamed index (Series.to_csv()), a first column of text, or of distinct whole numbers (an id,
        # a named index, reset_index()'s positions): it names the rows.
        first = [row[0] if row else "" for row in rows[1:]]
        ids = column and (header[0] == "" or _is_text_column(rows[1:], 0) or distinct_ids(first))
        loaded = Loaded(np.array(values), spec, paths=[Path(spec)], from_text=True, rows=first if ids else None)
        if all(number is not None for number in numbers):
            return LabelSource(dataclasses.replace(loaded, array=np.array(numbers, dtype=np.float64)), key)
        return LabelSource(loaded, key, names=values)
    fields = [field for row in rows for field in row]
    if len(rows) == 1 and "" in fields:  # a trailing separator: not a class name among numbers
        raise InputError(f"an empty field (label {fields.index('')}); write one label a field, without a trailing "
                         "separator", where=spec)
    if len(rows) == 1 or all(len(row) == 1 for row in rows):
        words = [field for field in fields[1:] if parse_number(field) is None]
        if words or (len(fields) == 1 and parse_number(fields[0]) is None):
            return LabelSource(Loaded(np.array(fields), spec, paths=[Path(spec)], from_text=True), names=fields,
                               names_with_header=True)
    try:
        loaded = load_source(spec, preferred="labels")
    except InputError:
        if refusal is not None:  # the table's label column beside others: naming it is the fix, not the reader's
            raise refusal from None
        raise
    return LabelSource(loaded, refusal=refusal)


def _refuse_missing_labels(text: str) -> None:
    """Refuse an empty label, one a line, as pandas writes a missing one (NaN): ``""``. Read as a class name
    or skipped, it would misread the file or pair every label after it with the row before its own."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    filled = [number for number, line in enumerate(lines, start=1) if line]
    if not filled or any(sep in lines[n - 1] for n in filled for sep in ",;\t "):
        return
    # pandas quotes the one empty field of a line ("") so that the line is not blank, which would be skipped
    empty = next((number for number in filled if lines[number - 1] == '""'), None)
    if empty is not None:
        raise InputError('an empty label (""), as pandas writes a missing one (NaN); write the ignore index (-100) '
                         "for a row without a label", line=empty)


def _is_text_column(rows: list[list[str]], column: int) -> bool:
    """Whether a column holds text (not a number) in every row: an id, which names the rows."""
    return all(column < len(row) and parse_number(row[column]) is None for row in rows)


def _label_column_beside_ids(header: list[str], rows: list[list[str]]) -> str | None:
    """The one label-named column of a table whose other columns hold text (ids: ``reset_index()`` of a Series
    of class names under a named index), which needs no ``--labels-key``."""
    from .core.plausibility import is_label_name

    labels = [column for column, name in enumerate(header) if is_label_name(name)]
    others = [column for column in range(len(header)) if column not in labels]
    if len(labels) == 1 and others and all(_is_text_column(rows, column) for column in others):
        return header[labels[0]]
    return None


def _label_column_among_others(header: list[str], rows: list[list[str]], spec: str) -> InputError | None:
    """The refusal of a table with a label-named column beside other columns of numbers (a weight, a fold):
    which one holds the labels is the user's to say. Read as a table, the label column became an index level
    (integers after row names) and the other one the labels."""
    from .core.plausibility import is_label_name

    def numeric(column: int) -> bool:
        return all(parse_number(row[column]) is not None for row in rows if column < len(row))

    label = next((name for name in header if is_label_name(name)), None)
    others = [name for column, name in enumerate(header) if name and name != label and numeric(column)]
    if label is None or not others:
        return None
    return InputError(f"the table has a label column {label!r} beside {', '.join(map(repr, others[:4]))}; "
                      f"choose the labels' column with --labels-key {label}", where=spec, operand="labels")


def _npy_names(path: Path) -> list[str] | None:
    """Class names saved with ``np.save`` (a text dtype, one a row), else None (numbers, or left to the reader)."""
    from .formats import npy

    try:
        with open(path, "rb") as file:
            header = npy.header_of(file, path.stat().st_size)  # the one checked parser of .npy headers
        if header.dtype.kind not in "US":
            return None
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, InputError):
        return None  # the reader says what is wrong with the file
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        return None
    return [value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for value in array.tolist()]


def _fields(text: str) -> list[list[str]]:
    """Rows of fields of delimited text: ``#`` comments and blank lines skipped; tab, comma, semicolon or spaces."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    delimiter = next((d for d in ("\t", ",", ";") if any(d in line for line in lines)), None)
    if delimiter is None:
        return [line.split() for line in lines]
    import csv  # imported here to keep start-up fast

    return [[field.strip() for field in row] for row in csv.reader(lines, delimiter=delimiter)]


def refuse_whole_number_targets(labels: np.ndarray, shape: tuple[int, ...], class_axis: int) -> None:
    """Refuse labels of the logits' whole shape that are whole numbers but no one-hot rows: read as target
    distributions they are none (torch refuses integer targets outright), and the loss of such "targets" is a
    confident wrong number. The usual cause is a binary classifier's scores, one a sample, read as one row."""
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.array_equal(labels, np.trunc(labels))):
        return
    sums = labels.sum(axis=class_axis, dtype=np.float64).reshape(-1)
    off = np.flatnonzero(sums != 1)
    if not off.size:
        return
    if len(shape) == 1:
        raise InputError(
            f"{shape[0]} whole-number labels for logits that are one vector: they would be the target distribution "
            f"of one row of {shape[0]} classes, and they sum to {sums[0]:g}; if the logits are one score a sample (a "
            "binary classifier's decision_function), give each sample two logits, np.stack([np.zeros_like(s), s], "
            "axis=1), with these as its class indices; if they are P(class 1) (predict_proba(X)[:, 1]), give "
            "np.stack([1 - p, p], axis=1) with --from-probs", operand="labels")
    raise InputError(
        f"labels of the logits' shape {shape} are read as target distributions, but they are whole numbers and row "
        f"{int(off[0])} sums to {sums[off[0]]:g}; give one class index a row (shape "
        f"{shape[:class_axis] + shape[class_axis + 1:]}), or distributions that sum to 1", operand="labels")


def fit_shape(labels: np.ndarray, shape: tuple[int, ...], axis: int, ignore_index: int = -100) -> np.ndarray:
    """Labels of a shape people have, as one label a row; a shape that is a known mistake refused saying why.

    Labels of the rows' shape, or of the logits' whole shape (target
    distributions), are returned as they are. A column ``(N, 1)`` and flat
    ``(B*T,)`` labels for ``(B, T, C)`` logits are one label a row (with a
    note). Labels one position short along the last row axis are next-token
    labels; labels that fit with another class axis name that ``--axis``.
    Anything else is left to :func:`softmax_cli.core.check_labels`.
    """
    ndim = len(shape)
    class_axis = axis % ndim
    lead = shape[:class_axis] + shape[class_axis + 1:]
    n_rows = int(np.prod(lead, dtype=np.int64))
    if labels.shape == shape:
        refuse_whole_number_targets(labels, shape, class_axis)
    if labels.shape in (lead, shape):
        return labels
    if labels.ndim == 2 and labels.shape[1] == 1 and labels.shape[0] == n_rows:
        note(f"labels of shape {labels.shape} (a column) read as one label a row")
        return labels.reshape(lead)
    if labels.ndim == 1 and labels.size == n_rows:
        # Checked while flat, so that a bad label is named by its row in the labels as given.
        from .core import check_labels

        check_labels(labels, lead, shape[class_axis], ignore_index)
        if lead:  # one label for one row needs no word
            note(f"{labels.size} labels read as one a row of the logits' rows {lead}, in C order")
        return labels.reshape(lead)
    count = labels.size if labels.ndim == 1 else None
    if ndim == 2 and count == n_rows - 1:
        # A table, not a sequence: a header read as a row of numbers (pandas' header of float class names).
        raise InputError(f"labels of shape {labels.shape} for logits of shape {shape}: {count} labels for {n_rows} "
                         "rows; if the logits' first line names the columns "
                         "(0.0,1.0,2.0 as pandas writes float class names), add --header yes; if these are next-token "
                         "labels of one sequence, give the unshifted token ids with --shift-labels", operand="labels")
    if lead and lead[-1] > 1:
        short = lead[:-1] + (lead[-1] - 1,)
        if labels.shape == short or count == int(np.prod(short, dtype=np.int64)):
            raise InputError(
                f"labels of shape {labels.shape} for logits of shape {shape} are one position short of its rows "
                f"{lead} along the sequence axis, as next-token labels are (each position's logits predict the "
                "next token); give the unshifted token ids with --shift-labels, or drop the logits' last position",
                operand="labels")
    for other in range(ndim):
        if other == class_axis:
            continue
        rows = shape[:other] + shape[other + 1:]
        if labels.shape == rows or count == int(np.prod(rows, dtype=np.int64)):
            suggested = other - ndim if axis < 0 else other
            raise InputError(
                f"labels of shape {labels.shape} do not fit the logits' rows {lead} (shape {shape}, classes on axis "
                f"{axis}) but fit with the classes on axis {suggested}: add --axis {suggested}", operand="labels")
    return labels
