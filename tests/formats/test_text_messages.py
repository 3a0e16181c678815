"""Issue 12, messages on the text side: text as people paste it is read, or refused naming the real problem.

The text is printed by its real producers (Python's ``print`` of a tuple, NumPy's
``print``/``repr`` of an array, pandas' ``to_csv``) in a subprocess, and every
command runs through the installed ``softmax``. Expected numbers come from plain
NumPy (``reference_softmax`` in conftest), never from ``softmax_cli``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, reference_softmax, run


def printed(code: str) -> str:
    """What ``python -c CODE`` prints: the text a user pipes into the tool."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def probs_of(completed) -> np.ndarray:
    assert completed.returncode == 0, completed.stderr
    return np.array(json.loads(completed.stdout)["probs"], dtype=np.float64)


# ---------------------------------------------------------------- white space is any run of spaces and tabs

def test_mixed_tabs_and_spaces_are_white_space():
    out = probs_of(run("probs", "-f", "json", input="1 2 3\n4\t5\t6\n"))
    np.testing.assert_allclose(out, reference_softmax([[1, 2, 3], [4, 5, 6]]), rtol=1e-12)


def test_tab_separated_names_with_spaces_stay_tab_separated(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("big cat\tsmall dog\n1\t2\n3\t4\n")
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["classes"] == ["big cat", "small dog"]


# ---------------------------------------------------------------- arrays as Python and NumPy print them

@pytest.mark.parametrize("code, expected", [
    ("print((1, 2, 3))", [1, 2, 3]),
    ("print([(1, 2), (3, 4)])", [[1, 2], [3, 4]]),
    ("print(((1.5, -2), (0, 4e-3)))", [[1.5, -2], [0, 4e-3]]),
    ("import numpy as np; print(np.array([[0.1, 0.2], [0.3, 0.4]]))", [[0.1, 0.2], [0.3, 0.4]]),
    ("import numpy as np; print(np.array([0.5, -1.25, 3.0]))", [0.5, -1.25, 3.0]),
    ("import numpy as np; print(repr(np.array([[1.0, -2.0], [0.5, 0.25]])))", [[1.0, -2.0], [0.5, 0.25]]),
    ("import numpy as np; print(repr(np.array([[1, 2, 3]], dtype=np.float32)))", [[1, 2, 3]]),
    ("import numpy as np; print(np.array([[1.0, -np.inf], [0.5, 0.25]]))", [[1.0, -np.inf], [0.5, 0.25]]),
])
def test_printed_arrays_are_read_from_standard_input(code, expected):
    out = probs_of(run("probs", "-f", "json", input=printed(code)))
    np.testing.assert_allclose(out, reference_softmax(expected), rtol=1e-6)


def test_a_printed_array_in_a_text_file_is_read_too(tmp_path):
    path = tmp_path / "pasted.txt"
    path.write_text(printed("import numpy as np; print(np.array([[0.1, 0.2, 0.3], [3.0, 2.0, 1.0]]))"))
    out = probs_of(run("probs", path, "-f", "json"))
    np.testing.assert_allclose(out, reference_softmax([[0.1, 0.2, 0.3], [3.0, 2.0, 1.0]]), rtol=1e-12)


def test_numpy_elision_is_refused_saying_how_to_print_everything():
    text = printed("import numpy as np; print(np.arange(2000.0).reshape(2, 1000))")
    line = assert_one_error_line(run("probs", "-f", "json", input=text), "<stdin>")
    assert "..." in line and "np.save" in line, line


def test_ragged_printed_brackets_say_what_was_expected():
    line = assert_one_error_line(run("probs", "-f", "json", input=printed("print([(1, 2), (3,)])")))
    assert "unequal lengths" in line, line


# ---------------------------------------------------------------- a bad value in text: line and column too

def test_nan_in_a_text_file_names_the_line_and_column_and_the_array_index(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("# from a model\na,b,c\n1,2,3\n4,nan,6\n")
    # Array row 1, column 1 is the file's line 4 (a comment and a header above), field 2.
    assert_one_error_line(run("probs", path), "NaN", "row 1, column 1", "line 4, column 2")


def test_nan_in_a_pandas_csv_counts_the_index_column(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "bad.csv"
    pd.DataFrame([[1.0, 2.0], [np.inf, 0.5]], columns=["cat", "dog"], index=["r1", "r2"]).to_csv(path)
    assert_one_error_line(run("probs", path), "+inf", "row 1, column 0", "line 3, column 2")


def test_nan_on_standard_input_names_the_line_and_column():
    assert_one_error_line(run("probs", input="1 2\n3 nan\n"), "<stdin>", "row 1, column 1", "line 2, column 2")


def test_nan_with_axis_zero_names_the_same_value_in_the_file(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 nan 3\n4 5 6\n")
    # With --axis 0 the file's columns are the rows: the NaN is row 1, class 0; in the file line 1, column 2.
    assert_one_error_line(run("probs", path, "--axis", "0"), "row 1, column 0", "line 1, column 2")


# ---------------------------------------------------------------- option values and standard input

def test_labels_that_are_names_say_labels_are_class_indices_or_a_file():
    line = assert_one_error_line(run("loss", "1", "2", "3", "--labels", "cat,dog"), "--labels", "class indices")
    assert "cannot tell the format" not in line, line


def test_standard_input_feeds_only_one_input():
    line = assert_one_error_line(run("loss", "-", "--labels", "-", input="1 2 3\n"), "standard input", "only one")
    assert "empty" not in line, line


def test_standard_input_for_labels_alone_still_works(tmp_path):
    logits = tmp_path / "z.npy"
    np.save(logits, np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]))
    completed = run("loss", logits, "--labels", "-", "--reduction", "none", "-f", "json", input="2\n0\n")
    assert completed.returncode == 0, completed.stderr
    expected = -reference_log_softmax([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])[[0, 1], [2, 0]]
    np.testing.assert_allclose(json.loads(completed.stdout)["loss"], expected, rtol=1e-12)


# ---------------------------------------------------------------- attention masks written as text

Q = "1 0; 0 1"
V = "1 2; 3 4"


def test_true_false_mask_file_is_a_boolean_mask(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "mask.txt"
    path.write_text("True False\nTrue True\n")
    completed = run("attention", Q, Q, V, "--mask", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, q, v, attn_mask=torch.tensor([[True, False], [True, True]])).numpy()
    np.testing.assert_allclose(json.loads(completed.stdout)["output"], expected, rtol=1e-12)


def test_mask_type_bool_refuses_other_numbers():
    assert_one_error_line(run("attention", Q, Q, V, "--mask", "0 -inf; 0 0", "--mask-type", "bool"), "--mask-type bool")


def test_standard_input_feeds_one_attention_operand():
    assert_one_error_line(run("attention", "-", Q, V, "--mask", "-", input="1 0\n0 1\n"), "standard input")


# ---------------------------------------------------------------- more pandas layouts

def test_a_series_of_logits_is_one_vector_whose_index_names_the_classes(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "s.csv"
    pd.Series([1.0, 2.0, 0.5], index=["cat", "dog", "bird"]).to_csv(path)  # `,0` over `cat,1.0` ...
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    out = json.loads(completed.stdout)
    assert out["classes"] == ["cat", "dog", "bird"] and "rows" not in out
    np.testing.assert_allclose(out["probs"], reference_softmax([1.0, 2.0, 0.5]), rtol=1e-12)


def test_a_numbered_first_row_over_integers_is_data_with_a_note(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "ints.csv"
    pd.DataFrame(np.array([[3, 1, 2], [0, 5, 4]])).to_csv(path, index=False)  # header `0,1,2` over integers
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"],
                               reference_softmax([[0, 1, 2], [3, 1, 2], [0, 5, 4]]), rtol=1e-12)
    assert completed.stderr.startswith("note: ") and "--header yes" in completed.stderr
    out = json.loads(run("probs", path, "--header", "yes", "-f", "json").stdout)
    assert out["classes"] == ["0", "1", "2"]
    np.testing.assert_allclose(out["probs"], reference_softmax([[3, 1, 2], [0, 5, 4]]), rtol=1e-12)


def test_a_semicolon_table_with_decimal_commas_says_so(tmp_path):
    # pandas' df.to_csv(sep=";", decimal=","), as European locales write it: the separator is ';', not ','.
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([[1.5, 2.0, 0.5], [0.25, 0.75, 3.0]], columns=["a", "b", "c"])
    frame.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    # The text columns before it read as row names, so the first class column is the one named.
    assert_one_error_line(run("probs", tmp_path / "eu.csv"), "'0,5' in column 'c'", "decimal comma", "decimal='.'",
                          "line 2, column 3")


def test_a_mask_key_picks_the_column_of_a_csv_mask(tmp_path):
    # pd.DataFrame({"attention_mask": m, "length": n}).to_csv(): --mask-key picks the column; it was ignored, and the
    # two columns were refused as a mask of the wrong shape.
    pd = pytest.importorskip("pandas")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    logits, labels, keep = rng.normal(size=(8, 3)), rng.integers(0, 3, 8), np.array([1, 1, 0, 1, 1, 1, 0, 1])
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", labels)
    pd.DataFrame({"attention_mask": keep, "length": 8}).to_csv(tmp_path / "mask.csv", index=False)
    completed = run("loss", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--mask", tmp_path / "mask.csv",
                    "--mask-key", "attention_mask", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(np.where(keep == 1, labels, -100)))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)
    assert_one_error_line(run("loss", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--mask",
                              tmp_path / "mask.csv", "--mask-key", "mask"),
                          "no column named 'mask'", "attention_mask, length")


def test_pandas_header_over_whole_floats_is_a_header(tmp_path):
    # pd.DataFrame(whole_floats).to_csv(index=False): "0,1,2" over "2.0,-3.0,1.0"; the floats' ".0" says they are
    # values of a float frame, so the first row is pandas' header, not a row of logits (it was read as data).
    pd = pytest.importorskip("pandas")
    values = np.array([[2.0, -3.0, 1.0], [0.0, 4.0, -1.0]])
    pd.DataFrame(values).to_csv(tmp_path / "whole.csv", index=False)
    assert (tmp_path / "whole.csv").read_text().splitlines()[:2] == ["0,1,2", "2.0,-3.0,1.0"]
    completed = run("probs", tmp_path / "whole.csv", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(values), rtol=1e-15)
    assert "first row 0..2 read as column names" in completed.stderr


def test_a_class_name_given_twice_in_a_header_names_the_file(tmp_path):
    pd = pytest.importorskip("pandas")
    pd.DataFrame([[1.0, 2.0, 3.0]], columns=["a", "b", "a"]).to_csv(tmp_path / "logits.csv", index=False)
    assert_one_error_line(run("probs", tmp_path / "logits.csv"), "'a' is given twice", "logits.csv, header")


def test_an_empty_field_polars_writes_for_a_null_logit_says_what_to_write(tmp_path):
    pl = pytest.importorskip("polars")
    pl.DataFrame({"cat": [1.0, 2.0], "dog": [None, 1.0], "bird": [0.5, 0.1]}).write_csv(tmp_path / "logits.csv")
    assert_one_error_line(run("probs", tmp_path / "logits.csv"), "empty field", "null", "-inf for a masked logit",
                          "logits.csv, line 2, column 2")


def test_a_trailing_separator_in_logits_says_what_to_write(tmp_path):
    (tmp_path / "logits.csv").write_text("1,2,3,\n4,5,6,\n")
    assert_one_error_line(run("probs", tmp_path / "logits.csv"), "empty field", "trailing separator",
                          "column 4")


def test_an_empty_label_polars_writes_for_a_null_says_to_write_the_ignore_index(tmp_path):
    pl = pytest.importorskip("polars")
    (tmp_path / "logits.txt").write_text("1 2 3\n4 5 6\n")
    pl.DataFrame({"id": ["a", "b"], "label": [1, None]}).write_csv(tmp_path / "labels.csv")
    assert_one_error_line(run("loss", tmp_path / "logits.txt", "--labels", tmp_path / "labels.csv"),
                          "empty", "null", "ignore index (-100)", "labels.csv")
