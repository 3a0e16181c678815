"""The core's named choices, each once: a ``Literal`` for type checkers and the tuple it spells.

The command line offers exactly these (``--masked-rows``, ``--reduction``,
``--causal-align`` in :mod:`softmax_cli.options`), so this module imports
nothing: options are declared before any argument is parsed, without NumPy.
"""

from __future__ import annotations

from typing import Literal, get_args

# A row whose logits are all -inf: refuse it, give zeros (torch's attention), or NaN (scipy, torch's softmax).
MaskedRows = Literal["error", "zero", "nan"]
MASKED_ROW_POLICIES: tuple[str, ...] = get_args(MaskedRows)

# How cross-entropy's per-row losses become the result, as torch's ``reduction``.
Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)

# Where attention's causal diagonal starts when L != S: torch's is_causal, or the decoding alignment.
CausalAlign = Literal["upper-left", "lower-right"]
CAUSAL_ALIGNMENTS: tuple[str, ...] = get_args(CausalAlign)
