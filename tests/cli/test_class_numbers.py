"""Classes named by numbers other than their positions: a label is the class of its number, never a position.

scikit-learn names the columns of ``predict_proba`` by ``classes_``, the sorted
labels it saw ([0, 2, 5], or [1, 2, 3]); a table written from it names its
columns so. Label 2 then means the column named 2, as
``sklearn.metrics.log_loss(y, proba, labels=classes_)`` reads it, not the third
column. Against classes named 0..C-1 in another order, an operand without names
(weights, the other side of ``compare``) could mean either, and is refused.
The files are written by pandas from real scikit-learn models; the expected
figures are scikit-learn's own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
linear_model = pytest.importorskip("sklearn.linear_model")
metrics = pytest.importorskip("sklearn.metrics")


def fitted(classes: list[int], rows: int = 60, seed: int = 0):
    """A logistic regression on labels drawn from ``classes``: its probabilities (columns in ``classes_`` order)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    labels = np.array(classes)[rng.integers(0, len(classes), rows)]
    model = linear_model.LogisticRegression(max_iter=500).fit(features, labels)
    return model.classes_, model.predict_proba(features), labels


@pytest.mark.parametrize("classes", [[0, 2, 5], [1, 2, 3], [-1, 1], [1.0, 2.0, 3.0]],
                         ids=["gaps", "from-one", "binary-sign", "floats"])
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_labels_pick_the_class_of_their_number(tmp_path, classes, suffix):
    names, proba, labels = fitted(classes)
    frame = pd.DataFrame(proba, columns=[str(name) for name in names])
    path = tmp_path / f"proba{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    np.save(tmp_path / "y.npy", labels)
    header = ["--header", "yes"] if suffix == ".csv" else []  # integer names over decimals are asked for
    completed = run("loss", path, "--from-probs", *header, "--labels", tmp_path / "y.npy", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = metrics.log_loss(labels, proba, labels=names)
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-9)
    assert "label k is the class named k" in completed.stderr


def test_a_label_that_names_no_class_is_refused(tmp_path):
    # 0-based positions against classes named 1, 2, 3: label 0 is no class; taking it as a position is a guess.
    names, proba, labels = fitted([1, 2, 3])
    pd.DataFrame(proba, columns=[str(name) for name in names]).to_parquet(tmp_path / "proba.parquet")
    np.save(tmp_path / "positions.npy", np.searchsorted(names, labels))
    assert_one_error_line(run("loss", tmp_path / "proba.parquet", "--from-probs", "--labels",
                              tmp_path / "positions.npy"), "label 0 is not one of the logits' classes (1, 2, 3)",
                          "positions.npy")


@pytest.mark.parametrize("weights", ["typed", "npy"])
def test_unnamed_weights_against_classes_numbered_in_another_order_are_refused(tmp_path, weights):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(8, 3)))[[2, 0, 1]]
    frame.columns = frame.columns.astype(str)
    frame.to_parquet(tmp_path / "logits.parquet")
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 8))
    np.save(tmp_path / "w.npy", np.array([1.0, 2.0, 3.0]))
    spec = "1,2,3" if weights == "typed" else tmp_path / "w.npy"
    assert_one_error_line(run("loss", tmp_path / "logits.parquet", "--labels", tmp_path / "y.npy", "--weights", spec),
                          "named 0..2 in another order", "--weights")


@pytest.mark.parametrize("unnamed", ["original.npy", "permuted.npy"])
def test_compare_of_classes_numbered_in_another_order_against_an_unnamed_side_is_refused(tmp_path, unnamed):
    """df[[2, 0, 1]] against the frame's own values by position, or against the unpermuted model by number?"""
    rng = np.random.default_rng(4)
    original = pd.DataFrame(rng.normal(size=(6, 3)))
    permuted = original[[2, 0, 1]]
    permuted.columns = permuted.columns.astype(str)
    permuted.to_parquet(tmp_path / "permuted.parquet")
    np.save(tmp_path / "original.npy", original.to_numpy())
    np.save(tmp_path / "permuted.npy", permuted.to_numpy())
    assert_one_error_line(run("compare", tmp_path / "permuted.parquet", tmp_path / unnamed, "-f", "json"),
                          "named 0..2 in another order")


def test_weights_named_0_to_c_follow_the_classes_of_those_numbers(tmp_path):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(12, 3))
    frame = pd.DataFrame(logits)[[2, 0, 1]]
    frame.columns = frame.columns.astype(str)
    frame.to_parquet(tmp_path / "logits.parquet")
    labels = rng.integers(0, 3, 12)
    np.save(tmp_path / "y.npy", labels)
    weights = pd.Series([1.0, 2.0, 5.0])  # index 0, 1, 2: the weight of class k
    weights.to_csv(tmp_path / "w.csv")
    completed = run("loss", tmp_path / "logits.parquet", "--labels", tmp_path / "y.npy", "--weights",
                    tmp_path / "w.csv", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels),
                                                 weight=torch.tensor(weights.to_numpy()))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("logits_file", ["logits.npy", "permuted.parquet"])
def test_a_class_weight_table_is_matched_by_its_class_column(tmp_path, suffix, logits_file):
    """pd.Series(w, index=pd.Index([2, 0, 1], name="class"), name="weight").to_csv() (or reset_index().to_parquet()):
    a column of class indices beside their weights."""
    rng = np.random.default_rng(6)
    logits, labels = rng.normal(size=(12, 3)), rng.integers(0, 3, 12)
    np.save(tmp_path / "logits.npy", logits)
    permuted = pd.DataFrame(logits)[[2, 0, 1]]
    permuted.columns = permuted.columns.astype(str)
    permuted.to_parquet(tmp_path / "permuted.parquet")
    np.save(tmp_path / "y.npy", labels)
    weights = pd.Series([0.5, 1.0, 2.0], index=pd.Index([2, 0, 1], name="class"), name="weight")
    path = tmp_path / f"w{suffix}"
    weights.to_csv(path) if suffix == ".csv" else weights.reset_index().to_parquet(path)
    completed = run("loss", tmp_path / logits_file, "--labels", tmp_path / "y.npy", "--weights", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels),
                                                 weight=torch.tensor(weights.sort_index().to_numpy()))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)


def test_class_numbers_against_unnamed_columns_say_how_to_map_them(tmp_path):
    """classes_ [0, 2, 5] and an .npy of probabilities (no column names): 'label 5 is out of range for 3 classes'
    said nothing about why; the labels name classes, they do not count columns."""
    names, proba, labels = fitted([0, 2, 5])
    np.save(tmp_path / "proba.npy", proba)
    np.save(tmp_path / "y.npy", labels)
    assert_one_error_line(run("loss", tmp_path / "proba.npy", "--from-probs", "--labels", tmp_path / "y.npy"),
                          "label 5 is out of range for 3 classes", "3 distinct values (0, 2, 5)",
                          "np.searchsorted(classes_, y)")
    np.save(tmp_path / "positions.npy", np.searchsorted(names, labels))
    completed = run("loss", tmp_path / "proba.npy", "--from-probs", "--labels", tmp_path / "positions.npy",
                    "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["loss"] == pytest.approx(metrics.log_loss(labels, proba, labels=names),
                                                                 rel=1e-9)
