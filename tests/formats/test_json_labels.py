"""A JSON labels file is JSON: ``--labels y.json`` holding ``[0, 2, 1]`` is three class indices.

Every non-binary labels file went through the text reader of one label a line
(or a table's column), which split ``[0, 2, 1]`` at its commas: "label '[0' is
not one of the logits' classes", or "the labels are class names ('[0', ...)".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run
from scipy.special import log_softmax

pd = pytest.importorskip("pandas")

LOGITS = np.array([[3.0, 2.0, 1.0], [1.0, -2.0, 0.5], [0.0, 0.0, 4.0], [0.5, 1.5, -1.0]])
LABELS = [0, 2, 1, 1]


@pytest.mark.parametrize("logits", ["logits.npy", "logits.parquet"])
@pytest.mark.parametrize("labels", ["y.json", "y.jsonl"])
def test_json_labels_are_class_indices(tmp_path, logits, labels):
    np.save(tmp_path / "logits.npy", LOGITS)
    pd.DataFrame(LOGITS, columns=["cat", "dog", "bird"]).to_parquet(tmp_path / "logits.parquet")
    (tmp_path / "y.json").write_text(json.dumps(LABELS))
    (tmp_path / "y.jsonl").write_text("".join(f"{label}\n" for label in LABELS))
    completed = run("loss", logits, "--labels", labels, "-f", "csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    names, values = completed.stdout.splitlines()[:2]
    loss = float(values.split(",")[names.split(",").index("loss")])
    expected = -log_softmax(LOGITS, axis=1)[np.arange(len(LABELS)), LABELS].mean()
    assert loss == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("orient", ["jsonl", "json", "parquet"])
def test_labels_from_records_of_a_list_column_beside_a_label_column_name_the_label_column(tmp_path, orient):
    """``{"probs": [...], "label": 3}`` records as --labels, without --labels-key: the list column was read as
    target distributions, scoring the model against its own outputs (loss 0.049 for sklearn's 0.031, exit 0)."""
    datasets = pytest.importorskip("sklearn.datasets")
    linear = pytest.importorskip("sklearn.linear_model")
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = datasets.load_digits(return_X_y=True)
    probs = linear.LogisticRegression(max_iter=3000).fit(x[:1500], y[:1500]).predict_proba(x[1500:1550])
    path = tmp_path / f"scored.{orient}"
    frame = pd.DataFrame({"probs": list(probs), "label": y[1500:1550]})
    if orient == "parquet":
        pytest.importorskip("pyarrow")
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=orient == "jsonl")
    refused = run("loss", path, "--from-probs", "--labels", path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "a label column 'label' beside 'probs'" in refused.stderr
    assert "--labels-key label" in refused.stderr
    completed = run("loss", path, "--from-probs", "--labels", path, "--labels-key", "label", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = metrics.log_loss(y[1500:1550], probs, labels=range(10))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-9)
