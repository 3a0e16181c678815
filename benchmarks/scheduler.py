"""The distributed engine on this machine: in-process streaming vs ``local:2``, and the cost of a task.

Run by hand, not a timed test::

    python benchmarks/scheduler.py                  # 65536 x 8192 float32 (2 GiB)
    python benchmarks/scheduler.py --rows 8192      # 256 MiB, a quick run
    python benchmarks/scheduler.py --mode units     # only the unit-size sweep

(Not named ``distributed.py``: run as a script, its folder comes first on
``sys.path`` and that name would shadow the ``distributed`` package.)

Mode ``compare`` (target of issue 15: ``--scheduler local:2`` within 1.5x
the in-process time, cluster start-up included): ``probs big.npy -o out.npy``
and ``loss big.npy --labels y.npy -f json``, each run as the real ``softmax``
command three ways, measured by ``_measure.measure`` (wall time and the
command's own peak RSS): in process (streaming), ``--scheduler local:2``
(the command starts and stops its own cluster), and ``--scheduler tcp://...``
on the cluster this script keeps running, whose workers' peak memory is read
afterwards: each worker's ``VmHWM`` from ``/proc`` (the high-water mark of
the worker's own address space, reset at exec, so the nanny's memory does not
leak into it).
Mode ``units``: ``loss`` through the Python API on the running cluster with
units of 0.5 to 16 MiB; a least-squares line ``time = a + b * tasks`` gives
the per-task overhead ``b * workers`` (each worker runs ``tasks / workers`` of
them) and the throughput per worker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _measure import measure, softmax_command
from end_to_end import write_inputs

from softmax_cli.cluster import DEFAULT_UNIT_BYTES, Engine, Run, connect, cross_entropy_terms, expand_sources

WORKERS = 2


def worker_peaks_mib(client) -> list[float]:
    def peak() -> float:
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    return sorted(client.run(peak).values())


def sync() -> None:
    subprocess.run(["sync"], check=False)


def timed(function, runs: int) -> tuple[float, float, float]:
    """Median, min and max seconds of ``runs`` calls."""
    walls = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        function()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), min(walls), max(walls)


def compare(address: str, client, folder: Path, logits: Path, labels: Path, runs: int, unit_bytes: int) -> None:
    out = folder / "out.npy"
    plan = Run.plan(Engine(client), expand_sources(logits), unit_bytes=unit_bytes)
    print(f"units: {len(plan.units)} of {plan.units[0].n_rows} rows ({unit_bytes >> 20} MiB)")
    environment = {"SOFTMAX_UNIT_BYTES": str(unit_bytes)}
    cases = {
        "probs -o out.npy": ["probs", str(logits), "-o", str(out), "--force"],
        "loss --labels y.npy": ["loss", str(logits), "--labels", str(labels), "-f", "json"],
    }
    for name, arguments in cases.items():
        command = [softmax_command(), *arguments]
        measure(command + ["--scheduler", address], folder, environment)  # warm the file cache and the workers
        walls = {}
        for label, extra in (("in process", []), (f"local:{WORKERS}", ["--scheduler", f"local:{WORKERS}"]),
                             ("running cluster", ["--scheduler", address])):
            measured = []
            for _ in range(runs):
                sync()
                measured.append(measure(command + extra, folder, environment))
            walls[label] = statistics.median(r.wall for r in measured)
            print(f"  {name:<22} {label:<16} {walls[label]:6.2f} s (range {min(r.wall for r in measured):.2f}-"
                  f"{max(r.wall for r in measured):.2f}), the command's peak {max(r.peak_mib for r in measured):4.0f} MiB")
        ratio = walls[f"local:{WORKERS}"] / walls["in process"]
        print(f"  {name:<22} ratio local:{WORKERS} / in process {ratio:.2f} (target <= 1.5: "
              f"{'met' if ratio <= 1.5 else 'MISSED'}); on a running cluster "
              f"{walls['running cluster'] / walls['in process']:.2f}")
    print(f"  worker peak memory (VmHWM): {', '.join(f'{p:.0f} MiB' for p in worker_peaks_mib(client))}")


def units_sweep(client, logits: Path, labels: Path, runs: int) -> None:
    labels_array = np.load(labels)
    sources = expand_sources(logits)
    size = sources[0].n_rows * sources[0].n_cols * np.dtype(sources[0].dtype).itemsize
    points = []
    row_bytes = sources[0].n_cols * np.dtype(sources[0].dtype).itemsize
    # Up to 16 MiB: larger blocks are fresh mappings at every unit (see DEFAULT_UNIT_BYTES), a cost of their own.
    for rows in sorted({max(1, int(mib * 2**20) // row_bytes) for mib in (0.5, 2, 8, 16)}):
        if rows > sources[0].n_rows:
            continue
        n_tasks = len(Run.plan(Engine(client), sources, rows_per_unit=rows).units)
        median, low, high = timed(lambda: cross_entropy_terms(Run.plan(Engine(client), sources, rows_per_unit=rows),
                                                              labels_array), runs)
        points.append((n_tasks, median))
        print(f"  {rows:5d} rows/task ({rows * sources[0].n_cols * 4 / 2**20:7.2f} MiB) {n_tasks:6d} tasks: "
              f"{median:6.2f} s (range {low:.2f}-{high:.2f}), {size / median / 2**30:5.2f} GiB/s")
    tasks, seconds = np.array(points, dtype=float).T
    slope, intercept = np.polyfit(tasks, seconds, 1)
    print(f"  fit: time = {intercept:.3f} s + {slope * 1e3:.3f} ms x tasks -> per-task overhead "
          f"{slope * WORKERS * 1e3:.2f} ms per worker; throughput {size / intercept / WORKERS / 1e9:.2f} GB/s "
          f"per worker with the overhead removed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=65536)
    parser.add_argument("--cols", type=int, default=8192)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--unit-mib", type=int, default=DEFAULT_UNIT_BYTES >> 20, help="input MiB per task in the compare mode")
    parser.add_argument("--mode", choices=["all", "compare", "units"], default="all")
    parser.add_argument("--dir", type=Path, help="where the inputs go (reused when they match)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="softmax-distributed-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        logits, labels = write_inputs(folder, args.rows, args.cols)
        start = time.perf_counter()
        with connect(f"local:{WORKERS}", dashboard=False) as client:
            client.wait_for_workers(WORKERS)
            startup = time.perf_counter() - start
            print(f"LocalCluster of {WORKERS} worker processes started in {startup:.2f} s ({os.cpu_count()} cores)")
            if args.mode in ("all", "compare"):
                compare(client.scheduler.address, client, folder, logits, labels, args.runs, args.unit_mib << 20)
            if args.mode in ("all", "units"):
                units_sweep(client, logits, labels, args.runs)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
