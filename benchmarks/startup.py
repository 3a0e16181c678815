"""Start-up time of `softmax probs 3 2 1 -f csv` as a ratio to `python -c "import numpy"`.

Run by hand: `python benchmarks/startup.py [RUNS]`. The two commands alternate
so that machine noise hits both alike; the medians are compared. Target: ratio
<= 1.4 (goal 1.25).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def softmax_command() -> list[str]:
    script = Path(sys.executable).parent / "softmax"
    if script.exists():
        return [str(script)]
    found = shutil.which("softmax")
    return [found] if found else [sys.executable, "-m", "softmax_cli"]


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def compile_package() -> None:
    """Write the package's bytecode, as ``pip install`` does for an installed package.

    An editable install has none until Python writes it on first import, and
    this workplace sets PYTHONDONTWRITEBYTECODE=1, so every run would compile
    every module from source again (about 20 ms) and measure that instead.
    """
    import compileall

    import softmax_cli

    compileall.compile_dir(Path(softmax_cli.__file__).parent, quiet=1)


def main(runs: int = 21) -> None:
    compile_package()
    ours = softmax_command() + ["probs", "3", "2", "1", "-f", "csv"]
    numpy_only = [sys.executable, "-c", "import numpy"]
    for command in (ours, numpy_only):  # warm the file cache
        wall_time(command)
    ours_times, numpy_times = [], []
    for _ in range(runs):
        ours_times.append(wall_time(ours))
        numpy_times.append(wall_time(numpy_only))
    a, b = statistics.median(ours_times), statistics.median(numpy_times)
    print(f"softmax probs 3 2 1 -f csv: median {a * 1000:.1f} ms over {runs} runs")
    print(f"python -c 'import numpy':  median {b * 1000:.1f} ms")
    print(f"ratio: {a / b:.2f} (target <= 1.4, goal 1.25)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
