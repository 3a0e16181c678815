"""Logit columns whose values happen to be whole, written by pandas as floats ("3.0"), are classes.

After the row names, a named column of integers is read as one more index
level (a position under a document name, as ``df.to_csv()`` writes a
two-level index). Whole floats counted as integers, so the first class
columns of ``df.to_csv()`` whose logits were whole (3.0, -2.0) became row
names, and what was left was softmaxed, silently. pandas writes an integer
level as "0" and a float as "0.0"; only the first is an index level.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_softmax, run

pd = pytest.importorskip("pandas")

LOGITS = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5], [0.0, 0.0, 4.0]])


def table(completed) -> tuple[list[str], np.ndarray]:
    header, *rows = completed.stdout.splitlines()
    return header.split(","), np.array([[float(x) for x in row.split(",")[-3:]] for row in rows])


def test_a_two_level_index_keeps_whole_float_logits_as_classes(tmp_path):
    index = pd.MultiIndex.from_tuples([("d1", 0), ("d1", 1), ("d2", 0)], names=["doc", "pos"])
    pd.DataFrame(LOGITS, columns=["a", "b", "c"], index=index).to_csv(tmp_path / "scored.csv")
    completed = run("probs", "scored.csv", "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    header, probs = table(completed)
    assert header[-3:] == ["a", "b", "c"] and len(header) == 4
    np.testing.assert_allclose(probs, reference_softmax(LOGITS), rtol=1e-15)


def test_an_unnamed_frame_keeps_whole_float_logits_as_classes(tmp_path):
    pd.DataFrame(LOGITS).to_csv(tmp_path / "plain.csv")
    completed = run("probs", "plain.csv", "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    header, probs = table(completed)
    assert header == ["", "0", "1", "2"]
    np.testing.assert_allclose(probs, reference_softmax(LOGITS), rtol=1e-15)
