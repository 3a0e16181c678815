"""``softmax compare`` at a language model's vocabulary (V = 131072) on bfloat16 safetensors: time and peak RSS.

Run by hand, not a timed test::

    python benchmarks/lm_vocab.py                  # two 4096 x 131072 bfloat16 files (1 GiB each)
    python benchmarks/lm_vocab.py --rows 256       # two 64 MiB files, for a quick run
    python benchmarks/lm_vocab.py --keep --dir /tmp/lm   # keep (and reuse) the files

``ref.safetensors`` holds random logits (standard normal times 3) as
bfloat16 under the key ``logits``, as a Hugging Face or vLLM dump would;
``cand.safetensors`` the same logits plus noise of 0.05, rounded to bfloat16
again (a quantised model's perturbation); ``y.npy`` int64 next tokens. Both
files are written in chunks, without the safetensors package.

Measured, each a fresh process after a warm-up run (``_measure.measure``):

- ours: ``softmax compare ref.safetensors cand.safetensors --labels y.npy -f json``,
  which streams both files in row blocks;
- torch (2 threads): the script a user writes, ``safetensors.torch.load_file``
  on both, ``.float()``, ``F.log_softmax``, ``F.kl_div(..., log_target=True)``
  and ``F.cross_entropy`` on both.

Targets (issue 21): peak RSS <= 256 MiB; the wall-time ratio to the torch
script is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
from _measure import Run, big_file_arguments, measure, softmax_command, work_folder
from end_to_end import describe, median_run, torch_available, verdict

TORCH_COMPARE = """
import sys, time
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
import numpy as np
torch.set_num_threads(2)
a, b = load_file(sys.argv[1])["logits"], load_file(sys.argv[2])["logits"]
y = torch.from_numpy(np.load(sys.argv[3]))
start = time.perf_counter()
with torch.no_grad():
    a, b = a.float(), b.float()
    top1 = (a.argmax(dim=-1) == b.argmax(dim=-1)).double().mean()
    log_p, log_q = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    kl = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
    ppl_ratio = torch.exp(F.cross_entropy(b, y).double() - F.cross_entropy(a, y).double())
seconds = time.perf_counter() - start
print(repr(float(kl.double().mean())), repr(float(top1)), repr(float(ppl_ratio)))
print(seconds)
"""

OURS = "ours: compare (bf16 safetensors, streamed)"
TORCH = "torch: load_file + float + log_softmax x2 + kl_div"


def write_safetensors_pair(folder: Path, rows: int, cols: int) -> None:
    """``ref.safetensors`` and ``cand.safetensors`` (rows x cols bfloat16 under ``logits``) and int64 ``y.npy``."""
    import ml_dtypes

    paths = [folder / "ref.safetensors", folder / "cand.safetensors", folder / "y.npy"]
    header = json.dumps({"logits": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [0, rows * cols * 2]}})
    header += " " * (-len(header) % 8)
    if all(path.exists() for path in paths) and paths[0].stat().st_size == 8 + len(header) + rows * cols * 2:
        print(f"reusing {folder}/ref.safetensors, cand.safetensors, y.npy")
        return
    rng = np.random.default_rng(21)
    start = time.perf_counter()
    with open(paths[0], "wb") as ref, open(paths[1], "wb") as cand:
        for file in (ref, cand):
            file.write(struct.pack("<Q", len(header)) + header.encode())
        chunk = max(1, (32 << 20) // (cols * 4))
        for first in range(0, rows, chunk):
            block = rng.standard_normal((min(chunk, rows - first), cols), dtype=np.float32) * 3
            block.astype(ml_dtypes.bfloat16).tofile(ref)
            block += rng.standard_normal(block.shape, dtype=np.float32) * 0.05
            block.astype(ml_dtypes.bfloat16).tofile(cand)
    np.save(paths[2], rng.integers(0, cols, rows, dtype=np.int64))
    print(f"wrote two {rows} x {cols} bfloat16 safetensors files ({rows * cols * 2 / 2**30:.2f} GiB each) in "
          f"{time.perf_counter() - start:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    big_file_arguments(parser, "each file")
    parser.set_defaults(rows=4096, cols=131072)
    args = parser.parse_args(argv)
    print(f"{len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.2f}")
    with work_folder(args.dir, args.keep, "softmax-lm-vocab-") as folder:
        write_safetensors_pair(folder, args.rows, args.cols)
        run_cases(folder, args)


def run_cases(folder: Path, args) -> None:
    inputs = ["ref.safetensors", "cand.safetensors", "y.npy"]
    commands = {OURS: [softmax_command(), "compare", *inputs[:2], "--labels", "y.npy", "-f", "json"]}
    if torch_available():
        commands[TORCH] = [sys.executable, "-c", TORCH_COMPARE, *inputs]
    else:
        print("torch is not installed: its script is skipped")
    runs: dict[str, list[Run]] = {label: [] for label in commands}
    for command in commands.values():  # warm the file cache and imports; not counted
        measure(command, folder)
    for _ in range(args.runs):
        for label, command in commands.items():
            runs[label].append(measure(command, folder))
    for label in commands:
        print(describe(label, runs[label]))
    medians = {label: median_run(r) for label, r in runs.items()}
    ours = medians[OURS]
    print(f"\npeak RSS ours: {verdict(ours.peak_mib, 256, ' MiB')}")
    figures = json.loads(ours.stdout)
    print(f"ours: kl_mean {figures['kl_mean']!r} top1 {figures['top1_agreement']!r} "
          f"ppl_ratio {figures['ppl_ratio']!r}")
    if TORCH in medians:
        theirs = medians[TORCH]
        print(f"wall ours/torch-script: {ours.wall / theirs.wall:.2f}; peak RSS ours/theirs "
              f"{ours.peak_mib / theirs.peak_mib:.3f}")
        kl, top1, ratio = (float(v) for v in theirs.stdout.split()[:3])
        print(f"torch: kl_mean {kl!r} top1 {top1!r} ppl_ratio {ratio!r}")


if __name__ == "__main__":
    main()
