"""Pictures with matplotlib, an optional extra: ``pip install 'softmax-toolkit[plot]'``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import UsageError
from .render import atomic_file
from .render import check_destination as check_output

PLOT_SUFFIXES = (".png", ".svg")
INSTALL_HINT = "pip install 'softmax-toolkit[plot]'"


def check_destination(path: Path, force: bool, inputs: Sequence[Path]) -> None:
    """Fail before any work when the picture cannot be drawn or written."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(f"--plot writes {' or '.join(PLOT_SUFFIXES)}, got {path.name!r}")
    try:
        import matplotlib

        del matplotlib  # only its presence is checked here; draw() uses it
    except ImportError:
        raise UsageError(f"--plot needs matplotlib, which is not installed; install it with: {INSTALL_HINT}") from None
    check_output(path, force, inputs)


def draw(path: Path, arrays: dict[str, np.ndarray], reliability: dict, force: bool) -> None:
    """Reliability diagram(s) over their bins' counts and, across temperatures, NLL and ECE on their own axes."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    # SVG text stays text (searchable, and what the tests read), not outlines.
    matplotlib.rcParams["svg.fonttype"] = "none"
    from matplotlib import pyplot

    swept = len(arrays["temperatures"]) > 1 or not reliability
    columns = len(reliability) + (1 if swept else 0)
    figure, axes = pyplot.subplots(2, columns, figsize=(5.0 * columns, 6.4), squeeze=False,
                                   gridspec_kw={"height_ratios": (3, 1)})
    for column, (title, bins) in enumerate(reliability.items()):
        _diagram(axes[0][column], axes[1][column], title, bins)
    if swept:
        _against_temperature(axes[0][-1], axes[1][-1], arrays)
    figure.tight_layout()
    atomic_file(path, force, lambda stream, _: figure.savefig(stream, format=path.suffix[1:].lower()))
    pyplot.close(figure)


def _diagram(top, bottom, title: str, bins) -> None:
    """Accuracy as solid bars, the gap to the bin's mean confidence as a hatched outline beside it, counts below."""
    filled = np.asarray(bins.count) > 0
    lower, upper = np.asarray(bins.lower)[filled], np.asarray(bins.upper)[filled]
    # A bin of one edge (confidence exactly 1, the bucketize rule) still needs a visible bar.
    width = np.maximum(upper - lower, 0.01)
    accuracy, confidence = np.asarray(bins.accuracy)[filled], np.asarray(bins.confidence)[filled]
    count = np.asarray(bins.count)[filled]
    top.bar(lower, accuracy, width=width, align="edge", color="tab:blue", edgecolor="white", label="accuracy")
    # The gap is a hatched outline between accuracy and confidence, never a fill: where accuracy is above the
    # confidence, the bar's top still shows the accuracy through the hatching, in a colour of its own.
    gap_bottom, gap_height = np.minimum(accuracy, confidence), np.abs(confidence - accuracy)
    for side, colour, label in ((confidence >= accuracy, "tab:red", "overconfident: gap up to mean confidence"),
                                (confidence < accuracy, "tab:green", "underconfident: mean confidence below")):
        if side.any():
            top.bar(lower[side], gap_height[side], width=width[side], bottom=gap_bottom[side], align="edge",
                    fill=False, edgecolor=colour, hatch="///", linewidth=0.8, label=label)
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ece = float((count / count.sum() * gap_height).sum()) if count.size else float("nan")
    top.set(xlim=(0, 1.02), ylim=(0, 1.05), ylabel="accuracy in the bin", title=f"{title}\nECE = {ece:.4g}")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(lower, count, width=width, align="edge", color="0.55", edgecolor="white")
    for x, w, n in zip(lower, width, count):
        bottom.annotate(str(int(n)), (x + w / 2, n), ha="center", va="bottom", fontsize="x-small")
    bottom.set(xlim=(0, 1.02), ylim=(0, max(1, int(count.max(initial=0))) * 1.3), xlabel="confidence",
               ylabel="rows")


def _against_temperature(top, bottom, arrays: dict) -> None:
    """NLL (or entropy) above, ECE (or mean confidence) below: each on its own labelled axis, the fitted T marked."""
    t = arrays["temperatures"]
    labelled = "nll" in arrays
    for axis, name, label, colour in ((top, "nll", "mean NLL", "tab:purple"), (bottom, "ece", "ECE", "tab:orange")) \
            if labelled else ((top, "entropy", "mean entropy (nats)", "tab:purple"),
                              (bottom, "max_prob", "mean confidence", "tab:orange")):
        axis.plot(t, arrays[name], marker="o", markersize=3, color=colour)
        axis.set(xscale="log", ylabel=label)
        if "fitted_temperature" in arrays:
            fitted = float(arrays["fitted_temperature"])
            axis.axvline(fitted, color="k", linestyle=":", linewidth=1)
    top.set_title("against temperature")
    bottom.set_xlabel("temperature T")
    if "fitted_temperature" in arrays:
        top.annotate(f"fitted T = {float(arrays['fitted_temperature']):.4g}", (float(arrays["fitted_temperature"]),
                     1.0), xycoords=("data", "axes fraction"), xytext=(4, -12), textcoords="offset points",
                     fontsize="small")
