"""The subcommands, one module per command family, and the little they share.

``probs`` (probs, jacobian), ``crossentropy`` (loss, grad), ``calibration``
(temperature-sweep), ``ranking`` (topk), ``attention``, ``compare``. Each command is a
plain function that takes its own options and the option groups of
:mod:`softmax_cli.options`; :mod:`softmax_cli.cli` registers them on the app.
"""

from __future__ import annotations


import numpy as np

from .. import operands
from ..errors import tell
from ..formats.base import note
from ..inputs import STDIN, STDIN_NAME, Loaded, load_logits
from ..options import Source


def warn(message: str) -> None:
    tell(f"warning: {message}")


def noted(loaded: Loaded) -> Loaded:
    """``loaded``, after its notes are shown."""
    for message in loaded.notes:
        note(message)
    return loaded


def logits_loader(source: Source):
    """What :func:`softmax_cli.batch.run` calls to read one input's logits."""
    void_as = source.void_as.value if source.void_as else None
    return lambda inputs: noted(load_logits(inputs, key=source.key, classes=source.classes, axis=source.axis,
                                            header=source.header.value, index_col=source.index_col,
                                            void_as=void_as))


def named_rows(logits: Loaded) -> dict:
    """A Result's row names, for a result whose rows are the input's rows (an index column's names)."""
    return {"rows": logits.rows, "rows_name": logits.index_name or ""}


def labels_for(truth: Loaded, logits: Loaded, axis: int) -> np.ndarray:
    """The labels' array as it fits these logits (see :func:`softmax_cli.operands.labels_for`)."""
    return noted(operands.labels_for(truth, logits, axis)).array


def described(role: str, loaded: Loaded | None) -> list[dict]:
    """One input as a result's metadata records it: its role, path (``-`` for standard input, null for typed
    numbers), shape, dtype and the key or column it was read with; none when ``loaded`` is None."""
    if loaded is None:
        return []
    # Numbers typed as an option's value (--labels 0,2) are named by the option, not by a path.
    path = STDIN if loaded.source == STDIN_NAME else loaded.source if loaded.paths else None
    return [{"role": role, "path": path, "shape": list(loaded.array.shape), "dtype": str(loaded.array.dtype),
             "key": loaded.key}]


def described_sources(sources: list) -> list[dict]:
    """The cluster's inputs (``--scheduler``: .npy files and Zarr arrays, read by path) as :func:`described` has them."""
    return [{"role": "logits", "path": str(source.path), "shape": list(source.shape),
             "dtype": str(np.dtype(source.dtype)), "key": None} for source in sources]
