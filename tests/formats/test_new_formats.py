"""Issue 11, formats where large logits live: bfloat16, safetensors, Parquet / Arrow IPC, refused pickles.

Files are written by their real producers (``ml_dtypes`` + ``np.save``,
``safetensors.numpy.save_file``, pandas / polars / pyarrow, ``torch.save``) and
read through the installed ``softmax``. References are plain NumPy. The streamed
safetensors test (a ~1 GiB file, child peak RSS) runs only with ``SOFTMAX_SLOW=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run, softmax_command

# The slow tests are opt-in: a plain skipif, so this module needs no marker registered elsewhere.
slow = pytest.mark.skipif(os.environ.get("SOFTMAX_SLOW") != "1", reason="slow: set SOFTMAX_SLOW=1 to run")

RNG = np.random.default_rng(2024)
LOGITS = RNG.normal(size=(5, 4)) * 3
CLASSES = ["cat", "dog", "bird", "fish"]


def ok(completed):
    stderr = completed.stderr if isinstance(completed.stderr, str) else completed.stderr.decode()
    assert completed.returncode == 0, stderr
    return completed


def probs_json(completed) -> dict:
    return json.loads(ok(completed).stdout)


def bf16():
    return pytest.importorskip("ml_dtypes").bfloat16


def reference_in(dtype, logits=LOGITS):
    """Softmax of the logits as stored in ``dtype``, computed in float32 for 2-byte floats as the tool does."""
    stored = np.asarray(logits).astype(dtype)
    compute = np.float32 if stored.dtype.itemsize <= 2 else stored.dtype
    return reference_softmax(stored.astype(compute)).astype(compute)


def tolerance(dtype) -> dict:
    """One rounding of the result to ``dtype`` (bfloat16 keeps 8 significant bits, float16 11)."""
    return {"bfloat16": dict(rtol=2**-7), "float16": dict(rtol=2**-10), "float32": dict(rtol=1e-6),
            "float64": dict(rtol=1e-12)}[np.dtype(dtype).name]


# ---------------------------------------------------------------- bfloat16 through ml_dtypes

@pytest.fixture
def bf16_npy(tmp_path):
    path = tmp_path / "logits_bf16.npy"
    np.save(path, LOGITS.astype(bf16()))  # np.save writes a 2-byte void dtype for bfloat16
    assert np.load(path).dtype.kind == "V"
    return path


def test_void_npy_is_refused_naming_void_as_bfloat16(bf16_npy):
    assert_one_error_line(run("probs", bf16_npy, "-f", "json"), "--void-as bfloat16")


SHORTEST_DIGITS = {"bfloat16": 4, "float16": 5, "float32": 9, "float64": 17}


def assert_printed_for(dtype, json_text):
    """Floats of a 2-byte result are printed in the shortest form for that dtype, not float32's."""
    def significant_digits(number: str) -> int:
        mantissa = number.lstrip("-").split("e")[0].split("E")[0].replace(".", "")
        return len(mantissa.lstrip("0").rstrip("0")) or 1

    parsed = json.loads(json_text, parse_float=lambda text: text)
    numbers = np.ravel(parsed["probs"])
    most = max(significant_digits(str(number)) for number in numbers)
    assert most <= SHORTEST_DIGITS[np.dtype(dtype).name], (dtype, numbers)


def test_void_as_bfloat16_computes_in_float32(bf16_npy):
    completed = ok(run("probs", bf16_npy, "--void-as", "bfloat16", "-f", "json"))
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_in(bf16()), **tolerance(bf16()))
    assert_printed_for(bf16(), completed.stdout)


def test_bfloat16_npy_is_written_back_as_bfloat16(bf16_npy, tmp_path):
    out = tmp_path / "probs.npy"
    ok(run("probs", bf16_npy, "--void-as", "bfloat16", "-o", out))
    written = np.load(out)
    assert written.dtype.itemsize == 2 and written.dtype.kind == "V", written.dtype
    np.testing.assert_allclose(written.view(bf16()).astype(np.float32), reference_in(bf16()), **tolerance(bf16()))


def test_void_as_rejects_other_values(bf16_npy):
    assert_one_error_line(run("probs", bf16_npy, "--void-as", "float8"), "--void-as")


