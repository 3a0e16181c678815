"""``softmax loss`` and ``softmax grad``: cross-entropy against labels and its gradient (or a softmax VJP)."""

from __future__ import annotations

import numpy as np
import typer

from .. import batch, core, render, reports, scheduled, stream
from ..errors import UsageError
from ..inputs import check_one_stdin
from ..operands import load_labels, load_option_array
from ..options import GATES, INPUT, BatchOutput, InputsArg, LogOpt, LossOptions, PerRowOpt, Reduction, ReportOpt
from ..options import SchedulerOpt
from ..options import SoftmaxInput
from ..result import Gate, Result
from . import described, described_sources, labels_for, logits_loader, named_rows, warn


def _loss_bound(value: float | None) -> float | None:
    if value is not None and not value >= 0:  # NaN too: no loss is ever <= NaN
        raise typer.BadParameter(f"{value:g} can never pass; a cross-entropy is 0 or more, so give a bound >= 0, "
                                 f"e.g. 0.35")
    return value


def _required(value, option: str, example: str):
    if value is None:
        raise UsageError(f"{option} is required; for example: {example}")
    return value


def _warn_unnormalised(rows: np.ndarray) -> None:
    if len(rows):
        shown = ", ".join(str(int(r)) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        warn(f"{len(rows)} target row(s) do not sum to 1 (rows {shown}); computed as given")


def _paths_of(operands: dict) -> list:
    """The files the operands were read from: inputs, never to be overwritten."""
    return [path for operand in operands.values() if operand for path in operand.paths]


def _cross_entropy_options(criterion: LossOptions, source: SoftmaxInput, example: str, inputs: list[str] | None):
    """The labels (indices or distributions), the core's loss options, and the operands by the core's names."""
    check_one_stdin(inputs, labels=criterion.labels, weights=criterion.weights)
    truth = load_labels(_required(criterion.labels, "--labels", example))
    weights = load_option_array(criterion.weights, "--weights", "weights") if criterion.weights is not None else None
    options = dict(ignore_index=criterion.ignore_index, reduction=criterion.reduction.value,
                   label_smoothing=criterion.label_smoothing, temperature=source.temperature,
                   from_probs=criterion.from_probs, eps=criterion.eps, masked_rows=source.masked_rows.value,
                   weights=None if weights is None else weights.array)
    return truth, options, {"labels": truth, "weights": weights}


def loss(
    inputs: InputsArg = None,
    max_loss: float = typer.Option(None, "--max-loss", help="Gate: exit 1 when the reduced loss exceeds X (>= 0).",
                                   show_default=False, callback=_loss_bound,
                                   rich_help_panel=GATES),
    scheduler: SchedulerOpt = None,
    per_row: PerRowOpt = False,
    report: ReportOpt = None,
    *,
    criterion: LossOptions,
    source: SoftmaxInput,
    outputs: BatchOutput,
) -> None:
    """Cross-entropy of logits against --labels, as torch.nn.functional.cross_entropy.

    Labels of the logits' shape without the class axis are class indices;
    labels of the logits' full shape are target distributions (one-hot or soft).

    \b
    Example:
      softmax loss sample_data/logits.csv --labels sample_data/labels.txt
    """
    axis = source.axis
    truth, options, operands = _cross_entropy_options(criterion, source, "softmax loss 2 1 0 --labels 0", inputs)
    ledger = reports.Ledger("loss", reports.parse(report, outputs.force, _paths_of(operands)), outputs.force)
    described_operands = described("labels", truth) + described("weights", operands["weights"])

    def write(terms: core.CrossEntropyTerms, classes, row_names: dict, sink: render.Sink, inputs: list[dict],
              label: str | None = None) -> None:
        _warn_unnormalised(terms.unnormalised_rows)
        arrays = {"loss": terms.loss, "accuracy": np.float64(terms.accuracy)}
        if criterion.reduction is not Reduction.none:  # else the loss is per sample already: written once
            arrays["per_sample"] = terms.per_sample
        gates = []
        if max_loss is not None:
            # With --reduction none the gate holds every row to the bound.
            worst = float(np.max(terms.loss)) if terms.loss.size else float("nan")
            each = criterion.reduction is Reduction.none
            gates.append(Gate("--max-loss", "max_loss" if each else "loss",
                              "largest per-row loss" if each else "loss", "<=", max_loss, worst, f"{max_loss:g}"))
        result = Result(arrays, classes=classes, **row_names, column=True, layout="loss",
                        per_row_names=("per_sample",) if "per_sample" in arrays else (), per_row=per_row,
                        command="loss", inputs=inputs + described_operands, gates=gates)
        render.write(result, sink)
        ledger.decide(result, label)

    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source)
        sink = scheduled.result_sink(sources, outputs, _paths_of(operands))
        from ..distributed import cross_entropy_terms

        with scheduled.session(cluster, sources, outputs.keep_going, "loss") as run:
            # The labels cover every row of every shard, in order.
            outcome = cross_entropy_terms(run, truth.array, **options)
        terms = outcome.value
        if len(sources) == 1 and not outcome.failures:  # one array keeps its shape, as in process
            terms = terms._replace(per_sample=terms.per_sample.reshape(sources[0].shape[:-1]),
                                   loss=terms.loss.reshape(sources[0].shape[:-1]) if terms.loss.ndim else terms.loss)
        with ledger:
            try:
                write(terms, None, {}, sink, described_sources(sources))
            finally:  # failed inputs (--keep-going) outrank the gate: exit 2, as in a batch
                scheduled.raise_failures(outcome, sources)
        return

    def one(logits, sink: render.Sink) -> None:
        labels = labels_for(truth, logits, axis)
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            terms = stream.cross_entropy_terms(rows, labels, **options)
        else:
            terms = core.cross_entropy_terms(logits.array, labels, axis=axis, **options)
        write(terms, logits.classes, named_rows(logits), sink, described("logits", logits), logits.source)

    with ledger:
        batch.run(inputs, outputs, logits_loader(source), one, operands=operands)


