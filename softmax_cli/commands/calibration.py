"""``softmax temperature-sweep``: how the softmax changes with temperature, and temperature scaling (--fit)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import typer

from .. import core, render
from ..errors import UsageError
from ..inputs import DEFAULT_TEMPERATURES, check_one_stdin, load_labels, parse_temperatures
from ..options import COMPUTATION, OUTPUT, IgnoreIndexOpt, InputsArg, LabelsOpt, Output, Source
from ..result import Result
from . import labels_for, logits_loader, warn


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
            warn(f"ECE rose from {arrays['ece_before']:.4g} to {arrays['ece_after']:.4g} at the NLL-optimal "
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
        plots.draw(plot, arrays, display, outputs.force)
