"""Fuzz cases for the "nothing escapes" property, and running one case in process or in a subprocess.

A case is a command line (every command, arbitrary option values), an
optional input file and optional standard input: arbitrary bytes, or a valid
file from the real producer (np.save, np.savez, csv, json and jsonl arrays or records) mutated by
flipping, cutting or inserting bytes, or an ``.npy`` whose header dictionary
is rewritten with hostile values. Shared by ``test_fuzz.py`` (a short budget)
and ``fuzz/run.py`` (the long run by hand).

The property: exit 0, 1 with a ``gate failed:`` line, or 2 with exactly one
``error:`` line; never a traceback, a signal, a raw warning or a hang.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from escape_helpers import (
    contract_violations,
    limit_memory,
    npy_bytes,
    npz_bytes,
    run_bytes,
    softmax_app,
    with_npy_header,
)
from hypothesis import strategies as st

COMMANDS = ["probs", "loss", "grad", "jacobian", "temperature-sweep", "topk", "attention", "compare"]
EXTENSIONS = ["npy", "npz", "csv", "tsv", "txt", "json", "jsonl", "safetensors", "parquet", "feather"]

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
    "compare": ["--labels", "--max-kl", "--max-kl-quantile", "--min-agreement", "--max-ppl-ratio", "--ignore-index",
                "-t", "--masked-rows"],
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
    "compare": ["--per-row", "--from-probs"],
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
    "--max-kl": ["0", "0.01", "-1"], "--max-kl-quantile": ["0.99:0.05", "0.5:0", "1:1"],
    "--min-agreement": ["0", "0.9", "1", "1.0000001"], "--max-ppl-ratio": ["1", "1.01", "0"],
}
# Commands taking two inputs of one shape (a reference and a candidate).
PAIRED = {"compare"}

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
    if ext == "safetensors":
        return ext, safetensors_bytes(draw, array)
    if ext in ("parquet", "feather"):
        return ext, table_bytes(draw, ext, rows)
    names = draw(st.lists(st.text("abc,\t\"", min_size=1, max_size=4), min_size=rows.shape[1],
                          max_size=rows.shape[1]))
    records = [dict(zip(names, row)) for row in rows.tolist()]  # a repeated name keeps its last value, as pandas
    if ext == "json":
        layout = draw(st.sampled_from(["array", "records", "split"]))
        if layout == "records":
            return ext, json.dumps(records).encode()
        if layout == "split":
            return ext, json.dumps({"columns": names, "index": list(range(len(rows))), "data": rows.tolist()}).encode()
        return ext, json.dumps(array.tolist()).encode()
    if draw(st.booleans()):
        return ext, "\n".join(json.dumps(record) for record in records).encode()
    return ext, "\n".join(json.dumps(row) for row in rows.tolist()).encode()


def safetensors_bytes(draw, array: np.ndarray) -> bytes:
    """The safetensors package's own file of ``array`` (under a drawn name, with class names or not)."""
    from safetensors.numpy import save

    name = draw(st.sampled_from(["logits", "scores", "x"]))
    classes = {"classes": json.dumps([f"c{i}" for i in range(array.shape[-1])])} if array.ndim and \
        draw(st.booleans()) else None
    return save({name: np.ascontiguousarray(array)}, metadata=classes)


