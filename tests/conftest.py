"""Shared fixtures: the real entry point (a subprocess and Typer's CliRunner) and input files.

Expected values in the tests are computed independently (NumPy in float64,
scipy or mpmath), never by calling ``softmax_cli.core``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

# One BLAS/OpenMP thread in each test process, set before NumPy (and sklearn, torch) load: the two
# xdist workers already fill the two cores, and spare BLAS threads spin-wait against them (under
# load, the digits LogisticRegression fit of test_input_mistakes.py took 12 s with them, 0.15 s
# without). The `softmax` processes the tests start do the same for themselves (__main__.py).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Every command these tests start runs as a user's does, with Python's buffered standard
# output: PYTHONUNBUFFERED (set in some shells and CI images) writes at once and hides the
# faults that surface only when the output is flushed late (a pipe, a full device).
os.environ.pop("PYTHONUNBUFFERED", None)

# Modules whose tests share no module-scoped state worth keeping on one worker, and each of whose
# tests is long: under `--dist loadscope` each of their tests is a unit of its own, so the two
# workers share them (the documentation pages, about 4.5 minutes run one after another, made one
# worker run alone for minutes at the end of the suite).
SPREAD_MODULES = ("tests/contract/test_doc_examples.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` (a module and its fixtures stay on one worker), but for SPREAD_MODULES."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SpreadLoadScope(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0] in SPREAD_MODULES:
                return nodeid
            return super()._split_scope(nodeid)

    return SpreadLoadScope(config, log)


# The logits most tests use (written to every input format by `logits_files`).
LOGITS = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5]])
CLASSES = ["cat", "dog", "bird"]


def softmax_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m softmax_cli``."""
    script = Path(sys.executable).parent / ("softmax.exe" if os.name == "nt" else "softmax")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "softmax_cli"]


