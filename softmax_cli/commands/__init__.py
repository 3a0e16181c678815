"""The subcommands, one module per command family, and the little they share.

``probs`` (probs, jacobian), ``crossentropy`` (loss, grad), ``calibration``
(temperature-sweep), ``ranking`` (topk), ``attention``, ``compare``. Each command is a
plain function that takes its own options and the option groups of
:mod:`softmax_cli.options`; :mod:`softmax_cli.cli` registers them on the app.

A command's module is imported for its help page too: what a command computes
with (NumPy, the readers, the core) is imported in the command's body, so
``softmax CMD --help`` costs no NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError, tell
from ..options import Source

if TYPE_CHECKING:
    from ..inputs import Loaded
    from ..labelsource import LabelSource


def warn(message: str) -> None:
    tell(f"warning: {message}")


def warn_below_chance(correct: int, counted: int, n_classes: int) -> None:
    """One ``warning:`` when top-1 accuracy is below chance by more than chance explains (the labels are suspect)."""
    from ..core import below_chance
    from ..core.plausibility import BELOW_CHANCE_SIGNIFICANCE

    p_value = below_chance(correct, counted, n_classes)
    if p_value is not None:
        warn(f"top-1 accuracy {correct / counted:.4g} is below chance (1/{n_classes} = {1 / n_classes:.4g}) by more "
             f"than chance explains (one-sided binomial test, p = {p_value:.2g} < {BELOW_CHANCE_SIGNIFICANCE:g}); "
             "are the labels 1-based, next-token labels not shifted, or in another order than the logits' rows?")


def correct_of(accuracy: float, counted: int) -> int:
    """How many of ``counted`` rows an ``accuracy`` stands for (0 when no row counted: the accuracy is then NaN)."""
    return round(accuracy * counted) if counted else 0


def noted(loaded: Loaded) -> Loaded:
    """``loaded``, after its notes are shown."""
    from ..formats.base import note

    for message in loaded.notes:
        note(message)
    return loaded


def logits_loader(source: Source, *, labels: LabelSource | None = None, takes_labels: bool = False,
                  from_probs: bool | None = None, logs_of_probs: bool = False):
    """What :func:`softmax_cli.batch.run` calls to read one input's logits, checked to be logits.

    A table's column that ``--labels-key`` names in the same file is left
    out. Unless ``--as-logits``: a label-like column is refused (``takes_labels``:
    the command could score against it), and so are probability-shaped rows
    where the command has ``--from-probs`` (``from_probs`` is not None). With
    ``--from-probs``, ``logs_of_probs`` makes the logits log p.
    """
    from ..inputs import load_logits, log_of_probabilities, refuse_label_columns, refuse_probabilities

    if source.as_logits and from_probs:
        raise UsageError("give --from-probs (the inputs are probabilities) or --as-logits (they are logits), not both")

    def load(inputs: list[str] | None) -> Loaded:
        read_labels_too = labels is not None and labels.key is not None and labels.read_from(inputs)
        logits = noted(load_logits(inputs, key=source.key, classes=source.classes, axis=source.axis,
                                   header=source.header, index_col=source.index_col, void_as=source.void_as,
                                   leave_out=labels.key if read_labels_too else None))
        if not source.as_logits:
            # Probabilities first: a class of 0 and 1 in them (a pure leaf's) is no id column.
            if from_probs is False:
                refuse_probabilities(logits, source.axis)
            if source.classes is None:  # column names from the table itself, not given by --classes
                # With the labels read from this table already, another label-like column is not the remedy.
                refuse_label_columns(logits, source.axis, takes_labels and not read_labels_too,
                                     first_is_class=source.index_col is False, probabilities=bool(from_probs))
        return log_of_probabilities(logits, source.axis) if from_probs and logs_of_probs else logits

    return load


def named_rows(logits: Loaded) -> dict:
    """A Result's row names, for a result whose rows are the input's rows (an index column's names)."""
    return {"rows": logits.rows, "rows_name": logits.index_name or ""}


def described(role: str, loaded: Loaded | None) -> list[dict]:
    """One input as a result's metadata records it: its role, path (``-`` for standard input, null for typed
    numbers), shape, dtype and the key or column it was read with; none when ``loaded`` is None."""
    from ..inputs import STDIN, STDIN_NAME, Loaded

    if loaded is None:
        return []
    if not isinstance(loaded, Loaded):  # a LabelSource: what --labels read (class names are not looked up here)
        loaded = loaded.loaded
    # Numbers typed as an option's value (--labels 0,2) are named by the option, not by a path.
    path = STDIN if loaded.source == STDIN_NAME else loaded.source if loaded.paths else None
    return [{"role": role, "path": path, "shape": list(loaded.array.shape), "dtype": str(loaded.array.dtype),
             "key": loaded.key}]


def described_sources(sources: list) -> list[dict]:
    """The cluster's inputs (``--scheduler``: .npy files and Zarr arrays, read by path) as :func:`described` has them."""
    import numpy as np

    return [{"role": "logits", "path": str(source.path), "shape": list(source.shape),
             "dtype": str(np.dtype(source.dtype)), "key": None} for source in sources]
