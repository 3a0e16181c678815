"""``softmax compare``: how far apart two models' output distributions are, and CI gates on it.

The reference and the candidate are read like any logits (numbers, a file of
any format, ``-``); two C-ordered ``.npy`` files stream in lockstep row blocks
(:func:`softmax_cli.stream.divergence_rows`), anything else is compared in
memory. With ``--scheduler`` the two inputs' rows go to a Dask cluster in
lockstep units (:mod:`softmax_cli.cluster.comparison`) and the per-row figures
come back in row order. Either way the per-row figures come from
:func:`softmax_cli.core.divergence_rows` and the summary from
:func:`softmax_cli.core.divergence_summary`, here, by :func:`_report`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from .. import core, positions, render, reports, scheduled, stream
from ..errors import InputError, UsageError
from ..inputs import STDIN, Loaded, align_classes, align_rows, refuse_readers
from ..labelsource import LabelSource, read_labels
from ..operands import naming_sources
from ..options import (
    GATES,
    FromProbsOpt,
    IgnoreIndexOpt,
    LabelsKeyOpt,
    LabelsOpt,
    MaxKlOpt,
    MaxKlQuantileOpt,
    MaxPplRatioOpt,
    MinAgreementOpt,
    Number,
    Output,
    Padding,
    Performance,
    PerRowOpt,
    PerSequenceOpt,
    ReportOpt,
    SchedulerOpt,
    ShiftLabelsOpt,
    SoftmaxInput,
    option,
    worded,
)
from ..render import OutputFormat
from ..result import Gate, Layout, Result, as_typed
from . import described, logits_loader, named_rows, warn

# kl_mean first: it is the primary result (what -f npy holds).
SUMMARY = ("kl_mean", "kl_stderr", "kl_min", "kl_max", "kl_quantiles", "quantile_levels", "top1_agreement",
           "top1_agreement_stderr", "js_mean", "tv_mean", "max_abs_dp", "n_scored")
LABEL_SUMMARY = ("ppl_ref", "ppl_ref_stderr", "ppl_cand", "ppl_cand_stderr", "ln_ppl_correlation", "ln_ppl_ratio",
                 "ln_ppl_ratio_stderr", "ppl_ratio", "ppl_ratio_stderr", "ppl_diff", "ppl_diff_stderr", "dp_mean",
                 "dp_stderr", "dp_min", "dp_max", "dp_rms", "dp_rms_stderr", "dp_quantiles")
PER_ROW = ("kl", "js", "tv", "row_max_abs_dp", "top1_same")
LABEL_PER_ROW = ("nll_ref", "nll_cand", "dp")
# What a cluster run gathers per row: every per-row figure, and the label and mask the client holds.
GATHERED_ROW_BYTES = 8 * (len(PER_ROW) + len(LABEL_PER_ROW) + 2)
# Formats that write one tidy table (softmax_cli.tidy): its rows are those of its first 1-D array.
_ONE_TABLE = (OutputFormat.csv, OutputFormat.tsv, OutputFormat.parquet, OutputFormat.arrow)

CompareLabelsOpt = worded(LabelsOpt, "The true classes (next tokens), one per row (0,2,1 or a file; from an .npz "
                          "the array 'labels'): adds both perplexities, their ratio and the change in the label's "
                          "probability.")
CompareIgnoreIndexOpt = worded(IgnoreIndexOpt, "Rows labelled with this value are left out of the label figures, "
                               "as in torch.")
CompareFromProbsOpt = worded(FromProbsOpt, "Both inputs are probabilities, not logits: used exactly (log 0 = -inf).")
MaxSeqKlOpt = Annotated[Optional[float], option(
    "--max-seq-kl", help="Gate: exit 1 when any sequence's mean KL (nats) exceeds X (>= 0; sequences as "
    "--per-sequence).", panel=GATES, takes=Number(low=0, words="a KL in nats >= 0 (e.g. 0.01)"), show_default=False)]
MaxSeqPplRatioOpt = Annotated[Optional[float], option(
    "--max-seq-ppl-ratio", help="Gate: exit 1 when any sequence's ppl_cand / ppl_ref exceeds R (> 0; needs "
    "--labels).", panel=GATES, takes=Number(above=0, words="a ratio > 0 (e.g. 1.05)", metavar="R"),
    show_default=False)]


@dataclasses.dataclass(frozen=True)
class DivergenceGates:
    """The CI gates of ``compare``: mean KL, KL quantiles (each a (level, bound) pair), top-1 agreement, perplexity
    ratio. Each bound is held to its range when parsed: a bound outside it is a typo (agreement 95), not a gate
    that never passes."""

    max_kl: MaxKlOpt = None
    max_kl_quantile: MaxKlQuantileOpt = None
    min_agreement: MinAgreementOpt = None
    max_ppl_ratio: MaxPplRatioOpt = None
    max_seq_kl: MaxSeqKlOpt = None
    max_seq_ppl_ratio: MaxSeqPplRatioOpt = None

    @property
    def per_sequence(self) -> bool:
        """Whether a gate needs the per-sequence figures."""
        return self.max_seq_kl is not None or self.max_seq_ppl_ratio is not None

    def verdicts(self, summary: core.DivergenceSummary, rows: core.RowDivergence,
                 sequences: dict[str, np.ndarray] | None) -> list[Gate]:
        """Each given gate's verdict, in the order of the options (NaN figures never pass).

        A per-sequence gate holds the worst sequence to its bound; a sequence
        with no scored position has no figures and is not held.
        """
        gates = []
        for flag, name, bound, what in (("--max-seq-kl", "seq_kl_mean", self.max_seq_kl, "mean KL"),
                                        ("--max-seq-ppl-ratio", "seq_ppl_ratio", self.max_seq_ppl_ratio,
                                         "perplexity ratio")):
            if bound is None:
                continue
            values = np.where(sequences["seq_n_scored"] > 0, sequences[name], -np.inf)
            worst = int(np.argmax(np.where(np.isnan(values), np.inf, values))) if values.size else 0
            measured = float(values[worst]) if values.size else -np.inf
            gates.append(Gate(flag, name, f"sequence {worst}'s {what}", "<=", bound, measured, as_typed(bound)))
        if self.max_kl is not None:
            gates.append(Gate("--max-kl", "kl_mean", "mean KL", "<=", self.max_kl, float(summary.kl_mean),
                              as_typed(self.max_kl)))
        bounds = list(self.max_kl_quantile or ())
        if bounds:
            # Levels beyond the reported ones are computed the same way (linear, over rows).
            levels = core.divergence_summary(rows, [level for level, _ in bounds]).kl_quantiles
            gates += [Gate("--max-kl-quantile", f"kl_quantile_{level:g}", f"KL quantile {level:g}", "<=", bound,
                           float(value), f"{as_typed(level)}:{as_typed(bound)}")
                      for (level, bound), value in zip(bounds, levels)]
        if self.min_agreement is not None:
            gates.append(Gate("--min-agreement", "top1_agreement", "top-1 agreement", ">=", self.min_agreement,
                              float(summary.top1_agreement), as_typed(self.min_agreement)))
        if self.max_ppl_ratio is not None:
            gates.append(Gate("--max-ppl-ratio", "ppl_ratio", "perplexity ratio", "<=", self.max_ppl_ratio,
                              float(summary.ppl_ratio), as_typed(self.max_ppl_ratio)))
        return gates


def _load(spec: str, role: str, source: SoftmaxInput, truth: LabelSource | None,
          from_probs: bool) -> tuple[Loaded, str]:
    """One side's logits and the name errors give it: its file, or REFERENCE/CANDIDATE for typed numbers.

    Probability-shaped sides are refused once both are read (:func:`_refuse_probabilities`)."""
    loaded = logits_loader(source, labels=truth, takes_labels=True, from_probs=from_probs or None)([spec])
    return loaded, loaded.source or role


def _refuse_probabilities(sides: list[tuple[Loaded, str]], axis: int) -> None:
    """Refuse a side that reads as probabilities, as every command does; when the other side is logits, the two
    are of two kinds, which neither --from-probs nor --as-logits can compare: say so."""
    from ..inputs import refuse_probabilities

    refused = []
    for side, name in sides:
        try:
            refuse_probabilities(side, axis)
        except InputError as error:
            refused.append((error, name))
    if len(refused) == 1:
        name = refused[0][1]
        other = next(other for _, other in sides if other != name)
        raise InputError(f"{name} holds probabilities and {other} logits: the two sides must be of one kind; give "
                         "the probabilities' logarithm (np.log(p)) as logits, or the logits' probabilities (softmax "
                         "probs LOGITS -o p.npy) with --from-probs", where=name)
    if refused:
        raise refused[0][0]


def _sink_and_ledger(outputs: Output, report: list[str] | None, paths: list[Path]) -> tuple[render.Sink, reports.Ledger]:
    """Where the result and the reports go, both checked against every input (resolved once) before any work."""
    protected = render.Inputs(paths)
    ledger = reports.Ledger("compare", reports.parse(report), outputs.force)
    ledger.check(protected, [outputs.output])
    return render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, protected), ledger


def _same_file(reference: Loaded, candidate: Loaded) -> bool:
    try:
        return bool(reference.paths and candidate.paths and os.path.samefile(reference.paths[0], candidate.paths[0]))
    except OSError:
        return False


def _rows(reference: Loaded, candidate: Loaded, names, labels, mask, axis: int, options,
          reordered: bool) -> core.RowDivergence:
    """Per-row figures: streamed when both are C-ordered files in their own class order, else in memory."""
    pair = [None] if reordered else [stream.npy_rows(side, axis) for side in (reference, candidate)]
    if None in pair:
        return core.divergence_rows(reference.array, candidate.array, labels, axis=axis, names=names, mask=mask,
                                    **options)
    return stream.divergence_rows(*pair, labels, mask, **options)


def _per_row_names(rows: core.RowDivergence) -> tuple[str, ...]:
    """The per-row figures written: the label ones with labels, ``scored`` when some rows may not count."""
    return (PER_ROW + (LABEL_PER_ROW if rows.labelled is not None else ())
            + (("scored",) if rows.scored is not None else ()))


def _result(summary: core.DivergenceSummary, rows: core.RowDivergence, per_row: bool, fmt: OutputFormat,
            title: str, row_names: dict, sequences: dict[str, np.ndarray] | None, **provenance) -> Result:
    """Summary first, as 0-d arrays (quantiles 1-D); then the per-row figures, flat.

    The renderer leaves the per-row figures out of CSV, TSV and JSON without
    ``--per-row`` (:func:`softmax_cli.render.summary_first`); the table shows
    them only with it. CSV, TSV, Parquet and Arrow write one table whose rows
    are those of its first 1-D array: with the per-row figures, those go first
    so that each line is a compared row (the 9-entry quantile arrays are then
    named as left out). The input's row names go with the per-row figures only.
    """
    labelled = rows.labelled is not None
    arrays = {name: np.asarray(getattr(summary, name), dtype=np.int64 if name == "n_scored" else np.float64)
              for name in SUMMARY + (LABEL_SUMMARY if labelled else ())}
    per_row_arrays = {name: np.ravel(getattr(rows, name)) for name in _per_row_names(rows)}
    if fmt is OutputFormat.table and not per_row:
        per_row_arrays, row_names = {}, {}
    # One-table formats: the per-row figures (else the per-sequence ones) are the table, so they go first.
    tables = (per_row_arrays if per_row or fmt in render.BINARY_FORMATS else {}) | (sequences or {})
    if fmt in _ONE_TABLE and tables:
        quantiles = {name: arrays.pop(name) for name in list(arrays) if arrays[name].ndim}
        arrays |= tables | quantiles
    else:
        arrays |= per_row_arrays | (sequences or {})
    scored_kl = np.ravel(rows.kl) if rows.scored is None else np.ravel(rows.kl)[np.ravel(rows.scored)]
    return Result(arrays, layout=Layout.compare, title=title, display={"kl": scored_kl},
                  per_row_names=_per_row_names(rows), per_row=per_row, table_names=tuple(sequences or ()),
                  **row_names, **provenance)


def compare(
    reference: str = typer.Argument(..., metavar="REFERENCE", help="The reference logits: numbers ('1 2; 3 4'), "
                                    "a file of any supported format, or - for standard input.", show_default=False),
    candidate: str = typer.Argument(..., metavar="CANDIDATE", help="The candidate logits, of the reference's "
                                    "shape; read the same way.", show_default=False),
    labels: CompareLabelsOpt = None,
    labels_key: LabelsKeyOpt = None,
    ignore_index: CompareIgnoreIndexOpt = -100,
    from_probs: CompareFromProbsOpt = False,
    per_row: PerRowOpt = False,
    report: ReportOpt = None,
    shift_labels: ShiftLabelsOpt = False,
    per_sequence: PerSequenceOpt = False,
    scheduler: SchedulerOpt = None,
    *,
    gates: DivergenceGates,
    source: SoftmaxInput,
    padding: Padding,
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
    for name, given in (("--max-ppl-ratio", gates.max_ppl_ratio), ("--max-seq-ppl-ratio", gates.max_seq_ppl_ratio)):
        if given is not None and labels is None:
            raise UsageError(f"{name} needs --labels")
    truth = read_labels(labels, labels_key) if labels is not None else None
    if (cluster := scheduled.address(scheduler)) is not None:
        _compare_on_cluster(cluster, reference, candidate, truth, ignore_index, from_probs, per_row, report,
                            shift_labels, per_sequence, gates, source, padding, outputs)
        return
    ref, ref_name = _load(reference, "REFERENCE", source, truth, from_probs)
    cand, cand_name = _load(candidate, "CANDIDATE", source, truth, from_probs)
    if not from_probs and not source.as_logits:
        _refuse_probabilities([(ref, ref_name), (cand, cand_name)], source.axis)
    mask = positions.load_mask(padding)
    aligned = align_rows(ref, align_classes(ref, cand, source.axis, (ref_name, cand_name)), (ref_name, cand_name))
    if _same_file(ref, cand):
        warn(f"REFERENCE and CANDIDATE are the same file ({reference}); every figure will be 0")
    paths = ref.paths + cand.paths + (truth.paths if truth else []) + (mask.paths if mask else [])
    sink, ledger = _sink_and_ledger(outputs, report, paths)
    options = dict(temperature=source.temperature, from_probs=from_probs, masked_rows=source.masked_rows,
                   ignore_index=ignore_index)
    labels_array = None if truth is None else truth.fitted(ref, source.axis, ignore_index)
    fitted, keep = positions.scored(ref, source.axis, labels_array, truth, mask, shift_labels, ignore_index,
                                    check_plausibility=True, alongside=(cand,))
    flat = None if fitted is None else np.ravel(fitted)
    with naming_sources(None, {"labels": truth} if truth else {}):  # a bad label names the labels' file
        rows = _rows(ref, aligned, (ref_name, cand_name), flat, keep, source.axis, options, aligned is not cand)
    inputs = (described("reference", ref) + described("candidate", cand) + described("labels", truth)
              + described("mask", mask))
    _report(rows, ref, (ref_name, cand_name), source.axis, inputs, per_row, per_sequence, gates, sink, ledger)


def _report(rows: core.RowDivergence, ref: Loaded, names: tuple[str, str], axis: int, inputs: list[dict],
            per_row: bool, per_sequence: bool, gates: DivergenceGates, sink: render.Sink,
            ledger: reports.Ledger) -> None:
    """The summary of the per-row figures, the per-sequence ones, the gates' verdicts, written (in process or not)."""
    summary = core.divergence_summary(rows)
    shape = ref.array.shape
    at = axis % len(shape)
    sequences = (core.sequence_figures(rows, shape[:at] + shape[at + 1:])
                 if per_sequence or gates.per_sequence else None)
    n_rows = int(np.ravel(rows.kl).size)
    title = (f"{Path(names[0]).name} vs {Path(names[1]).name}: {n_rows:,} row{'s' * (n_rows != 1)}, "
             f"{shape[axis]:,} classes")
    result = _result(summary, rows, per_row, sink.fmt, title, named_rows(ref), sequences if per_sequence else None,
                     command="compare", inputs=inputs, gates=gates.verdicts(summary, rows, sequences))
    with ledger:
        render.write(result, sink)
        ledger.decide(result)


