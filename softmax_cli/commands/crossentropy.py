"""``softmax loss`` and ``softmax grad``: cross-entropy against labels and its gradient (or a softmax VJP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

from ..errors import UsageError
from ..options import (
    INPUT,
    BatchOutput,
    InputsArg,
    LogOpt,
    LossOptions,
    MaxLossOpt,
    Padding,
    PerRowOpt,
    PerSequenceOpt,
    ReportOpt,
    SchedulerOpt,
    ShiftLabelsOpt,
    SoftmaxInput,
    option,
)
from . import described, described_sources, logits_loader, named_rows, warn, warn_below_chance

if TYPE_CHECKING:
    import numpy as np

    from .. import core

# NumPy, the readers and the core are imported in each command's body: its help costs none of them.

UpstreamOpt = Annotated[Optional[str], option(
    "--upstream", help="Upstream gradient G (logits' shape): give the softmax vector-Jacobian product instead of "
    "the loss gradient.", panel=INPUT, metavar="G|FILE", show_default=False)]


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
    from ..inputs import check_one_stdin
    from ..labelsource import read_labels
    from ..operands import load_option_array

    check_one_stdin(inputs, labels=criterion.labels, weights=criterion.weights)
    truth = read_labels(_required(criterion.labels, "--labels", example), criterion.labels_key)
    weights = load_option_array(criterion.weights, "--weights", "weights") if criterion.weights is not None else None
    options = dict(ignore_index=criterion.ignore_index, reduction=criterion.reduction,
                   label_smoothing=criterion.label_smoothing, temperature=source.temperature,
                   from_probs=criterion.from_probs, eps=criterion.eps, masked_rows=source.masked_rows,
                   weights=None if weights is None else weights.array)
    return truth, options, {"labels": truth, "weights": weights}


def loss(
    inputs: InputsArg = None,
    max_loss: MaxLossOpt = None,
    scheduler: SchedulerOpt = None,
    shift_labels: ShiftLabelsOpt = False,
    per_sequence: PerSequenceOpt = False,
    per_row: PerRowOpt = False,
    report: ReportOpt = None,
    *,
    criterion: LossOptions,
    source: SoftmaxInput,
    padding: Padding,
    outputs: BatchOutput,
) -> None:
    """Cross-entropy of logits against --labels, as torch.nn.functional.cross_entropy.

    Labels of the logits' shape without the class axis are class indices;
    labels of the logits' full shape are target distributions (one-hot or soft).
    A mean loss comes with its perplexity (exp of the mean) and bits per token.

    \b
    Example:
      softmax loss sample_data/logits.csv --labels sample_data/labels.txt
    """
    import numpy as np

    from .. import batch, core, positions, render, reports, scheduled, stream
    from ..operands import class_weights
    from ..result import Gate, Layout, Result, as_typed

    axis = source.axis
    truth, options, operands = _cross_entropy_options(criterion, source, "softmax loss 2 1 0 --labels 0", inputs)
    ledger = reports.Ledger("loss", reports.parse(report), outputs.force)
    described_operands = described("labels", truth) + described("weights", operands["weights"])

    if per_sequence and criterion.weights is not None:
        raise UsageError("--per-sequence gives each sequence's mean NLL; class --weights would make it a weighted "
                         "mean: leave one of them out")

    def write(terms: core.CrossEntropyTerms, classes, row_names: dict, sink: render.Sink, n_classes: int,
              inputs: list[dict], label: str | None = None, sequences: dict | None = None) -> None:
        _warn_unnormalised(terms.unnormalised_rows)
        if terms.target_kind == "index":
            warn_below_chance(terms.correct, terms.counted, n_classes)
        # A one-table format (CSV) is the rows of its first 1-D array: the sequences', when asked for.
        arrays = {"loss": terms.loss, **(sequences or {})}
        if criterion.reduction != "none":  # else the loss is per sample already: written once
            arrays["per_sample"] = terms.per_sample
        arrays["accuracy"] = np.float64(terms.accuracy)
        if criterion.reduction == "mean":
            mean = np.float64(terms.unrounded_mean())  # not the float16 loss's: see there
            with np.errstate(over="ignore"):
                arrays |= {"perplexity": np.exp(mean), "bits_per_token": mean / np.log(2.0)}
        gates = []
        if max_loss is not None:
            # The exact figure, not the one rounded to bfloat16 or float16 (a step of 2**-5 near 7) that is
            # printed as torch returns it. With --reduction none the gate holds every row to the bound.
            exact = terms.exact_per_sample()
            each = criterion.reduction == "none"
            if each:
                worst = float(np.max(exact)) if exact.size else float("nan")
            elif criterion.reduction == "mean":
                worst = terms.unrounded_mean()
            else:
                worst = float(np.sum(exact))
            gates.append(Gate("--max-loss", "max_loss" if each else "loss",
                              "largest per-row loss" if each else "loss", "<=", max_loss, worst, as_typed(max_loss)))
            if terms.unrounded is not None and not each:
                from ..formats.base import note

                note(f"the loss is written in {terms.loss.dtype}, as torch returns it ({float(terms.loss):g}); "
                     f"--max-loss holds the exact mean ({worst:.6g}) to its bound")
        result = Result(arrays, classes=classes, **row_names, column=True, layout=Layout.loss,
                        per_row_names=("per_sample",) if "per_sample" in arrays else (), per_row=per_row,
                        table_names=tuple(sequences or ()), command="loss", inputs=inputs + described_operands,
                        gates=gates)
        render.write(result, sink)
        ledger.decide(result, label)

    mask = positions.load_mask(padding)
    operands["mask"] = mask
    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source, probabilities=criterion.from_probs)
        sink = scheduled.result_sink(sources, outputs, _paths_of(operands), ledger)
        # The labels and the mask cover every row of every shard, in order: fitted here as in process.
        logits = scheduled.stand_in(sources, sources[0].path)
        options["weights"] = class_weights(operands["weights"], logits)
        fitted = truth.fitted(logits, -1, criterion.ignore_index)
        labels, keep = positions.scored(logits, -1, fitted, truth, mask, shift_labels, criterion.ignore_index)
        from ..cluster import cross_entropy_terms

        shape = logits.array.shape
        # The engine takes one label (or one target row) per row of the run.
        per_row_labels = labels.reshape(-1, shape[-1]) if labels.shape == shape else labels.reshape(-1)
        with scheduled.session(cluster, sources, outputs.keep_going, "loss") as run:
            outcome = cross_entropy_terms(run, per_row_labels, keep=keep, **options)
        terms = outcome.value
        whole = not outcome.failures
        if len(sources) == 1 and whole:  # one array keeps its shape, as in process
            terms = terms._replace(per_sample=terms.per_sample.reshape(sources[0].shape[:-1]),
                                   loss=terms.loss.reshape(sources[0].shape[:-1]) if terms.loss.ndim else terms.loss)
        # Rows of failed shards (--keep-going) have no losses: no sequence figures then, and the run exits 2.
        sequences = (_sequences(terms, labels, shape, -1, criterion.ignore_index)
                     if per_sequence and whole else None)
        with ledger:
            try:
                write(terms, None, {}, sink, sources[0].n_cols, described_sources(sources) + described("mask", mask),
                      sequences=sequences)
            finally:  # failed inputs (--keep-going) outrank the gate: exit 2, as in a batch
                scheduled.raise_failures(outcome, sources)
        return

    def one(logits, sink: render.Sink) -> None:
        fitted = truth.fitted(logits, axis, criterion.ignore_index)
        labels, keep = positions.scored(logits, axis, fitted, truth, mask, shift_labels, criterion.ignore_index,
                                        check_plausibility=True)
        weighted = dict(options, weights=class_weights(operands["weights"], logits))
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            terms = stream.cross_entropy_terms(rows, labels, keep=keep, **weighted)
        else:
            array = logits.array if keep is None else core.blank_rows(logits.array, keep, axis)
            terms = core.cross_entropy_terms(array, labels, axis=axis, **weighted)
        write(terms, logits.classes, named_rows(logits), sink, logits.array.shape[axis],
              described("logits", logits) + described("mask", mask), logits.source,
              _sequences(terms, labels, logits.array.shape, axis, criterion.ignore_index) if per_sequence else None)

    loader = logits_loader(source, labels=truth, takes_labels=True, from_probs=criterion.from_probs)
    with ledger:
        batch.run(inputs, outputs, loader, one, operands=operands, ledger=ledger)


def _sequences(terms: core.CrossEntropyTerms, labels: np.ndarray, shape: tuple[int, ...], axis: int,
               ignore_index: int) -> dict:
    """Each sequence's scored positions, mean NLL and perplexity (sequences as ``compare --per-sequence``)."""
    import numpy as np

    from .. import core

    at = axis % len(shape)
    lead = shape[:at] + shape[at + 1:]
    scored = None if labels.shape == shape else np.ravel(labels) != ignore_index  # distributions: every row
    mean, count = core.sequence_means(terms.exact_per_sample(), scored, lead)
    with np.errstate(over="ignore"):
        return {"seq_n_scored": count.astype(np.int64), "seq_nll": mean, "seq_perplexity": np.exp(mean)}


