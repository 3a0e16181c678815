"""Files larger than memory (issue 6): streamed ``.npy`` logits give exactly the in-memory results.

The streamed path is taken when the logits come from a C-ordered ``.npy`` file
and the output is a machine format; the same bytes through standard input
(``-``) take the in-memory path. Small blocks are forced in process by
patching ``softmax_cli.stream.STREAM_BLOCK_BYTES`` and in subprocesses with
``SOFTMAX_BLOCK_BYTES``. Expected values come from NumPy float64 references
(conftest), never from ``softmax_cli.core``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, reference_softmax

import softmax_cli.stream as stream_module
from softmax_cli.core import blocks

C = 7
N = 10
IGNORE = -1


# ---------------------------------------------------------------- helpers

def assert_bits_equal(a: np.ndarray, b: np.ndarray, name: str = "") -> None:
    """Same dtype, shape and bits (NaNs at the same places; -0.0 is not 0.0)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    if a.dtype.kind == "f":
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        assert np.array_equal(nan_a, nan_b), name
        bits = np.dtype(f"u{a.dtype.itemsize}")
        assert np.array_equal(a[~nan_a].view(bits), b[~nan_b].view(bits)), name
    else:
        assert np.array_equal(a, b), name


def load_bytes(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of ``.npy`` or ``.npz`` bytes, by name (``primary`` for ``.npy``)."""
    if data[:6] == b"\x93NUMPY":
        return {"primary": np.load(io.BytesIO(data), allow_pickle=False)}
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        # What produced the result is not compared: a piped input's path is "-".
        return {name: archive[name] for name in archive.files if name != "metadata"}


class BlockSpy:
    """Records the ``(first_row, rows)`` of every block the streamed path reads."""

    def __init__(self, monkeypatch):
        self.blocks: list[tuple[int, int]] = []
        original = stream_module.FileRows.blocks
        spy = self

        def blocks(self, task: str = ""):
            for start, block in original(self, task):
                spy.blocks.append((start, block.shape[0]))
                yield start, block

        monkeypatch.setattr(stream_module.FileRows, "blocks", blocks)

    def clear(self) -> None:
        self.blocks.clear()


def block_budget(rows_per_block: int | None, shape, dtype) -> int:
    """SOFTMAX_BLOCK_BYTES giving ``rows_per_block`` rows per block (None: the whole file in one)."""
    if rows_per_block is None:
        return 16 << 20
    return rows_per_block * shape[-1] * np.dtype(dtype).itemsize


def expected_blocks(n_rows: int, rows_per_block: int | None) -> list[int]:
    height = n_rows if rows_per_block is None else min(rows_per_block, n_rows)
    return [min(height, n_rows - start) for start in range(0, n_rows, height)]


def streamed_and_in_memory(cli, monkeypatch, tmp_path, command: str, logits_path: Path, args: list[str],
                           rows_per_block: int | None, fmt: str = "npz") -> tuple[dict, dict, dict]:
    """Run ``command`` three ways: streamed to a file, streamed to stdout, in memory from stdin.

    Returns the three results as ``{name: array}``; checks that the streamed
    runs really went block by block and the stdin run did not.
    """
    logits = np.load(logits_path)
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", block_budget(rows_per_block, logits.shape, logits.dtype))
    spy = BlockSpy(monkeypatch)
    n_rows = int(np.prod(logits.shape[:-1]))
    heights = expected_blocks(n_rows, rows_per_block)

    out = tmp_path / f"out.{fmt}"
    out.unlink(missing_ok=True)
    to_file = cli(command, logits_path, *args, "-o", out)
    assert to_file.returncode == 0, to_file.stderr
    assert "Traceback" not in to_file.stderr
    # Every row was read once, in blocks of the forced height (loss/grad may read labels etc. too).
    assert [rows for _, rows in spy.blocks][-len(heights):] == heights, spy.blocks
    assert [start for start, _ in spy.blocks][-len(heights):] == list(range(0, n_rows, heights[0]))

    spy.clear()
    to_stdout = cli(command, logits_path, *args, "-f", fmt, text=False)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert spy.blocks, "a .npy input to a machine format should be streamed"

    spy.clear()
    in_memory = cli(command, "-", *args, "-f", fmt, input=logits_path.read_bytes(), text=False)
    assert in_memory.returncode == 0, in_memory.stderr
    assert not spy.blocks, "standard input is read whole, not streamed"
    return load_bytes(out.read_bytes()), load_bytes(to_stdout.stdout), load_bytes(in_memory.stdout)


def assert_all_equal(streamed_file: dict, streamed_stdout: dict, in_memory: dict) -> None:
    assert streamed_file.keys() == in_memory.keys() == streamed_stdout.keys()
    for name in in_memory:
        assert_bits_equal(streamed_file[name], in_memory[name], name)
        assert_bits_equal(streamed_stdout[name], in_memory[name], name)


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    """10 rows × 7 classes float32 logits, a copy with -inf entries, labels, weights and targets."""
    rng = np.random.default_rng(6)
    logits = (rng.normal(size=(N, C)) * 3).astype(np.float32)
    files = {"logits": tmp_path / "logits.npy"}
    np.save(files["logits"], logits)

    masked = logits.copy()
    masked[1, 3] = -np.inf
    masked[4, [0, 6]] = -np.inf
    masked[9, 2] = -np.inf
    files["masked"] = tmp_path / "masked.npy"
    np.save(files["masked"], masked)

    dead_row = logits.copy()
    dead_row[5] = -np.inf  # a row with no distribution
    files["dead_row"] = tmp_path / "dead_row.npy"
    np.save(files["dead_row"], dead_row)

    labels = rng.integers(0, C, size=N)
    labels[[2, 7]] = IGNORE  # rows left out of the loss
    files["labels"] = tmp_path / "labels.npy"
    np.save(files["labels"], labels)

    clean_labels = rng.integers(0, C, size=N)
    files["clean_labels"] = tmp_path / "clean_labels.npy"
    np.save(files["clean_labels"], clean_labels)

    files["weights"] = tmp_path / "weights.npy"
    np.save(files["weights"], np.linspace(0.5, 2.0, C))

    targets = reference_softmax(rng.normal(size=(N, C)))
    files["targets"] = tmp_path / "targets.npy"
    np.save(files["targets"], targets)
    return files


# ---------------------------------------------------------------- streamed == in memory

BLOCKS = [1, 3, 4, None]  # rows per block on 10 rows: divides, does not divide, does not, one block
LOSS_BLOCKS = [1, 3, 4]  # the one-block case is the in-memory arithmetic already


@pytest.mark.parametrize("rows_per_block", BLOCKS)
@pytest.mark.parametrize("args", [[], ["--log"], ["--temperature", "0.7"]], ids=["probs", "log", "temperature"])
@pytest.mark.parametrize("source", ["logits", "masked"])
def test_probs_streamed_equals_in_memory(cli, monkeypatch, tmp_path, data, rows_per_block, args, source):
    results = streamed_and_in_memory(cli, monkeypatch, tmp_path, "probs", data[source], args, rows_per_block,
                                     fmt="npy")
    assert_all_equal(*results)
    got = results[0]["primary"]
    assert got.dtype == np.float32
    x = np.load(data[source]).astype(np.float64)
    t = 0.7 if "--temperature" in args else 1.0
    if "--log" in args:
        reference = reference_log_softmax(x, temperature=t)
        finite = np.isfinite(reference)
        assert np.array_equal(finite, np.isfinite(got))
        assert np.all(got[~finite] == -np.inf)
        np.testing.assert_allclose(got[finite], reference[finite], rtol=2e-6, atol=2e-6)
    else:
        np.testing.assert_allclose(got, reference_softmax(x, temperature=t), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("rows_per_block", [3, 4])
@pytest.mark.parametrize("policy", ["zero", "nan"])
@pytest.mark.parametrize("log", [False, True])
def test_probs_masked_rows_policy_streamed_equals_in_memory(cli, monkeypatch, tmp_path, data, rows_per_block,
                                                            policy, log):
    args = ["--masked-rows", policy] + (["--log"] if log else [])
    results = streamed_and_in_memory(cli, monkeypatch, tmp_path, "probs", data["dead_row"], args, rows_per_block)
    assert_all_equal(*results)
    row = results[0]["log_probs" if log else "probs"][5]
    if policy == "nan":
        assert np.isnan(row).all()
    else:
        assert np.all(row == (-np.inf if log else 0.0))


@pytest.mark.parametrize("rows_per_block", [3, 4])
def test_probs_csv_and_json_text_streamed_equal_in_memory(cli, monkeypatch, tmp_path, data, rows_per_block):
    """Text outputs too: the same characters, streamed or not."""
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", block_budget(rows_per_block, (N, C), np.float32))
    for fmt in ("csv", "tsv", "json"):
        streamed = cli("probs", data["masked"], "-f", fmt)
        in_memory = cli("probs", "-", "-f", fmt, input=data["masked"].read_bytes())
        assert streamed.returncode == in_memory.returncode == 0, (streamed.stderr, in_memory.stderr)
        expected = in_memory.stdout
        if fmt == "json":  # the same characters but for the recorded input's path ("-" for standard input)
            expected = expected.replace('"path": "-"', f'"path": {json.dumps(str(data["masked"]))}', 1)
        assert streamed.stdout == expected, fmt
        out = tmp_path / f"p.{fmt}"
        assert cli("probs", data["masked"], "-o", out).returncode == 0
        assert out.read_text() == expected


LOSS_OPTIONS = {
    "plain": lambda d: ["--labels", d["clean_labels"]],
    "weighted-smoothed-ignored": lambda d: ["--labels", d["labels"], "--weights", d["weights"],
                                            "--label-smoothing", "0.1", "--ignore-index", str(IGNORE)],
    "ignored": lambda d: ["--labels", d["labels"], "--ignore-index", str(IGNORE)],
    "targets": lambda d: ["--labels", d["targets"]],
    "targets-weighted-smoothed": lambda d: ["--labels", d["targets"], "--weights", d["weights"],
                                            "--label-smoothing", "0.2"],
    "temperature": lambda d: ["--labels", d["clean_labels"], "--temperature", "2.5"],
}


@pytest.mark.parametrize("rows_per_block", LOSS_BLOCKS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", list(LOSS_OPTIONS))
def test_grad_streamed_equals_in_memory(cli, monkeypatch, tmp_path, data, rows_per_block, reduction, options):
    args = LOSS_OPTIONS[options](data) + ["--reduction", reduction]
    results = streamed_and_in_memory(cli, monkeypatch, tmp_path, "grad", data["logits"], args, rows_per_block,
                                     fmt="npy")
    assert_all_equal(*results)
    got = results[0]["primary"]
    assert got.dtype == np.float32 and got.shape == (N, C)
    if options == "plain":  # independent reference: (softmax - onehot) / N for the mean
        x = np.load(data["logits"]).astype(np.float64)
        y = np.load(data["clean_labels"])
        reference = reference_softmax(x) - np.eye(C)[y]
        if reduction == "mean":
            reference /= N
        np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)
    if options == "ignored":
        assert np.all(got[[2, 7]] == 0)


@pytest.mark.parametrize("rows_per_block", LOSS_BLOCKS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", list(LOSS_OPTIONS))
def test_loss_streamed_equals_in_memory(cli, monkeypatch, tmp_path, data, rows_per_block, reduction, options):
    args = LOSS_OPTIONS[options](data) + ["--reduction", reduction]
    results = streamed_and_in_memory(cli, monkeypatch, tmp_path, "loss", data["logits"], args, rows_per_block)
    assert_all_equal(*results)
    got = results[0]
    mean_only = ["perplexity", "bits_per_token"] if reduction == "mean" else []  # issue 21
    # --reduction none: the loss is per sample, written once.
    assert list(got) == ["loss"] + (["per_sample"] if reduction != "none" else []) + ["accuracy", *mean_only]
    if options == "plain":
        x = np.load(data["logits"]).astype(np.float64)
        y = np.load(data["clean_labels"])
        per_row = -reference_log_softmax(x)[np.arange(N), y]
        np.testing.assert_allclose(got.get("per_sample", got["loss"]), per_row, rtol=1e-5)
        expected = {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]
        np.testing.assert_allclose(got["loss"], expected, rtol=1e-5)
        np.testing.assert_allclose(got["accuracy"], np.mean(np.argmax(x, axis=1) == y))


@pytest.mark.parametrize("rows_per_block", BLOCKS)
@pytest.mark.parametrize("ignored", [False, True])
def test_topk_streamed_equals_in_memory(cli, monkeypatch, tmp_path, data, rows_per_block, ignored):
    args = ["-k", "3", "--labels", data["labels" if ignored else "clean_labels"]]
    if ignored:
        args += ["--ignore-index", str(IGNORE)]
    results = streamed_and_in_memory(cli, monkeypatch, tmp_path, "topk", data["logits"], args, rows_per_block)
    assert_all_equal(*results)
    got = results[0]
    assert list(got) == ["indices", "probs", "top1_accuracy", "topk_accuracy"]
    x = np.load(data["logits"]).astype(np.float64)
    order = np.argsort(-x, axis=1, kind="stable")[:, :3]
    assert np.array_equal(got["indices"], order)
    np.testing.assert_allclose(got["probs"], np.take_along_axis(reference_softmax(x), order, axis=1), rtol=2e-6)
    y = np.load(data["labels" if ignored else "clean_labels"])
    keep = y != IGNORE
    assert got["top1_accuracy"] == pytest.approx(np.mean(order[keep, 0] == y[keep]))
    assert got["topk_accuracy"] == pytest.approx(np.mean((order[keep] == y[keep, None]).any(axis=1)))


# ---------------------------------------------------------------- N-d logits and dtypes

ND_SHAPE = (3, 5, C)  # 15 rows


@pytest.fixture(params=["float16", "float32", "float64"])
def nd(request, tmp_path) -> dict:
    rng = np.random.default_rng(16)
    dtype = np.dtype(request.param)
    logits = (rng.normal(size=ND_SHAPE) * 2).astype(dtype)
    files = {"dtype": dtype, "logits": tmp_path / f"nd_{dtype}.npy", "labels": tmp_path / "nd_labels.npy",
             "targets": tmp_path / "nd_targets.npy"}
    np.save(files["logits"], logits)
    labels = rng.integers(0, C, size=ND_SHAPE[:-1])
    labels[1, 2] = -100  # the default ignore index
    np.save(files["labels"], labels)
    np.save(files["targets"], reference_softmax(rng.normal(size=ND_SHAPE)))
    return files


@pytest.mark.parametrize("rows_per_block", [4, 5])  # 15 rows: does not divide, divides
@pytest.mark.parametrize("command, args", [
    ("probs", []),
    ("probs", ["--log"]),
    ("grad", ["--labels", "LABELS"]),
    ("grad", ["--labels", "LABELS", "--reduction", "sum", "--label-smoothing", "0.1"]),
    ("grad", ["--labels", "TARGETS"]),
    ("loss", ["--labels", "LABELS", "--reduction", "none"]),
    ("loss", ["--labels", "TARGETS"]),
    ("topk", ["-k", "3", "--labels", "LABELS"]),
], ids=["probs", "log", "grad", "grad-sum-smoothed", "grad-targets", "loss-none", "loss-targets", "topk"])
def test_nd_and_dtypes_streamed_equal_in_memory(cli, monkeypatch, tmp_path, nd, rows_per_block, command, args):
    args = [{"LABELS": nd["labels"], "TARGETS": nd["targets"]}.get(a, a) for a in args]
    results = streamed_and_in_memory(cli, monkeypatch, tmp_path, command, nd["logits"], args, rows_per_block)
    assert_all_equal(*results)
    got = results[0]
    dtype = nd["dtype"]
    x = np.load(nd["logits"]).astype(np.float64)
    if command == "probs":
        (name, values), = got.items()
        assert values.dtype == dtype and values.shape == ND_SHAPE  # dtype kept, float16 included
        reference = reference_log_softmax(x) if "--log" in args else reference_softmax(x)
        tolerance = 3e-3 if dtype == np.float16 else 2e-6
        np.testing.assert_allclose(values.astype(np.float64), reference, rtol=tolerance, atol=tolerance)
    elif command == "grad":
        assert got["grad"].dtype == dtype and got["grad"].shape == ND_SHAPE
    elif command == "loss":
        # --reduction none: the per-sample loss is the result itself, written once.
        assert got["loss" if "none" in args else "per_sample"].shape == ND_SHAPE[:-1]
    else:
        assert got["indices"].shape == ND_SHAPE[:-1] + (3,)
        assert np.array_equal(got["indices"], np.argsort(-x, axis=-1, kind="stable")[..., :3])  # ties: lower index


def test_subprocess_streams_with_env_block_size(softmax, data, tmp_path):
    """Through the installed script: SOFTMAX_BLOCK_BYTES forces 3-row blocks; same bytes as stdin."""
    env = {"SOFTMAX_BLOCK_BYTES": str(3 * C * 4)}
    out = tmp_path / "p.npy"
    streamed = softmax("probs", data["masked"], "--log", "-o", out, env=env)
    assert streamed.returncode == 0, streamed.stderr
    in_memory = softmax("probs", "-", "--log", "-f", "npy", input=data["masked"].read_bytes(), env=env, text=False)
    assert in_memory.returncode == 0, in_memory.stderr
    assert_bits_equal(np.load(out), np.load(io.BytesIO(in_memory.stdout)))
    assert streamed.stderr == "" and in_memory.stderr == b""  # no progress bar off a terminal
    as_json = softmax("probs", data["masked"], "--log", "-f", "json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    log_probs = json.loads(as_json.stdout)["log_probs"]  # -inf written as null: valid JSON
    assert log_probs[1][3] is None and log_probs[4][0] is None and log_probs[0][0] is not None
    loss = softmax("loss", data["logits"], "--labels", data["clean_labels"], "-f", "json", "--per-row", env=env)
    loss_in_memory = softmax("loss", "-", "--labels", data["clean_labels"], "-f", "json", "--per-row", env=env,
                             input=data["logits"].read_bytes())
    assert loss.returncode == loss_in_memory.returncode == 0, loss.stderr
    streamed, whole = json.loads(loss.stdout), json.loads(loss_in_memory.stdout)
    assert [streamed.pop("inputs"), whole.pop("inputs")][0][0]["path"] == str(data["logits"])  # "-" in memory
    assert streamed == whole
    assert set(streamed) >= {"loss", "per_sample", "accuracy"}


def test_fortran_order_npy_is_read_whole_with_same_result(cli, monkeypatch, tmp_path, data):
    """A Fortran-ordered .npy is not streamed, but gives the same answer."""
    logits = np.load(data["logits"])
    fortran = tmp_path / "fortran.npy"
    np.save(fortran, np.asfortranarray(logits))
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", 3 * C * 4)
    spy = BlockSpy(monkeypatch)
    a = cli("probs", fortran, "-f", "npy", text=False)
    assert a.returncode == 0 and not spy.blocks
    b = cli("probs", data["logits"], "-f", "npy", text=False)
    assert b.returncode == 0 and spy.blocks
    assert_bits_equal(np.load(io.BytesIO(a.stdout)), np.load(io.BytesIO(b.stdout)))


def test_class_axis_not_last_is_read_whole_and_correct(cli, monkeypatch, data):
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", 3 * C * 4)
    spy = BlockSpy(monkeypatch)
    completed = cli("probs", data["logits"], "--axis", "0", "-f", "npy", text=False)
    assert completed.returncode == 0, completed.stderr
    assert not spy.blocks
    got = np.load(io.BytesIO(completed.stdout))
    np.testing.assert_allclose(got, reference_softmax(np.load(data["logits"]).astype(np.float64), axis=0), rtol=2e-6)


def test_streamed_text_to_a_closed_pipe_ends_quietly(tmp_path):
    """``softmax probs big.npy -f csv | head -2``: no traceback, no error."""
    from conftest import softmax_command

    path = tmp_path / "many.npy"
    np.save(path, np.random.default_rng(5).normal(size=(200_000, 8)).astype(np.float32))
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"} | {"SOFTMAX_BLOCK_BYTES": "4096"}
    process = subprocess.Popen([*softmax_command(), "probs", str(path), "-f", "csv"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=environment)
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert len(first.split(b",")) == 8
    assert stderr == b"", stderr
    assert process.returncode in (0, 141, -13)


# ---------------------------------------------------------------- errors while streaming

def bad_file(tmp_path, position, value=np.nan, shape=(N, C), name="bad.npy") -> Path:
    logits = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    logits[position] = value
    path = tmp_path / name
    np.save(path, logits)
    return path


def assert_no_leftovers(folder: Path, name: str) -> None:
    assert not (folder / name).exists()
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.") or p.name.endswith(".part")]
    assert not leftovers, leftovers


THREE_ROWS = {"SOFTMAX_BLOCK_BYTES": str(3 * C * 4)}


@pytest.mark.parametrize("command, extra, out_name", [
    ("probs", [], "out.npy"),
    ("probs", ["--log"], "out.npz"),
    ("grad", ["--labels", "LABELS"], "out.npy"),
    ("loss", ["--labels", "LABELS"], "out.json"),
    ("topk", ["-k", "3"], "out.csv"),
])
def test_nan_late_in_file_names_whole_file_position_and_leaves_nothing(softmax, tmp_path, command, extra,
                                                                       out_name):
    path = bad_file(tmp_path, (9, 4))
    labels = tmp_path / "labels.npy"
    np.save(labels, np.zeros(N, dtype=np.int64))
    extra = [labels if a == "LABELS" else a for a in extra]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    completed = softmax(command, path, *extra, "-o", out_dir / out_name, env=THREE_ROWS)
    assert_one_error_line(completed, "NaN", "row 9, column 4")
    assert_no_leftovers(out_dir, out_name)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "json", "npy", "npz"])
@pytest.mark.parametrize("command, extra", [("probs", []), ("probs", ["--log"]), ("grad", ["--labels", "LABELS"])])
def test_bad_row_late_in_file_writes_nothing_to_stdout(cli, monkeypatch, tmp_path, fmt, command, extra):
    """The validation pass runs before the first streamed block is written to a pipe."""
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", 3 * C * 4)
    path = bad_file(tmp_path, (9, 4), value=np.inf)
    labels = tmp_path / "labels.npy"
    np.save(labels, np.zeros(N, dtype=np.int64))
    extra = [labels if a == "LABELS" else a for a in extra]
    completed = cli(command, path, *extra, "-f", fmt, text=False)
    assert completed.stdout == b""
    completed.stdout = ""
    completed.stderr = completed.stderr.decode()
    assert_one_error_line(completed, "row 9, column 4")


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_bad_row_late_in_file_writes_nothing_to_stdout_subprocess(softmax, tmp_path, fmt):
    path = bad_file(tmp_path, (9, 4), value=np.inf)
    completed = softmax("probs", path, "-f", fmt, env=THREE_ROWS, text=False)
    assert completed.stdout == b""
    completed.stdout = ""
    completed.stderr = completed.stderr.decode()
    assert_one_error_line(completed, "+inf", "row 9, column 4")


def test_nd_error_position_is_in_the_whole_array(softmax, tmp_path):
    path = bad_file(tmp_path, (2, 3, 4), shape=ND_SHAPE)  # flat row 13: the 4th block of 4 rows
    completed = softmax("probs", path, "-f", "csv", env={"SOFTMAX_BLOCK_BYTES": str(4 * C * 4)})
    assert_one_error_line(completed, "NaN", "row (2, 3), column 4")
    out = tmp_path / "o.npy"
    labels = tmp_path / "labels.npy"
    np.save(labels, np.zeros(ND_SHAPE[:-1], dtype=np.int64))
    completed = softmax("loss", path, "--labels", labels, "-o", out,
                        env={"SOFTMAX_BLOCK_BYTES": str(4 * C * 4)})
    assert_one_error_line(completed, "NaN", "row (2, 3), column 4")
    assert_no_leftovers(tmp_path, "o.npy")


def test_masked_row_late_in_file_names_row_and_option(cli, monkeypatch, tmp_path):
    logits = np.random.default_rng(2).normal(size=(N, C)).astype(np.float32)
    logits[8] = -np.inf
    path = tmp_path / "dead.npy"
    np.save(path, logits)
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", 3 * C * 4)
    completed = cli("probs", path, "-o", tmp_path / "o.npy")
    assert_one_error_line(completed, "row 8", "--masked-rows")
    assert_no_leftovers(tmp_path, "o.npy")
    completed = cli("probs", path, "-f", "csv")
    assert_one_error_line(completed, "row 8", "--masked-rows")


def test_first_bad_position_is_reported_when_several(cli, monkeypatch, tmp_path):
    logits = np.random.default_rng(3).normal(size=(N, C)).astype(np.float32)
    logits[7, 1] = np.nan
    logits[9, 0] = np.nan
    path = tmp_path / "two.npy"
    np.save(path, logits)
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", 4 * C * 4)
    assert_one_error_line(cli("probs", path, "-f", "npy"), "row 7, column 1")


def test_existing_output_survives_a_streaming_error(softmax, tmp_path):
    path = bad_file(tmp_path, (9, 0))
    out = tmp_path / "keep.npy"
    np.save(out, np.arange(3.0))
    completed = softmax("probs", path, "-o", out, "--force", env=THREE_ROWS)
    assert_one_error_line(completed, "row 9, column 0")
    assert np.array_equal(np.load(out), np.arange(3.0))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_truncated_npy_is_an_error_without_output(softmax, tmp_path, data):
    whole = data["logits"].read_bytes()
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(whole[: len(whole) - 10])
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    completed = softmax("probs", truncated, "-o", out_dir / "o.npy", env=THREE_ROWS)
    assert_one_error_line(completed, "truncated.npy")
    assert list(out_dir.iterdir()) == []


# ---------------------------------------------------------------- peak memory

WRAPPER = textwrap.dedent("""
    import resource, sys
    from softmax_cli.cli import main
    sys.argv = ["softmax", *sys.argv[2:]]
    code = 0
    try:
        main()
    except SystemExit as exit:
        code = exit.code or 0
    with open(REPORT, "w") as file:
        file.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    sys.exit(code)
""")


def peak_rss_mib(tmp_path: Path, args: list, env: dict) -> float:
    """Peak RSS (MiB) of a Python process running ``softmax ARGS`` in process."""
    report = tmp_path / "rss.txt"
    script = tmp_path / "wrapper.py"
    script.write_text(f"REPORT = {str(report)!r}\n" + WRAPPER)
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"} | env
    # Linux carries ru_maxrss across execve, so a child exec'd straight from pytest would report
    # pytest's own peak; a shell in between forks the wrapper from a process of a few MiB.
    command = [sys.executable, str(script), "softmax", *map(str, args)]
    completed = subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", *command], capture_output=True,
                               env=environment, stdin=subprocess.DEVNULL, timeout=120)
    assert completed.returncode == 0, completed.stderr.decode()
    kib = int(report.read_text())
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")
def test_peak_memory_stays_bounded_when_streaming(tmp_path):
    rows, classes = 49152, 256  # 48 MiB of float32: 48 blocks of 1 MiB
    rng = np.random.default_rng(0)
    logits_path = tmp_path / "big.npy"
    array = np.lib.format.open_memmap(logits_path, mode="w+", dtype=np.float32, shape=(rows, classes))
    for start in range(0, rows, 8192):
        array[start : start + 8192] = rng.standard_normal((8192, classes), dtype=np.float32)
    array.flush()
    del array
    labels = tmp_path / "labels.npy"
    np.save(labels, rng.integers(0, classes, size=rows))
    file_mib = logits_path.stat().st_size / 2**20
    assert file_mib > 40
    env = {"SOFTMAX_BLOCK_BYTES": str(1 << 20)}

    baseline = peak_rss_mib(tmp_path, ["probs", "3", "2", "1", "-f", "csv"], env)
    out = tmp_path / "out.npy"
    measured = {}
    for name, args in {
        "probs -o": ["probs", logits_path, "-o", out],
        "probs --log -o": ["probs", logits_path, "--log", "-o", out],
        "loss": ["loss", logits_path, "--labels", labels, "-f", "json", "-o", tmp_path / "loss.json"],
        "grad -o": ["grad", logits_path, "--labels", labels, "-o", out],
        "topk": ["topk", logits_path, "-k", "3", "-o", tmp_path / "top.npz"],
    }.items():
        out.unlink(missing_ok=True)
        measured[name] = peak_rss_mib(tmp_path, args, env)
        if name.endswith("-o"):
            assert out.stat().st_size > file_mib * 2**20 * 0.99  # the whole result was written
        out.unlink(missing_ok=True)
    print(f"baseline {baseline:.1f} MiB, file {file_mib:.0f} MiB, peaks {measured}")
    for name, peak in measured.items():
        assert peak < baseline + 40, (name, f"peak {peak:.0f} MiB, baseline {baseline:.0f} MiB, "
                                            f"file {file_mib:.0f} MiB", measured)


# ---------------------------------------------------------------- threads

@pytest.fixture
def force_threads(monkeypatch):
    """Threads even for tiny arrays; counts the thread pools started; restores the thread count."""
    import concurrent.futures

    monkeypatch.setattr(blocks, "PARALLEL_MIN_ELEMENTS", 1)
    # The count is a context variable: put back its value, not just the variable (the value 3 leaked into
    # later tests of the same worker, and an in-process command started from it).
    unset = blocks._threads.set(None)
    pools = []
    original = concurrent.futures.ThreadPoolExecutor

    class Counting(original):
        def __init__(self, *args, **kwargs):
            pools.append(args[0] if args else kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Counting)
    yield pools
    blocks._threads.reset(unset)


@pytest.mark.parametrize("shape, axis", [((257, 7), -1), ((64, 300), -1), ((5, 9, 33), -1), ((40, 6), 0),
                                         ((3, 4, 5), 1)])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_threaded_core_is_bit_identical(force_threads, shape, axis, dtype):
    from softmax_cli import core

    rng = np.random.default_rng(11)
    x = (rng.normal(size=shape) * 4).astype(dtype)
    x.flat[::13] = -np.inf  # masked logits too (no row is all -inf at this stride)
    results = {}
    for threads in (1, 2, 3):
        core.set_threads(threads)
        results[threads] = (core.softmax(x, axis=axis), core.log_softmax(x, axis=axis),
                            core.softmax(x, axis=axis, temperature=0.3))
    assert any(workers and workers >= 2 for workers in force_threads), "threads were never used"
    for threads in (2, 3):
        for single, threaded in zip(results[1], results[threads]):
            assert_bits_equal(threaded, single)


@pytest.mark.parametrize("args", [["probs"], ["probs", "--log"], ["loss", "--labels", "LABELS", "--reduction", "none"],
                                  ["grad", "--labels", "LABELS"], ["topk", "-k", "3"]],
                         ids=["probs", "log", "loss", "grad", "topk"])
@pytest.mark.parametrize("streamed", [False, True])
def test_cli_threads_1_and_2_bit_identical(cli, force_threads, monkeypatch, tmp_path, args, streamed):
    rng = np.random.default_rng(12)
    path = tmp_path / "x.npy"
    np.save(path, rng.normal(size=(300, 11)).astype(np.float32))
    labels = tmp_path / "y.npy"
    np.save(labels, rng.integers(0, 11, size=300))
    args = [labels if a == "LABELS" else a for a in args]
    monkeypatch.setattr(stream_module, "STREAM_BLOCK_BYTES", 64 * 11 * 4)
    outputs = []
    for threads in ("1", "2"):
        if streamed:
            completed = cli(*args[:1], path, *args[1:], "--threads", threads, "-f", "npz", text=False)
        else:
            completed = cli(*args[:1], "-", *args[1:], "--threads", threads, "-f", "npz", text=False,
                            input=path.read_bytes())
        assert completed.returncode == 0, completed.stderr
        outputs.append(load_bytes(completed.stdout))
    if args[0] == "probs":  # the softmax kernels go through the row-chunk pool
        assert any(workers and workers >= 2 for workers in force_threads), "threads were never used"
    assert outputs[0].keys() == outputs[1].keys()
    for name in outputs[0]:
        assert_bits_equal(outputs[1][name], outputs[0][name], name)


def test_threads_option_rejects_zero(cli, tmp_path, force_threads):
    completed = cli("probs", "1", "2", "--threads", "0")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
