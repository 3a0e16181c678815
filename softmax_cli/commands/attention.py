"""``softmax attention``: scaled dot-product attention over one set of operands, as torch computes it."""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
import typer

from .. import core, render
from ..operands import load_attention_operands, naming_sources
from ..limits import check_memory
from ..options import COMPUTATION, INPUT, OUTPUT, CausalAlign, MaskedRows, MaskedRowsOpt, Output, Performance
from ..result import Result
from . import described


class MaskType(str, Enum):
    auto = "auto"
    bool = "bool"
    additive = "additive"


def _check_weights_fit(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
    """--weights holds every (L, S) score: refuse up front, naming the size, when this process cannot."""
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
    mask: str = typer.Option(None, "--mask", help="Boolean (True attends) or float (added to the scores) mask, "
                             "broadcastable to (..., L, S).", show_default=False, rich_help_panel=INPUT),
    mask_type: MaskType = typer.Option(MaskType.auto, "--mask-type", help="How --mask is read: bool (nonzero "
                                       "attends), additive (added to the scores), or auto: by its dtype, and 0/1 "
                                       "given as text is refused as ambiguous.", rich_help_panel=INPUT),
    causal: bool = typer.Option(False, "--causal", help="Query i attends keys j <= i (torch's is_causal).",
                                rich_help_panel=COMPUTATION),
    causal_align: CausalAlign = typer.Option(CausalAlign.upper_left, "--causal-align",
                                             help="Where the causal diagonal starts when L != S; lower-right "
                                             "is the decoding alignment.", rich_help_panel=COMPUTATION),
    scale: float = typer.Option(None, "--scale", help="Multiplies q k^T.  [default: 1/sqrt(E)]",
                                show_default=False, rich_help_panel=COMPUTATION),
    return_weights: bool = typer.Option(False, "--return-weights", help="Also output the attention weights "
                                        "(..., L, S); this holds the full score matrix.", rich_help_panel=OUTPUT),
    weights_old: bool = typer.Option(False, "--weights", hidden=True),  # the spelling before --return-weights
    masked_rows: MaskedRowsOpt = MaskedRows.zero,
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
    weights = return_weights or weights_old
    (q, k, v), bias = load_attention_operands(inputs, mask, mask_type.value)
    paths = q.paths + k.paths + v.paths + (bias.paths if bias else [])
    sink = render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, paths)
    bias_array = None if bias is None else bias.array
    if weights:
        _check_weights_fit(q.array, k.array, v.array)
    with naming_sources(None, {"q": q, "k": k, "v": v, "mask": bias}):
        result = core.attention(q.array, k.array, v.array, mask=bias_array, causal=causal,
                                causal_align=causal_align.value, scale=scale, return_weights=weights)
    out, attention_weights = result if weights else (result, None)
    if masked_rows is not MaskedRows.zero:
        unattended = np.broadcast_to(core.unattended_queries(q.array.shape[-2], k.array.shape[-2], bias_array, causal,
                                                             causal_align.value), out.shape[:-1])
        if unattended.any() and masked_rows is MaskedRows.error:
            row = tuple(int(i) for i in np.argwhere(unattended)[0])
            raise core.MaskedRowError(
                "the query can attend no key (every key is masked); choose --masked-rows zero (torch's zeros) "
                "or nan", where=f"query {row[0] if len(row) == 1 else row}")
        out = np.where(unattended[..., None], np.nan, out).astype(out.dtype)
        if attention_weights is not None:
            attention_weights = np.where(unattended[..., None], np.nan, attention_weights).astype(out.dtype)
    arrays = {"output": out} if attention_weights is None else {"output": out, "weights": attention_weights}
    inputs = [entry for role, operand in (("q", q), ("k", k), ("v", v), ("mask", bias))
              for entry in described(role, operand)]
    render.write(Result(arrays, layout="attention", command="attention", inputs=inputs), sink)
