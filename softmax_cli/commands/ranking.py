"""``softmax topk``: the most probable classes per row, and top-k accuracy against labels (a CI gate)."""

from __future__ import annotations

import numpy as np

from .. import batch, core, render, scheduled, stream
from ..errors import GateFailed, UsageError
from ..inputs import check_one_stdin
from ..operands import load_labels
from ..options import BatchOutput, IgnoreIndexOpt, InputsArg, LabelsOpt, MinAccuracyOpt, SchedulerOpt, SoftmaxInput
from ..options import TopOldOpt, TopOpt, worded
from ..result import Layout, Result
from . import labels_for, logits_loader, named_rows


TopkLabelsOpt = worded(LabelsOpt, "The true classes, one per row (0,2,1 or a file; from an .npz the array "
                       "'labels'): adds top-1 and top-k accuracy, and the --min-accuracy gate.")


def topk(
    inputs: InputsArg = None,
    k: TopOpt = None,
    k_old: TopOldOpt = None,
    labels: TopkLabelsOpt = None,
    min_accuracy: MinAccuracyOpt = None,
    ignore_index: IgnoreIndexOpt = -100,
    scheduler: SchedulerOpt = None,
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
        return dict(k=min(5, n_classes) if k is None else k, temperature=temperature, masked_rows=masked_rows)

    def report(indices, top_probs, n_classes: int, classes, sink: render.Sink, labels, row_names: dict) -> None:
        arrays = {"indices": indices, "probs": top_probs}
        if labels is not None:
            top1, top_k = core.topk_accuracy(indices, labels, ignore_index, num_classes=n_classes)
            arrays |= {"top1_accuracy": np.float64(top1), "topk_accuracy": np.float64(top_k)}
        if classes is not None:
            arrays["names"] = np.asarray(classes)[indices]
        render.write(Result(arrays, classes=classes, **row_names, layout=Layout.topk), sink)
        if min_accuracy is not None and not arrays["topk_accuracy"] >= min_accuracy:
            raise GateFailed(f"top-{indices.shape[-1]} accuracy {float(arrays['topk_accuracy']):.6g} "
                             f"< --min-accuracy {min_accuracy:g}")

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
        report(indices, top_probs, sources[0].n_cols, None, sink, None if truth is None else truth.array, {})
        return

    def one(logits, sink: render.Sink) -> None:
        n_classes = logits.array.shape[axis]
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            indices, top_probs = stream.topk(rows, **options(n_classes))
        else:
            indices, top_probs = core.topk(logits.array, axis=axis, **options(n_classes))
        report(indices, top_probs, n_classes, logits.classes, sink,
               None if truth is None else labels_for(truth, logits, axis), named_rows(logits))

    batch.run(inputs, outputs, logits_loader(source), one, operands={"labels": truth})
