"""The subcommands, one module per command family, and the little they share.

``probs`` (probs, jacobian), ``crossentropy`` (loss, grad), ``calibration``
(temperature-sweep), ``ranking`` (topk), ``attention``. Each command is a
plain function that takes its own options and the option groups of
:mod:`softmax_cli.options`; :mod:`softmax_cli.cli` registers them on the app.
"""

from __future__ import annotations

import sys

from ..inputs import load_logits
from ..options import Source


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def logits_loader(source: Source):
    """What :func:`softmax_cli.batch.run` calls to read one input's logits."""
    void_as = source.void_as.value if source.void_as else None
    return lambda inputs: load_logits(inputs, key=source.key, classes=source.classes, axis=source.axis,
                                      void_as=void_as)
