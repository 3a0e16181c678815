"""Leading columns of integers under names of their own, beside fractional logits, are not classes.

``df.set_index(["g", "k"]).to_csv()`` writes each level of a named index as a
first column under the level's name, holding integers as pandas writes an
integer column ("3", where a float column writes "3.0"); so does
``df.set_index("id").to_csv()`` with ids that are not the row positions. Read as
classes, the levels were softmaxed with the logits: 3 classes became 5, exit 0.
Beside logits with fractions they are refused, naming each column and the two
ways on: ``--index-col`` (row names) or ``--no-index-col`` (classes). A column of
integers among whole-number logits is a class, as before.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

pd = pytest.importorskip("pandas")

LOGITS = np.array([[3.5, 2.0, 1.0], [1.0, -2.25, 0.5], [0.0, 0.1, 4.0], [2.0, 2.5, -1.0]])
CLASSES = ["cat", "dog", "bird"]


def two_levels() -> pd.DataFrame:
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.insert(0, "doc", [7, 7, 9, 9])
    frame.insert(1, "token", [0, 1, 0, 1])
    return frame.set_index(["doc", "token"])


@pytest.mark.parametrize("separator", [",", "\t"])
def test_a_two_level_named_index_is_refused_naming_both_levels(tmp_path, separator):
    path = tmp_path / "logits.csv"
    two_levels().to_csv(path, sep=separator)
    line = assert_one_error_line(run("probs", path, "-f", "json"))
    assert "columns 'doc', 'token' hold only integers" in line
    assert "--index-col" in line and "--no-index-col" in line


def test_index_col_reads_both_levels_as_row_names(tmp_path):
    path = tmp_path / "logits.csv"
    two_levels().to_csv(path)
    completed = run("probs", path, "--index-col", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    np.testing.assert_allclose(result["probs"], reference_softmax(LOGITS), rtol=1e-12)
    assert result["rows"] == ["7/0", "7/1", "9/0", "9/1"]


def test_a_named_index_of_ids_is_refused_and_no_index_col_keeps_it_a_class(tmp_path):
    path = tmp_path / "logits.csv"
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.insert(0, "id", [17, 4, 93, 8])
    frame.set_index("id").to_csv(path)
    line = assert_one_error_line(run("probs", path, "-f", "json"))
    assert "column 'id' holds only integers" in line

    completed = run("probs", path, "--no-index-col", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(frame.to_numpy(float)),
                               rtol=1e-12)


def test_a_first_column_of_integers_among_whole_number_logits_is_a_class():
    whole = np.array([[7.0, 5.0, 3.0], [1.0, 2.0, 4.0], [9.0, 0.0, 1.0]])
    completed = run("probs", "-f", "json", input="a,b,c\n7,5,3\n1,2,4\n9,0,1\n")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(whole), rtol=1e-12)


def test_a_float_column_of_whole_values_is_a_class(tmp_path):
    path = tmp_path / "logits.csv"
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.insert(0, "bias", [1.0, 2.0, 3.0, 5.0])  # pandas writes a float column "1.0": a class, not an index
    frame.to_csv(path, index=False)
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(frame.to_numpy(float)),
                               rtol=1e-12)
