"""Fuzz cases for the "nothing escapes" property, and running one case in process or in a subprocess.

A case is a command line (every command, arbitrary option values), an
optional input file and optional standard input: arbitrary bytes, or a valid
file from the real producer (np.save, np.savez, csv, json, jsonl) mutated by
flipping, cutting or inserting bytes, or an ``.npy`` whose header dictionary
is rewritten with hostile values. Shared by ``test_fuzz.py`` (a short budget)
and ``fuzz/run.py`` (the long run by hand).

The property: exit 0, 1 with a ``gate failed:`` line, or 2 with exactly one
``error:`` line; never a traceback, a signal, a raw warning or a hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from escape_helpers import contract_violations, limit_memory, npy_bytes, npz_bytes, run_bytes, softmax_app, \
    with_npy_header

COMMANDS = ["probs", "loss", "grad", "jacobian", "temperature-sweep", "topk", "attention"]
EXTENSIONS = ["npy", "npz", "csv", "tsv", "txt", "json", "jsonl"]

COMMON_OPTIONS = ["--axis", "--key", "--classes", "--precision", "-f"]
OPTIONS = {
    "probs": ["-t", "--temperature", "--threads", "--masked-rows"],
    "loss": ["--labels", "--reduction", "--label-smoothing", "--weights", "--ignore-index", "--eps", "--max-loss",
             "-t", "--threads", "--masked-rows"],
    "grad": ["--labels", "--reduction", "--label-smoothing", "--weights", "--ignore-index", "--upstream", "-t",
             "--threads", "--masked-rows"],
    "jacobian": ["-t", "--threads", "--masked-rows"],
    "temperature-sweep": ["--temperatures", "--range", "--labels", "--bins", "--ignore-index"],
    "topk": ["-k", "--labels", "--min-accuracy", "--ignore-index", "-t", "--threads", "--masked-rows"],
    "attention": ["--mask", "--scale", "--causal-align", "--masked-rows", "--precision", "--threads", "-f"],
}
# --keep-going is left out: it lists one `error:` line per failed input by design (README, Batches).
FLAGS = {
    "probs": ["--log"],
    "loss": ["--from-probs"],
    "grad": ["--log"],
    "jacobian": ["--log"],
    "temperature-sweep": ["--fit", "--log-space"],
    "topk": [],
    "attention": ["--causal", "--weights"],
}
NO_COMMON = {"attention"}
# Values each option accepts, drawn most of the time so that cases get past
# option parsing into the reading, computing and writing code.
PLAUSIBLE = {
    "--axis": ["-1", "0", "1"], "--key": ["logits", "labels", "q", "scores"], "--classes": ["a,b,c", "a,b", "x"],
    "--precision": ["0", "3", "17", "400"], "--threads": ["1", "2"], "-f": ["csv", "tsv", "json", "npy", "npz", "table"],
    "--masked-rows": ["error", "zero", "nan"], "-t": ["0.5", "1", "2", "1e-3", "1e300"],
    "--temperature": ["0.5", "3"], "--labels": ["0", "0,1", "1", "2", "0,0", "-100,1"],
    "--reduction": ["mean", "sum", "none"], "--label-smoothing": ["0", "0.1", "1"], "--weights": ["1,2,3", "1,1", "0,0,0"],
    "--ignore-index": ["-100", "0", "1"], "--eps": ["1e-12", "0"], "--max-loss": ["0", "10"],
    "--upstream": ["1,0,0", "1 2; 3 4", "1,2"], "--temperatures": ["0.5,1,2", "1"], "--range": ["0.5:2:3", "1:2:5"],
    "--bins": ["1", "15", "3"], "-k": ["1", "2", "3"], "--min-accuracy": ["0", "0.5", "1"],
    "--mask": ["1,1", "1 0; 1 1", "0,0", "true,false"], "--scale": ["1", "0.5", "0", "-1"],
    "--causal-align": ["upper-left", "lower-right"],
}

# Hostile header values. A zero itemsize ('|V0', 'S0', '<U0') with a negative
# shape kills the process by SIGFPE today, so those only go to real processes
# (in process they would take pytest down; the long in-process run died so once).
HEADER_DESCRS = ["<f8", "<f4", "<f2", ">f8", "<i8", "|b1", "|u1", "<c16", "|O", "|V8", "<U3", "<q9"]
SIGNAL_PRONE_DESCRS = ["|V0", "S0", "<U0"]


def _values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-(10**20), 10**20).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["", "nan", "inf", "-inf", "-1", "0", "1", "2", "1e400", "1e-320", "99999999999999999999",
                         "a,b", "1,2,3", "0,1", "1:2:3", "1:2:0", "-", "none", "mean", "sum", "zero", "error",
                         "lower-right", "csv", "json", "npy", "npz", "table", "logits", "labels", "q"]),
        st.text(max_size=12),
    )


def _option_value(name: str) -> st.SearchStrategy[str]:
    if name == "--threads":
        # A positive count is capped: a million threads tests the machine, not the tool.
        return st.one_of(st.integers(1, 8).map(str), st.sampled_from(["0", "-1", "", "abc", "nan", "1e3"]))
    plausible = st.sampled_from(PLAUSIBLE[name])
    return st.one_of(plausible, plausible, plausible, _values())


def _numbers() -> st.SearchStrategy[str]:
    number = st.one_of(st.integers(-5, 5).map(str), st.floats(-50, 50).map(repr), st.floats().map(repr))
    return st.one_of(number, st.lists(number, min_size=2, max_size=4).map(",".join),
                     st.lists(st.lists(number, min_size=2, max_size=2).map(" ".join), min_size=2,
                              max_size=2).map("; ".join))


@st.composite
def valid_file(draw) -> tuple[str, bytes]:
    """(extension, bytes) of a small array written by the real producer of that format."""
    ext = draw(st.sampled_from(EXTENSIONS))
    shape = draw(st.sampled_from([(3,), (2, 3), (1, 1), (2, 2, 3), (0, 3), (4, 2)]))
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "int64", "bool"]))
    array = np.asarray(draw(st.lists(st.floats(-1e3, 1e3, width=16), min_size=int(np.prod(shape)),
                                     max_size=int(np.prod(shape))))).reshape(shape).astype(dtype)
    if ext == "npy":
        return ext, npy_bytes(array)
    if ext == "npz":
        names = draw(st.sampled_from([("logits",), ("logits", "labels"), ("q", "k", "v"), ("scores",)]))
        return ext, npz_bytes(draw(st.booleans()), **{name: array for name in names})
    rows = array.reshape(-1, shape[-1]) if array.ndim else array.reshape(1, 1)
    if ext in ("csv", "tsv", "txt"):
        separator = {"csv": ",", "tsv": "\t", "txt": " "}[ext]
        header = separator.join(draw(st.lists(st.text("abc,\t\"", min_size=1, max_size=4), min_size=rows.shape[1],
                                              max_size=rows.shape[1])))
        body = "\n".join(separator.join(repr(float(v)) for v in row) for row in rows)
        return ext, ((header + "\n" if draw(st.booleans()) else "") + body + "\n").encode()
    if ext == "json":
        return ext, json.dumps(array.tolist()).encode()
    return ext, "\n".join(json.dumps(row) for row in rows.tolist()).encode()


@st.composite
def mutated(draw, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[at] = draw(st.sampled_from([0, 0x22, 0x27, 0x28, 0x29, 0x2C, 0x2D, 0x39, 0x7B, 0xFF]))
    return bytes(data)


@st.composite
def hostile_npy(draw, descrs=tuple(HEADER_DESCRS)) -> bytes:
    """np.save output whose header dictionary is rewritten with hostile dtype, order and shape."""
    dims = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 6, 2**31, 2**40, 2**63 - 1, 10**30]), max_size=3))
    shape = "(" + "".join(f"{d}, " for d in dims) + ")"
    descr = draw(st.sampled_from(list(descrs)))
    order = draw(st.sampled_from(["False", "True", "0", "'x'"]))
    return with_npy_header(npy_bytes(np.arange(6.0).reshape(2, 3)),
                           f"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}")


def content(descrs=tuple(HEADER_DESCRS)) -> st.SearchStrategy[tuple[str, bytes]]:
    """(extension, bytes): arbitrary, valid, mutated valid, or an .npy with a hostile header."""
    return st.one_of(
        st.tuples(st.sampled_from(EXTENSIONS), st.binary(max_size=300)),
        valid_file(),
        valid_file().flatmap(lambda f: st.tuples(st.just(f[0]), mutated(f[1]))),
        st.tuples(st.sampled_from(["npy", "npz", "csv"]), hostile_npy(descrs)),
    )


@dataclass
class Case:
    args: list[str]
    file: tuple[str, bytes] | None = None  # written as input.<ext> in the case's folder
    stdin: bytes = b""
    notes: dict = field(default_factory=dict)

    def command_line(self, folder: Path) -> list[str]:
        return [a.replace("@DIR@", str(folder)) for a in self.args]

    def reproducer(self) -> str:
        return f"args={self.args!r} file={self.file!r:.300} stdin={self.stdin!r:.300}"


@st.composite
def cases(draw, descrs=tuple(HEADER_DESCRS)) -> Case:
    command = draw(st.sampled_from(COMMANDS))
    source = draw(st.sampled_from(["numbers", "file", "stdin-dash", "stdin-implicit", "attention-files"]))
    file, stdin, inputs = None, b"", []
    if source == "numbers":
        inputs = draw(st.lists(st.one_of(_numbers(), _numbers(), _values()), min_size=1, max_size=4))
        inputs = [v for v in inputs if v] or ["1"]
    elif source == "file" or (source == "attention-files" and command != "attention"):
        file = draw(content(descrs))
        inputs = [f"@DIR@/input.{file[0]}"]
    elif source == "attention-files":
        file = draw(content(descrs))
        inputs = [f"@DIR@/input.{file[0]}"] * draw(st.sampled_from([1, 3]))
    else:
        stdin = draw(content(descrs))[1]
        inputs = ["-"] if source == "stdin-dash" else []
    if command == "attention" and source in ("numbers", "stdin-dash"):
        inputs = (inputs * 3)[:3]
    names = OPTIONS[command] + ([] if command in NO_COMMON else COMMON_OPTIONS)
    options = []
    chosen = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    if command in ("loss", "grad", "topk") and "--labels" not in chosen and draw(st.integers(0, 4)):
        chosen.append("--labels")
    for name in chosen:
        value = draw(_option_value(name))
        if name in ("--labels", "--weights", "--upstream", "--mask", "--classes") and draw(st.booleans()):
            value = "@DIR@/input." + (file[0] if file else "csv")
        options += [name, value]
    if FLAGS[command]:
        options += draw(st.lists(st.sampled_from(FLAGS[command]), max_size=2, unique=True))
    output = draw(st.sampled_from([None, None, "out.csv", "out.json", "out.npy", "out.npz", "out.txt", "input"]))
    if output == "input" and file:
        options += ["-o", f"@DIR@/input.{file[0]}", "--force"]
    elif output and output != "input":
        options += ["-o", f"@DIR@/{output}"] + (["--force"] if draw(st.booleans()) else [])
    elif draw(st.booleans()):
        options += ["-f", draw(st.sampled_from(["csv", "tsv", "json", "npy", "npz", "table"]))]
    return Case([command, *options, "--", *inputs] if inputs and draw(st.booleans()) else [command, *inputs, *options],
                file, stdin)


class Hang(Exception):
    """The command ran past its time budget."""


def _on_alarm(signum, frame):
    raise Hang()


def run_in_process(case: Case, seconds: int = 10) -> list[str]:
    """Run ``case`` through Typer's CliRunner; the contract violations found (empty: none)."""
    from typer.testing import CliRunner

    with tempfile.TemporaryDirectory(prefix="softmax-fuzz-") as folder:
        if case.file:
            Path(folder, f"input.{case.file[0]}").write_bytes(case.file[1])
        previous_cwd = os.getcwd()
        previous_alarm = signal.signal(signal.SIGALRM, _on_alarm)
        os.chdir(folder)
        signal.alarm(seconds)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = CliRunner().invoke(softmax_app(), case.command_line(Path(folder)), input=case.stdin,
                                            env={"SOFTMAX_DEBUG": None})
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous_alarm)
            os.chdir(previous_cwd)
        problems = contract_violations(result.exit_code, result.stdout_bytes, result.stderr_bytes or b"")
        exception = result.exception
        if isinstance(exception, Hang):
            problems.append(f"ran past {seconds} s")
        elif exception is not None and not (isinstance(exception, SystemExit) and exception.code in (0, 1, 2, None)):
            problems.append(f"escaped: {type(exception).__name__}: {str(exception)[:200]}")
        problems += [f"warning: {w.category.__name__}: {str(w.message)[:120]}" for w in caught
                     if issubclass(w.category, (RuntimeWarning, UserWarning, DeprecationWarning))]
        problems += [f"left {name}" for name in _temporaries(folder)]
        return problems


def run_in_subprocess(case: Case, seconds: float = 20) -> list[str]:
    """Run ``case`` through the installed ``softmax`` under a memory limit; the contract violations found.

    A NUL cannot be part of a process argument, so it is dropped here.
    """
    with tempfile.TemporaryDirectory(prefix="softmax-fuzz-") as folder:
        if case.file:
            Path(folder, f"input.{case.file[0]}").write_bytes(case.file[1])
        args = [a.replace("\x00", "") for a in case.command_line(Path(folder))]
        try:
            completed = run_bytes(*args, input=case.stdin, cwd=folder,
                                  preexec_fn=limit_memory(), timeout=seconds)
        except subprocess.TimeoutExpired:
            return [f"ran past {seconds} s"]
        return contract_violations(completed.returncode, completed.stdout, completed.stderr) + \
            [f"left {name}" for name in _temporaries(folder)]


def _temporaries(folder) -> list[str]:
    return [p.name for p in Path(folder).rglob("*") if p.name.endswith(".part")]

