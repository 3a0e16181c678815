"""Core ``softmax_cli.core.softmax`` against ``torch.softmax`` and ``scipy.special.softmax``.

Run by hand, not a timed test::

    python benchmarks/core_speed.py              # 9 runs per shape
    python benchmarks/core_speed.py --runs 15

Two shapes, float32: (4096, 32000), a vocabulary-sized batch, and
(1_000_000, 10), many rows of few classes. The three sides alternate within
every run so that machine noise hits them alike; the medians are compared,
and the spread of the per-run ratios shows how noisy the machine was (the
best-of ratio is printed too: on a shared machine the minimum is the least
disturbed figure). Only
the call is timed: the input arrays (and torch's ``from_numpy`` view of
them) are made beforehand, and each side runs once before timing.

torch runs through its public API with ``torch.set_num_threads(2)``; ours
uses its default thread count (the available cores). The torch lines are
skipped when torch is not installed.

Targets (issue 6), on (4096, 32000): ours/torch <= 1 and scipy/ours >= 2.5.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy.special

from softmax_cli.core import softmax

try:
    import torch
except ImportError:  # the torch lines are skipped
    torch = None

SHAPES = [(4096, 32000), (1_000_000, 10)]


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def sides(x: np.ndarray) -> dict[str, Callable[[], object]]:
    """The calls to compare on ``x``, ours first."""
    calls = {"ours": lambda: softmax(x, axis=-1), "scipy": lambda: scipy.special.softmax(x, axis=-1)}
    if torch is not None:
        tensor = torch.from_numpy(x)
        calls["torch"] = lambda: torch.softmax(tensor, dim=-1)
    return calls


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def bench_shape(shape: tuple[int, int], runs: int) -> dict[str, float]:
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * 4
    calls = sides(x)
    # Warm up every side once; also check that they agree.
    results = {name: call() for name, call in calls.items()}
    reference = results["scipy"].astype(np.float64)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            times[name].append(timed(call))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{shape[0]} x {shape[1]} float32 ({x.nbytes / 2**20:.0f} MiB), median of {runs} alternating runs:")
    for name in calls:
        values = times[name]
        print(f"  {name:<6} {medians[name] * 1000:8.1f} ms   (min {min(values) * 1000:.1f}, "
              f"max {max(values) * 1000:.1f})")
        if name != "scipy":
            difference = np.abs(np.asarray(results[name], dtype=np.float64) - reference).max()
            print(f"         max |{name} - scipy| = {difference:.2e}")
    best = {name: min(values) for name, values in times.items()}
    scipy_ratios = [s / o for s, o in zip(times["scipy"], times["ours"])]
    print(f"  scipy/ours: {medians['scipy'] / medians['ours']:.2f}  (per-run {spread(scipy_ratios)}; "
          f"best-of {best['scipy'] / best['ours']:.2f})")
    if "torch" in calls:
        torch_ratios = [o / t for o, t in zip(times["ours"], times["torch"])]
        print(f"  ours/torch: {medians['ours'] / medians['torch']:.2f}  (per-run {spread(torch_ratios)}; "
              f"best-of {best['ours'] / best['torch']:.2f})")
    else:
        print("  ours/torch: skipped (torch is not installed)")
    return medians


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="alternating runs per shape (>= 7)")
    args = parser.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(2)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}; "
              f"scipy {scipy.__version__}")
    else:
        print(f"torch not installed; numpy {np.__version__}; scipy {scipy.__version__}")
    medians = {shape: bench_shape(shape, args.runs) for shape in SHAPES}
    big = medians[SHAPES[0]]
    print(f"\ntargets on {SHAPES[0][0]} x {SHAPES[0][1]}:")
    ratio = big["scipy"] / big["ours"]
    print(f"  scipy/ours {ratio:.2f} >= 2.5: {'met' if ratio >= 2.5 else 'MISSED'}")
    if "torch" in big:
        ratio = big["ours"] / big["torch"]
        print(f"  ours/torch {ratio:.2f} <= 1.0: {'met' if ratio <= 1.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
