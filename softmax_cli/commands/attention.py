"""``softmax attention``: scaled dot-product attention over one set of operands, as torch computes it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..limits import check_memory
from ..options import (
    COMPUTATION,
    INPUT,
    OUTPUT,
    CausalAlignOpt,
    MaskedRowsOpt,
    MaskTypeOpt,
    Output,
    Performance,
    ScaleOpt,
    option,
    worded,
)
from . import described

if TYPE_CHECKING:
    import numpy as np

MaskOpt = Annotated[Optional[str], option(
    "--mask", help="Boolean (True attends) or float (added to the scores) mask, broadcastable to (..., L, S).",
    panel=INPUT, metavar="MASK|FILE", show_default=False)]
CausalOpt = Annotated[bool, option("--causal", help="Query i attends keys j <= i (torch's is_causal).",
                                   panel=COMPUTATION)]
ReturnWeightsOpt = Annotated[bool, option(
    "--return-weights", help="Also output the attention weights (..., L, S); this holds the full score matrix.",
    panel=OUTPUT)]
AttentionMaskedRowsOpt = worded(MaskedRowsOpt, "A query that can attend no key (every key masked): zeros "
                                "(torch's attention), refuse it, or NaN.")
WeightsOldOpt = Annotated[bool, option("--weights", help="", panel=OUTPUT, hidden=True)]  # before --return-weights


def _check_weights_fit(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
    """--weights holds every (L, S) score: refuse up front, naming the size, when this process cannot."""
    import numpy as np

    if min(q.ndim, k.ndim, v.ndim) < 2:
        return  # the core names the shapes it needs
    lead = max(a.ndim for a in (q, k, v)) - 2
    batch = [max(sizes) for sizes in zip(*((1,) * (lead + 2 - a.ndim) + a.shape[:-2] for a in (q, k, v)))]
    itemsize = np.result_type(q.dtype, k.dtype, np.float32).itemsize
    check_memory(math.prod(batch) * q.shape[-2] * k.shape[-2] * itemsize, "--weights (every query-key score)")


def attention(
    inputs: list[str] = typer.Argument(None, metavar="Q K V | QKV.npz", show_default=False,
                                       help="Queries (..., L, E), keys (..., S, E), values (..., S, Ev): three "
                                       "sources or quoted numbers, or one .npz with q, k, v (and mask)."),
    mask: MaskOpt = None,
    mask_type: MaskTypeOpt = "auto",
    causal: CausalOpt = False,
    causal_align: CausalAlignOpt = "upper-left",
    scale: ScaleOpt = None,
    return_weights: ReturnWeightsOpt = False,
    weights_old: WeightsOldOpt = False,
    masked_rows: AttentionMaskedRowsOpt = "zero",
    *,
    outputs: Output,
    performance: Performance,
) -> None:
    """Scaled dot-product attention, as torch.nn.functional.scaled_dot_product_attention.

    Without --return-weights the (L, S) score matrix is never held (online softmax over key blocks).
    A query row that can attend no key gives zeros (--masked-rows zero, the default, as torch).

    \b
    Example:
      softmax attention sample_data/attention.npz --causal
    """
    from .. import core, render
    from ..operands import load_attention_operands, naming_sources
    from ..result import Layout, Result

    weights = return_weights or weights_old
    (q, k, v), bias = load_attention_operands(inputs, mask, mask_type)
    paths = q.paths + k.paths + v.paths + (bias.paths if bias else [])
    sink = render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, paths)
    bias_array = None if bias is None else bias.array
    if weights:
        _check_weights_fit(q.array, k.array, v.array)
    with naming_sources(None, {"q": q, "k": k, "v": v, "mask": bias}):
        result = core.attention(q.array, k.array, v.array, mask=bias_array, causal=causal,
                                causal_align=causal_align, scale=scale, return_weights=weights,
                                masked_rows=masked_rows)
    out, attention_weights = result if weights else (result, None)
    arrays = {"output": out} if attention_weights is None else {"output": out, "weights": attention_weights}
    inputs = [entry for role, operand in (("q", q), ("k", k), ("v", v), ("mask", bias))
              for entry in described(role, operand)]
    render.write(Result(arrays, layout=Layout.attention, command="attention", inputs=inputs), sink)
