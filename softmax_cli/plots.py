"""Pictures with matplotlib, an optional extra: ``pip install 'softmax-toolkit[plot]'``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import UsageError
from .render import atomic_file, check_destination as check_output

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
    """Reliability diagram(s) and, with labels, NLL and ECE against the temperature."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window
    from matplotlib import pyplot

    swept = "nll" in arrays and len(arrays["temperatures"]) > 1
    panels = len(reliability) + (1 if swept or not reliability else 0)
    figure, axes = pyplot.subplots(1, panels, figsize=(4.5 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    for axis, (title, bins) in zip(axes, reliability.items()):
        centres = (bins.lower + bins.upper) / 2
        width = bins.upper - bins.lower
        axis.bar(centres, np.nan_to_num(bins.accuracy), width=width * 0.95, color="tab:blue", label="accuracy")
        axis.bar(centres, np.nan_to_num(bins.confidence) - np.nan_to_num(bins.accuracy), width=width * 0.95,
                 bottom=np.nan_to_num(bins.accuracy), color="tab:red", alpha=0.3, label="gap to confidence")
        axis.plot([0, 1], [0, 1], "k--", linewidth=1)
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
        axis.legend(loc="upper left")
    if swept or not reliability:
        axis = axes[-1]
        t = arrays["temperatures"]
        curves = ("nll", "ece") if "nll" in arrays else ("entropy", "max_prob")
        for name in curves:
            axis.plot(t, arrays[name], marker="o", label=name)
        if "fitted_temperature" in arrays:
            axis.axvline(float(arrays["fitted_temperature"]), color="k", linestyle=":", label="fitted T")
        axis.set(xscale="log", xlabel="temperature T", title="against temperature")
        axis.legend()
    figure.tight_layout()
    atomic_file(path, force, lambda stream, _: figure.savefig(stream, format=path.suffix[1:].lower()))
    pyplot.close(figure)
