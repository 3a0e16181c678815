"""The subcommands, one module per command family, and the little they share.

``probs`` (probs, jacobian), ``crossentropy`` (loss, grad), ``calibration``
(temperature-sweep), ``ranking`` (topk), ``attention``, ``compare``. Each command is a
plain function that takes its own options and the option groups of
:mod:`softmax_cli.options`; :mod:`softmax_cli.cli` registers them on the app.
"""

from __future__ import annotations

import sys

from ..inputs import load_logits
from ..options import Source


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Where to find what this output leaves out: one ``note:`` line on standard error."""
    print(f"note: {message}", file=sys.stderr)


def logits_loader(source: Source):
    """What :func:`softmax_cli.batch.run` calls to read one input's logits."""
    return lambda inputs: load_logits(inputs, key=source.key, classes=source.classes, axis=source.axis)
