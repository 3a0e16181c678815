"""The numeric core: pure NumPy functions on arrays, no I/O.

Everything the command line computes is callable from Python here, e.g.
``softmax_cli.core.softmax(array, axis=-1)``.
"""

from ._arrays import available_cores, output_dtype, set_threads
from .attention import CAUSAL_ALIGNMENTS, attention, unattended_queries
from .calibration import (
    ReliabilityBins,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_bins,
    temperature_sweep,
)
from .crossentropy import (
    REDUCTIONS,
    CrossEntropyTerms,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_terms,
    mean_denominator,
    reduce_losses,
    unnormalised_rows,
)
from .jacobian import jacobian_nbytes, jacobian_shape, softmax_jacobian, softmax_jacobian_into, softmax_vjp
from .ranking import check_labels, topk, topk_accuracy
from .softmax import (
    MASKED_ROW_POLICIES,
    MaskedRowError,
    check_logits,
    check_temperature,
    entropy,
    log_softmax,
    logsumexp,
    softmax,
)

__all__ = [
    "CAUSAL_ALIGNMENTS",
    "REDUCTIONS",
    "attention",
    "available_cores",
    "set_threads",
    "CrossEntropyTerms",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_terms",
    "jacobian_nbytes",
    "jacobian_shape",
    "softmax_jacobian",
    "softmax_jacobian_into",
    "softmax_vjp",
    "unnormalised_rows",
    "MASKED_ROW_POLICIES",
    "MaskedRowError",
    "ReliabilityBins",
    "check_labels",
    "check_logits",
    "check_temperature",
    "entropy",
    "expected_calibration_error",
    "fit_temperature",
    "log_softmax",
    "mean_denominator",
    "reduce_losses",
    "logsumexp",
    "nll",
    "output_dtype",
    "reliability_bins",
    "softmax",
    "temperature_sweep",
    "topk",
    "topk_accuracy",
    "unattended_queries",
]
