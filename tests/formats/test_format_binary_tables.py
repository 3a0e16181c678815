"""safetensors, Parquet/Arrow and bfloat16 beyond the issue-11 spec: streamed passes, the Arrow stream format,
refusals, scalars in Parquet metadata, and the one line an absent optional library gives.

Files come from the real producers (``safetensors.numpy.save_file``, pyarrow,
pandas, ``np.save`` of ml_dtypes arrays); references are plain NumPy.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

RNG = np.random.default_rng(11)
LOGITS = RNG.normal(size=(37, 6)).astype(np.float32) * 3
LABELS = RNG.integers(0, 6, size=37)
TINY_BLOCKS = {"SOFTMAX_BLOCK_BYTES": "100"}  # a few rows per block: the streamed path, many blocks


def ok(completed):
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def logits_safetensors(tmp_path):
    numpy_api = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "model.safetensors"
    numpy_api.save_file({"hidden": np.ones((2, 3)), "logits": LOGITS}, str(path))
    return path


@pytest.mark.parametrize("command", [["probs"], ["grad", "--labels", "LABELS"]])
def test_streamed_safetensors_matches_the_whole_file(logits_safetensors, tmp_path, command):
    np.save(tmp_path / "y.npy", LABELS)
    args = [tmp_path / "y.npy" if arg == "LABELS" else arg for arg in command]
    outputs = []
    for name, env in (("blocks", TINY_BLOCKS), ("whole", {"SOFTMAX_BLOCK_BYTES": str(1 << 30)})):
        out = tmp_path / f"{name}.safetensors"
        ok(run(*args, logits_safetensors, "-o", out, env=env))
        outputs.append(pytest.importorskip("safetensors.numpy").load_file(str(out)))
    assert outputs[0].keys() == outputs[1].keys()
    for key in outputs[0]:
        np.testing.assert_array_equal(outputs[0][key], outputs[1][key])
    if command == ["probs"]:
        np.testing.assert_allclose(outputs[0]["probs"], reference_softmax(LOGITS.astype(np.float64)), rtol=1e-6)


def test_streamed_loss_and_topk_from_safetensors(logits_safetensors, tmp_path):
    np.save(tmp_path / "y.npy", LABELS)
    loss = json.loads(ok(run("loss", logits_safetensors, "--labels", tmp_path / "y.npy", "--reduction", "none",
                             "-f", "json", env=TINY_BLOCKS)).stdout)
    p = reference_softmax(LOGITS.astype(np.float64))
    np.testing.assert_allclose(loss["loss"], -np.log(p[np.arange(37), LABELS]), rtol=1e-5)
    top = json.loads(ok(run("topk", logits_safetensors, "-k", "2", "-f", "json", env=TINY_BLOCKS)).stdout)
    np.testing.assert_array_equal(top["indices"], np.argsort(-p, axis=1, kind="stable")[:, :2])


def test_streamed_bfloat16_npy_with_void_as(tmp_path):
    bf16 = pytest.importorskip("ml_dtypes").bfloat16
    np.save(tmp_path / "x.npy", LOGITS.astype(bf16))
    out = tmp_path / "p.npy"
    ok(run("probs", tmp_path / "x.npy", "--void-as", "bfloat16", "-o", out, env=TINY_BLOCKS))
    written = np.load(out).view(bf16).astype(np.float64)
    expected = reference_softmax(LOGITS.astype(bf16).astype(np.float32)).astype(bf16).astype(np.float64)
    np.testing.assert_allclose(written, expected, rtol=2**-7)


def test_safetensors_round_trip_keeps_class_names(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("a,b,c\n1,2,3\n3,2,1\n")
    ok(run("probs", csv, "-o", tmp_path / "p.safetensors"))
    # Probabilities read back as what they are (issue 19 refuses them as logits).
    again = json.loads(ok(run("probs", tmp_path / "p.safetensors", "--from-probs", "-f", "json")).stdout)
    assert again["classes"] == ["a", "b", "c"]


@pytest.mark.parametrize("header, message", [
    ({"logits": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, "truncated"),
    ({"logits": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}}, "C64"),
    ({"logits": {"dtype": "F32", "shape": [2, "x"], "data_offsets": [0, 16]}}, "data_offsets"),
    ([1, 2], "not a JSON object"),
])
def test_broken_safetensors_headers_are_one_line(tmp_path, header, message):
    text = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(16))
    assert_one_error_line(run("probs", path), message, "bad.safetensors")


def test_arrow_stream_format_is_read(tmp_path):
    pa = pytest.importorskip("pyarrow")
    table = pa.table({name: LOGITS[:, j] for j, name in enumerate("abcdef")})
    path = tmp_path / "cache.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=10):  # several record batches
            writer.write_batch(batch)
    out = json.loads(ok(run("probs", path, "-f", "json")).stdout)
    assert out["classes"] == list("abcdef")
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS.astype(np.float64)), rtol=1e-6)


def test_parquet_keeps_scalars_in_the_schema_metadata(tmp_path):
    pd = pytest.importorskip("pandas")
    pq = pytest.importorskip("pyarrow.parquet")
    pd.DataFrame(LOGITS, columns=list("abcdef")).to_parquet(tmp_path / "x.parquet")
    np.save(tmp_path / "y.npy", LABELS)
    ok(run("topk", tmp_path / "x.parquet", "-k", "1", "--labels", tmp_path / "y.npy", "-o", tmp_path / "t.parquet"))
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column_names == ["rank1_index", "rank1_prob", "rank1_name"]
    top1 = np.argmax(LOGITS, axis=1)
    np.testing.assert_array_equal(table.column("rank1_index").to_numpy(), top1)
    assert table.column("rank1_name").to_pylist() == [list("abcdef")[j] for j in top1]
    assert float(table.schema.metadata[b"top1_accuracy"]) == pytest.approx(np.mean(top1 == LABELS))


@pytest.mark.parametrize("columns, message", [
    ({"a": [1.0, None], "b": [1.0, 2.0]}, "null"),
    ({"a": [1.0, 2.0], "when": ["x", "y"], "b": [1.0, 2.0]}, "when"),
])
def test_parquet_columns_that_are_not_logits_are_refused(tmp_path, columns, message):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("pyarrow.parquet").write_table(pa.table(columns), tmp_path / "x.parquet")
    assert_one_error_line(run("probs", tmp_path / "x.parquet"), message)


def test_ragged_list_column_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("pyarrow.parquet").write_table(pa.table({"logits": [[1.0, 2.0], [1.0]]}), tmp_path / "x.parquet")
    assert_one_error_line(run("probs", tmp_path / "x.parquet"), "unequal lengths")


BLOCKED = """
import sys
sys.modules["pyarrow"] = None  # as if it were not installed
sys.modules["ml_dtypes"] = None
from softmax_cli.inputs import load_source
from softmax_cli.errors import InputError
try:
    load_source(sys.argv[1], void_as="bfloat16")
except InputError as error:
    print(error)
"""


@pytest.mark.parametrize("name, extra", [("x.parquet", "parquet"), ("x.npy", "bfloat16")])
def test_a_missing_optional_library_names_its_extra(tmp_path, name, extra):
    if name.endswith(".parquet"):
        pytest.importorskip("pandas").DataFrame(LOGITS).to_parquet(tmp_path / name)
    else:
        np.save(tmp_path / name, LOGITS.astype(pytest.importorskip("ml_dtypes").bfloat16))
    said = subprocess.run([sys.executable, "-c", BLOCKED, str(tmp_path / name)], capture_output=True, text=True)
    assert f"pip install 'softmax-toolkit[{extra}]'" in said.stdout, said.stdout + said.stderr
