"""``softmax compare`` on two 2 GiB float32 ``.npy`` files against the scripts users write: time and peak RSS.

Run by hand, not a timed test::

    python benchmarks/compare.py                      # two 65536 x 8192 float32 files (2 GiB each)
    python benchmarks/compare.py --rows 2048          # two 64 MiB files, for a quick run
    python benchmarks/compare.py --references-only    # only the NumPy/SciPy and torch scripts
    python benchmarks/compare.py --keep --dir /tmp/cmp   # keep (and reuse) the files
    python benchmarks/compare.py --profile            # seconds per stage of one in-process run, one thread

The reference ``a.npy`` holds random logits (standard normal times 3); the
candidate ``b.npy`` is the same logits rounded to float16 and back, the
perturbation of running a model in half precision; ``y.npy`` holds int64
labels. All are written in chunks into a temporary folder under /tmp
(removed at the end unless ``--keep``).

Measured, each a fresh process (``_measure.measure``: wall time and its own
peak RSS), once to warm the file cache and then ``--runs`` alternating times
(medians; the min-max range shows how noisy the machine was):

- ours: ``softmax compare a.npy b.npy --labels y.npy -f json`` (issue 14);
- scipy: ``np.load`` both, ``scipy.special.log_softmax`` on both, then the
  sums (KL per row, top-1 agreement, the NLLs for the perplexity ratio);
- torch (2 threads; skipped without torch): ``F.log_softmax`` on both,
  ``F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)`` and
  ``F.cross_entropy`` on both.

``--profile`` times instead, in this process and on one thread, each stage
of what ``compare --labels`` does per block (:mod:`softmax_cli.core.rowdivergence`'s
own stage functions, over the blocks :mod:`softmax_cli.stream` reads): one
pass reading both files and nothing else, then per block the two
log-softmaxes with their probabilities and argmaxes, the KL and JS terms, their
row sums, the label figures and TV with the largest ``|p - q|``, and at the
end the concatenation and the summary; then the whole streamed computation as
``compare`` runs it (every thread) for comparison. Wall and CPU seconds are
printed: on a shared machine the CPU seconds are the steadier figure.

Targets (issue 14): wall <= 0.5x the faster script's, peak RSS <= 256 MiB.
The scripts hold both inputs and several full-size temporaries: at the
default size they peak around 10-14 GiB each, so run this on an otherwise
idle machine with the memory for it. The reference scripts print the seconds
of their computation alone (after loading), so start-up and reading can be
told apart; their mean KL, top-1 agreement and perplexity ratio are compared
with ours at the end. They differ by about 1e-3 relative in mean KL: on the
first 1024 rows of this data, against float64, the scipy script's float32 sum
is 1.2e-3 off and ours 2.9e-5 (core.divergence cancels float32 rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _measure import Run, big_file_arguments, measure, softmax_command, work_folder
from end_to_end import describe, median_run, torch_available, verdict

SCIPY_COMPARE = """
import sys, time
import numpy as np, scipy.special
a, b, y = np.load(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3])
start = time.perf_counter()
top1 = (a.argmax(axis=-1) == b.argmax(axis=-1)).mean()
log_p = scipy.special.log_softmax(a, axis=-1)
log_q = scipy.special.log_softmax(b, axis=-1)
del a, b
kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)
rows = np.arange(len(y))
ppl_ratio = np.exp(-log_q[rows, y].mean(dtype=np.float64) + log_p[rows, y].mean(dtype=np.float64))
seconds = time.perf_counter() - start
print(repr(float(kl.mean(dtype=np.float64))), repr(float(top1)), repr(float(ppl_ratio)))
print(seconds)
"""

TORCH_COMPARE = """
import sys, time
import numpy as np, torch
import torch.nn.functional as F
torch.set_num_threads(2)
a, b = torch.from_numpy(np.load(sys.argv[1])), torch.from_numpy(np.load(sys.argv[2]))
y = torch.from_numpy(np.load(sys.argv[3]))
start = time.perf_counter()
with torch.no_grad():
    top1 = (a.argmax(dim=-1) == b.argmax(dim=-1)).double().mean()
    log_p, log_q = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    kl = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
    ppl_ratio = torch.exp(F.cross_entropy(b, y).double() - F.cross_entropy(a, y).double())
