"""The core's named choices, each once: a ``Literal`` for type checkers and the tuple it spells.

The command line offers exactly these (``--masked-rows``, ``--reduction``,
``--causal-align``, ``--binning``, ``--bin-edges``, ``--ties`` in :mod:`softmax_cli.options`), so this module imports
nothing: options are declared before any argument is parsed, without NumPy. It sits beside
:mod:`softmax_cli.core` rather than in it because importing any module of the core runs the core's
``__init__``, which imports NumPy; the core imports its choices from here.
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

# Calibration bins: equal-width, or equal-mass at the quantiles of the scored confidences.
Binning = Literal["uniform", "quantile"]
BINNINGS: tuple[str, ...] = get_args(Binning)

# Which bin a confidence on an edge joins: (lower, upper] as the gpleiss script; [lower, upper) with 1.0 in the
# last bin as netcal; [lower, upper) with 1.0 in a bin of its own as torchmetrics' bucketize.
BinEdges = Literal["right", "left", "bucketize"]
BIN_EDGES: tuple[str, ...] = get_args(BinEdges)

# Which of tied classes ranks first: the lower index (ours, jax.lax.top_k) or the higher one (sklearn).
Ties = Literal["low", "high"]
TIES: tuple[str, ...] = get_args(Ties)
