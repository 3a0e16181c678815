"""The ``softmax`` command line: one short function per subcommand.

Each command loads its inputs, calls :mod:`softmax_cli.core`, and hands a
:class:`~softmax_cli.result.Result` to :mod:`softmax_cli.render`; one input
or many (:mod:`softmax_cli.batch`). Errors become ``error: ...`` and an exit
status in one place, :mod:`softmax_cli.app`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

from . import batch, core, render, stream
from .app import SoftmaxCommand, app
from .errors import GateFailed, UsageError
from .inputs import DEFAULT_TEMPERATURES, load_attention_operands, load_logits, load_option_array, parse_temperatures
from .options import (
    AxisOpt,
    CausalAlign,
    ClassesOpt,
    EpsOpt,
    ForceOpt,
    FormatOpt,
    FromProbsOpt,
    IgnoreIndexOpt,
    InputsArg,
    KeepGoingOpt,
    KeyOpt,
    LabelSmoothingOpt,
    LabelsOpt,
    MaskedRows,
    MaskedRowsOpt,
    OutDirOpt,
    OutputOpt,
    PrecisionOpt,
    Reduction,
    ReductionOpt,
    TemperatureOpt,
    ThreadsOpt,
    WeightsOpt,
)
from .result import Result


def _outputs(fmt, output, out_dir, force, precision, keep_going, threads) -> batch.Outputs:
    """The shared output options; ``--threads`` applies to the whole run."""
    if threads is not None:
        core.set_threads(threads)
    return batch.Outputs(fmt, output, out_dir, force, precision, keep_going)


def _logits_loader(key, classes, axis):
    return lambda inputs: load_logits(inputs, key=key, classes=classes, axis=axis)


@app.command(cls=SoftmaxCommand)
def probs(
    inputs: InputsArg = None,
    log: bool = typer.Option(False, "--log", help="Log-probabilities (exact log-softmax) instead."),
    temperature: TemperatureOpt = 1.0,
    axis: AxisOpt = -1,
    masked_rows: MaskedRowsOpt = MaskedRows.error,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
    keep_going: KeepGoingOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Softmax probabilities (or --log log-probabilities) of the logits.

    Example: softmax probs 3 2 1;  softmax probs logits.csv -f json;  softmax probs runs/*.npy --out-dir probs/
    """
    options = dict(temperature=temperature, masked_rows=masked_rows.value)
    function = core.log_softmax if log else core.softmax

    def one(logits, sink: render.Sink) -> None:
        rows = stream.rows_for_output(logits, axis, sink, masked_rows.value)
        if rows is not None:
            values = stream.map_rows(rows, lambda block, _: function(block, **options), core.output_dtype(rows.dtype))
        else:
            values = function(logits.array, axis=axis, **options)
        class_last = axis in (-1, values.ndim - 1)
        tabled_batch = sink.fmt is render.OutputFormat.table and values.ndim == 2 and class_last and not log
        display = {"entropy": core.entropy(logits.array, axis=axis, temperature=temperature)} if tabled_batch else {}
        render.write(Result({"log_probs" if log else "probs": values}, classes=logits.classes,
                            header=logits.classes if class_last else None,
                            layout="distribution" if class_last else "grid", display=display), sink)

    batch.run(inputs, _outputs(fmt, output, out_dir, force, precision, keep_going, threads),
              _logits_loader(key, classes, axis), one)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _required(value, option: str, example: str):
    if value is None:
        raise UsageError(f"{option} is required; for example: {example}")
    return value


