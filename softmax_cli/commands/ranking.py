"""``softmax topk``: the most probable classes per row, and top-k accuracy against labels (a CI gate)."""

from __future__ import annotations

import numpy as np
import typer

from .. import batch, core, render, reports, scheduled, stream
from ..errors import UsageError
from ..inputs import check_one_stdin
from ..operands import load_labels
from ..options import COMPUTATION, GATES, BatchOutput, IgnoreIndexOpt, InputsArg, LabelsOpt, PerRowOpt, ReportOpt
from ..options import SchedulerOpt
from ..options import SoftmaxInput
from ..result import Gate, Result
from . import described, described_sources, labels_for, logits_loader, named_rows


def _fraction(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise typer.BadParameter(f"{value:g} is not a fraction; give the accuracy as a fraction from 0 to 1, "
                                 f"e.g. 0.95 for 95%")
    return value


def topk(
    inputs: InputsArg = None,
    k: int = typer.Option(None, "-k", "--top", help="How many classes per row, 1..C.  [default: min(5, C)]",
                          show_default=False, rich_help_panel=COMPUTATION),
    k_old: int = typer.Option(None, "--k", hidden=True),  # the spelling before --top
    labels: LabelsOpt = None,
    min_accuracy: float = typer.Option(None, "--min-accuracy", help="Gate: exit 1 when top-k accuracy < A, "
                                       "a fraction 0..1 (0.95, not 95); needs -k/--top.", show_default=False,
                                       callback=_fraction, rich_help_panel=GATES),
    ignore_index: IgnoreIndexOpt = -100,
    scheduler: SchedulerOpt = None,
    per_row: PerRowOpt = False,
    report: ReportOpt = None,
    *,
    source: SoftmaxInput,
    outputs: BatchOutput,
) -> None:
    """The k most probable classes per row, highest first, ties to the lower index.

    With --labels, also top-1 and top-k accuracy.

    \b
    Example:
      softmax topk sample_data/logits.csv --top 2
    """
    axis, temperature, masked_rows = source.axis, source.temperature, source.masked_rows
    k = k if k is not None else k_old
    check_one_stdin(inputs, labels=labels)
    truth = load_labels(labels) if labels is not None else None
    if min_accuracy is not None and truth is None:
        raise UsageError("--min-accuracy needs --labels")
    if min_accuracy is not None and k is None:
        raise UsageError("--min-accuracy needs -k/--top K: the gate holds top-K accuracy to the bound")

    def options(n_classes: int) -> dict:
        return dict(k=min(5, n_classes) if k is None else k, temperature=temperature, masked_rows=masked_rows.value)

    ledger = reports.Ledger("topk", reports.parse(report, outputs.force, truth.paths if truth else []),
                            outputs.force)

    def write(indices, top_probs, n_classes: int, classes, sink: render.Sink, labels, row_names: dict,
              inputs: list[dict], label: str | None = None) -> None:
        arrays = {"indices": indices, "probs": top_probs}
        if labels is not None:
            top1, top_k = core.topk_accuracy(indices, labels, ignore_index, num_classes=n_classes)
            arrays |= {"top1_accuracy": np.float64(top1), "topk_accuracy": np.float64(top_k)}
        if classes is not None:
            arrays["names"] = np.asarray(classes)[indices]
        gates = []
        if min_accuracy is not None:
            gates.append(Gate("--min-accuracy", "topk_accuracy", f"top-{indices.shape[-1]} accuracy", ">=",
                              min_accuracy, float(arrays["topk_accuracy"]), f"{min_accuracy:g}"))
        result = Result(arrays, classes=classes, **row_names, layout="topk",
                        per_row_names=("indices", "probs", "names") if labels is not None else (), per_row=per_row,
                        command="topk", inputs=inputs + described("labels", truth), gates=gates)
        render.write(result, sink)
        ledger.decide(result, label)

    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source)
        sink = scheduled.result_sink(sources, outputs, truth.paths if truth else ())
        from ..distributed import topk as distributed_topk

        with scheduled.session(cluster, sources, outputs.keep_going, "topk") as run:
            outcome = distributed_topk(run, **options(sources[0].n_cols))
        indices, top_probs = outcome.value
        if len(sources) == 1:  # one array keeps its shape, as in process
            shape = sources[0].shape[:-1] + indices.shape[-1:]
            indices, top_probs = indices.reshape(shape), top_probs.reshape(shape)
        scheduled.raise_failures(outcome, sources)  # rows of failed inputs would misalign the labels: no result
        # The labels cover every row of every shard, in order.
        with ledger:
            write(indices, top_probs, sources[0].n_cols, None, sink, None if truth is None else truth.array, {},
                  described_sources(sources))
        return

    def one(logits, sink: render.Sink) -> None:
        n_classes = logits.array.shape[axis]
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            indices, top_probs = stream.topk(rows, **options(n_classes))
        else:
            indices, top_probs = core.topk(logits.array, axis=axis, **options(n_classes))
        write(indices, top_probs, n_classes, logits.classes, sink,
              None if truth is None else labels_for(truth, logits, axis), named_rows(logits),
              described("logits", logits), logits.source)

    with ledger:
        batch.run(inputs, outputs, logits_loader(source), one, operands={"labels": truth})
