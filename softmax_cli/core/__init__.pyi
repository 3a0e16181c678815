"""The public names of :mod:`softmax_cli.core`, stated for IDEs and type checkers (the module imports most lazily)."""

from ..errors import InputError as InputError
from .blocks import available_cores as available_cores
from .blocks import output_dtype as output_dtype
from .blocks import set_threads as set_threads
from .crossentropy import (
    REDUCTIONS as REDUCTIONS,
)
from .crossentropy import (
    CrossEntropyTerms as CrossEntropyTerms,
)
from .crossentropy import (
    cross_entropy as cross_entropy,
)
from .crossentropy import (
    cross_entropy_terms as cross_entropy_terms,
)
from .crossentropy import (
    reduce_losses as reduce_losses,
)
from .crossentropy_grad import cross_entropy_grad as cross_entropy_grad
from .crossentropy_inputs import mean_denominator as mean_denominator
from .crossentropy_inputs import unnormalised_rows as unnormalised_rows
from .divergence_stats import (
    QUANTILE_LEVELS as QUANTILE_LEVELS,
)
from .divergence_stats import (
    DivergenceSummary as DivergenceSummary,
)
from .divergence_stats import (
    divergence as divergence,
)
from .divergence_stats import (
    divergence_summary as divergence_summary,
)
from .jacobian import (
    jacobian_nbytes as jacobian_nbytes,
)
from .jacobian import (
    jacobian_shape as jacobian_shape,
)
from .jacobian import (
    softmax_jacobian as softmax_jacobian,
)
from .jacobian import (
    softmax_jacobian_into as softmax_jacobian_into,
)
from .jacobian import (
    softmax_vjp as softmax_vjp,
)
from .labels import check_labels as check_labels
from .logits import (
    MASKED_ROW_POLICIES as MASKED_ROW_POLICIES,
)
from .logits import (
    MaskedRowError as MaskedRowError,
)
from .logits import (
    check_logits as check_logits,
)
from .logits import (
    check_temperature as check_temperature,
)
from .ranking import check_k as check_k
from .ranking import topk as topk
from .ranking import topk_accuracy as topk_accuracy
from .reliability import (
    ReliabilityBins as ReliabilityBins,
)
from .reliability import (
    expected_calibration_error as expected_calibration_error,
)
from .reliability import (
    reliability_bins as reliability_bins,
)
from .rowdivergence import RowDivergence as RowDivergence
from .rowdivergence import divergence_rows as divergence_rows
from .sdpa import attention as attention
from .sdpa_operands import CAUSAL_ALIGNMENTS as CAUSAL_ALIGNMENTS
from .sdpa_operands import unattended_queries as unattended_queries
from .softmax import entropy as entropy
from .softmax import log_softmax as log_softmax
from .softmax import logsumexp as logsumexp
from .softmax import softmax as softmax
from .temperature import fit_temperature as fit_temperature
from .temperature import nll as nll
from .temperature import temperature_sweep as temperature_sweep

__all__ = [
    "CAUSAL_ALIGNMENTS",
    "MASKED_ROW_POLICIES",
    "QUANTILE_LEVELS",
    "REDUCTIONS",
    "CrossEntropyTerms",
    "DivergenceSummary",
    "InputError",
    "MaskedRowError",
    "ReliabilityBins",
    "RowDivergence",
    "attention",
    "available_cores",
    "check_k",
    "check_labels",
    "check_logits",
    "check_temperature",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_terms",
    "divergence",
    "divergence_rows",
    "divergence_summary",
    "entropy",
    "expected_calibration_error",
    "fit_temperature",
    "jacobian_nbytes",
    "jacobian_shape",
    "log_softmax",
    "logsumexp",
    "mean_denominator",
    "nll",
    "output_dtype",
    "reduce_losses",
    "reliability_bins",
    "set_threads",
    "softmax",
    "softmax_jacobian",
    "softmax_jacobian_into",
    "softmax_vjp",
    "temperature_sweep",
    "topk",
    "topk_accuracy",
    "unattended_queries",
    "unnormalised_rows",
]
from .crossentropy import merge_cross_entropy_terms as merge_cross_entropy_terms
from .padding import blank_rows as blank_rows
from .padding import check_mask as check_mask
from .padding import shift_labels as shift_labels
from .padding import shift_mask as shift_mask
from .plausibility import below_chance as below_chance
from .plausibility import binomial_lower_tail as binomial_lower_tail
from .plausibility import first_column_positions as first_column_positions
from .plausibility import index_level_columns as index_level_columns
from .plausibility import label_like_columns as label_like_columns
from .plausibility import next_token_alignment as next_token_alignment
from .plausibility import one_based_evidence as one_based_evidence
from .plausibility import padding_runs as padding_runs
from .plausibility import probability_shaped as probability_shaped
from .plausibility import probability_tolerance as probability_tolerance
from .plausibility import row_position_columns as row_position_columns
from .plausibility import whole_number_columns as whole_number_columns
from .ranking import TIES as TIES
from .reliability import BIN_EDGES as BIN_EDGES
from .reliability import BINNINGS as BINNINGS
from .reliability import calibration_metrics as calibration_metrics
from .sequences import sequence_figures as sequence_figures
from .sequences import sequence_means as sequence_means