def _warn_unnormalised(rows: np.ndarray) -> None:
    if len(rows):
        shown = ", ".join(str(int(r)) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        _warn(f"{len(rows)} target row(s) do not sum to 1 (rows {shown}); computed as given")


def _cross_entropy_options(labels, weights, example, **options):
    """Labels (index or distributions) and the loss options shared by loss and grad; the files read."""
    truth = load_option_array(_required(labels, "--labels", example), "--labels", "labels")
    class_weights = load_option_array(weights, "--weights", "weights") if weights is not None else None
    options["weights"] = None if class_weights is None else class_weights.array
    return truth, options, truth.paths + (class_weights.paths if class_weights else [])


@app.command(cls=SoftmaxCommand)
def loss(
    inputs: InputsArg = None,
    labels: LabelsOpt = None,
    reduction: ReductionOpt = Reduction.mean,
    label_smoothing: LabelSmoothingOpt = 0.0,
    weights: WeightsOpt = None,
    ignore_index: IgnoreIndexOpt = -100,
    from_probs: FromProbsOpt = False,
    eps: EpsOpt = None,
    max_loss: float = typer.Option(None, "--max-loss", help="Gate: exit 1 when the reduced loss exceeds X.",
                                   show_default=False),
    temperature: TemperatureOpt = 1.0,
    axis: AxisOpt = -1,
    masked_rows: MaskedRowsOpt = MaskedRows.error,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
    keep_going: KeepGoingOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Cross-entropy of logits against --labels, as torch.nn.functional.cross_entropy.

    Labels of the logits' shape without the class axis are class indices;
    labels of the logits' full shape are target distributions (one-hot or soft).
    Example: softmax loss sample_data/logits.csv --labels sample_data/labels.txt
    """
    outputs = _outputs(fmt, output, out_dir, force, precision, keep_going, threads)
    truth, options, side_paths = _cross_entropy_options(
        labels, weights, "softmax loss 2 1 0 --labels 0", ignore_index=ignore_index, reduction=reduction.value,
        label_smoothing=label_smoothing, temperature=temperature, from_probs=from_probs, eps=eps,
        masked_rows=masked_rows.value)

    def one(logits, sink: render.Sink) -> None:
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            terms = stream.cross_entropy_terms(rows, truth.array, **options)
        else:
            terms = core.cross_entropy_terms(logits.array, truth.array, axis=axis, **options)
        _warn_unnormalised(terms.unnormalised_rows)
        arrays = {"loss": terms.loss, "per_sample": terms.per_sample, "accuracy": np.float64(terms.accuracy)}
        render.write(Result(arrays, classes=logits.classes, column=True, layout="loss"), sink)
        if max_loss is not None:
            # With --reduction none the gate holds every row to the bound.
            worst = float(np.max(terms.loss)) if terms.loss.size else float("nan")
            if not worst <= max_loss:
                what = "loss" if reduction is not Reduction.none else "largest per-row loss"
                raise GateFailed(f"{what} {worst:.6g} > --max-loss {max_loss:g}")

    batch.run(inputs, outputs, _logits_loader(key, classes, axis), one, side_paths)


@app.command(cls=SoftmaxCommand)
def grad(
    inputs: InputsArg = None,
    labels: LabelsOpt = None,
    upstream: str = typer.Option(None, "--upstream", help="Upstream gradient G (logits' shape): give the softmax "
                                 "vector-Jacobian product instead of the loss gradient.", show_default=False),
    log: bool = typer.Option(False, "--log", help="With --upstream: log-softmax's vector-Jacobian product."),
    reduction: ReductionOpt = Reduction.mean,
    label_smoothing: LabelSmoothingOpt = 0.0,
    weights: WeightsOpt = None,
    ignore_index: IgnoreIndexOpt = -100,
    from_probs: FromProbsOpt = False,
    eps: EpsOpt = None,
    temperature: TemperatureOpt = 1.0,
    axis: AxisOpt = -1,
    masked_rows: MaskedRowsOpt = MaskedRows.error,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
    keep_going: KeepGoingOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Gradient of the loss that `softmax loss` computes (same options) with respect to the logits.

    With --upstream G instead: the softmax vector-Jacobian product s * (g - sum(g s)),
    or with --log log-softmax's g - s sum(g).
    Example: softmax grad 2 1 0.1 --labels 0
    """
    outputs = _outputs(fmt, output, out_dir, force, precision, keep_going, threads)
    if upstream is not None:
        if labels is not None:
            raise UsageError("give --labels (loss gradient) or --upstream (vector-Jacobian product), not both")
        g = load_option_array(upstream, "--upstream", "upstream")

        def values_of(logits, sink):
            return core.softmax_vjp(logits.array, g.array, axis=axis, temperature=temperature, log=log,
                                    masked_rows=masked_rows.value)

        side_paths = g.paths
    else:
        if log:
            raise UsageError("--log goes with --upstream (log-softmax's vector-Jacobian product)")
        truth, options, side_paths = _cross_entropy_options(
            labels, weights, "softmax grad 2 1 0 --labels 0", ignore_index=ignore_index, reduction=reduction.value,
            label_smoothing=label_smoothing, temperature=temperature, from_probs=from_probs, eps=eps,
            masked_rows=masked_rows.value)

        def values_of(logits, sink):
            if truth.array.shape == logits.array.shape:
                _warn_unnormalised(core.unnormalised_rows(truth.array, axis=axis))
            rows = stream.rows_for_output(logits, axis, sink, masked_rows.value) if not from_probs else None
            if rows is None:
                return core.cross_entropy_grad(logits.array, truth.array, axis=axis, **options)
            per_row = stream.per_row_labels(truth.array, rows)
            # Every block is scaled by the whole batch's mean denominator.
            denominator = core.mean_denominator(truth.array, rows.shape, weights=options["weights"],
                                                ignore_index=ignore_index)
            return stream.map_rows(
                rows, lambda block, at: core.cross_entropy_grad(block, per_row[at], denominator=denominator, **options),
                core.output_dtype(rows.dtype))

    def one(logits, sink: render.Sink) -> None:
        values = values_of(logits, sink)
        class_last = axis in (-1, values.ndim - 1)
        render.write(Result({"grad": values}, classes=logits.classes,
                            header=logits.classes if class_last else None), sink)

    batch.run(inputs, outputs, _logits_loader(key, classes, axis), one, side_paths)


JACOBIAN_MEMORY_LIMIT = 1 << 30


@app.command(cls=SoftmaxCommand)
def jacobian(
    inputs: InputsArg = None,
    log: bool = typer.Option(False, "--log", help="Log-softmax's Jacobian, I - 1 s^T per row."),
    temperature: TemperatureOpt = 1.0,
    axis: AxisOpt = -1,
    masked_rows: MaskedRowsOpt = MaskedRows.error,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
    keep_going: KeepGoingOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Per-row Jacobian of softmax, diag(s) - s s^T, of shape (..., C, C).

    Outputs above 1 GiB are refused unless written as .npy to a file, which is
    then filled row by row through a memory map.
    Example: softmax jacobian 1 2 3 --classes a,b,c
    """
    options = dict(axis=axis, temperature=temperature, log=log, masked_rows=masked_rows.value)

    def one(logits, sink: render.Sink) -> None:
        size = core.jacobian_nbytes(logits.array.shape, logits.array.dtype, axis)
        if size > JACOBIAN_MEMORY_LIMIT:
            if sink.fmt is not render.OutputFormat.npy or sink.path is None:
                raise UsageError(f"the Jacobian would take {size / 2**30:.1f} GiB; write it to a file with -o FILE.npy")
            shape = core.jacobian_shape(logits.array.shape, axis)
            render.write_npy_in_place(sink, shape, core.output_dtype(logits.array.dtype),
                                      lambda out: core.softmax_jacobian_into(out, logits.array, **options))
            return
        values = core.softmax_jacobian(logits.array, **options)
        render.write(Result({"jacobian": values}, classes=logits.classes, header=logits.classes,
                            layout="jacobian"), sink)

    batch.run(inputs, _outputs(fmt, output, out_dir, force, precision, keep_going, threads),
              _logits_loader(key, classes, axis), one)


@app.command("temperature-sweep", cls=SoftmaxCommand)
def temperature_sweep(
    inputs: InputsArg = None,
    temperatures: str = typer.Option(None, "--temperatures", help="Temperatures, e.g. 0.1,0.5,1,2,10.  "
                                     f"[default: {DEFAULT_TEMPERATURES}]", show_default=False),
    temperature_range: str = typer.Option(None, "--range", help="START:STOP:NUM evenly spaced temperatures.",
                                          show_default=False),
    log_space: bool = typer.Option(False, "--log-space", help="With --range: space them evenly in log T."),
    labels: LabelsOpt = None,
    fit: bool = typer.Option(False, "--fit", help="Fit the temperature minimising NLL on the labels."),
    bins: int = typer.Option(15, "--bins", help="Equal-width confidence bins of the calibration error."),
    plot: Path = typer.Option(None, "--plot", help="Draw the reliability diagram (and NLL/ECE against T) to "
                              "FILE.png or FILE.svg; needs matplotlib.", show_default=False, dir_okay=False),
    ignore_index: IgnoreIndexOpt = -100,
    axis: AxisOpt = -1,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
) -> None:
    """Probabilities, entropy and confidence across temperatures; with labels NLL, accuracy and ECE.

    --fit finds the temperature that minimises NLL (temperature scaling, Guo et al. 2017).
    Example: softmax temperature-sweep sample_data/digits_val.npz --labels sample_data/digits_val.npz --fit
    """
    if fit and labels is None:
        raise UsageError("--fit needs --labels")
    logits = load_logits(inputs, key=key, classes=classes, axis=axis)
    truth = load_option_array(labels, "--labels", "labels") if labels is not None else None
    paths = logits.paths + (truth.paths if truth else [])
    sink = render.open_sink(fmt, output, force, precision, paths)
    if plot is not None:
        from . import plots  # matplotlib is optional; even this module is only loaded for --plot

        plots.check_destination(plot, force, paths + ([sink.path] if sink.path else []))
    grid = parse_temperatures(temperatures, temperature_range, log_space)
    arrays = core.temperature_sweep(logits.array, grid, None if truth is None else truth.array, bins=bins,
                                    axis=axis, ignore_index=ignore_index)
    display = {}
    shown = {"(T = 1)": 1.0}
    if fit:
        fitted = core.fit_temperature(logits.array, truth.array, axis=axis, ignore_index=ignore_index)
        # The same sweep code scores both ends, so before/after match the sweep's own figures.
        ends = core.temperature_sweep(logits.array, [1.0, fitted], truth.array, bins=bins, axis=axis,
                                      ignore_index=ignore_index)
        arrays["fitted_temperature"] = np.float64(fitted)
        for name in ("nll", "ece"):
            arrays[f"{name}_before"], arrays[f"{name}_after"] = ends[name]
        if arrays["ece_after"] > arrays["ece_before"]:
            _warn(f"ECE rose from {arrays['ece_before']:.4g} to {arrays['ece_after']:.4g} at the NLL-optimal "
                  f"temperature {fitted:.4g} (NLL fell from {arrays['nll_before']:.4g} to {arrays['nll_after']:.4g})")
        shown = {"before (T = 1)": 1.0, f"after (T = {fitted:.4g})": fitted}
    if truth is not None:
        logits64 = np.asarray(logits.array, dtype=np.float64)
        for title, t in shown.items():
            probs_t = core.softmax(logits64, axis=axis, temperature=t, masked_rows="nan")
            display[f"reliability {title}"] = core.reliability_bins(probs_t, truth.array, bins=bins, axis=axis,
                                                                   ignore_index=ignore_index)
    render.write(Result(arrays, classes=logits.classes, column=True, layout="sweep", display=display), sink)
    if plot is not None:
        plots.draw(plot, arrays, display, force)


@app.command(cls=SoftmaxCommand)
def topk(
    inputs: InputsArg = None,
    k: int = typer.Option(None, "-k", "--k", help="How many classes per row, 1..C.  [default: min(5, C)]",
                          show_default=False),
    labels: LabelsOpt = None,
    min_accuracy: float = typer.Option(None, "--min-accuracy", help="Gate: exit 1 when top-k accuracy < A.",
                                       show_default=False),
    ignore_index: IgnoreIndexOpt = -100,
    temperature: TemperatureOpt = 1.0,
    axis: AxisOpt = -1,
    masked_rows: MaskedRowsOpt = MaskedRows.error,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
    keep_going: KeepGoingOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """The k most probable classes per row, highest first, ties to the lower index.

    With --labels, also top-1 and top-k accuracy.
    Example: softmax topk sample_data/logits.csv -k 2
    """
    outputs = _outputs(fmt, output, out_dir, force, precision, keep_going, threads)
    truth = load_option_array(labels, "--labels", "labels") if labels is not None else None
    if min_accuracy is not None and truth is None:
        raise UsageError("--min-accuracy needs --labels")

    def one(logits, sink: render.Sink) -> None:
        n_classes = logits.array.shape[axis]
        options = dict(k=min(5, n_classes) if k is None else k, temperature=temperature,
                       masked_rows=masked_rows.value)
        rows = stream.npy_rows(logits, axis)
        if rows is not None:
            indices, top_probs = stream.topk(rows, **options)
        else:
            indices, top_probs = core.topk(logits.array, axis=axis, **options)
        arrays = {"indices": indices, "probs": top_probs}
        if truth is not None:
            top1, top_k = core.topk_accuracy(indices, truth.array, ignore_index, num_classes=n_classes)
            arrays |= {"top1_accuracy": np.float64(top1), "topk_accuracy": np.float64(top_k)}
        if logits.classes is not None:
            arrays["names"] = np.asarray(logits.classes)[indices]
        render.write(Result(arrays, classes=logits.classes, layout="topk"), sink)
        if min_accuracy is not None and not arrays["topk_accuracy"] >= min_accuracy:
            raise GateFailed(f"top-{indices.shape[-1]} accuracy {float(arrays['topk_accuracy']):.6g} "
                             f"< --min-accuracy {min_accuracy:g}")

    batch.run(inputs, outputs, _logits_loader(key, classes, axis), one, truth.paths if truth else ())


@app.command(cls=SoftmaxCommand)
def attention(
    inputs: list[str] = typer.Argument(None, metavar="Q K V | QKV.npz", show_default=False,
                                       help="Queries (..., L, E), keys (..., S, E), values (..., S, Ev): three "
                                       "sources or quoted numbers, or one .npz with q, k, v (and mask)."),
    mask: str = typer.Option(None, "--mask", help="Boolean (True attends) or float (added to the scores) mask, "
                             "broadcastable to (..., L, S).", show_default=False),
    causal: bool = typer.Option(False, "--causal", help="Query i attends keys j <= i (torch's is_causal)."),
    causal_align: CausalAlign = typer.Option(CausalAlign.upper_left, "--causal-align",
                                             help="Where the causal diagonal starts when L != S; lower-right "
                                             "is the decoding alignment."),
    scale: float = typer.Option(None, "--scale", help="Multiplies q k^T.  [default: 1/sqrt(E)]",
                                show_default=False),
    weights: bool = typer.Option(False, "--weights", help="Also output the attention weights (..., L, S); "
                                 "this holds the full score matrix."),
    masked_rows: MaskedRowsOpt = MaskedRows.zero,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Scaled dot-product attention, as torch.nn.functional.scaled_dot_product_attention.

    Without --weights the (L, S) score matrix is never held (online softmax over key blocks).
    A query row that can attend no key gives zeros (--masked-rows zero, the default, as torch).
    Example: softmax attention sample_data/attention.npz --causal
    """
    if threads is not None:
        core.set_threads(threads)
    (q, k, v), bias = load_attention_operands(inputs, mask)
    paths = q.paths + k.paths + v.paths + (bias.paths if bias else [])
    sink = render.open_sink(fmt, output, force, precision, paths)
    bias_array = None if bias is None else bias.array
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
    render.write(Result(arrays, layout="attention"), sink)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="softmax")
