"""Start-up time of `softmax probs 3 2 1 -f csv` and of the help, as ratios to `python -c "import numpy"`.

Run by hand: `python benchmarks/startup.py [RUNS]`. The commands alternate so
that machine noise hits them all alike; the medians are compared. Targets: the
command <= 1.4 (goal 1.2); `softmax --help` and `softmax CMD --help` <= 1.5.
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


# What is timed, and its target ratio to `python -c "import numpy"`.
COMMANDS = {
    "probs 3 2 1 -f csv": (["probs", "3", "2", "1", "-f", "csv"], 1.4),
    "--help": (["--help"], 1.5),
    "probs --help": (["probs", "--help"], 1.5),
    "loss --help": (["loss", "--help"], 1.5),
}


def main(runs: int = 21) -> None:
    compile_package()
    commands = {name: softmax_command() + args for name, (args, _) in COMMANDS.items()}
    commands["python -c 'import numpy'"] = [sys.executable, "-c", "import numpy"]
    for command in commands.values():  # warm the file cache
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(wall_time(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    numpy_time = medians.pop("python -c 'import numpy'")
    print(f"python -c 'import numpy': median {numpy_time * 1000:.1f} ms over {runs} runs")
    for name, median in medians.items():
        print(f"softmax {name}: median {median * 1000:.1f} ms, ratio {median / numpy_time:.2f} "
              f"(target <= {COMMANDS[name][1]})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
