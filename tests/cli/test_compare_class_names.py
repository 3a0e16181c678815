"""``compare`` matches named classes by name: another column order is the same distribution, other names are refused.

The tables are written by pandas (CSV, Parquet); the expected KL is computed
with plain NumPy in float64 from the columns matched by name.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, run

pd = pytest.importorskip("pandas")

CLASSES = ["cat", "dog", "bird", "fish"]
RNG = np.random.default_rng(20)
REFERENCE = RNG.normal(size=(5, 4)) * 2
CANDIDATE = REFERENCE + RNG.normal(size=(5, 4)) * 0.1


def kl_mean(p_logits, q_logits) -> float:
    log_p, log_q = reference_log_softmax(p_logits), reference_log_softmax(q_logits)
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))


def write(frame, path):
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_same_distributions_in_another_column_order_are_identical(tmp_path, suffix):
    order = ["bird", "cat", "fish", "dog"]
    ref = write(pd.DataFrame(REFERENCE, columns=CLASSES), tmp_path / f"ref{suffix}")
    cand = write(pd.DataFrame(REFERENCE, columns=CLASSES)[order], tmp_path / f"cand{suffix}")
    completed = run("compare", ref, cand, "-f", "json", "--max-kl", "0")
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["kl_mean"] == 0.0
    assert summary["top1_agreement"] == 1.0


def test_a_candidate_in_another_order_is_compared_class_by_class(tmp_path):
    order = ["dog", "fish", "cat", "bird"]
    ref = write(pd.DataFrame(REFERENCE, columns=CLASSES), tmp_path / "ref.parquet")
    cand = write(pd.DataFrame(CANDIDATE, columns=CLASSES)[order], tmp_path / "cand.csv")
    completed = run("compare", ref, cand, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["kl_mean"], kl_mean(REFERENCE, CANDIDATE), rtol=1e-12)


def test_labels_index_the_reference_order(tmp_path):
    labels = np.array([0, 3, 1, 2, 0])
    np.savetxt(tmp_path / "labels.txt", labels, fmt="%d")
    ref = write(pd.DataFrame(REFERENCE, columns=CLASSES), tmp_path / "ref.csv")
    cand = write(pd.DataFrame(CANDIDATE, columns=CLASSES)[CLASSES[::-1]], tmp_path / "cand.csv")
    completed = run("compare", ref, cand, "--labels", tmp_path / "labels.txt", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    nll = -reference_log_softmax(CANDIDATE)[np.arange(5), labels]
    np.testing.assert_allclose(json.loads(completed.stdout)["ppl_cand"], np.exp(nll.mean()), rtol=1e-12)


def test_different_class_names_are_refused_naming_them(tmp_path):
    ref = write(pd.DataFrame(REFERENCE, columns=CLASSES), tmp_path / "ref.csv")
    cand = write(pd.DataFrame(REFERENCE, columns=["cat", "dog", "bird", "whale"]), tmp_path / "cand.csv")
    line = assert_one_error_line(run("compare", ref, cand), "name different classes", "'fish'", "'whale'",
                                 "--classes")
    assert str(ref) in line and str(cand) in line


def test_classes_compares_by_position(tmp_path):
    ref = write(pd.DataFrame(REFERENCE, columns=CLASSES), tmp_path / "ref.csv")
    cand = write(pd.DataFrame(CANDIDATE, columns=["a", "b", "c", "d"]), tmp_path / "cand.csv")
    completed = run("compare", ref, cand, "--classes", "w,x,y,z", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["kl_mean"], kl_mean(REFERENCE, CANDIDATE), rtol=1e-12)
