"""``softmax compare``: how far apart two models' output distributions are, and CI gates on it.

The reference and the candidate are read like any logits (numbers, a file of
any format, ``-``); two C-ordered ``.npy`` files stream in lockstep row blocks
(:func:`softmax_cli.stream.divergence_rows`), anything else is compared in
memory. Either way the per-row figures come from
:func:`softmax_cli.core.divergence_rows` and the summary from
:func:`softmax_cli.core.divergence_summary`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from .. import core, render, reports, stream
from ..errors import UsageError
from ..inputs import STDIN, Loaded, refuse_readers
from ..operands import load_labels
from ..options import GATES, FromProbsOpt, IgnoreIndexOpt, LabelsOpt, Output, Performance, PerRowOpt, ReportOpt
from ..options import SoftmaxInput
from ..render import OutputFormat
from ..result import Gate, Result
from . import described, labels_for, logits_loader, named_rows, warn

SUMMARY = ("kl_mean", "kl_stderr", "kl_max", "kl_quantiles", "quantile_levels", "top1_agreement", "js_mean",
           "tv_mean", "max_abs_dp")
LABEL_SUMMARY = ("ppl_ref", "ppl_cand", "ppl_ratio", "dp_mean", "dp_rms", "dp_quantiles")
PER_ROW = ("kl", "js", "tv", "row_max_abs_dp", "top1_same")
LABEL_PER_ROW = ("nll_ref", "nll_cand", "dp")
# Formats that write one tidy table (softmax_cli.tidy): its rows are those of its first 1-D array.
_ONE_TABLE = (OutputFormat.csv, OutputFormat.tsv, OutputFormat.parquet, OutputFormat.arrow)

MaxKlOpt = Annotated[
    Optional[float],
    typer.Option("--max-kl", metavar="X", help="Gate: exit 1 when the mean KL (nats) exceeds X (>= 0).",
                 show_default=False, rich_help_panel=GATES),
]
MaxKlQuantileOpt = Annotated[
    Optional[list[str]],
    typer.Option("--max-kl-quantile", metavar="Q:X", help="Gate: exit 1 when the per-row KL's Q-quantile exceeds "
                 "X, e.g. 0.99:0.05 (Q in (0, 1), any level; repeatable).", show_default=False,
                 rich_help_panel=GATES),
]
MinAgreementOpt = Annotated[
    Optional[float],
    typer.Option("--min-agreement", metavar="A", help="Gate: exit 1 when top-1 agreement (a fraction, 0..1) is "
                 "below A.", show_default=False, rich_help_panel=GATES),
]
MaxPplRatioOpt = Annotated[
    Optional[float],
    typer.Option("--max-ppl-ratio", metavar="R", help="Gate: exit 1 when ppl_cand / ppl_ref exceeds R (> 0; "
                 "needs --labels).", show_default=False, rich_help_panel=GATES),
]


def _checked(value: float | None, option: str, allowed: str, ok, example: str) -> float | None:
    if value is not None and not (math.isfinite(value) and ok(value)):
        raise UsageError(f"{option} takes {allowed}, e.g. {option} {example}; got {value:g}")
    return value


def _kl_quantile(spec: str) -> tuple[float, float]:
    """``Q:X`` of ``--max-kl-quantile``: a level in (0, 1) and a bound >= 0."""
    try:
        level, bound = (float(part) for part in spec.split(":"))
    except ValueError:
        level = bound = math.nan
    if not (0 < level < 1 and math.isfinite(bound) and bound >= 0):
        raise UsageError(f"--max-kl-quantile takes Q:X with Q in (0, 1) and X >= 0, e.g. --max-kl-quantile "
                         f"0.99:0.05; got {spec!r}")
    return level, bound


@dataclasses.dataclass(frozen=True)
class DivergenceGates:
    """The CI gates of ``compare``: mean KL, a KL quantile, top-1 agreement, perplexity ratio."""

    max_kl: MaxKlOpt = None
    max_kl_quantile: MaxKlQuantileOpt = None
    min_agreement: MinAgreementOpt = None
    max_ppl_ratio: MaxPplRatioOpt = None

    def __post_init__(self) -> None:
        # Refused before any work: a bound outside its range is a typo (agreement 95), not a gate that never passes.
        _checked(self.max_kl, "--max-kl", "a KL in nats >= 0", lambda x: x >= 0, "0.01")
        _checked(self.min_agreement, "--min-agreement", "a fraction of rows in [0, 1]", lambda x: 0 <= x <= 1,
                 "0.99")
        _checked(self.max_ppl_ratio, "--max-ppl-ratio", "a ratio > 0", lambda x: x > 0, "1.01")
        for spec in self.max_kl_quantile or ():
            _kl_quantile(spec)

    def verdicts(self, summary: core.DivergenceSummary, rows: core.RowDivergence) -> list[Gate]:
        """Each given gate's verdict, in the order of the options (NaN figures never pass)."""
        gates = []
        if self.max_kl is not None:
            gates.append(Gate("--max-kl", "kl_mean", "mean KL", "<=", self.max_kl, float(summary.kl_mean),
                              f"{self.max_kl:g}"))
        bounds = [_kl_quantile(spec) for spec in self.max_kl_quantile or ()]
        if bounds:
            # Levels beyond the reported ones are computed the same way (linear, over rows).
            levels = core.divergence_summary(rows, [level for level, _ in bounds]).kl_quantiles
            gates += [Gate("--max-kl-quantile", f"kl_quantile_{level:g}", f"KL quantile {level:g}", "<=", bound,
                           float(value), f"{level:g}:{bound:g}") for (level, bound), value in zip(bounds, levels)]
        if self.min_agreement is not None:
            gates.append(Gate("--min-agreement", "top1_agreement", "top-1 agreement", ">=", self.min_agreement,
                              float(summary.top1_agreement), f"{self.min_agreement:g}"))
        if self.max_ppl_ratio is not None:
            gates.append(Gate("--max-ppl-ratio", "ppl_ratio", "perplexity ratio", "<=", self.max_ppl_ratio,
                              float(summary.ppl_ratio), f"{self.max_ppl_ratio:g}"))
        return gates


