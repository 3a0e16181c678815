"""``softmax temperature-sweep``: how the softmax changes with temperature, and temperature scaling (--fit)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import typer

from .. import core, render, scheduled
from ..errors import UsageError
from ..formats.base import note
from ..inputs import check_one_stdin
from ..operands import DEFAULT_TEMPERATURES, load_labels, naming_sources, parse_temperatures
from ..limits import MAX_BINS, check_count
from ..options import COMPUTATION, OUTPUT, IgnoreIndexOpt, InputsArg, LabelsOpt, Output, SchedulerOpt, Source
from ..result import Result
from . import described, described_sources, labels_for, logits_loader, warn


def temperature_sweep(
    inputs: InputsArg = None,
    temperatures: str = typer.Option(None, "--temperatures", help="Temperatures, e.g. 0.1,0.5,1,2,10.  "
                                     f"[default: {DEFAULT_TEMPERATURES}]", show_default=False,
                                     rich_help_panel=COMPUTATION),
    temperature_range: str = typer.Option(None, "--range", help="START:STOP:NUM evenly spaced temperatures.",
                                          show_default=False, rich_help_panel=COMPUTATION),
    log_space: bool = typer.Option(False, "--log-space", help="With --range: space them evenly in log T.",
                                   rich_help_panel=COMPUTATION),
    labels: LabelsOpt = None,
    fit: bool = typer.Option(False, "--fit", help="Fit the temperature minimising NLL on the labels.",
                             rich_help_panel=COMPUTATION),
    bins: int = typer.Option(15, "--bins", help="Equal-width confidence bins of the calibration error.",
                             rich_help_panel=COMPUTATION),
    plot: Path = typer.Option(None, "--plot", help="Draw the reliability diagram (and NLL/ECE against T) to "
                              "FILE.png or FILE.svg; needs matplotlib.", show_default=False, dir_okay=False,
                              rich_help_panel=OUTPUT),
    ignore_index: IgnoreIndexOpt = -100,
    scheduler: SchedulerOpt = None,
    *,
    source: Source,
    outputs: Output,
) -> None:
    """Probabilities, entropy and confidence across temperatures; with labels NLL, accuracy and ECE.

    --fit finds the temperature that minimises NLL (temperature scaling, Guo et al. 2017).

    \b
    Example:
      softmax temperature-sweep sample_data/digits_val.npz --labels sample_data/digits_val.npz --fit
    """
    if fit and labels is None:
        raise UsageError("--fit needs --labels")
    check_count(bins, MAX_BINS, "--bins")
    if (cluster := scheduled.address(scheduler)) is not None:
        _on_cluster(cluster, inputs, source, outputs, [("--plot", plot is not None)], temperatures, temperature_range,
                    log_space, labels, fit, bins, ignore_index)
        return
    axis = source.axis
    check_one_stdin(inputs, labels=labels)
    logits = logits_loader(source)(inputs)
    truth = load_labels(labels) if labels is not None else None
    if truth is not None:
        truth = dataclasses.replace(truth, array=labels_for(truth, logits, axis))
    paths = logits.paths + (truth.paths if truth else [])
    sink = render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, paths)
    if plot is not None:
        from .. import plots  # matplotlib is optional; even this module is only loaded for --plot

        plots.check_destination(plot, outputs.force, paths + ([sink.path] if sink.path else []))
    grid = parse_temperatures(temperatures, temperature_range, log_space)
    with naming_sources(logits, {"labels": truth}):
        arrays = core.temperature_sweep(logits.array, grid, None if truth is None else truth.array, bins=bins,
                                        axis=axis, ignore_index=ignore_index)
        display = {}
        shown = {"(T = 1)": 1.0}
        if fit:
            fitted = core.fit_temperature(logits.array, truth.array, axis=axis, ignore_index=ignore_index)
            # The same sweep code scores both ends, so before/after match the sweep's own figures.
            ends = core.temperature_sweep(logits.array, [1.0, fitted], truth.array, bins=bins, axis=axis,
                                          ignore_index=ignore_index)
            _add_fit(arrays, fitted, ends)
            shown = {"before (T = 1)": 1.0, f"after (T = {fitted:.4g})": fitted}
        if truth is not None:
            logits64 = np.asarray(logits.array, dtype=np.float64)
            for title, t in shown.items():
                probs_t = core.softmax(logits64, axis=axis, temperature=t, masked_rows="nan")
                display[f"reliability {title}"] = core.reliability_bins(probs_t, truth.array, bins=bins, axis=axis,
                                                                       ignore_index=ignore_index)
    render.write(Result(arrays, classes=logits.classes, column=True, layout="sweep", display=display,
                        command="temperature-sweep", inputs=described("logits", logits) + described("labels", truth)),
                 sink)
    if plot is not None:
        plots.draw(plot, arrays, display, outputs.force)
        note(f"the reliability diagram is in {plot}")


def _add_fit(arrays: dict, fitted: float, ends: dict) -> None:
    """The fit's results: the temperature and the sweep's NLL and ECE at T = 1 and at it."""
    arrays["fitted_temperature"] = np.float64(fitted)
    for name in ("nll", "ece"):
        arrays[f"{name}_before"], arrays[f"{name}_after"] = ends[name]
    if arrays["ece_after"] > arrays["ece_before"]:
        warn(f"ECE rose from {arrays['ece_before']:.4g} to {arrays['ece_after']:.4g} at the NLL-optimal "
             f"temperature {fitted:.4g} (NLL fell from {arrays['nll_before']:.4g} to {arrays['nll_after']:.4g})")


def _on_cluster(cluster, inputs, source, outputs, unsupported, temperatures, temperature_range, log_space, labels,
                fit, bins, ignore_index) -> None:
    """The sweep's summaries (and the fit) from the cluster's exact sums; no reliability diagrams."""
    from .. import distributed

    sources = scheduled.sources_of(inputs, source, unsupported)
    check_one_stdin(inputs, labels=labels)
    truth = load_labels(labels) if labels is not None else None
    sink = scheduled.result_sink(sources, outputs, truth.paths if truth else ())
    grid = parse_temperatures(temperatures, temperature_range, log_space)
    labels_array = None if truth is None else truth.array
    with scheduled.session(cluster, sources, False, "temperature-sweep", passes=0 if fit else 1) as run:
        arrays = distributed.temperature_sweep(run, grid, labels_array, bins, ignore_index).value
        if fit:
            fitted = distributed.fit_temperature(run, labels_array, ignore_index).value
            _add_fit(arrays, fitted, distributed.temperature_sweep(run, [1.0, fitted], labels_array, bins,
                                                                  ignore_index).value)
    render.write(Result(arrays, column=True, layout="sweep", command="temperature-sweep",
                        inputs=described_sources(sources) + described("labels", truth)), sink)
