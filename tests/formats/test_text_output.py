"""Text outputs (CSV/TSV/JSON): row names, left-out notes, and streaming within the memory bound.

A streamed ``.npy`` (read in row blocks, forced tiny with ``SOFTMAX_BLOCK_BYTES``)
must give byte for byte the text of the same array read whole from standard
input, written a bounded chunk at a time. The 1 GiB peak-memory check runs
only with ``SOFTMAX_SLOW=1``.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, reference_softmax, run

from softmax_cli.errors import end_telling
from softmax_cli.formats import npy, registry
from softmax_cli.formats.base import WriteOptions
from softmax_cli.result import Result
from softmax_cli.stream import map_rows
from softmax_cli.tidy import CHUNK_VALUES

slow = pytest.mark.skipif(os.environ.get("SOFTMAX_SLOW") != "1", reason="slow: set SOFTMAX_SLOW=1 to run")

TINY_BLOCKS = {"SOFTMAX_BLOCK_BYTES": "1000"}  # 35 rows of 7 float32 logits per block


@pytest.fixture(scope="module")
def logits(tmp_path_factory):
    """Files of more values than one text chunk holds, so both blocks and chunks roll over."""
    folder = tmp_path_factory.mktemp("streamed")
    rng = np.random.default_rng(7)
    paths = {}
    for name, shape in {"matrix": (12_000, 7), "cube": (30, 400, 7)}.items():
        array = (rng.normal(size=shape) * 3).astype(np.float32)
        assert array.size > CHUNK_VALUES
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], array)
        labels = rng.integers(0, 7, size=shape[:-1])
        np.save(folder / f"{name}_labels.npy", labels)
        paths[f"{name}_labels"] = folder / f"{name}_labels.npy"
    return paths


COMMANDS = {
    "probs csv": ["probs", "{x}", "-f", "csv"],
    "probs --log tsv": ["probs", "{x}", "--log", "-f", "tsv"],
    "probs json": ["probs", "{x}", "-f", "json"],
    "grad csv": ["grad", "{x}", "--labels", "{y}", "-f", "csv"],
    "grad json": ["grad", "{x}", "--labels", "{y}", "-f", "json"],
    "loss json": ["loss", "{x}", "--labels", "{y}", "-f", "json"],
    "loss --reduction none csv": ["loss", "{x}", "--labels", "{y}", "--reduction", "none", "-f", "csv"],
    "topk tsv": ["topk", "{x}", "-k", "3", "-f", "tsv"],
}


@pytest.mark.parametrize("shape", ["matrix", "cube"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_streamed_text_equals_the_in_memory_text(logits, command, shape):
    def args(source):
        return [a.format(x=source, y=logits[f"{shape}_labels"]) for a in COMMANDS[command]]

    streamed = run(*args(logits[shape]), env=TINY_BLOCKS, text=False)
    whole = run(*args("-"), input=logits[shape].read_bytes(), text=False)
    assert streamed.returncode == 0 and whole.returncode == 0, (streamed.stderr, whole.stderr)
    if command.endswith("json"):  # the same but for the recorded input's path ("-" for standard input)
        streamed_out, whole_out = json.loads(streamed.stdout), json.loads(whole.stdout)
        assert [entry["path"] for entry in whole_out.pop("inputs")][0] == "-"
        assert [entry["path"] for entry in streamed_out.pop("inputs")][0] == str(logits[shape])
        assert streamed_out == whole_out
    else:
        assert streamed.stdout == whole.stdout


def test_streamed_values_are_the_softmax(logits):
    completed = run("probs", logits["cube"], "-f", "json", env=TINY_BLOCKS)
    expected = reference_softmax(np.load(logits["cube"]).astype(np.float64))
    np.testing.assert_allclose(np.array(json.loads(completed.stdout)["probs"]), expected, rtol=1e-6, atol=1e-7)


class Counting(io.StringIO):
    """A text stream that counts a mark as it is written: line ends for CSV, row ends for JSON."""

    def __init__(self, mark: str):
        super().__init__()
        self.mark, self.count = mark, 0

    def write(self, text: str) -> int:
        self.count += text.count(self.mark)
        return super().write(text)


def float64_softmax(block: np.ndarray) -> np.ndarray:
    exp = np.exp(block - block.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("fmt, mark", [("csv", "\n"), ("json", "]")])
def test_text_is_written_while_the_blocks_are_computed(logits, fmt, mark):
    """At every block, the rows written lag the rows computed by at most one chunk: nothing is held whole."""
    source = npy.row_blocks(logits["matrix"], block_bytes=1000)
    out = Counting(mark)
    written_at = []

    def softmax_of(block, rows):
        written_at.append((rows.start, out.count))
        return float64_softmax(block)

    registry.named(fmt).write(Result({"probs": map_rows(source, softmax_of, np.float32)}), out, WriteOptions())
    assert len(written_at) > 300  # many blocks
    chunk_rows = CHUNK_VALUES // 7
    for start, rows_written in written_at:
        assert start - chunk_rows <= rows_written <= start, (start, rows_written)
    whole = io.StringIO()
    registry.named(fmt).write(Result({"probs": float64_softmax(np.load(logits["matrix"]))}), whole, WriteOptions())
    assert out.getvalue() == whole.getvalue()


# ---------------------------------------------------------------- row names

ROW_NAMES = ["r1", "r,2", "r3"]
PROBS = reference_softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]]))


def written(fmt: str, result: Result) -> str:
    out = io.StringIO()
    registry.named(fmt).write(result, out, WriteOptions())
    return out.getvalue()


@pytest.mark.parametrize("rows_name", ["", "id"])
def test_csv_row_names_come_first_and_pandas_reads_them_back(rows_name):
    pd = pytest.importorskip("pandas")
    text = written("csv", Result({"probs": PROBS}, classes=["a", "b", "c"], header=["a", "b", "c"], rows=ROW_NAMES,
                                 rows_name=rows_name))
    assert text.splitlines()[0] == f"{rows_name},a,b,c"
    frame = pd.read_csv(io.StringIO(text), index_col=0)
    assert frame.index.tolist() == ROW_NAMES and frame.columns.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(frame.to_numpy(), PROBS)


def test_tidy_table_with_row_names_and_scalars():
    per_sample = -np.log(PROBS[[0, 1, 2], [2, 0, 1]])
    text = written("tsv", Result({"loss": per_sample.mean(), "per_sample": per_sample, "accuracy": np.float64(1 / 3)},
                                 rows=ROW_NAMES, rows_name="id"))
    lines = text.splitlines()
    assert lines[:2] == [f"# loss: {float(per_sample.mean())!r}", f"# accuracy: {1 / 3!r}"]  # the summary first
    assert lines[2] == "id\tper_sample"
    assert [line.split("\t")[0] for line in lines[3:]] == ROW_NAMES
    np.testing.assert_array_equal([float(line.split("\t")[1]) for line in lines[3:]], per_sample)


def test_json_rows_are_the_row_names_as_text():
    out = json.loads(written("json", Result({"probs": PROBS}, classes=["a", "b", "c"], rows=["0", "1", "2"])))
    assert out["rows"] == ["0", "1", "2"] and out["classes"] == ["a", "b", "c"]
    assert "rows" not in json.loads(written("json", Result({"probs": PROBS})))


def test_an_array_that_fits_no_column_is_named_on_stderr(capsys):
    text = written("csv", Result({"output": np.ones((3, 2)), "weights": np.ones((2, 3, 3)), "scale": np.float64(2)}))
    assert text.splitlines()[:2] == ["# scale: 2.0", "output_0,output_1"]
    end_telling(show=True)  # as the app does when the command ends without an error
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "weights" in notes[0] and "npz" in notes[0], notes


def test_topk_names_are_quoted_like_the_csv_module():
    text = written("csv", Result({"indices": np.array([[1, 0]]), "probs": np.array([[0.75, 0.25]]),
                                  "names": np.array([['say "b"', "a,1"]])}, layout="topk"))
    import csv

    header, row = list(csv.reader(io.StringIO(text)))
    assert header == ["rank1_index", "rank1_prob", "rank1_name", "rank2_index", "rank2_prob", "rank2_name"]
    assert row == ["1", "0.75", 'say "b"', "0", "0.25", "a,1"]


# ---------------------------------------------------------------- the memory bound on 1 GiB

@slow
@pytest.mark.parametrize("command", [
    ["loss", "{x}", "--labels", "{y}", "-f", "json", "-o", "{out}.json"],
    ["loss", "{x}", "--labels", "{y}", "--reduction", "none", "-f", "csv", "-o", "{out}.csv"],
    ["probs", "{x}", "-f", "csv", "-o", "{out}.csv"],
], ids=["loss json", "loss none csv", "probs csv"])
def test_text_of_a_1_gib_npy_stays_under_150_mib(tmp_path_factory, tmp_path, command):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _measure import measure, softmax_command

    folder = tmp_path_factory.getbasetemp() / "one_gib"
    logits, labels = folder / "big.npy", folder / "y.npy"
    if not logits.exists():
        folder.mkdir(exist_ok=True)
        rows, classes = 2_684_354, 100  # 1 GiB of float32, 2.7 M rows (the loss -f json case)
        rng = np.random.default_rng(0)
        array = np.lib.format.open_memmap(logits, mode="w+", dtype=np.float32, shape=(rows, classes))
        for start in range(0, rows, 1 << 16):
            array[start : start + (1 << 16)] = rng.standard_normal((min(1 << 16, rows - start), classes),
                                                                   dtype=np.float32)
        array.flush()
        del array
        np.save(labels, rng.integers(0, classes, size=rows))
    args = [a.format(x=logits, y=labels, out=tmp_path / "out") for a in command]
    measured = measure([softmax_command(), *args], tmp_path)
    assert measured.peak_mib <= 150, (args, f"{measured.peak_mib:.0f} MiB")
    assert Path(args[-1]).stat().st_size > 0