def table_bytes(draw, ext: str, rows: np.ndarray) -> bytes:
    """A table by pandas or pyarrow: named or numbered columns, an index of one or two levels, or none."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=draw(st.sampled_from([None, [f"c{i}" for i in range(rows.shape[1])]])))
    index = draw(st.sampled_from(["range", "text", "two levels", "none"]))
    if index == "text":
        frame.index = [f"r{i}" for i in range(len(frame))]
    elif index == "two levels":
        frame.index = pd.MultiIndex.from_tuples([(f"d{i // 2}", i % 2) for i in range(len(frame))],
                                                names=draw(st.sampled_from([[None, None], ["doc", "pos"]])))
    frame.columns = [str(c) for c in frame.columns]
    buffer = io.BytesIO()
    if ext == "parquet":
        frame.to_parquet(buffer, index=None if index != "none" else False)
    else:
        (frame if index == "range" else frame.reset_index(drop=index == "none")).to_feather(buffer)
    return buffer.getvalue()


# Values of the wrong kind for a JSON header field: every JSON type, sizes past int64, deep nesting.
HOSTILE_JSON = [None, True, False, 0, -1, 2**63, 2**64 + 3, 10**40, 1.5, "F32", "BF16", "", "x" * 300, [], [True],
                [2**63, 3], [2**32, 2**32, 4], [-1, 3], [[1]], {}, {"a": 1}]


def hostile_json_value() -> st.SearchStrategy:
    """A JSON value of any kind; "DEEP" and "DIGITS" stand for 5,000 nested lists and a 5,000-digit integer."""
    return st.sampled_from([*HOSTILE_JSON, "DEEP", "DIGITS"])


def _dumps(value) -> str:
    if value == "DEEP":
        return "[" * 5000 + "]" * 5000
    if value == "DIGITS":
        return "9" * 5000
    return json.dumps(value)


@st.composite
def hostile_safetensors(draw) -> bytes:
    """A safetensors file whose header keeps its layout but has one field's VALUE replaced."""
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    entry = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    header = {"logits": entry}
    target = draw(st.sampled_from(["dtype", "shape", "data_offsets", "entry", "__metadata__", "classes",
                                   "shape item", "offset item"]))
    value = draw(hostile_json_value())
    if target in ("dtype", "shape", "data_offsets"):
        entry[target] = "@VALUE@"
    elif target == "shape item":
        entry["shape"] = [2, "@VALUE@"]
    elif target == "offset item":
        entry["data_offsets"] = [0, "@VALUE@"]
    elif target == "entry":
        header["logits"] = "@VALUE@"
    elif target == "__metadata__":
        header["__metadata__"] = "@VALUE@"
    else:
        header["__metadata__"] = {"classes": "@VALUE@"}
    text = json.dumps(header).replace('"@VALUE@"', _dumps(value)).encode()
    return len(text).to_bytes(8, "little") + text + array.tobytes()


