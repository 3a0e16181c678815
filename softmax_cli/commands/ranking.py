"""``softmax topk``: the most probable classes per row, and top-k accuracy against labels (a CI gate)."""

from __future__ import annotations

from typing import Annotated

from ..errors import UsageError
from ..options import (
    COMPUTATION,
    BatchOutput,
    FromProbsOpt,
    IgnoreIndexOpt,
    InputsArg,
    LabelsKeyOpt,
    LabelsOpt,
    MinAccuracyOpt,
    OneOf,
    Padding,
    PerRowOpt,
    ReportOpt,
    SchedulerOpt,
    SoftmaxInput,
    TopOldOpt,
    TopOpt,
    core_choices,
    option,
    worded,
)
from . import correct_of, described, described_sources, logits_loader, named_rows, warn_below_chance

TopkLabelsOpt = worded(LabelsOpt, "The true classes, one per row (0,2,1 or a file; from an .npz the array "
                       "'labels'): adds top-1 and top-k accuracy, and the --min-accuracy gate.")
TiesOpt = Annotated[str, option(
    "--ties", help="Which of tied classes ranks first: low (the lower index, as jax.lax.top_k) or high (the higher "
    "index, as sklearn's top_k_accuracy_score).", panel=COMPUTATION, takes=OneOf(core_choices("TIES")))]


def topk(
    inputs: InputsArg = None,
    k: TopOpt = None,
    k_old: TopOldOpt = None,
    labels: TopkLabelsOpt = None,
    min_accuracy: MinAccuracyOpt = None,
    ties: TiesOpt = "low",
    labels_key: LabelsKeyOpt = None,
    from_probs: FromProbsOpt = False,
    ignore_index: IgnoreIndexOpt = -100,
    scheduler: SchedulerOpt = None,
    per_row: PerRowOpt = False,
    report: ReportOpt = None,
    *,
    source: SoftmaxInput,
    padding: Padding,
    outputs: BatchOutput,
) -> None:
    """The k most probable classes per row, highest first, ties to the lower index (--ties high: the higher).

    With --labels, also top-1 and top-k accuracy. Rows that --mask drops get
    indices -1 and probabilities NaN, and no accuracy counts them.

    \b
    Example:
      softmax topk sample_data/logits.csv --top 2
    """
    import numpy as np

    from .. import batch, core, positions, render, reports, scheduled, stream
    from ..inputs import check_one_stdin
    from ..labelsource import read_labels
    from ..result import Gate, Layout, Result, as_typed

    axis, temperature, masked_rows = source.axis, source.temperature, source.masked_rows
    k = k if k is not None else k_old
    check_one_stdin(inputs, labels=labels)
    truth = read_labels(labels, labels_key) if labels is not None else None
    if min_accuracy is not None and truth is None:
        raise UsageError("--min-accuracy needs --labels")
    if min_accuracy is not None and k is None:
        raise UsageError("--min-accuracy needs -k/--top K: the gate holds top-K accuracy to the bound")

    def options(n_classes: int) -> dict:
        return dict(k=min(5, n_classes) if k is None else k, temperature=temperature, masked_rows=masked_rows,
                    ties=ties)

    ledger = reports.Ledger("topk", reports.parse(report), outputs.force)

    def write(indices, top_probs, n_classes: int, classes, sink: render.Sink, labels, row_names: dict,
              inputs: list[dict], label: str | None = None) -> None:
        arrays = {"indices": indices, "probs": top_probs}
        if labels is not None:
            top1, top_k = core.topk_accuracy(indices, labels, ignore_index, num_classes=n_classes)
            counted = int(np.count_nonzero(np.asarray(labels) != ignore_index))
            warn_below_chance(correct_of(top1, counted), counted, n_classes)
            arrays |= {"top1_accuracy": np.float64(top1), "topk_accuracy": np.float64(top_k)}
        if classes is not None:
            arrays["names"] = np.where(indices >= 0, np.asarray(classes)[indices], "")  # -1: a dropped row
        gates = []
        if min_accuracy is not None:
            gates.append(Gate("--min-accuracy", "topk_accuracy", f"top-{indices.shape[-1]} accuracy", ">=",
                              min_accuracy, float(arrays["topk_accuracy"]), as_typed(min_accuracy)))
        result = Result(arrays, classes=classes, **row_names, layout=Layout.topk,
                        per_row_names=("indices", "probs", "names") if labels is not None else (), per_row=per_row,
                        command="topk", inputs=inputs + described("labels", truth), gates=gates)
        render.write(result, sink)
        ledger.decide(result, label)

    mask = positions.load_mask(padding)
    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source, [("--mask", mask is not None), ("--from-probs", from_probs)])
        sink = scheduled.result_sink(sources, outputs, truth.paths if truth else (), ledger)
        labels = None
        if truth is not None:  # the labels cover every row of every shard, in order: checked before any unit runs
            from ..operands import naming_sources

            logits = scheduled.stand_in(sources, sources[0].path)
            with naming_sources(None, {"labels": truth}):
                labels = core.check_labels(truth.fitted(logits, -1, ignore_index), logits.array.shape[:-1],
                                           sources[0].n_cols, ignore_index).reshape(logits.array.shape[:-1])
        from ..cluster import topk as distributed_topk

        with scheduled.session(cluster, sources, outputs.keep_going, "topk") as run:
            outcome = distributed_topk(run, **options(sources[0].n_cols))
        indices, top_probs = outcome.value
        if len(sources) == 1:  # one array keeps its shape, as in process
            shape = sources[0].shape[:-1] + indices.shape[-1:]
            indices, top_probs = indices.reshape(shape), top_probs.reshape(shape)
        scheduled.raise_failures(outcome, sources)  # rows of failed inputs would misalign the labels: no result
        with ledger:
            write(indices, top_probs, sources[0].n_cols, None, sink, labels, {}, described_sources(sources))
        return

    def one(logits, sink: render.Sink) -> None:
        n_classes = logits.array.shape[axis]
        labels = None if truth is None else truth.fitted(logits, axis, ignore_index)
        fitted, keep = positions.scored(logits, axis, labels, truth, mask, False, ignore_index)
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            indices, top_probs = stream.topk(rows, keep=keep, **options(n_classes))
        else:
            array = logits.array if keep is None else core.blank_rows(logits.array, keep, axis)
            indices, top_probs = core.topk(array, axis=axis, **options(n_classes))
        if keep is not None:  # a dropped row has no top classes
            dropped = ~keep.reshape(np.delete(np.array(logits.array.shape), axis % logits.array.ndim))
            indices, top_probs = np.moveaxis(indices, axis, -1), np.moveaxis(top_probs, axis, -1)
            indices[dropped], top_probs[dropped] = -1, np.nan
            indices, top_probs = np.moveaxis(indices, -1, axis), np.moveaxis(top_probs, -1, axis)
        write(indices, top_probs, n_classes, logits.classes, sink, fitted, named_rows(logits),
              described("logits", logits) + described("mask", mask), logits.source)

    loader = logits_loader(source, labels=truth, takes_labels=True, from_probs=from_probs, logs_of_probs=True)
    with ledger:
        batch.run(inputs, outputs, loader, one, operands={"labels": truth, "mask": mask}, ledger=ledger)