def _load(spec: str, role: str, source: SoftmaxInput) -> tuple[Loaded, str]:
    """One side's logits and the name errors give it: its file, or REFERENCE/CANDIDATE for typed numbers."""
    loaded = logits_loader(source)([spec])
    return loaded, loaded.source or role


def _same_file(reference: Loaded, candidate: Loaded) -> bool:
    try:
        return bool(reference.paths and candidate.paths and os.path.samefile(reference.paths[0], candidate.paths[0]))
    except OSError:
        return False


def _rows(reference: Loaded, candidate: Loaded, names, labels, axis: int, options) -> core.RowDivergence:
    """Per-row figures: streamed when both are C-ordered ``.npy`` files, else in memory."""
    pair = [stream.npy_rows(side, axis) for side in (reference, candidate)]
    if None in pair:
        return core.divergence_rows(reference.array, candidate.array, labels, axis=axis, names=names, **options)
    shape = pair[0].shape
    flat = None if labels is None else core.check_labels(labels, shape[:-1], shape[-1], options["ignore_index"])
    return stream.divergence_rows(*pair, flat, **options)


def _result(summary: core.DivergenceSummary, rows: core.RowDivergence, per_row: bool, fmt: OutputFormat,
            title: str, row_names: dict, **provenance) -> Result:
    """Summary first, as 0-d arrays (quantiles 1-D); then the per-row figures, flat.

    The renderer leaves the per-row figures out of CSV, TSV and JSON without
    ``--per-row`` (:func:`softmax_cli.render.summary_first`); the table shows
    them only with it. CSV, TSV, Parquet and Arrow write one table whose rows
    are those of its first 1-D array: with the per-row figures, those go first
    so that each line is a compared row (the 9-entry quantile arrays are then
    named as left out). The input's row names go with the per-row figures only.
    """
    labelled = rows.labelled is not None
    arrays = {name: np.asarray(getattr(summary, name), dtype=np.float64)
              for name in SUMMARY + (LABEL_SUMMARY if labelled else ())}
    per_row_arrays = {name: np.ravel(getattr(rows, name)) for name in PER_ROW + (LABEL_PER_ROW if labelled else ())}
    if fmt is OutputFormat.table and not per_row:
        per_row_arrays, row_names = {}, {}
    if fmt in _ONE_TABLE and (per_row or fmt in render.BINARY_FORMATS):
        quantiles = {name: arrays.pop(name) for name in list(arrays) if arrays[name].ndim}
        arrays |= per_row_arrays | quantiles
    else:
        arrays |= per_row_arrays
    return Result(arrays, layout="compare", title=title, display={"kl": np.ravel(rows.kl)},
                  per_row_names=PER_ROW + LABEL_PER_ROW, per_row=per_row, **row_names, **provenance)


