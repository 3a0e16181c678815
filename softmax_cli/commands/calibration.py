"""``softmax temperature-sweep``: how the softmax changes with temperature, and temperature scaling (--fit)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

from ..errors import InputError, UsageError
from ..options import (
    COMPUTATION,
    DEFAULT_TEMPERATURES,
    OUTPUT,
    BinsOpt,
    FromProbsOpt,
    IgnoreIndexOpt,
    InputsArg,
    LabelsKeyOpt,
    LabelsOpt,
    Number,
    OneOf,
    Output,
    Padding,
    SchedulerOpt,
    Source,
    core_choices,
    option,
    worded,
)
from . import correct_of, described, described_sources, logits_loader, warn, warn_below_chance

if TYPE_CHECKING:
    import numpy as np

# NumPy, the readers and the core are imported in the command's body: its help costs none of them.

TemperaturesOpt = Annotated[Optional[str], option(
    "--temperatures", help=f"Temperatures, e.g. 0.1,0.5,1,2,10.  [default: {DEFAULT_TEMPERATURES}]",
    panel=COMPUTATION, metavar="T,T,...", show_default=False)]
RangeOpt = Annotated[Optional[str], option(
    "--range", help="START:STOP:NUM evenly spaced temperatures.", panel=COMPUTATION, metavar="START:STOP:NUM",
    show_default=False)]
LogSpaceOpt = Annotated[bool, option("--log-space", help="With --range: space them evenly in log T.",
                                     panel=COMPUTATION)]
FitOpt = Annotated[bool, option("--fit", help="Fit the temperature minimising NLL on the labels.",
                                panel=COMPUTATION)]
PlotOpt = Annotated[Optional[Path], option(
    "--plot", help="Draw the reliability diagram (and NLL/ECE against T) to FILE.png or FILE.svg; needs "
    "matplotlib.", panel=OUTPUT, metavar="FILE", show_default=False, dir_okay=False)]
BinningOpt = Annotated[str, option(
    "--binning", help="uniform: equal-width bins; quantile: equal-mass (adaptive) bins, netcal's "
    "equal_intervals=False.", panel=COMPUTATION, takes=OneOf(core_choices("BINNINGS")))]
BinEdgesOpt = Annotated[str, option(
    "--bin-edges", help="right: bins (lower, upper], the gpleiss script's; left: [lower, upper) with 1.0 in the last "
    "bin, netcal's; bucketize: [lower, upper) and 1.0 in a bin of its own, torchmetrics'.", panel=COMPUTATION,
    takes=OneOf(core_choices("BIN_EDGES")))]
BinaryOpt = Annotated[bool, option(
    "--binary", help="Two classes: calibrate P(class 1) against label == 1 (torchmetrics' binary_calibration_error, "
    "netcal), not the top label.", panel=COMPUTATION)]
MinTemperatureOpt = Annotated[Optional[float], option(
    "--min-temperature", help="With --fit: the smallest temperature to return; where the NLL keeps falling below it "
    "(perfectly separated data), the fit returns it with a warning.", panel=COMPUTATION,
    takes=Number(above=0, words="a finite temperature > 0 (e.g. 0.05)", metavar="T"), show_default=False)]

# What the labels add to a sweep's figures at one temperature, and so what --fit reports before and after.
FIT_FIGURES = ("nll", "ece", "ece_l2", "mce", "classwise_ece", "brier")


SweepLabelsOpt = worded(LabelsOpt, "The true classes, one per row (0,2,1 or a file; from an .npz the array "
                        "'labels'): adds NLL, accuracy, ECE and the other calibration figures per temperature; "
                        "--fit needs them.")


def temperature_sweep(
    inputs: InputsArg = None,
    temperatures: TemperaturesOpt = None,
    temperature_range: RangeOpt = None,
    log_space: LogSpaceOpt = False,
    labels: SweepLabelsOpt = None,
    labels_key: LabelsKeyOpt = None,
    from_probs: FromProbsOpt = False,
    fit: FitOpt = False,
    bins: BinsOpt = 15,
    plot: PlotOpt = None,
    binning: BinningOpt = "uniform",
    bin_edges: BinEdgesOpt = "right",
    binary: BinaryOpt = False,
    min_temperature: MinTemperatureOpt = None,
    ignore_index: IgnoreIndexOpt = -100,
    scheduler: SchedulerOpt = None,
    *,
    source: Source,
    padding: Padding,
    outputs: Output,
) -> None:
    """Probabilities, entropy and confidence across temperatures; with labels NLL, accuracy and ECE.

    --fit finds the temperature that minimises NLL (temperature scaling, Guo et al. 2017).

    \b
    Example:
      softmax temperature-sweep sample_data/digits_val.npz --labels sample_data/digits_val.npz --fit
    """
    import numpy as np

    from .. import core, positions, render, scheduled
    from ..formats.base import note
    from ..inputs import check_one_stdin
    from ..labelsource import read_labels
    from ..operands import naming_sources, parse_temperatures
    from ..result import Layout, Result

    if fit and labels is None:
        raise UsageError("--fit needs --labels")
    if min_temperature is not None and not fit:
        raise UsageError("--min-temperature bounds --fit; add --fit (or leave out --min-temperature)")
    binned = {"bins": bins, "binning": binning, "bin_edges": bin_edges, "binary": binary}
    if (cluster := scheduled.address(scheduler)) is not None:
        _on_cluster(cluster, inputs, source, outputs, [("--plot", plot is not None), ("--mask", padding.mask),
                                                       ("--from-probs", from_probs)],
                    temperatures, temperature_range, log_space, labels, labels_key, fit, min_temperature, binned,
                    ignore_index)
        return
    axis = source.axis
    check_one_stdin(inputs, labels=labels)
    label_source = read_labels(labels, labels_key) if labels is not None else None
    logits = logits_loader(source, labels=label_source, takes_labels=True, from_probs=from_probs,
                           logs_of_probs=True)(inputs)
    truth = None
    if label_source is not None:
        with naming_sources(logits, {"labels": label_source}):
            truth = dataclasses.replace(label_source.loaded, array=label_source.fitted(logits, axis, ignore_index))
    mask = positions.load_mask(padding)
    fitted_labels, keep = positions.scored(logits, axis, None if truth is None else truth.array, truth, mask,
                                           False, ignore_index)
    if keep is not None:  # the sweep's figures are over rows: a dropped row is left out of the array
        rows = np.moveaxis(np.asarray(logits.array), axis, -1).reshape(-1, logits.array.shape[axis])[keep]
        logits, axis = dataclasses.replace(logits, array=rows), -1
        if truth is not None:
            truth = dataclasses.replace(truth, array=fitted_labels.reshape(-1)[keep])
    paths = logits.paths + (truth.paths if truth else []) + (mask.paths if mask else [])
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
            _warn_below_chance(arrays, truth.array, logits.array.shape[axis], ignore_index)
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
    render.write(Result(arrays, classes=logits.classes, column=True, layout=Layout.sweep, display=display,
                        command="temperature-sweep", inputs=described("logits", logits) + described("labels", truth)
                        + described("mask", mask)), sink)
    if plot is not None:
        plots.draw(plot, arrays, display, outputs.force)
        note(f"the reliability diagram is in {plot}")


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


def _warn_below_chance(arrays: dict, labels: np.ndarray, n_classes: int, ignore_index: int) -> None:
    """The below-chance warning on the sweep's accuracy (the same at every temperature: T keeps the argmax)."""
    import numpy as np

    counted = int(np.count_nonzero(np.ravel(labels) != ignore_index))
    warn_below_chance(correct_of(float(np.ravel(arrays["accuracy"])[0]), counted), counted, n_classes)


