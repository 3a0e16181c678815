"""``softmax topk``: the most probable classes per row, and top-k accuracy against labels (a CI gate)."""

from __future__ import annotations

import numpy as np
import typer

from .. import batch, core, render, scheduled, stream
from ..errors import GateFailed, UsageError
from ..inputs import check_one_stdin
from ..labelsource import read_labels
from ..options import COMPUTATION, GATES, BatchOutput, FromProbsOpt, IgnoreIndexOpt, InputsArg, LabelsKeyOpt, LabelsOpt
from ..options import SchedulerOpt, SoftmaxInput
from ..result import Result
from . import logits_loader, named_rows, warn_below_chance


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
    labels_key: LabelsKeyOpt = None,
    from_probs: FromProbsOpt = False,
    min_accuracy: float = typer.Option(None, "--min-accuracy", help="Gate: exit 1 when top-k accuracy < A, "
                                       "a fraction 0..1 (0.95, not 95); needs -k/--top.", show_default=False,
                                       callback=_fraction, rich_help_panel=GATES),
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
    truth = read_labels(labels, labels_key) if labels is not None else None
    if min_accuracy is not None and truth is None:
        raise UsageError("--min-accuracy needs --labels")
    if min_accuracy is not None and k is None:
        raise UsageError("--min-accuracy needs -k/--top K: the gate holds top-K accuracy to the bound")

    def options(n_classes: int) -> dict:
        return dict(k=min(5, n_classes) if k is None else k, temperature=temperature, masked_rows=masked_rows.value)

    def report(indices, top_probs, n_classes: int, classes, sink: render.Sink, labels, row_names: dict) -> None:
        arrays = {"indices": indices, "probs": top_probs}
        if labels is not None:
            top1, top_k = core.topk_accuracy(indices, labels, ignore_index, num_classes=n_classes)
            counted = int(np.count_nonzero(np.asarray(labels) != ignore_index))
            warn_below_chance(round(top1 * counted), counted, n_classes)
            arrays |= {"top1_accuracy": np.float64(top1), "topk_accuracy": np.float64(top_k)}
        if classes is not None:
            arrays["names"] = np.asarray(classes)[indices]
        render.write(Result(arrays, classes=classes, **row_names, layout="topk"), sink)
        if min_accuracy is not None and not arrays["topk_accuracy"] >= min_accuracy:
            raise GateFailed(f"top-{indices.shape[-1]} accuracy {float(arrays['topk_accuracy']):.6g} "
                             f"< --min-accuracy {min_accuracy:g}")

    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source, [("--from-probs", from_probs)])
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
               None if truth is None else truth.fitted(logits, axis, ignore_index), named_rows(logits))

    loader = logits_loader(source, labels=truth, takes_labels=True, from_probs=from_probs, logs_of_probs=True)
    batch.run(inputs, outputs, loader, one, operands={"labels": truth})