def _compare_on_cluster(cluster: str, reference: str, candidate: str, truth: LabelSource | None, ignore_index: int,
                        from_probs: bool, per_row: bool, report: str | None, shift_labels: bool, per_sequence: bool,
                        gates: DivergenceGates, source: SoftmaxInput, padding: Padding, outputs: Output) -> None:
    """``compare --scheduler``: the two inputs' rows in lockstep units on the cluster, the report here.

    Labels and the mask are fitted and folded on the client exactly as in
    process (:func:`positions.scored`) against the reference's shape, then
    sliced per unit; the workers return the per-row figures, and the summary,
    gates and output are those of the in-process run.
    """
    from ..cluster import divergence_rows
    from ..cluster.comparison import check_aligned

    ref_sources, cand_sources = (scheduled.sources_of([spec], source, probabilities=True)
                                 for spec in (reference, candidate))
    if not from_probs and not source.as_logits:  # each side's first rows, judged as in process
        _refuse_probabilities([(scheduled.head_of(ref_sources, reference), reference),
                               (scheduled.head_of(cand_sources, candidate), candidate)], -1)
    check_aligned(ref_sources, cand_sources, (reference, candidate))
    ref = scheduled.stand_in(ref_sources, reference)
    mask = positions.load_mask(padding)
    paths = ([Path(s.path) for s in ref_sources + cand_sources] + (truth.paths if truth else [])
             + (mask.paths if mask else []))
    sink, ledger = _sink_and_ledger(outputs, report, paths)
    if _same_sources(ref_sources, cand_sources):
        warn(f"REFERENCE and CANDIDATE are the same file ({reference}); every figure will be 0")
    labels_array = None if truth is None else truth.fitted(ref, -1, ignore_index)
    fitted, keep = positions.scored(ref, -1, labels_array, truth, mask, shift_labels, ignore_index)
    flat = None if fitted is None else np.ravel(fitted)
    options = dict(temperature=source.temperature, from_probs=from_probs, masked_rows=source.masked_rows,
                   ignore_index=ignore_index)
    size = scheduled.unit_bytes()  # checked before the cluster starts, as the plan is
    scheduled.check_plan(ref_sources, size, GATHERED_ROW_BYTES)
    scheduled.check_plan(cand_sources, size, 0)
    with scheduled.connected(cluster, sum(s.n_rows for s in ref_sources), False, "compare") as engine, \
            naming_sources(None, {"labels": truth} if truth else {}):  # a bad label names the labels' file
        rows = divergence_rows(engine, ref_sources, cand_sources, flat, keep, size, **options)
    cand = scheduled.stand_in(cand_sources, candidate)
    inputs = (described("reference", ref) + described("candidate", cand) + described("labels", truth)
              + described("mask", mask))
    _report(rows, ref, (reference, candidate), -1, inputs, per_row, per_sequence, gates, sink, ledger)


def _same_sources(reference: list, candidate: list) -> bool:
    try:
        return all(os.path.samefile(a.path, b.path) for a, b in zip(reference, candidate)) \
            and len(reference) == len(candidate)
    except OSError:
        return False