def grad(
    inputs: InputsArg = None,
    upstream: str = typer.Option(None, "--upstream", help="Upstream gradient G (logits' shape): give the softmax "
                                 "vector-Jacobian product instead of the loss gradient.", show_default=False,
                                 rich_help_panel=INPUT),
    log: LogOpt = False,
    scheduler: SchedulerOpt = None,
    *,
    criterion: LossOptions,
    source: SoftmaxInput,
    outputs: BatchOutput,
) -> None:
    """Gradient of the loss that `softmax loss` computes (same options) with respect to the logits.

    With --upstream G instead: the softmax vector-Jacobian product s * (g - sum(g s)),
    or with --log log-softmax's g - s sum(g).

    \b
    Example:
      softmax grad 2 1 0.1 --labels 0
    """
    axis, masked_rows = source.axis, source.masked_rows
    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source, [("--upstream", upstream is not None), ("--log", log)])
        truth, options, operands = _cross_entropy_options(criterion, source, "softmax grad 2 1 0 --labels 0", inputs)
        if truth.array.ndim > 1:
            _warn_unnormalised(core.unnormalised_rows(truth.array, axis=-1))
        scheduled.map_arrays(cluster, sources, outputs, "grad", "grad", _paths_of(operands), labels=truth.array,
                             **options)
        return
    if upstream is not None:
        if criterion.labels is not None:
            raise UsageError("give --labels (loss gradient) or --upstream (vector-Jacobian product), not both")
        check_one_stdin(inputs, upstream=upstream)
        g = load_option_array(upstream, "--upstream", "upstream")

        def values_of(logits, sink):
            return core.softmax_vjp(logits.array, g.array, axis=axis, temperature=source.temperature, log=log,
                                    masked_rows=masked_rows.value)

        operands = {"upstream": g}
    else:
        if log:
            raise UsageError("--log goes with --upstream (log-softmax's vector-Jacobian product)")
        truth, options, operands = _cross_entropy_options(criterion, source, "softmax grad 2 1 0 --labels 0", inputs)

        def values_of(logits, sink):
            labels = labels_for(truth, logits, axis)
            if labels.shape == logits.array.shape:
                _warn_unnormalised(core.unnormalised_rows(labels, axis=axis))
            rows = stream.rows_for_output(logits, axis, sink, masked_rows.value) if not criterion.from_probs else None
            if rows is None:
                return core.cross_entropy_grad(logits.array, labels, axis=axis, **options)
            per_row = stream.per_row_labels(labels, rows)
            # Every block is scaled by the whole batch's mean denominator.
            denominator = core.mean_denominator(labels, rows.shape, weights=options["weights"],
                                                ignore_index=criterion.ignore_index)
            return stream.map_rows(
                rows, lambda block, at: core.cross_entropy_grad(block, per_row[at], denominator=denominator, **options),
                core.output_dtype(rows.dtype))

    def one(logits, sink: render.Sink) -> None:
        values = values_of(logits, sink)
        class_last = axis in (-1, values.ndim - 1)
        inputs = described("logits", logits) + [entry for role, operand in operands.items()
                                                for entry in described(role, operand)]
        render.write(Result({"grad": values}, classes=logits.classes, **named_rows(logits),
                            header=logits.classes if class_last else None, command="grad", inputs=inputs), sink)

    batch.run(inputs, outputs, logits_loader(source), one, operands=operands)