def _add_fit(arrays: dict, fitted: float, ends: dict) -> None:
    """The fit's results: the temperature and the labels' figures at T = 1 and at it."""
    import numpy as np

    arrays["fitted_temperature"] = np.float64(fitted)
    for name in FIT_FIGURES:
        arrays[f"{name}_before"], arrays[f"{name}_after"] = ends[name]
    if arrays["ece_after"] > arrays["ece_before"]:
        warn(f"ECE rose from {arrays['ece_before']:.4g} to {arrays['ece_after']:.4g} at the NLL-optimal "
             f"temperature {fitted:.4g} (NLL fell from {arrays['nll_before']:.4g} to {arrays['nll_after']:.4g})")


def _on_cluster(cluster, inputs, source, outputs, unsupported, temperatures, temperature_range, log_space, labels,
                labels_key, fit, min_temperature, binned, ignore_index) -> None:
    """The sweep's summaries (and the fit) from the cluster's exact sums; the diagrams only as the bins' results."""
    from .. import cluster as engine
    from .. import render, scheduled
    from ..inputs import check_one_stdin
    from ..labelsource import read_labels
    from ..operands import parse_temperatures
    from ..result import Layout, Result

    sources = scheduled.sources_of(inputs, source, unsupported)
    check_one_stdin(inputs, labels=labels)
    truth = read_labels(labels, labels_key) if labels is not None else None
    sink = scheduled.result_sink(sources, outputs, truth.paths if truth else ())
    grid = parse_temperatures(temperatures, temperature_range, log_space)
    labels_array = None if truth is None else truth.array
    with scheduled.session(cluster, sources, False, "temperature-sweep", passes=0 if fit else 1) as run:
        arrays = engine.temperature_sweep(run, grid, labels_array, ignore_index=ignore_index, **binned).value
        if fit:
            fitted = _bounded(lambda: engine.fit_temperature(run, labels_array, ignore_index).value,
                              min_temperature)
            _add_fit(arrays, fitted, engine.temperature_sweep(run, [1.0, fitted], labels_array,
                                                                  ignore_index=ignore_index, **binned).value)
    render.write(Result(arrays, column=True, layout=Layout.sweep, command="temperature-sweep",
                        inputs=described_sources(sources) + described("labels", truth)), sink)
