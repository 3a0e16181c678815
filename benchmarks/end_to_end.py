"""End to end on a 2 GiB float32 ``.npy``: wall time and peak RSS of ``softmax`` commands.

Run by hand, not a timed test::

    python benchmarks/end_to_end.py                 # 65536 x 8192 float32 (2 GiB), ~5-8 minutes
    python benchmarks/end_to_end.py --rows 8192     # a 256 MiB file, for a quick run
    python benchmarks/end_to_end.py --keep --dir /tmp/e2e   # keep (and reuse) the files

The logits (and int64 labels) are written in chunks into a temporary folder
under /tmp, so this script itself stays small; the folder is removed at the
end unless ``--keep``. Every measured command is a fresh process, measured by
``_measure.measure`` (its own peak RSS, see there). Every command runs once to warm
the file cache, then the commands alternate ``--runs`` times and the medians
are compared; the min-max range shows how noisy the machine was. Outputs are
deleted and the disk synced before each command: otherwise the writeback of
one command's 2 GiB output lands on the next one (seen here: the same
command took 1.4 s after a sync and 3-6 s right after another 2 GiB write).

Cases and targets (issues 3 and 6):

(a) ``softmax probs big.npy -o out.npy --force`` against a script doing
    ``np.load`` + ``scipy.special.softmax`` + ``np.save``:
    <= 0.5x its wall time, <= 256 MiB peak RSS.
(b) ``probs --log``, ``loss -f json``, ``grad``, ``topk -k 5 -f npz``:
    <= 256 MiB peak RSS each (wall time reported).
(c) ``softmax loss big.npy --labels y.npy`` against scripts calling
    ``torch.nn.functional.cross_entropy`` (2 threads; skipped without torch)
    and ``scipy.special.log_softmax`` + gather: <= 0.5x the torch script's
    wall time, <= 300 MiB peak RSS; the loss values are compared.

The reference scripts print the seconds spent in their computation alone
(after loading, before saving), so start-up and I/O can be told apart.
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
from _measure import Run, big_file_arguments, measure, softmax_command, work_folder

SCIPY_PROBS = """
import sys, time
import numpy as np, scipy.special
x = np.load(sys.argv[1])
start = time.perf_counter()
p = scipy.special.softmax(x, axis=-1)
print(time.perf_counter() - start)
np.save(sys.argv[2], p)
"""

TORCH_LOSS = """
import sys, time
import numpy as np, torch
torch.set_num_threads(2)
x, y = torch.from_numpy(np.load(sys.argv[1])), torch.from_numpy(np.load(sys.argv[2]))
start = time.perf_counter()
with torch.no_grad():
    loss = torch.nn.functional.cross_entropy(x, y, reduction=sys.argv[3])
seconds = time.perf_counter() - start
if len(sys.argv) > 4:
    np.save(sys.argv[4], loss.numpy())
print(repr(float(loss.double().mean())))
print(seconds)
"""

SCIPY_LOSS = """
import sys, time
import numpy as np, scipy.special
x, y = np.load(sys.argv[1]), np.load(sys.argv[2])
start = time.perf_counter()
per_sample = -np.take_along_axis(scipy.special.log_softmax(x, axis=-1), y[:, None], axis=-1)[:, 0]
seconds = time.perf_counter() - start
if len(sys.argv) > 4:
    np.save(sys.argv[4], per_sample)
