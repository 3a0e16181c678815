"""Target distributions given as a table with named class columns are matched to the logits' classes by name.

A soft-label table written by pandas with its columns in another order than the
logits' named columns is the same targets: loss and grad must score each class
against its own target, as compare already matches two models' columns. Other
names are refused. The expected values are plain NumPy in float64 from the
columns matched by name.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, run

pd = pytest.importorskip("pandas")

CLASSES = ["cat", "dog", "eel", "fox"]
SHUFFLED = ["eel", "cat", "fox", "dog"]
RNG = np.random.default_rng(2026)
LOGITS = RNG.normal(size=(6, 4))
TARGETS = np.exp(reference_log_softmax(RNG.normal(size=(6, 4))))


def write(frame, path):
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


@pytest.fixture(params=[".csv", ".parquet"])
def tables(tmp_path, request):
    logits = write(pd.DataFrame(LOGITS, columns=CLASSES), tmp_path / f"logits{request.param}")
    targets = write(pd.DataFrame(TARGETS, columns=CLASSES)[SHUFFLED], tmp_path / f"targets{request.param}")
    return logits, targets


def test_loss_matches_target_columns_to_the_logits_classes_by_name(tables):
    logits, targets = tables
    completed = run("loss", logits, "--labels", targets, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = float(np.mean(-np.sum(TARGETS * reference_log_softmax(LOGITS), axis=-1)))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_grad_matches_target_columns_to_the_logits_classes_by_name(tables):
    logits, targets = tables
    completed = run("grad", logits, "--labels", targets, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = (np.exp(reference_log_softmax(LOGITS)) - TARGETS) / len(LOGITS)
    np.testing.assert_allclose(json.loads(completed.stdout)["grad"], expected, rtol=1e-12, atol=1e-15)


def test_target_columns_under_other_names_are_refused(tmp_path):
    logits = write(pd.DataFrame(LOGITS, columns=CLASSES), tmp_path / "logits.parquet")
    targets = write(pd.DataFrame(TARGETS, columns=["cat", "dog", "eel", "gnu"]), tmp_path / "targets.parquet")
    completed = run("loss", logits, "--labels", targets, "-f", "json")
    assert completed.returncode == 2
    line = assert_one_error_line(completed)
    assert "'fox'" in line and "'gnu'" in line and ".npy" in line and "targets.parquet" in line
    assert completed.stdout == ""
