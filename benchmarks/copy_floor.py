"""Streaming against the floor: `softmax probs x.npy -o y.npy` as a ratio to `cp x.npy y.npy`, and the per-file cost of a batch.

Run by hand, not a timed test::

    python benchmarks/copy_floor.py                      # 2 GiB, warm and cold cache, ~3 minutes
    python benchmarks/copy_floor.py --sweep 0.25,1,2,4   # seconds per GiB and peak RSS at each size
    python benchmarks/copy_floor.py --batch 1000         # 1,000 files of 64 x 1000 through --out-dir
    python benchmarks/copy_floor.py --profile            # also each stage's seconds on one thread
    python benchmarks/copy_floor.py --baseline /tmp/old  # also an older tree (git archive), in the same runs

A convert reads and writes as many bytes as `cp` does, so `cp` of the same
file is the floor no streaming can beat; the ratio says how much of the time
is the computation that the reader and writer threads do not hide.

Each size runs `cp` and `softmax` alternately (A B A B ...) ``--runs`` times
after a warm-up, and the medians are compared, so machine drift hits both;
``--baseline`` adds a third command (A B C A B C ...), an older source tree,
so a change is measured against what it replaces in the same machine state.
Outputs are deleted and the disk synced before each command (the writeback
of one 2 GiB output otherwise lands on the next command). "Cold" drops the
input from the page cache before each command with
``posix_fadvise(POSIX_FADV_DONTNEED)`` (no root needed), so the read comes
from the disk. Targets (issue 25): warm ratio <= 2.0 (goal 1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from _measure import measure, softmax_command, work_folder

GIB = 1 << 30


def write_logits(path: Path, rows: int, cols: int) -> None:
    """A float32 ``.npy`` of ``rows x cols`` normal logits, written in chunks so this script stays small."""
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    step = max(1, (64 << 20) // (cols * 4))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        out[start:stop] = rng.standard_normal((stop - start, cols), dtype=np.float32) * 3
    out.flush()
    del out


def drop_from_cache(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def timed(command: list[str], folder: Path, output: Path, source: Path, cold: bool, env: dict | None = None):
    if output.exists():
        output.unlink()
    subprocess.run(["sync"], check=True)
    if cold:
        drop_from_cache(source)
    return measure(command, folder, env)


def compare_to_cp(folder: Path, source: Path, runs: int, cold: bool,
                  baseline: Path | None = None) -> dict[str, tuple[float, float]]:
    """Median seconds and largest peak RSS (MiB) of `cp`, of `softmax probs` and of the baseline's, by name."""
    output = folder / "out.npy"
    convert = [softmax_command(), "probs", str(source), "-o", str(output), "--force"]
    commands = {"cp": (["cp", str(source), str(output)], None), "softmax": (convert, None)}
    if baseline is not None:
        commands["baseline"] = (convert, {"PYTHONPATH": str(baseline)})
    for command, env in commands.values():  # warm-up
        timed(command, folder, output, source, cold, env)
    runs_of: dict[str, list] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, env) in commands.items():
            runs_of[name].append(timed(command, folder, output, source, cold, env))
    output.unlink(missing_ok=True)
    return {name: (statistics.median(run.wall for run in measured), max(run.peak_mib for run in measured))
            for name, measured in runs_of.items()}


def batch_cost(folder: Path, files: int) -> None:
    """Seconds per file of one `softmax probs --out-dir` over many small files, past one start-up."""
    inputs = folder / "small"
    inputs.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for index in range(files):
        np.save(inputs / f"x{index:04d}.npy", rng.standard_normal((64, 1000), dtype=np.float32))
    paths = sorted(str(path) for path in inputs.glob("*.npy"))
    one = measure([softmax_command(), "probs", paths[0], "-o", str(folder / "one.npy"), "--force"], folder)
    start = time.perf_counter()
    subprocess.run([softmax_command(), "probs", *paths, "--out-dir", str(folder / "out"), "--force"], check=True)
    total = time.perf_counter() - start
    print(f"batch of {files} files of 64 x 1000: {total:.2f} s, one file alone {one.wall * 1000:.0f} ms; "
          f"{(total - one.wall) / (files - 1) * 1000:.1f} ms per further file")


