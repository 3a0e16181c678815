"""``softmax temperature-sweep``: how the softmax changes with temperature, and temperature scaling (--fit)."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from .. import core, render, scheduled
from ..errors import InputError, UsageError
from ..inputs import check_one_stdin
from ..limits import MAX_BINS, check_count
from ..operands import (
    DEFAULT_TEMPERATURES,
    load_labels,
    naming_sources,
    parse_temperatures,
)
from ..options import (
    COMPUTATION,
    OUTPUT,
    IgnoreIndexOpt,
    InputsArg,
    LabelsOpt,
    Output,
    SchedulerOpt,
    Source,
)
from ..result import Result
from . import labels_for, logits_loader, warn


class Binning(str, Enum):
    """``core.BINNINGS``: equal-width bins, or equal-mass bins at the quantiles of the scored values."""

    uniform = "uniform"
    quantile = "quantile"


class BinEdges(str, Enum):
    """``core.BIN_EDGES``: which bin a value on an edge joins."""

    right = "right"
    left = "left"
    bucketize = "bucketize"


BinningOpt = Annotated[
    Binning, typer.Option("--binning", help="uniform: equal-width bins; quantile: equal-mass (adaptive) bins, "
                          "netcal's equal_intervals=False.", rich_help_panel=COMPUTATION)
]
BinEdgesOpt = Annotated[
    BinEdges, typer.Option("--bin-edges", help="right: bins (lower, upper], the gpleiss script's; left: "
                           "[lower, upper) with 1.0 in the last bin, netcal's; bucketize: [lower, upper) and 1.0 "
                           "in a bin of its own, torchmetrics'.", rich_help_panel=COMPUTATION)
]

# What the labels add to a sweep's figures at one temperature, and so what --fit reports before and after.
FIT_FIGURES = ("nll", "ece", "ece_l2", "mce", "classwise_ece", "brier")


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
    bins: int = typer.Option(15, "--bins", help="Confidence bins of the calibration errors.",
                             rich_help_panel=COMPUTATION),
    binning: BinningOpt = Binning.uniform,
    bin_edges: BinEdgesOpt = BinEdges.right,
    binary: bool = typer.Option(False, "--binary", help="Two classes: calibrate P(class 1) against label == 1 "
                                "(torchmetrics' binary_calibration_error, netcal), not the top label.",
                                rich_help_panel=COMPUTATION),
    min_temperature: float = typer.Option(None, "--min-temperature", help="With --fit: the smallest temperature "
                                          "to return; where the NLL keeps falling below it (perfectly separated "
                                          "data), the fit returns it with a warning.", show_default=False,
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
    if min_temperature is not None and not fit:
        raise UsageError("--min-temperature bounds --fit; add --fit (or leave out --min-temperature)")
    if min_temperature is not None and not (np.isfinite(min_temperature) and min_temperature > 0):
        raise UsageError(f"--min-temperature must be finite and > 0, got {min_temperature!r}; "
                         "e.g. --min-temperature 0.05")
    check_count(bins, MAX_BINS, "--bins")
    binned = {"bins": bins, "binning": binning.value, "bin_edges": bin_edges.value, "binary": binary}
    if (cluster := scheduled.address(scheduler)) is not None:
        _on_cluster(cluster, inputs, source, outputs, [("--plot", plot is not None)], temperatures, temperature_range,
                    log_space, labels, fit, min_temperature, binned, ignore_index)
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
        from .. import (
            plots,  # matplotlib is optional; even this module is only loaded for --plot
        )

        plots.check_destination(plot, outputs.force, paths + ([sink.path] if sink.path else []))
    grid = parse_temperatures(temperatures, temperature_range, log_space)
    labels_array = None if truth is None else truth.array
    with naming_sources(logits, {"labels": truth}):
        arrays = core.temperature_sweep(logits.array, grid, labels_array, axis=axis, ignore_index=ignore_index,
                                        **binned)
        display = {}
        if truth is not None:
            shown = {"(T = 1)": 1.0}
            if fit:
                fitted = _bounded(lambda: core.fit_temperature(logits.array, truth.array, axis=axis,
                                                               ignore_index=ignore_index), min_temperature)
                shown = {"before (T = 1)": 1.0, f"after (T = {fitted:.4g})": fitted}
            # The same sweep code scores both ends, so before/after match the sweep's own figures.
            ends = core.temperature_sweep(logits.array, list(shown.values()), truth.array, axis=axis,
                                          ignore_index=ignore_index, **binned)
            if fit:
                _add_fit(arrays, fitted, ends)
            # With --binary the bins hold P(class 1) against label == 1, not the top label's confidence.
            what = "reliability of P(class 1)" if binary else "reliability"
            display = {f"{what} {title}": core.ReliabilityBins.from_results(ends, i) for i, title in enumerate(shown)}
    render.write(Result(arrays, classes=logits.classes, column=True, layout="sweep", display=display), sink)
    if plot is not None:
        plots.draw(plot, arrays, display, outputs.force)


def _bounded(fit, min_temperature: float | None) -> float:
    """The fitted temperature, or ``--min-temperature`` where the NLL's minimum lies below it or does not exist."""
    from ..core.temperature import NoMinimum

    try:
        fitted = fit()
    except NoMinimum as no_minimum:
        if no_minimum.towards != "zero":
            raise
        if min_temperature is None:
            raise InputError(f"{no_minimum.message}; to get a usable bound instead, give --min-temperature T "
                             "(e.g. --min-temperature 0.05), which --fit then returns with a warning") from None
        warn(f"{no_minimum.message}; returning --min-temperature {min_temperature:g} as fitted_temperature")
        return min_temperature
    if min_temperature is not None and fitted < min_temperature:
        warn(f"the NLL is lowest at T = {fitted:.6g}, below --min-temperature; returning {min_temperature:g} "
             "(the lowest NLL at or above the bound)")
        return min_temperature
    return fitted


