"""A first column of row positions under a name of its own is not a class.

``df.rename_axis("id").to_csv()`` (a named index) writes the row positions as a
first column under the index's name, and polars or pyarrow tables often carry an
``i``/``id`` column 0..n-1. Beside logits that are not whole numbers, such a
column is the rows' positions: read as one more class it gave a softmax over a
class that is not one (row 5 got logit 5), silently. It is refused, naming the
column and what to type; ``--index-col`` reads it as row names in a text file.
A first column 0..n-1 among whole-number logits is a class as before.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

pd = pytest.importorskip("pandas")

LOGITS = np.array([[3.5, 2.0, 1.0], [1.0, -2.25, 0.5], [0.0, 0.1, 4.0], [2.0, 2.5, -1.0]])


def test_a_named_index_of_row_positions_in_a_csv_is_refused(tmp_path):
    path = tmp_path / "logits.csv"
    pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"]).rename_axis("id").to_csv(path)
    line = assert_one_error_line(run("probs", path, "-f", "json"))
    assert "column 'id' holds the row positions 0..3" in line and "--index-col" in line


def test_index_col_reads_the_named_index_as_row_names(tmp_path):
    path = tmp_path / "logits.csv"
    pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"]).rename_axis("id").to_csv(path)
    completed = run("probs", path, "--index-col", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(LOGITS), rtol=1e-12)


def test_a_polars_position_column_in_parquet_is_refused(tmp_path):
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    path = tmp_path / "logits.parquet"
    pl.DataFrame({"i": range(4), "cat": LOGITS[:, 0], "dog": LOGITS[:, 1], "bird": LOGITS[:, 2]}).write_parquet(path)
    line = assert_one_error_line(run("probs", path, "-f", "json"))
    assert "column 'i' holds the row positions 0..3" in line and "--as-logits" in line


def test_a_first_class_counting_up_among_whole_number_logits_is_a_class(tmp_path):
    whole = np.array([[0.0, 5.0, 3.0], [1.0, 2.0, 4.0], [2.0, 0.0, 1.0]])
    completed = run("probs", "-f", "json", input="a,b,c\n0,5,3\n1,2,4\n2,0,1\n")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(whole), rtol=1e-12)


@pytest.mark.parametrize("separator", [",", "\t"])
def test_a_headerless_table_with_its_index_is_refused(tmp_path, separator):
    # df.to_csv(header=False) writes the index 0..n-1 as a first column under no name: it was one more class.
    path = tmp_path / "noheader.csv"
    pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"]).to_csv(path, header=False, sep=separator)
    line = assert_one_error_line(run("probs", path, "-f", "json"))
    assert "row positions 0..3" in line and "--index-col" in line

    completed = run("probs", path, "--index-col", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(LOGITS), rtol=1e-12)


def test_a_headerless_first_column_counting_up_among_whole_number_logits_is_a_class():
    whole = np.array([[0.0, 5.0, 3.0], [1.0, 2.0, 4.0], [2.0, 0.0, 1.0]])
    completed = run("probs", "-f", "json", input="0,5,3\n1,2,4\n2,0,1\n")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(whole), rtol=1e-12)