print(repr(float(per_sample.mean(dtype=np.float64))))
print(seconds)
"""


def write_inputs(folder: Path, rows: int, cols: int) -> tuple[Path, Path]:
    """Write ``big.npy`` (rows x cols float32) in chunks of rows, and int64 labels ``y.npy``."""
    logits, labels = folder / "big.npy", folder / "y.npy"
    expected = rows * cols * 4
    if logits.exists() and labels.exists():
        with open(logits, "rb") as file:
            np.lib.format.read_magic(file)
            shape, _, _ = np.lib.format.read_array_header_1_0(file)
        if shape == (rows, cols):
            print(f"reusing {logits} ({expected / 2**30:.2f} GiB)")
            return logits, labels
    rng = np.random.default_rng(6)
    start = time.perf_counter()
    with open(logits, "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                   "shape": (rows, cols)})
        chunk = max(1, (32 << 20) // (cols * 4))
        for first in range(0, rows, chunk):
            block = rng.standard_normal((min(chunk, rows - first), cols), dtype=np.float32)
            block *= 3
            block.tofile(file)
    np.save(labels, rng.integers(0, cols, rows, dtype=np.int64))
    print(f"wrote {logits} ({rows} x {cols} float32, {expected / 2**30:.2f} GiB) and int64 labels "
          f"in {time.perf_counter() - start:.1f} s")
    return logits, labels


def median_run(runs: list[Run]) -> Run:
    computes = [r.compute for r in runs if r.compute is not None]
    return Run(statistics.median(r.wall for r in runs), max(r.peak_mib for r in runs),
               statistics.median(computes) if computes else None, runs[-1].stdout)


def describe(label: str, runs: list[Run]) -> str:
    m = median_run(runs)
    walls = [r.wall for r in runs]
    peaks = [r.peak_mib for r in runs]
    compute = f", compute {m.compute:5.2f} s" if m.compute is not None else ""
    return (f"  {label:<44} wall {m.wall:6.2f} s (range {min(walls):.2f}-{max(walls):.2f}){compute}; "
            f"peak RSS {m.peak_mib:6.0f} MiB (range {min(peaks):.0f}-{max(peaks):.0f})")


def verdict(value: float, limit: float, unit: str = "") -> str:
    return f"{value:.2f}{unit} (target <= {limit:g}{unit}: {'met' if value <= limit else 'MISSED'})"


def torch_available() -> bool:
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    big_file_arguments(parser)
    parser.add_argument("--only", choices=["a", "b", "c"], nargs="+", default=["a", "b", "c"])
    args = parser.parse_args(argv)

    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(not set)')}; "
          f"{len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.2f}")
    with work_folder(args.dir, args.keep, "softmax-e2e-") as folder:
        run_cases(folder, args)


def run_cases(folder: Path, args) -> None:
    write_inputs(folder, args.rows, args.cols)
    ours = softmax_command()
    py = sys.executable
    with_torch = torch_available()
    commands: dict[str, list[str]] = {}
    if "a" in args.only:
        commands["a ours: probs -o out.npy --force"] = [ours, "probs", "big.npy", "-o", "out.npy", "--force"]
        commands["a scipy: load + softmax + save"] = [py, "-c", SCIPY_PROBS, "big.npy", "scipy_out.npy"]
    if "b" in args.only:
        commands["b ours: probs --log -o log.npy"] = [ours, "probs", "big.npy", "--log", "-o", "log.npy"]
        commands["b ours: loss --labels y.npy -f json"] = [ours, "loss", "big.npy", "--labels", "y.npy", "-f", "json"]
        commands["b ours: grad --labels y.npy -o g.npy"] = [ours, "grad", "big.npy", "--labels", "y.npy", "-o", "g.npy"]
        commands["b ours: topk -k 5 -f npz -o t.npz"] = [ours, "topk", "big.npy", "-k", "5", "-f", "npz", "-o", "t.npz"]
    if "c" in args.only:
        commands["c ours: loss --labels y.npy"] = [ours, "loss", "big.npy", "--labels", "y.npy"]
        if with_torch:
            commands["c torch: load + F.cross_entropy"] = [py, "-c", TORCH_LOSS, "big.npy", "y.npy", "mean"]
        commands["c scipy: load + log_softmax + gather"] = [py, "-c", SCIPY_LOSS, "big.npy", "y.npy", "mean"]
    outputs = ["out.npy", "scipy_out.npy", "log.npy", "g.npy", "t.npz"]

    def clear_outputs() -> None:
        for name in outputs:
            (folder / name).unlink(missing_ok=True)
        # Flush the previous command's 2 GiB of dirty pages now, so that their
        # writeback is not charged to whichever command happens to run next.
        os.sync()

    runs: dict[str, list[Run]] = {label: [] for label in commands}
    print(f"\nwarm-up run of each command, then {args.runs} alternating runs (medians):")
    for label, command in commands.items():  # warm the file cache and imports; not counted
        clear_outputs()
        measure(command, folder)
    for _ in range(args.runs):
        for label, command in commands.items():
            clear_outputs()
            runs[label].append(measure(command, folder))
    for label in commands:
        print(describe(label, runs[label]))
    medians = {label: median_run(r) for label, r in runs.items()}

    print("\nratios and targets:")
    if "a" in args.only:
        a, s = medians["a ours: probs -o out.npy --force"], medians["a scipy: load + softmax + save"]
        print(f"  (a) wall ours/scipy-script: {verdict(a.wall / s.wall, 0.5)}")
        print(f"  (a) peak RSS ours: {verdict(a.peak_mib, 256, ' MiB')}; scipy script {s.peak_mib:.0f} MiB "
              f"(ours {a.peak_mib / s.peak_mib:.3f}x)")
    if "b" in args.only:
        for label, m in medians.items():
            if label.startswith("b "):
                print(f"  (b) {label.removeprefix('b ours: '):<34} peak RSS {verdict(m.peak_mib, 256, ' MiB')}, wall {m.wall:.2f} s")
    if "c" in args.only:
        c = medians["c ours: loss --labels y.npy"]
        sc = medians["c scipy: load + log_softmax + gather"]
        if with_torch:
            t = medians["c torch: load + F.cross_entropy"]
            print(f"  (c) wall ours/torch-script: {verdict(c.wall / t.wall, 0.5)}; torch script peak "
                  f"{t.peak_mib:.0f} MiB, compute {t.compute:.2f} s")
        else:
            print("  (c) torch script: skipped (torch is not installed)")
        print(f"  (c) wall ours/scipy-script: {c.wall / sc.wall:.2f}; scipy script peak {sc.peak_mib:.0f} MiB, "
              f"compute {sc.compute:.2f} s")
        print(f"  (c) peak RSS ours: {verdict(c.peak_mib, 300, ' MiB')}")
        check_losses(folder, ours, py, with_torch)


def check_losses(folder: Path, ours: str, py: str, with_torch: bool) -> None:
    """Compare per-sample and mean losses of ours, torch and scipy (not timed)."""
    print("\nloss agreement (one extra, untimed run of each with reduction none):")
    ours_json = json.loads(measure([ours, "loss", "big.npy", "--labels", "y.npy", "-f", "json"], folder).stdout)
    ours_per = np.asarray(ours_json["per_sample"], dtype=np.float64)
    references = {"scipy": SCIPY_LOSS}
    if with_torch:
        references["torch"] = TORCH_LOSS
    for name, script in references.items():
        out = folder / f"{name}_per_sample.npy"
        mean = float(measure([py, "-c", script, "big.npy", "y.npy", "none", out.name], folder).stdout.split()[0])
        theirs = np.load(out).astype(np.float64)
        out.unlink()
        per = np.abs(ours_per - theirs) / np.abs(theirs)
        print(f"  ours vs {name}: mean loss {ours_json['loss']!r} vs {mean!r} (relative "
              f"{abs(ours_json['loss'] - mean) / abs(mean):.2e}); per-sample max relative difference {per.max():.2e}")


if __name__ == "__main__":
    main()
