"""Benchmark: causal attention on .npy files, ours against torch's SDPA, time and peak memory.

Run by hand, not a timed test::

    python benchmarks/attention.py                  # L = 4096 and 16384, best of 2 runs
    python benchmarks/attention.py --lengths 4096 --runs 5
    python benchmarks/attention.py --command python my_attention.py {q} {k} {v} {out}

Each measurement is a fresh subprocess that loads Q, K, V ``.npy`` files of
shape (1, 8, L, 64) float32, computes causal attention and saves the output,
so wall time includes start-up and file I/O, as a user of the command sees
it. (The command runs OpenBLAS single-threaded and shares query blocks over
its own threads: OpenBLAS's threads spin-wait on a busy machine.) Peak
RSS is the process's own, measured by ``_measure.measure``. The machine may
be shared, so every figure is the best of ``--runs`` runs.

Our side is the installed ``softmax attention {q} {k} {v} --causal -o {out}``,
or any command line given with ``--command``, with ``{q}``, ``{k}``, ``{v}``
and ``{out}`` replaced by file paths.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _measure import Run, measure

REPO = Path(__file__).resolve().parent.parent

# Both scripts print the seconds spent in the computation alone, so that the
# start-up cost (importing torch takes a second or more) can be told apart.
TORCH_SCRIPT = """
import sys, time
import numpy as np
import torch
q, k, v = (torch.from_numpy(np.load(p)) for p in sys.argv[1:4])
start = time.perf_counter()
with torch.no_grad():
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
print(time.perf_counter() - start)
np.save(sys.argv[4], out.numpy())
"""


IMPORTS_ONLY = {"numpy": "import numpy", "torch": "import numpy, torch"}


def run_once(command: list[str]) -> Run:
    """One measured run from the repository folder (see ``_measure.measure``)."""
    return measure(command, REPO, {"PYTHONPATH": str(REPO)})


def best_of(command: list[str], runs: int, output: Path | None = None) -> Run:
    """The fastest wall time, fastest compute time and smallest peak over ``runs`` runs.

    ``output`` is removed before each run: the command line refuses to
    overwrite a file without ``--force``.
    """
    results = []
    for _ in range(runs):
        if output is not None:
            output.unlink(missing_ok=True)
        results.append(run_once(command))
    computes = [r.compute for r in results if r.compute is not None]
    return Run(min(r.wall for r in results), min(r.peak_mib for r in results),
               min(computes) if computes else None, results[-1].stdout)


def make_inputs(folder: Path, length: int, heads: int, features: int) -> dict[str, Path]:
    """Write random Q, K, V ``.npy`` files of shape (1, heads, length, features) float32."""
    rng = np.random.default_rng(length)
    paths = {}
    for name in "qkv":
        paths[name] = folder / f"{name}_{length}.npy"
        if not paths[name].exists():
            np.save(paths[name], rng.standard_normal((1, heads, length, features), dtype=np.float32))
    return paths


def torch_available() -> bool:
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def fill(template: list[str], paths: dict[str, Path]) -> list[str]:
    return [part.format(**{name: str(path) for name, path in paths.items()}) for part in template]


def describe(label: str, run: Run) -> str:
    compute = f"{run.compute:6.3f} s compute" if run.compute is not None else " " * 16
    return f"  {label:<26} {run.wall:6.3f} s wall  {compute}  {run.peak_mib:7.1f} MiB peak RSS"


def bench_length(folder: Path, length: int, args, ours: list[str], with_torch: bool) -> dict[str, Run]:
    """Measure both sides at one length and print the comparison."""
    paths = make_inputs(folder, length, args.heads, args.features)
    array_mib = 4 * args.heads * length * args.features / 2**20
    print(f"\nL = S = {length}: Q, K, V (1, {args.heads}, {length}, {args.features}) float32, "
          f"{array_mib:.0f} MiB each; output the same")
    ours_path, torch_path = folder / f"ours_{length}.npy", folder / f"torch_{length}.npy"
    command = fill(ours, {**paths, "out": ours_path})
    results = {"ours": best_of(command, args.runs, ours_path)}
    print(describe("ours", results["ours"]))
    if with_torch:
        command = [sys.executable, "-c", TORCH_SCRIPT, *map(str, (paths["q"], paths["k"], paths["v"], torch_path))]
        results["torch"] = best_of(command, args.runs, torch_path)
        print(describe("torch SDPA script", results["torch"]))
        ours_out = np.load(ours_path).astype(np.float64)
        torch_out = np.load(torch_path).astype(np.float64)
        ratio = results["ours"].wall / results["torch"].wall
        print(f"  ours / torch: wall time {ratio:.2f} (target <= 1.5)")
        print(f"  max |ours - torch|: {np.abs(ours_out - torch_out).max():.3g}")
    else:
        print("  torch SDPA script: skipped (torch is not importable)")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--runs", type=int, default=2, help="runs per measurement; the best is kept")
    parser.add_argument("--dir", type=Path, help="folder for (or holding) q_L.npy, k_L.npy, v_L.npy")
    parser.add_argument("--command", nargs=argparse.REMAINDER,
                        help="our side's command line, with {q} {k} {v} {out} placeholders")
    args = parser.parse_args(argv)
    ours = args.command or [str(Path(sys.executable).parent / "softmax"), "attention", "{q}", "{k}", "{v}",
                            "--causal", "-o", "{out}"]
    with_torch = torch_available()
    with tempfile.TemporaryDirectory() as temp:
        folder = args.dir or Path(temp)
        print("start-up alone (peak RSS of the imports):")
        baseline = {}
        for name, code in IMPORTS_ONLY.items():
            if name != "torch" or with_torch:
                baseline[name] = best_of([sys.executable, "-c", code], args.runs)
                print(describe(f"python -c '{code}'", baseline[name]))
        peaks = {length: bench_length(folder, length, args, ours, with_torch) for length in args.lengths}
    if len(peaks) > 1:
        first, last = min(peaks), max(peaks)
        low, high = peaks[first]["ours"].peak_mib, peaks[last]["ours"].peak_mib
        above = (high - baseline["numpy"].peak_mib) / (low - baseline["numpy"].peak_mib)
        print(f"\nours: peak RSS {low:.0f} -> {high:.0f} MiB (x{high / low:.2f}; x{above:.2f} above the "
              f"numpy start-up) for L x{last / first:.0f}; a full score matrix would grow x{(last / first) ** 2:.0f}")


if __name__ == "__main__":
    main()
