"""Rows named by a table's index are matched by name, never by position.

pandas writes a DataFrame's or Series' index as the first column (CSV) or as
stored index columns (Parquet). Two models' outputs, or logits and their
labels, whose rows are the same names in another order (``df.sample(frac=1)``,
a re-sorted file) are the same rows: compare and loss must pair each row with
its namesake. Other row names are refused with one line. The expected values
are plain NumPy in float64 from the rows matched by name.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_log_softmax, run

pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(1207)
ROWS = [f"s{i}" for i in range(8)]
REFERENCE = RNG.normal(size=(8, 4))
CANDIDATE = REFERENCE + RNG.normal(size=(8, 4)) * 0.3
LABELS = RNG.integers(0, 4, size=8)


def kl_mean(p_logits, q_logits) -> float:
    log_p, log_q = reference_log_softmax(p_logits), reference_log_softmax(q_logits)
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)))


def write(frame, path):
    frame.to_csv(path) if path.suffix == ".csv" else frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_compare_pairs_rows_by_their_names(tmp_path, suffix):
    ref = write(pd.DataFrame(REFERENCE, index=ROWS, columns=list("abcd")), tmp_path / f"ref{suffix}")
    shuffled = pd.DataFrame(CANDIDATE, index=ROWS, columns=list("abcd")).iloc[[3, 7, 0, 5, 1, 6, 2, 4]]
    cand = write(shuffled, tmp_path / f"cand{suffix}")
    completed = run("compare", ref, cand, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["kl_mean"] == pytest.approx(kl_mean(REFERENCE, CANDIDATE), rel=1e-12)


def test_compare_refuses_rows_under_other_names(tmp_path):
    ref = write(pd.DataFrame(REFERENCE, index=ROWS, columns=list("abcd")), tmp_path / "ref.parquet")
    other = [f"t{i}" for i in range(8)]
    cand = write(pd.DataFrame(CANDIDATE, index=other, columns=list("abcd")), tmp_path / "cand.parquet")
    line = assert_one_error_line(run("compare", ref, cand, "-f", "json"))
    assert "'s0'" in line and "'t0'" in line and "index=False" in line


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_loss_pairs_labels_with_the_logits_rows_by_name(tmp_path, suffix):
    logits = write(pd.DataFrame(REFERENCE, index=ROWS, columns=list("abcd")), tmp_path / f"logits{suffix}")
    series = pd.Series(LABELS, index=ROWS, name="label").iloc[::-1]
    labels = tmp_path / f"labels{suffix}"
    series.to_csv(labels) if suffix == ".csv" else series.to_frame().to_parquet(labels)
    completed = run("loss", logits, "--labels", labels, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = -np.mean(reference_log_softmax(REFERENCE)[np.arange(8), LABELS])
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_labels_under_other_row_names_are_refused_naming_the_labels_file(tmp_path):
    logits = write(pd.DataFrame(REFERENCE, index=ROWS, columns=list("abcd")), tmp_path / "logits.csv")
    labels = tmp_path / "labels.csv"
    pd.Series(LABELS, index=[f"t{i}" for i in range(8)], name="label").to_csv(labels)
    line = assert_one_error_line(run("loss", logits, "--labels", labels, "-f", "json"))
    assert "'s0'" in line and "'t0'" in line and "labels.csv" in line


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_labels_under_a_named_integer_index_pair_with_logits_read_by_index_col(tmp_path, suffix):
    """``Series.to_csv()`` under a named integer index writes ``sample_id,label``; the logits' table, shuffled,
    has the same ``sample_id`` column, read as row names with --index-col (as the refusal of the id says). With
    --labels-key label the ids were ignored and the rows paired by position: loss 20.5 for 0.057, exit 0."""
    torch = pytest.importorskip("torch")
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 60)
    logits = rng.normal(size=(60, 10))
    logits[np.arange(60), labels] += 6
    frame = pd.DataFrame(logits, columns=[f"c{i}" for i in range(10)])
    frame.insert(0, "sample_id", np.arange(1000, 1060))
    shuffled = frame.sample(frac=1, random_state=3)
    path = tmp_path / f"logits.{suffix}"
    shuffled.to_csv(path, index=False) if suffix == "csv" else shuffled.to_parquet(path, index=False)
    pd.Series(labels, index=pd.Index(np.arange(1000, 1060), name="sample_id"), name="label").to_csv(
        tmp_path / "labels.csv")
    completed = run("loss", path, "--index-col", "--labels", tmp_path / "labels.csv", "--labels-key", "label",
                    "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "json", "jsonl"])
def test_labels_with_their_id_column_in_another_order_pair_by_it(tmp_path, suffix):
    """Labels written with their index as a column, shuffled (``Series.to_csv()`` under a named index,
    ``reset_index()`` to Parquet or JSON records), read with --labels-key label as the refusal says: the ids were
    ignored and the rows paired by position (loss 1.742 for torch's 1.525, exit 0)."""
    torch = pytest.importorskip("torch")
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    rng = np.random.default_rng(5)
    logits, labels = rng.normal(size=(30, 4)), rng.integers(0, 4, 30)
    pd.DataFrame(logits, columns=list("abcd")).to_csv(tmp_path / "logits.csv")  # unnamed index 0..29, in order
    np.save(tmp_path / "logits.npy", logits)
    shuffled = pd.Series(labels, name="label").rename_axis("id").sample(frac=1, random_state=0)
    path = tmp_path / f"y.{suffix}"
    if suffix == "csv":
        shuffled.to_csv(path)
    elif suffix == "parquet":
        shuffled.reset_index().to_parquet(path, index=False)
    else:
        shuffled.reset_index().to_json(path, orient="records", lines=suffix == "jsonl")
    completed = run("loss", tmp_path / "logits.csv", "--labels", path, "--labels-key", "label", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)
    assert_one_error_line(run("loss", tmp_path / "logits.npy", "--labels", path, "--labels-key", "label"),
                          "named 0..29 in another order", str(path))
