"""The operands a command scores logits against besides labels: class weights, masks, upstream gradients, temperatures.

Each is read like the logits (:mod:`softmax_cli.inputs`: typed numbers or any
source), then fitted to what it is for: a text mask to boolean or additive
(``--mask-type``), Q, K and V from three sources or one ``.npz``. Labels have
their own loader, :mod:`softmax_cli.labelsource`. An error about an operand names
the source that holds it (:func:`locate`), not the logits'.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .core import check_temperature
from .errors import InputError, SoftmaxError, UsageError
from .formats import registry
from .formats.base import Source
from .inputs import (
    FIELD_SPLIT,
    STDIN,
    Loaded,
    align_classes,
    check_one_stdin,
    load_source,
    parse_typed_numbers,
    shuffled_positions,
)
from .limits import MAX_TEMPERATURES, check_count
from .options import DEFAULT_TEMPERATURES

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
    return error.located(name) if name else error


@contextmanager
def naming_sources(logits: Loaded | None, operands: Operands) -> Iterator[None]:
    """Within this block, errors name the source holding the bad value (see :func:`locate`)."""
    try:
        yield
    except SoftmaxError as error:
        raise locate(error, logits.source if logits else None, operands) from None


def load_option_array(spec: str, option: str, preferred: str, expected: str = "numbers (1,2,0.5)") -> Loaded:
    """An array given to an option (``--labels 0,2,1``, ``--weights w.npy``): numbers or a source.

    From an ``.npz`` or a JSON object, the array named ``preferred`` is taken
    when there are several. A value that is neither numbers nor a file is
    refused saying what ``option`` takes (``expected``).
    """
    typed = parse_typed_numbers([spec])
    if typed is not None:
        return Loaded(typed, option, from_text=True)
    if spec != STDIN and registry.by_suffix(spec) is None and not Path(spec).exists():
        raise UsageError(f"{option} takes {expected} or a file; {spec!r} is neither")
    try:
        return load_source(spec, None, preferred=preferred)
    except InputError as error:
        raise error.located(option) from None



def class_weights(weights: Loaded | None, logits: Loaded) -> np.ndarray | None:
    """``--weights`` in the order of the logits' classes: weights named by class (``pd.Series({"cat": 1, ...})
    .to_csv()``, or a one-row table under the class names) are matched by name, as named classes always are;
    unnamed ones (or named 0, 1, ...) are taken by position."""
    if weights is None:
        return None
    weights = _class_column_split(weights)
    vector = weights.array.ndim == 1
    names = weights.row_names if vector and weights.row_names is not None else weights.classes if vector else None
    shuffled = shuffled_positions(logits.classes, len(logits.classes or ())) is not None
    if names is None and shuffled:
        raise InputError(f"the logits' classes are named 0..{len(logits.classes) - 1} in another order "
                         f"({', '.join(logits.classes[:4])}{', ...' if len(logits.classes) > 4 else ''}) and --weights "
                         "gives no names, so weight k may be the class named k or the k-th column; name the weights "
                         "(a CSV of class,weight lines: pd.Series(w).to_csv())", operand="weights")
    if names is None or (names == [str(position) for position in range(len(names))] and not shuffled):
        return weights.array
    if logits.classes is None and (order := shuffled_positions(names, len(names))) is not None:
        return weights.array[np.argsort(order)]  # class indices in another order (value_counts())
    if logits.classes is None:
        raise InputError(f"--weights names its classes ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}) "
                         "but the logits' classes have no names; name them (a header line, or --classes), or give "
                         "the weights without names, in the classes' order", operand="weights")
    named = Loaded(weights.array, weights.source, classes=list(names))
    try:
        return align_classes(logits, named, 0, ("the logits", "--weights"),
                             "give the weights the logits' class names, or none (in the classes' order)").array
    except InputError as error:
        error.operand = "weights"
        raise


def _class_column_split(weights: Loaded) -> Loaded:
    """A table of two columns whose first holds distinct class indices (``pd.Series(w, index=pd.Index(classes,
    name="class")).to_csv()``, or its ``reset_index()``) as the weights of the second, named by those indices."""
    table = weights.array
    if table.ndim != 2 or table.shape[1] != 2 or weights.rows is not None or table.dtype.kind not in "iuf":
        return weights
    ids = table[:, 0]
    if not (np.isfinite(ids).all() and (ids == np.trunc(ids)).all() and (ids >= 0).all()
            and len(np.unique(ids)) == len(ids)):
        return weights
    return dataclasses.replace(weights, array=table[:, 1], rows=[str(int(i)) for i in ids], classes=None,
                               range_rows=False)


def parse_temperatures(temperatures: str | None, temperature_range: str | None, log_space: bool) -> np.ndarray:
    """``--temperatures 0.5,1,2`` or ``--range START:STOP:NUM`` (``--log-space``), checked."""
    if temperatures is not None and temperature_range is not None:
        raise UsageError("give --temperatures or --range, not both")
    if temperature_range is None:
        values = []
        if temperatures is not None and not temperatures.strip():
            raise UsageError("--temperatures is empty; give temperatures such as 0.5,1,2 (or leave the option out "
                             f"for {DEFAULT_TEMPERATURES})")
        for text in (DEFAULT_TEMPERATURES if temperatures is None else temperatures).split(","):
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"temperature {text.strip()!r} is not a number", where="--temperatures") from None
            values.append(check_temperature(value))  # its own error (an InputError is a ValueError too)
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
    check_count(count, MAX_TEMPERATURES, "--range NUM")
    return np.geomspace(start, stop, count) if log_space else np.linspace(start, stop, count)


def load_padding_mask(spec: str, key: str | None) -> Loaded:
    """``--mask`` of the row-wise commands (``--mask-key`` picks its array): 1 keeps a position, 0 drops it."""
    typed = parse_typed_numbers([spec]) if key is None else None
    if typed is not None:
        return Loaded(typed, "--mask", from_text=True)
    if spec != STDIN and registry.by_suffix(spec) is None and not Path(spec).exists():
        raise UsageError(f"--mask takes 1/0 numbers (1,1,0) or a file such as an attention_mask .npy; {spec!r} is "
                         "neither")
    try:
        return load_source(spec, key, preferred="attention_mask")
    except InputError as error:
        raise error.located("--mask") from None


# Formats whose members are named, so an attention_mask may be saved beside the logits.
NAMED_MEMBERS = ("npz", "safetensors", "json")
MASK_NAME = "attention_mask"


def mask_beside(logits: Loaded) -> Loaded | None:
    """The ``attention_mask`` saved in the logits' own file (an ``.npz``, ``.safetensors`` or JSON object, as a
    padded batch is saved with its mask), or None."""
    if len(logits.paths) != 1 or logits.key == MASK_NAME:
        return None
    fmt = registry.by_suffix(logits.paths[0])
    if fmt is None or fmt.name not in NAMED_MEMBERS:
        return None
    try:
        return load_source(str(logits.paths[0]), MASK_NAME, preferred=MASK_NAME)
    except InputError:  # no such member: no mask beside the logits
        return None


def _boolean_rows(text: str) -> np.ndarray | None:
    """``True``/``False`` literals (rows split by ``;`` or lines) as a boolean array, else None."""
    literals = {"true": True, "false": False}
    rows = []
    for part in re.split(r"[;\n]", text):
        words = [f for f in FIELD_SPLIT.split(part.split("#", 1)[0].strip()) if f]
        if any(word.lower() not in literals for word in words):
            return None
        if words:
            rows.append([literals[word.lower()] for word in words])
    if not rows or len({len(row) for row in rows}) != 1:
        return None
    return np.array(rows[0] if len(rows) == 1 else rows, dtype=bool)


def _mask_literals(spec: str) -> Loaded | None:
    """A mask written as ``True``/``False`` literals, typed or in a text file."""
    fmt = registry.by_suffix(spec)
    if fmt is not None and not fmt.binary and Path(spec).is_file():
        booleans = _boolean_rows(Source(Path(spec)).text)
        return None if booleans is None else Loaded(booleans, spec, paths=[Path(spec)])
    booleans = _boolean_rows(spec)
    return None if booleans is None else Loaded(booleans, "--mask")


def typed_mask(mask: Loaded, mask_type: str) -> Loaded:
    """The mask as ``--mask-type`` says: boolean (True attends) or additive; ``auto`` refuses 0/1 given as text.

    Text has no dtype, and 0/1 is a complete boolean mask and a (useless)
    additive one alike, so that reading must be chosen, not guessed.
    """
    array = mask.array
    zero_one = array.dtype == bool or bool(np.isin(array, (0, 1)).all())
    if mask_type == "auto":
        if mask.from_text and array.dtype != bool and zero_one:
            raise UsageError("--mask holds only 0 and 1, which reads as a boolean mask (1 attends) or as one added "
                             "to the scores; choose --mask-type bool or --mask-type additive (or write True/False)")
        return mask
    if mask_type == "bool":
        if not zero_one:
            raise UsageError("--mask-type bool takes a mask of 0 and 1 (or True/False)", where="--mask")
        return dataclasses.replace(mask, array=array.astype(bool))
    return dataclasses.replace(mask, array=array.astype(np.float64) if array.dtype.kind in "biu" else array)


def load_attention_operands(inputs: list[str] | None, mask: str | None,
                            mask_type: str = "auto") -> tuple[list[Loaded], Loaded | None]:
    """Q, K and V (and the mask) from three sources or numbers, or one .npz holding q, k, v (and mask)."""
    check_one_stdin(inputs, "Q K V", mask=mask)
    bias = None
    if inputs and len(inputs) == 1 and registry.by_suffix(inputs[0]) is registry.named("npz"):
        operands = [load_source(inputs[0], name, name) for name in ("q", "k", "v")]
        if mask is None:
            try:
                bias = load_source(inputs[0], "mask", "mask")
            except InputError:  # the archive has no mask: none was asked for
                pass
    elif inputs and len(inputs) == 3:
        operands = [load_option_array(item, name, name) for item, name in zip(inputs, ("Q", "K", "V"))]
    else:
        raise UsageError("give Q K V (three sources or quoted numbers like '1 0; 0 1'), or one .npz holding "
                         "q, k and v")
    if mask is not None:
        bias = _mask_literals(mask) or load_option_array(mask, "--mask", "mask")
    return operands, None if bias is None else typed_mask(bias, mask_type)