seconds = time.perf_counter() - start
print(repr(float(kl.double().mean())), repr(float(top1)), repr(float(ppl_ratio)))
print(seconds)
"""

OURS = "ours: compare --labels y.npy -f json"
SCIPY = "scipy: load + log_softmax x2 + sums"
TORCH = "torch: load + log_softmax x2 + kl_div"


def write_pair(folder: Path, rows: int, cols: int) -> None:
    """Write ``a.npy`` (rows x cols float32), ``b.npy`` (the same rounded to float16) and int64 ``y.npy``."""
    paths = [folder / "a.npy", folder / "b.npy", folder / "y.npy"]
    if all(path.exists() for path in paths):
        with open(paths[0], "rb") as file:
            np.lib.format.read_magic(file)
            shape, _, _ = np.lib.format.read_array_header_1_0(file)
        if shape == (rows, cols):
            print(f"reusing {folder}/a.npy, b.npy, y.npy")
            return
    rng = np.random.default_rng(14)
    start = time.perf_counter()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (rows, cols)}
    with open(paths[0], "wb") as a, open(paths[1], "wb") as b:
        np.lib.format.write_array_header_1_0(a, header)
        np.lib.format.write_array_header_1_0(b, header)
        chunk = max(1, (32 << 20) // (cols * 4))
        for first in range(0, rows, chunk):
            block = rng.standard_normal((min(chunk, rows - first), cols), dtype=np.float32)
            block *= 3
            block.tofile(a)
            block.astype(np.float16).astype(np.float32).tofile(b)
    np.save(paths[2], rng.integers(0, cols, rows, dtype=np.int64))
    print(f"wrote two {rows} x {cols} float32 files ({rows * cols * 4 / 2**30:.2f} GiB each) and int64 labels "
          f"in {time.perf_counter() - start:.1f} s")


def has_compare(ours: str) -> bool:
    return subprocess.run([ours, "compare", "--help"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    big_file_arguments(parser, "each file")
    parser.add_argument("--references-only", action="store_true", help="measure only the scipy and torch scripts")
    parser.add_argument("--profile", action="store_true", help="seconds per stage of one in-process run, one thread")
    args = parser.parse_args(argv)

    print(f"{len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.2f}")
    with work_folder(args.dir, args.keep, "softmax-compare-") as folder:
        write_pair(folder, args.rows, args.cols)
        if args.profile:
            profile(folder)
        else:
            run_cases(folder, args)


class Stopwatch:
    """Wall and CPU seconds per named stage, each stage timed from the previous ``lap``."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.restart()

    def restart(self) -> None:
        self.last = (time.perf_counter(), time.process_time())

    def lap(self, stage: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall[stage] = self.wall.get(stage, 0.0) + now[0] - self.last[0]
        self.cpu[stage] = self.cpu.get(stage, 0.0) + now[1] - self.last[1]
        self.last = now

    def report(self, title: str) -> None:
        total_wall, total_cpu = sum(self.wall.values()), sum(self.cpu.values())
        print(f"\n{title}\n  {'stage':<52} {'wall s':>8} {'CPU s':>8} {'share':>6}")
        for stage in self.wall:
            print(f"  {stage:<52} {self.wall[stage]:8.2f} {self.cpu[stage]:8.2f} {self.cpu[stage] / total_cpu:6.1%}")
        print(f"  {'total':<52} {total_wall:8.2f} {total_cpu:8.2f}")


def profile(folder: Path) -> None:
    """Seconds per stage of ``compare a.npy b.npy --labels y.npy`` in this process (see the module docstring)."""
    from softmax_cli import core, stream
    from softmax_cli.core import blocks, rowdivergence
    from softmax_cli.formats import npy
    from softmax_cli.limits import block_bytes

    def open_pair():
        return [npy.row_blocks(folder / name, block_bytes(stream.STREAM_BLOCK_BYTES)) for name in ("a.npy", "b.npy")]

    labels = np.load(folder / "y.npy")
    reference, candidate = open_pair()
    n_cols = reference.n_cols
    clock = Stopwatch()
    for _ in stream.lockstep(reference, candidate, None):
        pass
    clock.lap("reading both files (nothing computed)")

    blocks.set_threads(1)
    compute = np.dtype(np.float32)
    scratch = rowdivergence._scratch(max(1, rowdivergence._BLOCK_ELEMENTS // n_cols), n_cols, compute)
    names = ("a.npy", "b.npy")
    parts = []
    clock.restart()
    for start, ref_block, cand_block in stream.lockstep(*open_pair(), None):
        clock.lap("waiting for the read-ahead")
        figures: dict[str, list[np.ndarray]] = {}
        for sub in blocks.row_blocks(ref_block.shape[0], n_cols, 0, rowdivergence._BLOCK_ELEMENTS):
            buf = {name: array[: sub.stop - sub.start] for name, array in scratch.items()}
            lp, lq, p, q, top_p, top_q = rowdivergence._distributions(ref_block[sub], cand_block[sub], buf, 1.0,
                                                                        False, names)
            clock.lap("log-softmax, probabilities and argmax (both sides)")
            with np.errstate(invalid="ignore", over="ignore"):
                kl_terms, js_terms = rowdivergence._terms(lp, lq, p, q, buf)
                clock.lap("KL and JS terms")
                kl, js = kl_terms.sum(axis=1), js_terms.sum(axis=1) * 0.5
                clock.lap("KL and JS row sums")
                y = labels[start + sub.start: start + sub.stop]
                nll_ref, nll_cand, dp = rowdivergence._label_figures(lp, lq, p, q, y)
                clock.lap("label figures (NLLs, dp)")
            abs_dp = np.abs(np.subtract(p, q, out=buf["r"]), out=buf["r"])
            tv, row_max = 0.5 * abs_dp.sum(axis=1), abs_dp.max(axis=1)
            clock.lap("TV and max |p - q| (one |p - q|)")
            for name, values in (("kl", kl), ("js", js), ("tv", tv), ("row_max_abs_dp", row_max),
                                 ("top1_same", top_p == top_q), ("nll_ref", nll_ref), ("nll_cand", nll_cand),
                                 ("dp", dp)):
                figures.setdefault(name, []).append(values)
        parts.append(core.RowDivergence(**{name: np.concatenate(values) for name, values in figures.items()},
                                        labelled=np.ones(ref_block.shape[0], dtype=bool)))
        clock.lap("gathering the block's rows")
        clock.restart()
    rows = core.RowDivergence.concatenate(parts)
    clock.lap("concatenating the blocks")
    summary = core.divergence_summary(rows)
    clock.lap("summary (means, quantiles, stderrs)")
    clock.report(f"per stage, one thread, {reference.shape[0]} x {n_cols} {reference.dtype} pair:")

    blocks.set_threads(blocks.available_cores())
    whole = Stopwatch()
    streamed = stream.divergence_rows(*open_pair(), labels)
    whole.lap(f"streamed divergence_rows, {blocks.thread_count()} threads")
    whole_summary = core.divergence_summary(streamed)
    whole.lap("summary")
    whole.report("as compare runs it:")
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(summary, whole_summary))
    print(f"\nthe profiled stages give the summary compare gives: {'yes' if same else 'NO'}")


def run_cases(folder: Path, args) -> None:
    ours, py = softmax_command(), sys.executable
    inputs = ["a.npy", "b.npy", "y.npy"]
    commands: dict[str, list[str]] = {}
    if not args.references_only:
        if has_compare(ours):
            commands[OURS] = [ours, "compare", "a.npy", "b.npy", "--labels", "y.npy", "-f", "json"]
        else:
            print(f"{ours} has no compare command yet: measuring the reference scripts only")
    commands[SCIPY] = [py, "-c", SCIPY_COMPARE, *inputs]
    if torch_available():
        commands[TORCH] = [py, "-c", TORCH_COMPARE, *inputs]
    else:
        print("torch is not installed: its script is skipped")

    runs: dict[str, list[Run]] = {label: [] for label in commands}
    print(f"\nwarm-up run of each command, then {args.runs} alternating runs (medians):")
    for command in commands.values():  # warm the file cache and imports; not counted
        measure(command, folder)
    for _ in range(args.runs):
        for label, command in commands.items():
            runs[label].append(measure(command, folder))
    for label in commands:
        print(describe(label, runs[label]))
    medians = {label: median_run(r) for label, r in runs.items()}

    references = {label: m for label, m in medians.items() if label != OURS}
    print("\nreference scripts (compute = after loading):")
    for label, m in references.items():
        print(f"  {label:<40} peak RSS {m.peak_mib:7.0f} MiB, compute {m.compute:.2f} s")
    if OURS not in medians:
        report_agreement(medians, None)
        return
    o = medians[OURS]
    fastest_label = min(references, key=lambda label: references[label].wall)
    fastest = references[fastest_label]
    print("\nratios and targets:")
    print(f"  wall ours/{fastest_label.split(':')[0]}-script (the faster): {verdict(o.wall / fastest.wall, 0.5)}")
    for label, m in references.items():
        print(f"  wall ours/{label.split(':')[0]}-script: {o.wall / m.wall:.2f}; peak RSS ours/theirs "
              f"{o.peak_mib / m.peak_mib:.3f}")
    print(f"  peak RSS ours: {verdict(o.peak_mib, 256, ' MiB')}")
    report_agreement(medians, json.loads(o.stdout))


def report_agreement(medians: dict[str, Run], ours: dict | None) -> None:
    """Mean KL, top-1 agreement and perplexity ratio of every command, side by side (not timed)."""
    print("\nfigures (mean KL, top-1 agreement, perplexity ratio):")
    figures = {label: [float(v) for v in m.stdout.split()[:3]] for label, m in medians.items() if label != OURS}
    if ours is not None:
        figures[OURS] = [ours["kl_mean"], ours["top1_agreement"], ours["ppl_ratio"]]
    for label, (kl, top1, ratio) in figures.items():
        print(f"  {label:<40} kl_mean {kl!r:<24} top1 {top1!r:<20} ppl_ratio {ratio!r}")
    if ours is not None:
        for label, (kl, _, _) in figures.items():
            if label != OURS:
                print(f"  kl_mean ours vs {label.split(':')[0]}: relative difference {abs(ours['kl_mean'] - kl) / kl:.2e}")


if __name__ == "__main__":
    main()