@st.composite
def hostile_table(draw) -> tuple[str, bytes]:
    """A Parquet or Feather table with hostile schema metadata, clashing names, text only or encoded columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import feather

    ext = draw(st.sampled_from(["parquet", "feather"]))
    values = np.arange(6, dtype=np.float64).reshape(2, 3)
    kind = draw(st.sampled_from(["metadata", "duplicate", "text only", "dictionary", "list", "nulls"]))
    columns = {f"c{j}": pa.array(values[:, j]) for j in range(3)}
    if kind == "text only":
        table = pa.table({"name": ["a", "b"]})
    elif kind == "duplicate":
        table = pa.Table.from_arrays(list(columns.values()), names=["c", "c", draw(st.sampled_from(["c", "d"]))])
    elif kind == "dictionary":
        table = pa.table({name: column.dictionary_encode() for name, column in columns.items()})
    elif kind == "list":
        table = pa.table({"logits": pa.array([[1.0, 2.0], draw(st.sampled_from([[1.0], [1.0, None], [], None]))])})
    elif kind == "nulls":
        table = pa.table(columns | {"c0": pa.array([None, 1.0])})
    else:
        table = pa.table(columns)
    if kind == "metadata" or draw(st.booleans()):
        described = draw(st.sampled_from(["index_columns", "columns"]))  # the index, or the columns' descriptions
        pandas = draw(st.one_of(st.sampled_from([b"not json", b"[1]", b'"x"', b"null", b"{}"]),
                                hostile_json_value().map(lambda v: json.dumps(
                                    {"index_columns": ["c0"], described: v} if v != "DEEP" else "deep").encode())))
        table = table.replace_schema_metadata({b"pandas": pandas})
    buffer = io.BytesIO()
    (pq.write_table if ext == "parquet" else feather.write_feather)(table, buffer)
    return ext, buffer.getvalue()


@st.composite
def hostile_zarr(draw) -> dict[str, bytes]:
    """The files of a small Zarr v3 array (by zarr itself) with a value of ``zarr.json`` or a chunk damaged."""
    import tempfile as _tempfile

    import zarr

    with _tempfile.TemporaryDirectory() as folder:
        array = zarr.create_array(f"{folder}/a.zarr", shape=(4, 3), chunks=(2, 3), dtype="f4")
        array[:] = np.arange(12, dtype=np.float32).reshape(4, 3)
        tree = {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
    meta_name = "a.zarr/zarr.json"
    meta = json.loads(tree[meta_name])
    what = draw(st.sampled_from(["chunk_shape", "shape", "data_type", "codecs", "fill_value", "chunk bytes", "none"]))
    value = draw(hostile_json_value())
    if what == "chunk bytes":
        chunk = draw(st.sampled_from(sorted(name for name in tree if "/c/" in name)))
        tree[chunk] = draw(mutated(tree[chunk]))
    elif what == "chunk_shape":
        meta["chunk_grid"]["configuration"]["chunk_shape"] = "@VALUE@"
    elif what != "none":
        meta[what] = "@VALUE@"
    tree[meta_name] = json.dumps(meta).replace('"@VALUE@"', _dumps(value)).encode()
    return tree


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
    """(extension, bytes): arbitrary, valid, mutated valid, or a header with hostile values (.npy, safetensors,
    Parquet/Feather schemas)."""
    return st.one_of(
        st.tuples(st.sampled_from(EXTENSIONS), st.binary(max_size=300)),
        valid_file(),
        valid_file().flatmap(lambda f: st.tuples(st.just(f[0]), mutated(f[1]))),
        st.tuples(st.sampled_from(["npy", "npz", "csv"]), hostile_npy(descrs)),
        st.tuples(st.just("safetensors"), hostile_safetensors()),
        hostile_table(),
    )


@dataclass
class Case:
    args: list[str]
    file: tuple[str, bytes] | None = None  # written as input.<ext> in the case's folder
    stdin: bytes = b""
    tree: dict[str, bytes] = field(default_factory=dict)  # more files (a Zarr array), by path in the folder
    notes: dict = field(default_factory=dict)

    def command_line(self, folder: Path) -> list[str]:
        return [a.replace("@DIR@", str(folder)) for a in self.args]

    def reproducer(self) -> str:
        tree = f" tree={sorted(self.tree)!r:.200}" if self.tree else ""
        return f"args={self.args!r} file={self.file!r:.300} stdin={self.stdin!r:.300}{tree}"

    def write(self, folder: str | Path) -> None:
        if self.file:
            Path(folder, f"input.{self.file[0]}").write_bytes(self.file[1])
        for name, data in self.tree.items():
            Path(folder, name).parent.mkdir(parents=True, exist_ok=True)
            Path(folder, name).write_bytes(data)


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
    if command in PAIRED:
        inputs = (inputs or ["-"]) * 2 if draw(st.booleans()) else (inputs or ["-"]) + [draw(_numbers())]
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


# What the cluster path reads; each case is run against a real LocalCluster's address.
CLUSTER_COMMANDS = {"probs": ["-o", "@DIR@/out.npy"], "grad": ["--labels", "0,1", "-o", "@DIR@/out.npy"],
                    "loss": ["--labels", "0,1", "-f", "json"], "topk": ["-k", "2", "-f", "json"],
                    "temperature-sweep": ["--labels", "0,1", "-f", "json"], "compare": ["--labels", "0,1", "-f", "json"]}


@st.composite
def cluster_cases(draw, scheduler: str) -> Case:
    """A command on the cluster path (``--scheduler``): an .npy (valid, mutated or hostile header) or a Zarr array."""
    command = draw(st.sampled_from(sorted(CLUSTER_COMMANDS)))
    options = list(CLUSTER_COMMANDS[command])
    if draw(st.booleans()):
        file, tree = None, draw(hostile_zarr())
        inputs = ["@DIR@/a.zarr"]
    else:
        array = np.arange(6, dtype=np.float32).reshape(2, 3)
        file = ("npy", draw(st.one_of(st.just(npy_bytes(array)), mutated(npy_bytes(array)), hostile_npy())))
        tree, inputs = {}, ["@DIR@/input.npy"]
    if command == "compare":  # the drawn input against a sound one, on either side
        tree = {**tree, "sound.npy": npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3)[::-1].copy())}
        inputs = [*inputs, "@DIR@/sound.npy"] if draw(st.booleans()) else ["@DIR@/sound.npy", *inputs]
    if draw(st.booleans()):
        options += ["--keep-going"] if command in ("probs", "grad") and draw(st.booleans()) else []
    return Case([command, *inputs, *options, "--scheduler", scheduler], file, tree=tree)


class Hang(Exception):
    """The command ran past its time budget."""


def _on_alarm(signum, frame):
    raise Hang()


def lines_before_error(case: Case) -> tuple[bytes, ...]:
    """What a cluster case may print before its ``error:`` line: with ``--keep-going`` one ``failed:`` line per
    failed input (as a batch does); the dashboard's note is held as every note is, and dropped on an error."""
    return (b"failed: ",) if "--keep-going" in case.args else ()


def run_in_process(case: Case, seconds: int = 10, before_error: tuple[bytes, ...] | None = None) -> list[str]:
    """Run ``case`` through Typer's CliRunner; the contract violations found (empty: none).

    ``before_error``: stderr lines starting so are allowed before the ``error:`` line.
    """
    from typer.testing import CliRunner

    with tempfile.TemporaryDirectory(prefix="softmax-fuzz-") as folder:
        case.write(folder)
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
        stderr = result.stderr_bytes or b""
        if before_error is not None:
            stderr = b"".join(line for line in stderr.splitlines(keepends=True) if not line.startswith(before_error))
        problems = contract_violations(result.exit_code, result.stdout_bytes, stderr)
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
        case.write(folder)
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