def grad(
    inputs: InputsArg = None,
    upstream: UpstreamOpt = None,
    log: LogOpt = False,
    scheduler: SchedulerOpt = None,
    shift_labels: ShiftLabelsOpt = False,
    *,
    criterion: LossOptions,
    source: SoftmaxInput,
    padding: Padding,
    outputs: BatchOutput,
) -> None:
    """Gradient of the loss that `softmax loss` computes (same options) with respect to the logits.

    With --upstream G instead: the softmax vector-Jacobian product s * (g - sum(g s)),
    or with --log log-softmax's g - s sum(g).

    \b
    Example:
      softmax grad 2 1 0.1 --labels 0
    """
    from .. import batch, core, positions, render, scheduled, stream
    from ..inputs import check_one_stdin
    from ..operands import class_weights, load_option_array
    from ..result import Result

    axis, masked_rows = source.axis, source.masked_rows
    mask = positions.load_mask(padding)
    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source, [("--upstream", upstream is not None), ("--log", log),
                                                        ("--mask", mask is not None), ("--shift-labels", shift_labels)],
                                       probabilities=criterion.from_probs)
        truth, options, operands = _cross_entropy_options(criterion, source, "softmax grad 2 1 0 --labels 0", inputs)
        if truth.array.ndim > 1:
            _warn_unnormalised(core.unnormalised_rows(truth.array, axis=-1))
        scheduled.map_arrays(cluster, sources, outputs, "grad", "grad", _paths_of(operands), labels=truth.array,
                             **options)
        return
    if upstream is not None:
        if criterion.labels is not None:
            raise UsageError("give --labels (loss gradient) or --upstream (vector-Jacobian product), not both")
        if mask is not None or shift_labels:
            raise UsageError("--mask and --shift-labels choose the positions a loss scores; they go with --labels, "
                             "not --upstream")
        check_one_stdin(inputs, upstream=upstream)
        g = load_option_array(upstream, "--upstream", "upstream")

        def values_of(logits, sink):
            return core.softmax_vjp(logits.array, g.array, axis=axis, temperature=source.temperature, log=log,
                                    masked_rows=masked_rows)

        operands = {"upstream": g}
    else:
        if log:
            raise UsageError("--log goes with --upstream (log-softmax's vector-Jacobian product)")
        truth, options, operands = _cross_entropy_options(criterion, source, "softmax grad 2 1 0 --labels 0", inputs)
        operands["mask"] = mask

        def values_of(logits, sink):
            fitted = truth.fitted(logits, axis, criterion.ignore_index)
            labels, keep = positions.scored(logits, axis, fitted, truth, mask, shift_labels, criterion.ignore_index,
                                            check_plausibility=True)
            if labels.shape == logits.array.shape:
                _warn_unnormalised(core.unnormalised_rows(labels, axis=axis))
            weighted = dict(options, weights=class_weights(operands["weights"], logits))
            rows = None
            if not criterion.from_probs:
                rows = stream.rows_for_output(logits, axis, sink, masked_rows, keep)
            if rows is None:
                array = logits.array if keep is None else core.blank_rows(logits.array, keep, axis)
                return core.cross_entropy_grad(array, labels, axis=axis, **weighted)
            per_row = stream.per_row_labels(labels, rows)
            # Every block is scaled by the whole batch's mean denominator.
            denominator = core.mean_denominator(labels, rows.shape, weights=weighted["weights"],
                                                ignore_index=criterion.ignore_index)

            def block_grad(block: np.ndarray, at: slice) -> np.ndarray:
                block = block if keep is None else core.blank_rows(block, keep[at])
                return core.cross_entropy_grad(block, per_row[at], denominator=denominator, **weighted)

            return stream.map_rows(rows, block_grad, core.output_dtype(rows.dtype))

    def one(logits, sink: render.Sink) -> None:
        values = values_of(logits, sink)
        class_last = axis in (-1, values.ndim - 1)
        inputs = described("logits", logits) + [entry for role, operand in operands.items()
                                                for entry in described(role, operand)]
        render.write(Result({"grad": values}, classes=logits.classes, **named_rows(logits),
                            header=logits.classes if class_last else None, command="grad", inputs=inputs), sink)

    loader = logits_loader(source, labels=operands.get("labels"), takes_labels=True, from_probs=criterion.from_probs)
    batch.run(inputs, outputs, loader, one, operands=operands)