# ---------------------------------------------------------------- safetensors in and out

DTYPES = ["bfloat16", "float16", "float32", "float64"]


def as_dtype(name):
    return bf16() if name == "bfloat16" else np.dtype(name)


@pytest.fixture
def save_safetensors():
    numpy_api = pytest.importorskip("safetensors.numpy")
    return numpy_api.save_file


def load_safetensors(path) -> dict:
    return pytest.importorskip("safetensors.numpy").load_file(str(path))


@pytest.mark.parametrize("dtype", DTYPES)
def test_safetensors_round_trip_keeps_the_dtype(save_safetensors, tmp_path, dtype):
    source = tmp_path / "logits.safetensors"
    save_safetensors({"scores": LOGITS.astype(as_dtype(dtype))}, str(source))
    out = tmp_path / "probs.safetensors"
    ok(run("probs", source, "-o", out))
    written = load_safetensors(out)
    assert list(written) == ["probs"]
    assert written["probs"].dtype == as_dtype(dtype)
    np.testing.assert_allclose(written["probs"].astype(np.float64), reference_in(as_dtype(dtype)),
                               **tolerance(as_dtype(dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_safetensors_to_npy_and_json_keeps_values(save_safetensors, tmp_path, dtype):
    source = tmp_path / "logits.safetensors"
    save_safetensors({"logits": LOGITS.astype(as_dtype(dtype))}, str(source))
    completed = ok(run("probs", source, "-f", "json"))
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_in(as_dtype(dtype)),
                               **tolerance(as_dtype(dtype)))
    assert_printed_for(as_dtype(dtype), completed.stdout)
    npy = tmp_path / "probs.npy"
    ok(run("probs", source, "-o", npy))
    written = np.load(npy)
    if dtype == "bfloat16":  # np.save keeps bfloat16 as its 2-byte void, as ml_dtypes' own arrays do
        written = written.view(bf16())
    assert written.dtype == as_dtype(dtype)
    np.testing.assert_allclose(written.astype(np.float64), reference_in(as_dtype(dtype)), **tolerance(as_dtype(dtype)))


def test_safetensors_default_key_is_logits_among_several(save_safetensors, tmp_path):
    source = tmp_path / "model.safetensors"
    save_safetensors({"hidden": np.zeros((5, 2)), "logits": LOGITS, "labels": np.arange(5)}, str(source))
    out = probs_json(run("probs", source, "-f", "json"))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


def test_safetensors_key_picks_a_tensor(save_safetensors, tmp_path):
    source = tmp_path / "model.safetensors"
    other = LOGITS[::-1] + 1.5
    save_safetensors({"a": LOGITS, "b": other}, str(source))
    out = probs_json(run("probs", source, "--key", "b", "-f", "json"))
    np.testing.assert_allclose(out["probs"], reference_softmax(other), rtol=1e-12)


def test_safetensors_without_a_default_lists_the_names(save_safetensors, tmp_path):
    source = tmp_path / "model.safetensors"
    save_safetensors({"first": LOGITS, "second": LOGITS + 1}, str(source))
    assert_one_error_line(run("probs", source, "-f", "json"), "first", "second", "--key")


def test_safetensors_unknown_key_lists_the_names(save_safetensors, tmp_path):
    source = tmp_path / "model.safetensors"
    save_safetensors({"first": LOGITS, "second": LOGITS + 1}, str(source))
    assert_one_error_line(run("probs", source, "--key", "third", "-f", "json"), "third", "first", "second")


def test_safetensors_output_holds_every_named_array(save_safetensors, tmp_path):
    source = tmp_path / "logits.safetensors"
    labels = np.array([0, 1, 2, 3, 0])
    save_safetensors({"logits": LOGITS.astype(np.float32)}, str(source))
    np.save(tmp_path / "y.npy", labels)
    out = tmp_path / "top.safetensors"
    ok(run("topk", source, "-k", "2", "--labels", tmp_path / "y.npy", "-o", out))
    written = load_safetensors(out)
    assert {"indices", "probs", "top1_accuracy", "topk_accuracy"} <= set(written)
    p = reference_softmax(LOGITS.astype(np.float32))
    order = np.argsort(-p, axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(written["indices"], order)
    assert written["probs"].dtype == np.float32
    np.testing.assert_allclose(written["probs"], np.take_along_axis(p, order, axis=1), rtol=1e-6)
    assert float(written["top1_accuracy"]) == pytest.approx(np.mean(order[:, 0] == labels))


def test_labels_from_safetensors(save_safetensors, tmp_path):
    source = tmp_path / "val.safetensors"
    labels = np.array([3, 1, 0, 2, 2])
    save_safetensors({"logits": LOGITS, "labels": labels}, str(source))
    out = probs_json(run("loss", source, "--labels", source, "--reduction", "none", "-f", "json"))
    expected = -np.log(reference_softmax(LOGITS)[np.arange(5), labels])
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-10)


# ---------------------------------------------------------------- Parquet and Arrow IPC

def frame():
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(LOGITS, columns=CLASSES)


def write_pandas_parquet(path):
    pytest.importorskip("pyarrow")
    frame().to_parquet(path)


def write_polars_parquet(path):
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    pl.DataFrame({name: LOGITS[:, j] for j, name in enumerate(CLASSES)}).write_parquet(path)


def write_feather(path):
    feather = pytest.importorskip("pyarrow.feather")
    feather.write_feather(frame(), str(path))


def write_arrow_ipc(path):
    pa = pytest.importorskip("pyarrow")
    table = pa.table({name: LOGITS[:, j] for j, name in enumerate(CLASSES)})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


@pytest.mark.parametrize("write, name", [
    (write_pandas_parquet, "x.parquet"), (write_polars_parquet, "x.parquet"), (write_feather, "x.feather"),
    (write_arrow_ipc, "x.arrow"),
])
def test_table_columns_are_the_classes(tmp_path, write, name):
    path = tmp_path / name
    write(path)
    out = probs_json(run("probs", path, "-f", "json"))
    assert out["classes"] == CLASSES
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


def test_pandas_parquet_string_index_is_row_names_not_a_class(tmp_path):
    pytest.importorskip("pyarrow")
    df = frame()
    df.index = ["r1", "r2", "r3", "r4", "r5"]
    df.to_parquet(tmp_path / "x.parquet")
    out = probs_json(run("probs", tmp_path / "x.parquet", "-f", "json"))
    assert out["classes"] == CLASSES
    assert out["rows"] == ["r1", "r2", "r3", "r4", "r5"]
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


@pytest.mark.parametrize("list_type", ["list", "fixed_size_list"])
def test_one_list_column_is_read_with_key(tmp_path, list_type):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    kind = pa.list_(pa.float32()) if list_type == "list" else pa.list_(pa.float32(), LOGITS.shape[1])
    table = pa.table({"id": pa.array([f"s{i}" for i in range(5)]),
                      "logits": pa.array(LOGITS.astype(np.float32).tolist(), type=kind)})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=2)  # several row groups
    out = probs_json(run("probs", tmp_path / "x.parquet", "--key", "logits", "-f", "json"))
    np.testing.assert_allclose(out["probs"], reference_in(np.float32), rtol=1e-6)


def test_parquet_output_is_the_tidy_table(tmp_path):
    pd = pytest.importorskip("pandas")
    write_pandas_parquet(tmp_path / "x.parquet")
    ok(run("probs", tmp_path / "x.parquet", "-o", tmp_path / "probs.parquet"))
    back = pd.read_parquet(tmp_path / "probs.parquet")
    assert list(back.columns) == CLASSES
    np.testing.assert_allclose(back.to_numpy(), reference_softmax(LOGITS), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_parquet_round_trip_keeps_the_dtype(tmp_path, dtype):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pd.DataFrame(LOGITS.astype(dtype), columns=CLASSES).to_parquet(tmp_path / "x.parquet")
    ok(run("probs", tmp_path / "x.parquet", "-o", tmp_path / "probs.parquet"))
    back = pd.read_parquet(tmp_path / "probs.parquet")
    assert all(back[c].dtype == np.dtype(dtype) for c in CLASSES), back.dtypes
    np.testing.assert_allclose(back.to_numpy().astype(np.float64), reference_in(np.dtype(dtype)),
                               **tolerance(np.dtype(dtype)))


def test_parquet_labels_column(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    labels = np.array([1, 0, 3, 2, 2])
    pd.DataFrame({"label": labels}).to_parquet(tmp_path / "y.parquet")
    np.save(tmp_path / "z.npy", LOGITS)
    out = probs_json(run("loss", tmp_path / "z.npy", "--labels", tmp_path / "y.parquet", "--reduction", "none",
                         "-f", "json"))
    np.testing.assert_allclose(out["loss"], -np.log(reference_softmax(LOGITS)[np.arange(5), labels]), rtol=1e-10)


# ---------------------------------------------------------------- pickles refused, files sniffed, missing files

@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_torch_pickle_is_refused_saying_why_and_how(tmp_path, suffix):
    torch = pytest.importorskip("torch")
    made = tmp_path / "logits.pt"
    torch.save(torch.tensor(LOGITS), made)
    path = made if suffix == ".pt" else made.with_suffix(suffix)
    if path != made:
        shutil.copy(made, path)
    line = assert_one_error_line(run("probs", path, "-f", "json"), "pickle", "safetensors.torch.save_file",
                                 "np.save(t.numpy())")
    assert "code" in line, line


def write_npy(path):
    with open(path, "wb") as f:
        np.save(f, LOGITS)  # a file object: np.save adds no extension


def write_json(path):
    path.write_text(json.dumps(LOGITS.tolist()))


def write_csv(path):
    np.savetxt(path, LOGITS, delimiter=",", fmt="%.17g")


@pytest.mark.parametrize("write", [write_npy, write_json, write_csv])
def test_a_file_without_extension_is_sniffed_like_stdin(tmp_path, write):
    path = tmp_path / "logits"
    write(path)
    out = probs_json(run("probs", path, "-f", "json"))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


@pytest.mark.parametrize("name", ["missing.npy", "missing", "missing.pt", "missing.weird", "missing.safetensors"])
def test_a_missing_file_says_no_such_file_first(tmp_path, name):
    path = tmp_path / name
    line = assert_one_error_line(run("probs", path, "-f", "json"), "no such file")
    assert name in line, line


# ---------------------------------------------------------------- streamed safetensors under the memory bound

PEAK_REPORTER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
open(os.environ["PEAK_FILE"], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""

WRITE_BIG = """
import sys, numpy as np
from safetensors.numpy import save_file
rows, classes = int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
save_file({"logits": rng.standard_normal((rows, classes), dtype=np.float32)}, sys.argv[1])
"""


def peak_rss_mib(tmp_path: Path, args) -> float:
    """The child's own peak RSS, from a small wrapper started by a shell (see benchmarks/_measure.py)."""
    peak_file = tmp_path / "peak.txt"
    command = [sys.executable, "-S", "-c", PEAK_REPORTER, *softmax_command(), *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"} | {"PEAK_FILE": str(peak_file)}
    completed = subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", *command], capture_output=True, env=env,
                               stdin=subprocess.DEVNULL, timeout=600)
    assert completed.returncode == 0, completed.stderr.decode()
    return int(peak_file.read_text()) / 1024


@slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and fork: Linux")
def test_streamed_safetensors_stays_under_the_memory_bound(tmp_path):
    pytest.importorskip("safetensors")
    rows, classes = 1 << 18, 1024  # 1 GiB of float32
    source = tmp_path / "big.safetensors"
    subprocess.run([sys.executable, "-c", WRITE_BIG, str(source), str(rows), str(classes)], check=True, timeout=600)
    assert source.stat().st_size > 2**30
    labels = tmp_path / "labels.npy"
    np.save(labels, np.random.default_rng(1).integers(0, classes, size=rows))
    measured = {
        "probs -o safetensors": peak_rss_mib(tmp_path, ["probs", source, "-o", tmp_path / "out.safetensors"]),
        "loss -f json": peak_rss_mib(tmp_path, ["loss", source, "--labels", labels, "--reduction", "none",
                                                "-o", tmp_path / "loss.json"]),
    }
    assert (tmp_path / "out.safetensors").stat().st_size > 2**30
    for name, peak in measured.items():
        assert peak <= 150, (name, f"{peak:.0f} MiB", measured)
