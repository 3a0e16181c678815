"""Running one command and measuring it: wall time and its own peak resident memory.

Shared by the benchmarks. Peak RSS comes from ``/usr/bin/time -f %M`` (or a
tiny wrapper that reports its child's ``ru_maxrss``), never from ``os.wait4``
on a child of the benchmark itself: on Linux a process's ``ru_maxrss`` starts
from the high-water mark of the process it was forked from (``exec`` keeps
it), so a child of a script with numpy and big arrays loaded never reports
less than that script's own peak. Nor ``RUSAGE_CHILDREN``, which keeps the
maximum over every child so far.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    wall: float  # seconds, the whole process
    peak_mib: float  # the process's own peak resident set
    compute: float | None  # seconds the process reported for its computation, if any
    stdout: str


def softmax_command() -> str:
    script = Path(sys.executable).parent / "softmax"
    return str(script) if script.exists() else shutil.which("softmax") or "softmax"


# Reports its child's own peak RSS when /usr/bin/time is missing. The child
# must be started from a small process: on Linux a process's ru_maxrss starts
# from the high-water mark of the process it was forked from (exec keeps it),
# so children forked from this script, which has numpy loaded, never report
# less than this script's own peak.
WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_wrapper() -> list[str]:
    if Path("/usr/bin/time").exists():
        return ["/usr/bin/time", "-f", "%M"]  # KiB, on the last line of stderr
    return [sys.executable, "-S", "-c", WRAPPER]


def measure(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``command`` once in ``cwd``; its wall time, peak RSS and reported compute time.

    The reference scripts print the seconds of their computation alone as the
    last word of their output; the ``softmax`` command prints its result.
    """
    start = time.perf_counter()
    process = subprocess.Popen(peak_wrapper() + command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                               env={**os.environ, **(env or {})})
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {process.returncode}:\n{stderr.decode()}")
    text = stdout.decode()
    try:
        compute = float(text.split()[-1]) if not command[0].endswith("softmax") else None
    except (IndexError, ValueError):
        compute = None
    peak_kib = int(stderr.decode().split()[-1])
    return Run(wall, peak_kib / 1024, compute, text)


def big_file_arguments(parser, what: str = "the logits") -> None:
    """The options every big-file benchmark takes: the file's size, the runs, and where the files go."""
    parser.add_argument("--rows", type=int, default=65536, help=f"rows of {what} (default 65536: 2 GiB)")
    parser.add_argument("--cols", type=int, default=8192, help="classes (default 8192)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per command after a warm-up run")
    parser.add_argument("--dir", type=Path, help="folder for the files (default: a new temporary one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")


@contextmanager
def work_folder(given: Path | None, keep: bool, prefix: str) -> Iterator[Path]:
    """The folder for a benchmark's big files: ``given`` or a new one in /tmp, removed afterwards unless ``keep``."""
    folder = given or Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
