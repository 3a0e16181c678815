"""What exactness costs (issue 13): the log1p log-sum-exp in ``loss``, and ``probs --exact``.

Run by hand, not a timed test::

    python benchmarks/exactness.py                  # (a) on 65536 x 8192 float32 (2 GiB), then (b)
    python benchmarks/exactness.py --rows 8192      # a 256 MiB file, for a quick run
    python benchmarks/exactness.py --only b         # only the in-process case

(a) ``softmax loss big.npy --labels y.npy -f json`` with today's code against
    the code before the log-sum-exp kept its small terms (``--before-rev``,
    default the first parent of the core merge, extracted by ``git archive``
    into the temporary folder). Both run as ``python -m softmax_cli`` with
    ``PYTHONPATH`` naming their own tree, so they differ only in the code;
    they alternate, after a warm-up run of each. Target: <= 1.05x.
(b) ``core.softmax(x)`` against ``core.softmax(x, exact=True)`` in process on
    (4096, 32000) float64, alternating. This is what ``probs --exact`` adds;
    it is opt-in because the ratio is about 2 (issue 13's bar for a default
    was 1.3).

The files of (a) are those of ``end_to_end.py`` (same generator and seed);
medians are compared and the min-max ranges show how noisy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _measure import Run, big_file_arguments, measure, work_folder
from end_to_end import describe, median_run, verdict, write_inputs

ROOT = Path(__file__).resolve().parent.parent
# The commit before "Merge core: ... exact log-sum-exp (issues 9 and 13)": log(1 + s) without log1p.
BEFORE_REV = "d719e26"


def extract(rev: str, folder: Path) -> Path:
    """The ``softmax_cli`` package as of ``rev``, unpacked under ``folder``; returns the tree's root."""
    tree = folder / f"softmax-{rev}"
    tree.mkdir(exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "softmax_cli"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def loss_case(folder: Path, args) -> None:
    write_inputs(folder, args.rows, args.cols)
    before = extract(args.before_rev, folder)
    command = [sys.executable, "-m", "softmax_cli", "loss", "big.npy", "--labels", "y.npy", "-f", "json"]
    trees = {"today": ROOT, f"before ({args.before_rev})": before}
    for tree in trees.values():  # each side imports its own tree, not the editable install
        found = subprocess.run([sys.executable, "-c", "import softmax_cli; print(softmax_cli.__file__)"],
                               env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, cwd=folder)
        assert found.stdout.startswith(str(tree)), found.stdout
    runs: dict[str, list[Run]] = {label: [] for label in trees}
    print(f"\n(a) loss on {args.rows} x {args.cols} float32: a warm-up run of each, then {args.runs} alternating runs")
    for label, tree in trees.items():
        measure(command, folder, {"PYTHONPATH": str(tree)})
    for _ in range(args.runs):
        for label, tree in trees.items():
            runs[label].append(measure(command, folder, {"PYTHONPATH": str(tree)}))
    for label in trees:
        print(describe(label, runs[label]))
    today, before = (median_run(runs[label]) for label in trees)
    ratios = [a.wall / b.wall for a, b in zip(*runs.values())]
    print(f"  (a) wall today/before: {verdict(today.wall / before.wall, 1.05)} "
          f"(per-run {min(ratios):.2f}-{max(ratios):.2f})")
    losses = [json.loads(run.stdout)["loss"] for run in (today, before)]
    print(f"  (a) loss today {losses[0]!r}, before {losses[1]!r}")


def exact_case(args) -> None:
    from softmax_cli.core import softmax

    rng = np.random.default_rng(13)
    x = rng.standard_normal((4096, 32000)) * 3
    calls = {"softmax(x)": lambda: softmax(x), "softmax(x, exact=True)": lambda: softmax(x, exact=True)}
    # Wall time, and the CPU time of every thread: on a busy machine the CPU
    # time shows the work done, which waiting for a core does not inflate.
    times: dict[tuple[str, str], list[float]] = {(label, clock): [] for label in calls for clock in ("wall", "cpu")}
    for call in calls.values():
        call()
    for _ in range(args.runs):
        for label, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            times[label, "wall"].append(time.perf_counter() - wall)
            times[label, "cpu"].append(time.process_time() - cpu)
    print(f"\n(b) in process, (4096, 32000) float64 ({x.nbytes / 2**20:.0f} MiB), median of {args.runs} alternating "
          "runs:")
    for (label, clock), values in times.items():
        print(f"  {label:<24} {clock:<4} {statistics.median(values) * 1000:8.1f} ms (range {min(values) * 1000:.1f}-"
              f"{max(values) * 1000:.1f})")
    for clock in ("wall", "cpu"):
        plain, exact = times["softmax(x)", clock], times["softmax(x, exact=True)", clock]
        ratios = [e / p for p, e in zip(plain, exact)]
        print(f"  (b) exact/default, {clock}: {statistics.median(exact) / statistics.median(plain):.2f} "
              f"(per-run {min(ratios):.2f}-{max(ratios):.2f}; a default would need <= 1.3)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    big_file_arguments(parser)
    parser.add_argument("--before-rev", default=BEFORE_REV, help=f"the code to compare (a) with (default {BEFORE_REV})")
    parser.add_argument("--only", choices=["a", "b"], nargs="+", default=["a", "b"])
    args = parser.parse_args(argv)
    print(f"{len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.2f}")
    if "a" in args.only:
        with work_folder(args.dir, args.keep, "softmax-exactness-") as folder:
            loss_case(folder, args)
    if "b" in args.only:
        exact_case(args)


if __name__ == "__main__":
    main()
