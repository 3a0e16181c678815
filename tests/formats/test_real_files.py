"""Issue 11, silent wrong results 1-5: files as pandas and NumPy write them, read as their producer meant.

Every file here is written by its real producer (pandas ``to_csv``, ``np.savetxt``)
and every command runs through the installed ``softmax`` in a subprocess. The
expected numbers come from plain NumPy (``reference_softmax`` in conftest) or
torch, never from ``softmax_cli``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, reference_softmax, run

pd = pytest.importorskip("pandas")

CLASSES = ["cat", "dog", "bird"]
RNG = np.random.default_rng(11)
# Not integers anywhere, so no row of the data could pass for a header of 0..C-1.
LOGITS = np.round(RNG.normal(size=(4, 3)) * 3, 6)
LABELS = np.array([0, 2, 1, 0])
HEADER_NOTE = re.compile(r"^note: first row 0\.\.(C-1|\d+) read as column names; --header no to read it as data$")


def probs_json(completed) -> dict:
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def frame(index=None, index_name=None) -> "pd.DataFrame":
    df = pd.DataFrame(LOGITS, columns=CLASSES)
    if index is not None:
        df.index = pd.Index(index, name=index_name)
    return df


# ---------------------------------------------------------------- 1. the index column of df.to_csv()

INDEXED = {
    "range index": dict(index=None, index_name=None, rows=["0", "1", "2", "3"], header=""),
    "string index": dict(index=["r1", "r2", "r3", "r4"], index_name=None, rows=["r1", "r2", "r3", "r4"], header=""),
    "named string first column": dict(index=["a7", "b2", "c9", "d4"], index_name="id",
                                      rows=["a7", "b2", "c9", "d4"], header="id"),
}


@pytest.fixture(params=list(INDEXED))
def indexed_csv(request, tmp_path):
    case = INDEXED[request.param]
    path = tmp_path / "x.csv"
    frame(case["index"], case["index_name"]).to_csv(path)
    return path, case


def test_index_column_is_not_a_class(indexed_csv):
    path, case = indexed_csv
    out = probs_json(run("probs", path, "-f", "json"))
    assert out["classes"] == CLASSES
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)
    # Row names are text as the file holds them, even when they look like numbers.
    assert out["rows"] == case["rows"]


@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
def test_row_names_are_the_first_column_of_csv_and_tsv_output(indexed_csv, fmt, sep):
    path, case = indexed_csv
    completed = run("probs", path, "-f", fmt)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    # The index column keeps its header name (empty for pandas' unnamed index), so
    # pandas reads the output back with index_col=0 and this tool reads it back the same way.
    assert lines[0].split(sep) == [case["header"], *CLASSES]
    assert [line.split(sep)[0] for line in lines[1:]] == case["rows"]
    values = np.array([[float(v) for v in line.split(sep)[1:]] for line in lines[1:]])
    np.testing.assert_allclose(values, reference_softmax(LOGITS), rtol=1e-12)


def test_output_of_an_indexed_csv_reads_back_in_pandas(indexed_csv, tmp_path):
    path, case = indexed_csv
    out = tmp_path / "probs.csv"
    completed = run("probs", path, "-o", out)
    assert completed.returncode == 0, completed.stderr
    back = pd.read_csv(out, index_col=0, dtype={0: str})
    assert list(back.columns) == CLASSES
    assert [str(v) for v in back.index] == case["rows"]
    np.testing.assert_allclose(back.to_numpy(), reference_softmax(LOGITS), rtol=1e-12)


def test_row_names_are_shown_in_the_table(tmp_path):
    path = tmp_path / "x.csv"
    frame(["alpha7", "beta8", "gamma9", "delta0"]).to_csv(path)
    completed = run("probs", path, "-f", "table")
    assert completed.returncode == 0, completed.stderr
    for name in ["alpha7", "beta8", "gamma9", "delta0", *CLASSES]:
        assert name in completed.stdout, name


def test_tsv_from_pandas_has_the_same_index_rule(tmp_path):
    path = tmp_path / "x.tsv"
    frame(["r1", "r2", "r3", "r4"]).to_csv(path, sep="\t")
    out = probs_json(run("probs", path, "-f", "json"))
    assert out["classes"] == CLASSES
    assert out["rows"] == ["r1", "r2", "r3", "r4"]
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


def test_no_index_col_reads_the_first_column_as_a_class(tmp_path):
    path = tmp_path / "x.csv"
    frame().to_csv(path)  # index 0..3 under an empty header field
    out = probs_json(run("probs", path, "--no-index-col", "-f", "json"))
    with_index = np.column_stack([np.arange(4.0), LOGITS])
    np.testing.assert_allclose(out["probs"], reference_softmax(with_index), rtol=1e-12)
    assert out["classes"][1:] == CLASSES and len(out["classes"]) == 4
    assert "rows" not in out


def test_index_col_takes_a_numeric_named_first_column_as_row_names(tmp_path):
    path = tmp_path / "x.csv"
    frame([100, 101, 102, 103], "id").to_csv(path)  # `id,cat,dog,bird`: numbers under a named header
    out = probs_json(run("probs", path, "--index-col", "-f", "json"))
    assert out["classes"] == CLASSES
    assert out["rows"] == ["100", "101", "102", "103"]
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


def test_index_rows_are_kept_through_log_probs_and_loss(tmp_path):
    path = tmp_path / "x.csv"
    frame(["r1", "r2", "r3", "r4"]).to_csv(path)
    out = probs_json(run("probs", path, "--log", "-f", "json"))
    np.testing.assert_allclose(out["log_probs"], reference_log_softmax(LOGITS), rtol=1e-12)
    assert out["rows"] == ["r1", "r2", "r3", "r4"]
    out = probs_json(run("loss", path, "--labels", ",".join(map(str, LABELS)), "--reduction", "none", "-f", "json"))
    expected = -reference_log_softmax(LOGITS)[np.arange(4), LABELS]
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-12)


# ---------------------------------------------------------------- 2. the header 0,1,...,C-1 of pd.DataFrame(a)

@pytest.fixture
def numbered_csv(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame(LOGITS).to_csv(path, index=False)  # header `0,1,2`
    return path


def test_numbered_header_is_column_names_with_one_note(numbered_csv):
    completed = run("probs", numbered_csv, "-f", "json")
    out = probs_json(completed)
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)
    assert out["classes"] == ["0", "1", "2"]
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and HEADER_NOTE.match(lines[0]), completed.stderr


def test_numbered_header_row_count_matches_labels(numbered_csv):
    """The bug was found only when a label count failed: four rows, four labels."""
    completed = run("loss", numbered_csv, "--labels", ",".join(map(str, LABELS)), "-f", "json")
    out = probs_json(completed)
    assert out["loss"] == pytest.approx(-reference_log_softmax(LOGITS)[np.arange(4), LABELS].mean(), rel=1e-12)


def test_header_no_reads_the_numbered_row_as_data(numbered_csv):
    completed = run("probs", numbered_csv, "--header", "no", "-f", "json")
    out = probs_json(completed)
    data = np.vstack([[0.0, 1.0, 2.0], LOGITS])
    np.testing.assert_allclose(out["probs"], reference_softmax(data), rtol=1e-12)
    assert "classes" not in out
    assert "note:" not in completed.stderr


def test_header_auto_is_the_default(numbered_csv):
    assert run("probs", numbered_csv, "--header", "auto", "-f", "json").stdout == \
        run("probs", numbered_csv, "-f", "json").stdout


def test_header_yes_takes_any_first_row_as_names(tmp_path):
    path = tmp_path / "a.csv"
    np.savetxt(path, np.vstack([[5, 6, 7], LOGITS]), delimiter=",", fmt="%.6f")
    out = probs_json(run("probs", path, "--header", "yes", "-f", "json"))
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)
    assert [float(c) for c in out["classes"]] == [5.0, 6.0, 7.0]


def test_header_option_rejects_other_values(numbered_csv):
    assert_one_error_line(run("probs", numbered_csv, "--header", "maybe"), "--header")


def test_numbered_header_with_index_gives_names_and_rows(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame(LOGITS).to_csv(path)  # `,0,1,2` over an index column
    out = probs_json(run("probs", path, "-f", "json"))
    assert out["classes"] == ["0", "1", "2"]
    assert out["rows"] == ["0", "1", "2", "3"]
    np.testing.assert_allclose(out["probs"], reference_softmax(LOGITS), rtol=1e-12)


# ---------------------------------------------------------------- 3. several comma-separated arguments

@pytest.mark.parametrize("args", [["1,2,3", "4,5,6"], ["-1,0,2.5", "4,5,6"]])
def test_comma_arguments_are_rows_or_refused_never_flattened(args):
    completed = run("probs", *args, "-f", "json")
    if completed.returncode == 0:
        rows = np.array([[float(v) for v in a.split(",")] for a in args])
        out = json.loads(completed.stdout)
        assert np.shape(out["probs"]) == (2, 3)
        np.testing.assert_allclose(out["probs"], reference_softmax(rows), rtol=1e-12)
    else:
        assert_one_error_line(completed, f'"{args[0]}; {args[1]}"')


@pytest.mark.parametrize("args", [["1,2,3", "4,5"], ["1,2,3", "4"]])
def test_ragged_or_mixed_comma_arguments_are_refused(args):
    assert_one_error_line(run("probs", *args, "-f", "json"))


def test_one_comma_argument_is_still_a_vector():
    out = probs_json(run("probs", "3,2,1", "-f", "json"))
    np.testing.assert_allclose(out["probs"], reference_softmax([3.0, 2.0, 1.0]), rtol=1e-12)


# ---------------------------------------------------------------- 4. a 0/1 mask given as text

Q = "1 0; 0 1"
K = "1 0; 0 1"
V = "1 2; 3 4"


def test_zero_one_text_mask_is_refused_offering_mask_type():
    line = assert_one_error_line(run("attention", Q, K, V, "--mask", "1 0; 0 0", "-f", "json"), "--mask-type")
    assert "bool" in line and "additive" in line, line


def test_zero_one_mask_from_a_text_file_is_refused_too(tmp_path):
    path = tmp_path / "mask.txt"
    np.savetxt(path, np.array([[1, 0], [1, 1]]), fmt="%d")
    assert_one_error_line(run("attention", Q, K, V, "--mask", path, "-f", "json"), "--mask-type")


def torch_sdpa(mask) -> np.ndarray:
    torch = pytest.importorskip("torch")
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    return torch.nn.functional.scaled_dot_product_attention(q, q, v, attn_mask=mask).numpy()


@pytest.mark.parametrize("mask_text", ["1 0; 0 0", "1 0; 1 1"])
def test_mask_type_bool_matches_torch_boolean_mask(mask_text):
    torch = pytest.importorskip("torch")
    mask = np.array([[float(v) for v in row.split()] for row in mask_text.split(";")]) != 0
    out = probs_json(run("attention", Q, K, V, "--mask", mask_text, "--mask-type", "bool", "-f", "json"))
    expected = torch_sdpa(torch.tensor(mask))
    # torch >= 2.5 gives zeros for a query that attends nothing; so does this tool by default.
    np.testing.assert_allclose(out["output"], np.nan_to_num(expected), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mask_text", ["1 0; 0 0", "1 0; 1 1"])
def test_mask_type_additive_matches_torch_float_mask(mask_text):
    torch = pytest.importorskip("torch")
    mask = np.array([[float(v) for v in row.split()] for row in mask_text.split(";")])
    out = probs_json(run("attention", Q, K, V, "--mask", mask_text, "--mask-type", "additive", "-f", "json"))
    np.testing.assert_allclose(out["output"], torch_sdpa(torch.tensor(mask)), rtol=1e-12)


def test_true_false_literals_are_a_boolean_mask():
    torch = pytest.importorskip("torch")
    out = probs_json(run("attention", Q, K, V, "--mask", "True False; True True", "-f", "json"))
    expected = torch_sdpa(torch.tensor([[True, False], [True, True]]))
    np.testing.assert_allclose(out["output"], expected, rtol=1e-12)


def test_a_mask_with_other_numbers_is_still_additive():
    torch = pytest.importorskip("torch")
    out = probs_json(run("attention", Q, K, V, "--mask", "0 -inf; 0 0.5", "-f", "json"))
    expected = torch_sdpa(torch.tensor([[0.0, -np.inf], [0.0, 0.5]], dtype=torch.float64))
    np.testing.assert_allclose(out["output"], expected, rtol=1e-12)


def test_mask_type_rejects_other_values():
    assert_one_error_line(run("attention", Q, K, V, "--mask", "1 0; 1 1", "--mask-type", "float"), "--mask-type")


# ---------------------------------------------------------------- 5. labels written by pandas

def y_series(name=None) -> "pd.Series":
    return pd.Series(LABELS, name=name)


@pytest.mark.parametrize("write", [
    pytest.param(lambda path: y_series().to_csv(path), id="index, unnamed"),
    pytest.param(lambda path: y_series("label").to_csv(path), id="index, named"),
    pytest.param(lambda path: y_series("label").to_csv(path, index=False), id="no index, named"),
    pytest.param(lambda path: y_series().to_csv(path, index=False), id="no index, header 0"),
])
def test_labels_from_pandas_are_one_label_per_row(tmp_path, write):
    logits = tmp_path / "z.npy"
    np.save(logits, LOGITS)
    labels = tmp_path / "y.csv"
    write(labels)
    completed = run("loss", logits, "--labels", labels, "--reduction", "none", "-f", "json")
    out = probs_json(completed)
    expected = -reference_log_softmax(LOGITS)[np.arange(4), LABELS]
    assert np.shape(out["loss"]) == (4,)
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-12)
    assert out["accuracy"] == pytest.approx(np.mean(LOGITS.argmax(axis=1) == LABELS))