def profile(folder: Path, source: Path) -> None:
    """Seconds per stage of the streamed `probs -o`, one after another on one thread (nothing overlapped).

    Reading: ``readinto`` of each block into a reused buffer, as the reader
    thread does; softmax: the core on the block; writing: the result handed
    to the kernel as the writer thread does.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from softmax_cli import core
    from softmax_cli.formats import npy
    from softmax_cli.stream import STREAM_BLOCK_BYTES

    core.set_threads(1)
    rows = npy.row_blocks(source, STREAM_BLOCK_BYTES)
    height = rows.block_rows()
    buffer = np.empty(height * rows.n_cols, dtype=rows.dtype)
    seconds = {"reading": 0.0, "softmax": 0.0, "writing": 0.0}
    output = folder / "profile.npy"
    with open(source, "rb", buffering=0) as file, open(output, "wb") as stream:
        file.seek(rows.offset)
        npy._reserve(stream, rows.n_rows * rows.n_cols * rows.dtype.itemsize)
        for start in range(0, rows.n_rows, height):
            count = min(height, rows.n_rows - start)
            started = time.perf_counter()
            target = memoryview(buffer[: count * rows.n_cols].view(np.uint8))
            filled = 0
            while filled < len(target):
                filled += file.readinto(target[filled:])
            block = buffer[: count * rows.n_cols].reshape(count, rows.n_cols)
            read = time.perf_counter()
            probs = core.softmax(block)
            computed = time.perf_counter()
            npy.write_in_pieces(stream, npy._bytes_of(probs))
            written = time.perf_counter()
            seconds["reading"] += read - started
            seconds["softmax"] += computed - read
            seconds["writing"] += written - computed
    output.unlink()
    gib = source.stat().st_size / GIB
    print(f"one thread, {gib:.2f} GiB warm: " + ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items())
          + f" (sum {sum(seconds.values()):.2f} s; start-up not included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cols", type=int, default=8192, help="classes (default 8192)")
    parser.add_argument("--sweep", default="2", help="sizes in GiB, comma-separated (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per command after a warm-up run")
    parser.add_argument("--batch", type=int, default=0, help="also time a batch of this many small files")
    parser.add_argument("--dir", type=Path, help="folder for the files (default: a new temporary one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also run softmax from this source tree (its PYTHONPATH), alternating with the others")
    parser.add_argument("--profile", action="store_true", help="also time each stage on one thread, at each size")
    options = parser.parse_args()
    with work_folder(options.dir, options.keep, "softmax-floor-") as folder:
        print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the start")
        base = f" {'base s':>7} {'ratio':>6} {'peak MiB':>8}" if options.baseline else ""
        print(f"{'GiB':>5} {'cache':>5} {'cp s':>7} {'softmax s':>9} {'ratio':>6} {'s/GiB':>6} {'peak MiB':>8}{base}")
        for size in (float(text) for text in options.sweep.split(",")):
            rows = max(1, int(size * GIB) // (options.cols * 4))
            source = folder / f"x_{size:g}.npy"
            if not source.exists():
                write_logits(source, rows, options.cols)
            gib = source.stat().st_size / GIB
            if options.profile:
                profile(folder, source)
            for cold in (False, True):
                figures = compare_to_cp(folder, source, options.runs, cold, options.baseline)
                (cp, _), (softmax, peak) = figures["cp"], figures["softmax"]
                base = ""
                if options.baseline:
                    base_wall, base_peak = figures["baseline"]
                    base = f" {base_wall:7.2f} {base_wall / cp:6.2f} {base_peak:8.0f}"
                print(f"{gib:5.2f} {'cold' if cold else 'warm':>5} {cp:7.2f} {softmax:9.2f} {softmax / cp:6.2f} "
                      f"{softmax / gib:6.2f} {peak:8.0f}{base}", flush=True)
            if not options.keep:
                source.unlink()
        if options.batch:
            batch_cost(folder, options.batch)
        # The machine is shared: a figure means something only next to the load it was measured under.
        print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