def compare(
    reference: str = typer.Argument(..., metavar="REFERENCE", help="The reference logits: numbers ('1 2; 3 4'), "
                                    "a file of any supported format, or - for standard input.", show_default=False),
    candidate: str = typer.Argument(..., metavar="CANDIDATE", help="The candidate logits, of the reference's "
                                    "shape; read the same way.", show_default=False),
    labels: LabelsOpt = None,
    ignore_index: IgnoreIndexOpt = -100,
    from_probs: FromProbsOpt = False,
    per_row: PerRowOpt = False,
    report: ReportOpt = None,
    *,
    gates: DivergenceGates,
    source: SoftmaxInput,
    outputs: Output,
    performance: Performance,
) -> None:
    """How far apart two models' output distributions are: KL, JS, TV, top-1 agreement, perplexities.

    Per row P = softmax(REFERENCE), Q = softmax(CANDIDATE): KL(P||Q), Jensen-Shannon,
    total variation, max |p - q| and whether the top classes agree; with --labels
    the NLL of both and the change in the label's probability. The summary (means,
    quantiles, perplexity ratio) comes first; the gates exit 1 after printing it.

    \b
    Example:
      softmax compare sample_data/compare_ref.npy sample_data/compare_cand.npy --max-kl 0.001
    """
    refuse_readers([name for name, spec in (("REFERENCE", reference), ("CANDIDATE", candidate), ("--labels", labels))
                    if spec == STDIN])
    if gates.max_ppl_ratio is not None and labels is None:
        raise UsageError("--max-ppl-ratio needs --labels")
    ref, ref_name = _load(reference, "REFERENCE", source)
    cand, cand_name = _load(candidate, "CANDIDATE", source)
    truth = load_labels(labels) if labels is not None else None
    if _same_file(ref, cand):
        warn(f"REFERENCE and CANDIDATE are the same file ({reference}); every figure will be 0")
    paths = ref.paths + cand.paths + (truth.paths if truth else [])
    sink = render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, paths)
    ledger = reports.Ledger("compare", reports.parse(report, outputs.force, paths), outputs.force)
    options = dict(temperature=source.temperature, from_probs=from_probs, masked_rows=source.masked_rows.value,
                   ignore_index=ignore_index)
    labels_array = None if truth is None else labels_for(truth, ref, source.axis)
    rows = _rows(ref, cand, (ref_name, cand_name), labels_array, source.axis, options)
    summary = core.divergence_summary(rows)
    shape = ref.array.shape
    n_rows = int(np.ravel(rows.kl).size)
    title = (f"{Path(ref_name).name} vs {Path(cand_name).name}: {n_rows:,} row{'s' * (n_rows != 1)}, "
             f"{shape[source.axis]:,} classes")
    inputs = described("reference", ref) + described("candidate", cand) + described("labels", truth)
    result = _result(summary, rows, per_row, sink.fmt, title, named_rows(ref), command="compare", inputs=inputs,
                     gates=gates.verdicts(summary, rows))
    with ledger:
        render.write(result, sink)
        ledger.decide(result)