def run(*args, input: bytes | str | None = None, env: dict | None = None, cwd=None, text: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``softmax ARGS`` in a subprocess; stdin is ``input`` (empty when None, never a terminal).

    Returns a CompletedProcess whose stdout/stderr are text, or bytes with ``text=False``.
    """
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    environment.update(env or {})
    if isinstance(input, str):
        input = input.encode()
    completed = subprocess.run(
        [*softmax_command(), *map(str, args)],
        input=input if input is not None else b"",
        capture_output=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
    )
    if text:
        completed.stdout = completed.stdout.decode("utf-8")
        completed.stderr = completed.stderr.decode("utf-8")
    return completed


def reference_softmax(x, axis=-1, temperature=1.0) -> np.ndarray:
    """Softmax in float64 with plain NumPy, the independent reference for CLI outputs."""
    x = np.asarray(x, dtype=np.float64) / temperature
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def reference_log_softmax(x, axis=-1, temperature=1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64) / temperature
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def read_csv_output(text: str, dtype=np.float64) -> tuple[list[str] | None, np.ndarray]:
    """(header or None, array) from CSV text the tool wrote."""
    lines = [line for line in text.splitlines() if line]
    header = None
    try:
        [float(v) for v in lines[0].split(",")]
    except ValueError:
        header, lines = lines[0].split(","), lines[1:]
    return header, np.array([[dtype(v) for v in line.split(",")] for line in lines])


def assert_one_error_line(completed: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    """The contract's error shape: exit ``code``, one ``error: ...`` line on stderr, nothing on stdout."""
    stderr = completed.stderr if isinstance(completed.stderr, str) else completed.stderr.decode()
    assert completed.returncode == code, (completed.returncode, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    stdout = completed.stdout if isinstance(completed.stdout, (str, bytes)) else ""
    assert not stdout, f"nothing may be written to stdout on error, got {stdout!r}"
    return lines[0]


def in_terminal(*args: str) -> subprocess.CompletedProcess:
    """Run ``softmax ARGS`` with stdout on a pseudo-terminal through util-linux ``script``."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("`script` is not available to provide a terminal")
    command = " ".join(shlex.quote(part) for part in [*softmax_command(), *args])
    env = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    completed = subprocess.run([script, "-qec", command, "/dev/null"], capture_output=True, env=env,
                               stdin=subprocess.DEVNULL, timeout=60)
    if b"script: invalid option" in completed.stderr or b"usage" in completed.stderr.lower()[:200]:
        pytest.skip("this `script` does not support -qec")
    return completed


@pytest.fixture
def softmax():
    """``softmax(*args, input=None)``: the installed console script in a subprocess."""
    return run


@pytest.fixture
def cli():
    """``cli(*args, input=None)``: Typer's CliRunner on ``softmax_cli.cli.app``, in process.

    Takes the same arguments as :func:`run` (or one list of arguments) and returns
    a CompletedProcess too (``returncode``, text ``stdout``/``stderr``, bytes with
    ``text=False``), so a test can use either entry point. CliRunner's standard
    input is not a terminal, so with no INPUTS the command reads its (empty) input.
    An exception that escaped the command shows up as "Traceback" in ``stderr``.
    """
    from typer.testing import CliRunner

    from softmax_cli.cli import app

    runner = CliRunner()

    def invoke(*args, input=None, env=None, cwd=None, text=True, timeout=None):
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        environment = {"SOFTMAX_DEBUG": None, **(env or {})}
        previous = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            result = runner.invoke(app, [str(a) for a in args], input=input, env=environment)
        finally:
            os.chdir(previous)
        stderr = result.stderr_bytes or b""
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += f"Traceback (caught by CliRunner): {result.exception!r}\n".encode()
        completed = subprocess.CompletedProcess(args, result.exit_code, result.stdout_bytes, stderr)
        if text:
            completed.stdout = completed.stdout.decode("utf-8")
            completed.stderr = completed.stderr.decode("utf-8")
        completed.exit_code = completed.returncode
        return completed

    return invoke


@pytest.fixture
def logits_files(tmp_path) -> dict[str, Path]:
    """LOGITS written in every input format, keyed by format name (with CLASSES in csv/tsv headers)."""
    files = {}
    npy = tmp_path / "logits.npy"
    np.save(npy, LOGITS)
    files["npy"] = npy
    npz = tmp_path / "logits.npz"
    np.savez(npz, logits=LOGITS, labels=np.array([0, 2]))
    files["npz"] = npz
    npz_single = tmp_path / "single.npz"
    np.savez(npz_single, scores=LOGITS)
    files["npz_single"] = npz_single
    csv = tmp_path / "logits.csv"
    csv.write_text(",".join(CLASSES) + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in LOGITS) + "\n")
    files["csv"] = csv
    tsv = tmp_path / "logits.tsv"
    tsv.write_text("\t".join(CLASSES) + "\n" + "\n".join("\t".join(repr(float(v)) for v in row) for row in LOGITS) + "\n")
    files["tsv"] = tsv
    txt = tmp_path / "logits.txt"
    txt.write_text("# logits, one row a line\n\n" + "\n".join("  ".join(repr(float(v)) for v in row) for row in LOGITS)
                   + "\n\n")
    files["txt"] = txt
    js = tmp_path / "logits.json"
    js.write_text(json.dumps(LOGITS.tolist()))
    files["json"] = js
    jsonl = tmp_path / "logits.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in LOGITS.tolist()) + "\n")
    files["jsonl"] = jsonl
    return files


# Runs the entry point in a fresh interpreter and reports the exit code and every module imported by then.
IMPORT_PROBE = """
import json, sys
sys.argv = ["softmax", *json.loads(sys.argv[1])]
from softmax_cli.cli import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def modules_imported_by(args: list[str]) -> tuple[set[str], str]:
    """The modules ``softmax ARGS`` imports in a fresh interpreter (other tests' imports cannot hide any), and its
    standard output; the run must exit 0."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("SOFTMAX_DEBUG", "PYTHONPROFILEIMPORTTIME", "SOFTMAX_SCHEDULER")}
    completed = subprocess.run([sys.executable, "-c", IMPORT_PROBE, json.dumps(args)], capture_output=True,
                               env=environment, stdin=subprocess.DEVNULL, timeout=120)
    stderr = completed.stderr.decode()
    report = json.loads(stderr.strip().splitlines()[-1])
    assert report["code"] == 0, stderr
    return set(report["modules"]), completed.stdout.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def cluster():
    """The tcp address of a real LocalCluster of 2 worker processes, shared by one module's tests."""
    pytest.importorskip("distributed")
    from softmax_cli.cluster import connect

    with connect("local:2", dashboard=False) as client:
        client.wait_for_workers(2)
        yield client.scheduler.address
