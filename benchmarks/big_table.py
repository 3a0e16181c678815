"""A table of a big ``.npy`` on a terminal: `softmax probs big.npy -f table`, peak RSS and wall time.

Run by hand: `python benchmarks/big_table.py [--gib 1] [--cols 1024]`. The
table computes only the rows it shows and streams the file once for the checks
and the mean entropy, so its peak should match `-o out.npy` (the streamed
file output) on the same file, not the file's size. Both are measured from a
small parent (`_measure.py`). Target: table peak <= the `-o` peak + 32 MiB.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _measure import measure, softmax_command
from end_to_end import write_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--cols", type=int, default=1024)
    args = parser.parse_args()
    rows = int(args.gib * 2**30) // (args.cols * 4)
    with tempfile.TemporaryDirectory(prefix="softmax-big-table-") as name:
        folder = Path(name)
        logits, _ = write_inputs(folder, rows, args.cols)
        ours = softmax_command()
        table = measure([ours, "probs", str(logits), "-f", "table"], folder, env={"COLUMNS": "120"})
        to_file = measure([ours, "probs", str(logits), "-o", "out.npy"], folder)
        print(f"probs big.npy -f table:   {table.wall:6.2f} s, peak {table.peak_mib:7.1f} MiB")
        print(f"probs big.npy -o out.npy: {to_file.wall:6.2f} s, peak {to_file.peak_mib:7.1f} MiB")
        verdict = "ok" if table.peak_mib <= to_file.peak_mib + 32 else "OVER"
        print(f"table peak - file-output peak: {table.peak_mib - to_file.peak_mib:+.1f} MiB ({verdict})")
        print("\n".join(table.stdout.splitlines()[-3:]))


if __name__ == "__main__":
    main()
