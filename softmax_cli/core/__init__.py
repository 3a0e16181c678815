"""The numeric core: pure NumPy functions on arrays, no I/O.

Everything the command line computes is callable from Python here, e.g.
``softmax_cli.core.softmax(array, axis=-1)``.
"""

from .softmax import (
    MASKED_ROW_POLICIES,
    MaskedRowError,
    check_temperature,
    entropy,
    log_softmax,
    logsumexp,
    softmax,
)

__all__ = [
    "MASKED_ROW_POLICIES",
    "MaskedRowError",
    "check_temperature",
    "entropy",
    "log_softmax",
    "logsumexp",
    "softmax",
]
