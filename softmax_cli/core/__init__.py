"""The numeric core: pure NumPy functions on arrays, no I/O.

Everything the command line computes is callable from Python here, e.g.
``softmax_cli.core.softmax(array, axis=-1)``. The modules beyond softmax
itself are imported on first use, so ``softmax probs 3 2 1`` does not pay
for attention, calibration, cross-entropy or divergence at start-up; ``dir()``,
``help()`` and ``__all__`` list every public name all the same, and
``__init__.pyi`` states them for IDEs and type checkers (a test keeps the
three in step). Bad input raises :class:`InputError`, a ``ValueError``.
"""

from importlib import import_module

from ..errors import InputError
from .blocks import available_cores, output_dtype, set_threads
from .logits import MASKED_ROW_POLICIES, MaskedRowError, check_logits, check_temperature
from .softmax import entropy, log_softmax, logsumexp, softmax

# Module names never equal a public name: once a submodule is imported, the package attribute of its name is the
# module (the import system sets it), and a function of that name would no longer be reached through __getattr__.
_LAZY = {
    "sdpa": ("attention",),
    "sdpa_operands": ("CAUSAL_ALIGNMENTS", "unattended_queries"),
    "reliability": ("BINNINGS", "BIN_EDGES", "ReliabilityBins", "calibration_metrics", "expected_calibration_error",
                    "reliability_bins"),
    "temperature": ("fit_temperature", "nll", "temperature_sweep"),
    "rowdivergence": ("RowDivergence", "divergence_rows"),
    "divergence_stats": ("QUANTILE_LEVELS", "DivergenceSummary", "divergence", "divergence_summary"),
    "crossentropy": ("REDUCTIONS", "CrossEntropyTerms", "cross_entropy", "cross_entropy_terms",
                     "merge_cross_entropy_terms", "reduce_losses"),
    "crossentropy_grad": ("cross_entropy_grad",),
    "crossentropy_inputs": ("mean_denominator", "unnormalised_rows"),
    "jacobian": ("jacobian_nbytes", "jacobian_shape", "softmax_jacobian", "softmax_jacobian_into", "softmax_vjp"),
    "labels": ("check_labels",),
    "padding": ("blank_rows", "check_mask", "shift_labels", "shift_mask"),
    "plausibility": ("below_chance", "binomial_lower_tail", "first_column_positions", "index_level_columns",
                     "label_like_columns", "probability_shaped", "probability_tolerance", "row_position_columns",
                     "whole_number_columns", "next_token_alignment", "one_based_evidence", "padding_runs"),
    "ranking": ("TIES", "check_k", "topk", "topk_accuracy"),
    "sequences": ("sequence_figures", "sequence_means"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "InputError",
    "MASKED_ROW_POLICIES",
    "MaskedRowError",
    "available_cores",
    "check_logits",
    "check_temperature",
    "entropy",
    "log_softmax",
    "logsumexp",
    "output_dtype",
    "set_threads",
    "softmax",
    *_MODULE_OF,
]