def _add_fit(arrays: dict, fitted: float, ends: dict) -> None:
    """The fit's results: the temperature and the labels' figures at T = 1 and at it."""
    arrays["fitted_temperature"] = np.float64(fitted)
    for name in FIT_FIGURES:
        arrays[f"{name}_before"], arrays[f"{name}_after"] = ends[name]
    if arrays["ece_after"] > arrays["ece_before"]:
        warn(f"ECE rose from {arrays['ece_before']:.4g} to {arrays['ece_after']:.4g} at the NLL-optimal "
             f"temperature {fitted:.4g} (NLL fell from {arrays['nll_before']:.4g} to {arrays['nll_after']:.4g})")


def _on_cluster(cluster, inputs, source, outputs, unsupported, temperatures, temperature_range, log_space, labels,
                fit, min_temperature, binned, ignore_index) -> None:
    """The sweep's summaries (and the fit) from the cluster's exact sums; the diagrams only as the bins' results."""
    from .. import distributed

    sources = scheduled.sources_of(inputs, source, unsupported)
    check_one_stdin(inputs, labels=labels)
    truth = load_labels(labels) if labels is not None else None
    sink = scheduled.result_sink(sources, outputs, truth.paths if truth else ())
    grid = parse_temperatures(temperatures, temperature_range, log_space)
    labels_array = None if truth is None else truth.array
    with scheduled.session(cluster, sources, False, "temperature-sweep", passes=0 if fit else 1) as run:
        arrays = distributed.temperature_sweep(run, grid, labels_array, ignore_index=ignore_index, **binned).value
        if fit:
            fitted = _bounded(lambda: distributed.fit_temperature(run, labels_array, ignore_index).value,
                              min_temperature)
            _add_fit(arrays, fitted, distributed.temperature_sweep(run, [1.0, fitted], labels_array,
                                                                  ignore_index=ignore_index, **binned).value)
    render.write(Result(arrays, column=True, layout="sweep"), sink)
