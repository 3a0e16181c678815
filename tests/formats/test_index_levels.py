"""Every index level pandas writes is row names, and a null polars writes is a missing value, not a name.

Files are written by pandas (``to_csv``, ``to_parquet``, ``to_feather`` through
pyarrow) and polars themselves; the expected probabilities are plain NumPy
(``reference_softmax``), and the row names are the index pandas holds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

CLASSES = ["cat", "dog", "bird"]
LOGITS = np.array([[0.5, 1.5, -0.25], [2.25, 0.75, 1.0], [-1.5, 0.125, 3.5]])
LEVELS = [("doc-a", 0), ("doc-a", 1), ("doc-b", 0)]


def multi_indexed(names) -> pd.DataFrame:
    return pd.DataFrame(LOGITS, columns=CLASSES, index=pd.MultiIndex.from_tuples(LEVELS, names=names))




@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("names", [[None, None], ["doc", "position"], ["doc", None]],
                         ids=["unnamed", "named", "half-named"])
def test_every_level_of_a_multi_index_is_row_names(tmp_path, suffix, names):
    path = tmp_path / f"logits.{suffix}"
    frame = multi_indexed(names)
    frame.to_csv(path) if suffix == "csv" else frame.to_parquet(path)
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr

    lines = completed.stdout.splitlines()
    assert lines[0].split(",")[1:] == CLASSES
    rows = [line.split(",") for line in lines[1:]]
    assert [row[0] for row in rows] == [f"{doc}/{position}" for doc, position in LEVELS]
    np.testing.assert_allclose(np.array([row[1:] for row in rows], dtype=float), reference_softmax(LOGITS),
                               rtol=1e-15)


def test_a_range_index_is_not_stored_so_every_column_is_a_class(tmp_path):
    # A plain RangeIndex is kept in the metadata only (not stored), so no column is row names.
    path = tmp_path / "plain.parquet"
    pd.DataFrame(LOGITS, columns=CLASSES).to_parquet(path)
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == ",".join(CLASSES)


def test_a_polars_null_in_the_first_column_is_refused_like_one_in_the_second(tmp_path):
    pl = pytest.importorskip("polars")
    for column in ("a", "b"):
        values = {"a": [0.1, 0.2], "b": [0.3, 0.4], "c": [0.5, 0.6]}
        values[column] = [None, 0.7]
        path = tmp_path / f"null_in_{column}.csv"
        pl.DataFrame(values).write_csv(path)
        assert path.read_text().splitlines()[0] == "a,b,c"
        line = assert_one_error_line(run("probs", path, "-f", "csv"), "an empty field")
        assert f"line 2, column {'ab'.index(column) + 1}" in line


def test_a_text_index_still_names_rows_with_a_null_in_a_class_column(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame([[0.5, np.nan], [1.0, 2.0]], columns=["cat", "dog"], index=["r1", "r2"]).to_csv(path)
    assert_one_error_line(run("probs", path, "-f", "csv"), "line 2, column 3")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_levels_that_join_to_one_name_are_refused(tmp_path, suffix):
    # ("a/b", "c") and ("a", "b/c") both join to "a/b/c": compare paired the rows of two such files by position,
    # whatever their order (KL 0.38 for identical rows swapped), as the joined names matched.
    index = pd.MultiIndex.from_tuples([("a/b", "c"), ("a", "b/c"), ("d", "e")], names=["doc", "part"])
    frame = pd.DataFrame(LOGITS, index=index, columns=CLASSES)
    path = tmp_path / f"ref{suffix}"
    frame.to_csv(path) if suffix == ".csv" else frame.to_parquet(path)
    line = assert_one_error_line(run("probs", path, "-f", "json"))
    assert "'a/b/c'" in line and str(path) in line


@pytest.mark.parametrize("start, freq", [("2024-01-01", "D"), ("2024-01-01 10:30", "h")], ids=["dates", "times"])
def test_a_parquet_index_reads_as_the_csv_of_the_same_frame_does(tmp_path, start, freq):
    frame = pd.DataFrame(LOGITS, columns=CLASSES, index=pd.date_range(start, periods=3, freq=freq, name="day"))
    frame.to_csv(tmp_path / "scored.csv")
    frame.to_parquet(tmp_path / "scored.parquet")
    from_csv, from_parquet = (run("probs", tmp_path / f"scored.{suffix}", "-f", "csv") for suffix in ("csv", "parquet"))
    assert from_parquet.returncode == 0, from_parquet.stderr
    assert from_parquet.stdout == from_csv.stdout
    assert from_csv.stdout.splitlines()[1].startswith(str(frame.index[0]).removesuffix(" 00:00:00") + ",")
    compared = run("compare", tmp_path / "scored.csv", tmp_path / "scored.parquet", "-f", "json")
    assert compared.returncode == 0, compared.stderr


@pytest.mark.parametrize("logits_file", ["logits.npy", "logits.parquet"])
def test_labels_of_a_shuffled_range_index_pair_by_name_only_against_a_range_index(tmp_path, logits_file):
    """y.sample(frac=1).to_csv() against the unshuffled frame's logits: a Parquet file keeps the frame's RangeIndex in
    its metadata (pd.read_parquet gives it back), so the rows pair by those numbers, as pandas aligns them; a .npy
    has no index, so by position or by the numbers is a guess, refused."""
    rng = np.random.default_rng(6)
    logits, labels = rng.normal(size=(10, 3)), pd.Series(rng.integers(0, 3, 10), name="label")
    pd.DataFrame(logits, columns=CLASSES).to_parquet(tmp_path / "logits.parquet")  # its RangeIndex: metadata only
    np.save(tmp_path / "logits.npy", logits)
    labels.sample(frac=1, random_state=1).to_csv(tmp_path / "labels.csv")
    completed = run("loss", tmp_path / logits_file, "--labels", tmp_path / "labels.csv", "-f", "json")
    if logits_file == "logits.npy":
        assert_one_error_line(completed, "named 0..9 in another order", "index=False")
        return
    assert completed.returncode == 0, completed.stderr
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(10), labels.to_numpy()])
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_a_shuffled_frame_against_labels_and_weights_saved_with_their_range_index(tmp_path):
    # The other way round: logits of a shuffled frame, labels and class weights written by to_parquet() (RangeIndex).
    rng = np.random.default_rng(10)
    frame = pd.DataFrame(rng.normal(size=(10, 3)), columns=CLASSES)
    labels = pd.Series(rng.integers(0, 3, 10), name="label")
    frame.sample(frac=1, random_state=5).to_csv(tmp_path / "logits.csv")
    labels.to_frame().to_parquet(tmp_path / "labels.parquet")
    completed = run("loss", tmp_path / "logits.csv", "--labels", tmp_path / "labels.parquet", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    logits = frame.to_numpy()
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(10), labels.to_numpy()])
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)

    permuted = pd.DataFrame(frame.to_numpy())[[2, 0, 1]]  # classes named 2, 0, 1
    permuted.columns = permuted.columns.astype(str)
    permuted.to_parquet(tmp_path / "permuted.parquet")
    pd.Series([1.0, 2.0, 5.0]).to_frame("weight").to_parquet(tmp_path / "weights.parquet")  # weight of class k: row k
    weighted = run("loss", tmp_path / "permuted.parquet", "--labels", tmp_path / "labels.parquet", "--weights",
                   tmp_path / "weights.parquet", "-f", "json")
    assert weighted.returncode == 0, weighted.stderr
    torch = pytest.importorskip("torch")
    reference = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels.to_numpy()),
                                                  weight=torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64))
    assert json.loads(weighted.stdout)["loss"] == pytest.approx(float(reference), rel=1e-12)


@pytest.mark.parametrize("other", ["unshuffled.parquet", "shuffled.npy"])
def test_compare_of_a_shuffled_frame_against_a_side_without_an_index(tmp_path, other):
    """Against the shuffled frame's own values (np.save of df.values) the positions pair the rows, against the
    unshuffled frame the numbers: a .npy cannot say which, so neither is guessed; a Parquet file's RangeIndex can."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(10, 3)), columns=CLASSES)
    shuffled = frame.sample(frac=1, random_state=2)
    shuffled.to_parquet(tmp_path / "shuffled.parquet")  # its shuffled index is stored
    frame.to_parquet(tmp_path / "unshuffled.parquet")
    np.save(tmp_path / "shuffled.npy", shuffled.to_numpy())
    compared = run("compare", tmp_path / other, tmp_path / "shuffled.parquet", "-f", "json", "--max-kl", "0")
    if other == "shuffled.npy":
        assert_one_error_line(compared, "another order")
    else:  # the unshuffled frame's RangeIndex, kept in its metadata, pairs the rows by name: the same distributions
        assert compared.returncode == 0, compared.stderr
        assert "reordered by their names" in compared.stderr
    same = run("compare", tmp_path / "shuffled.parquet", tmp_path / "shuffled.parquet", "--max-kl", "0")
    assert same.returncode == 0, same.stderr


@pytest.mark.parametrize("option, unnamed", [("--labels", "labels.npy"), ("--labels", "labels_noindex.csv"),
                                             ("--mask", "mask.npy")])
def test_a_shuffled_frame_against_unnamed_labels_or_mask_is_refused(tmp_path, option, unnamed):
    """The other way round: the logits' index is the shuffled one (df.sample(frac=1).to_csv()) and the labels or the
    mask carry no names; the labels may be y (by the numbers) or y.sample(...).to_numpy() (by position)."""
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(rng.normal(size=(10, 3)), columns=CLASSES)
    frame.sample(frac=1, random_state=3).to_csv(tmp_path / "logits.csv")
    labels = pd.Series(rng.integers(0, 3, 10), name="label")
    np.save(tmp_path / "labels.npy", labels.to_numpy())
    labels.to_csv(tmp_path / "labels_noindex.csv", index=False)
    np.save(tmp_path / "mask.npy", np.ones(10, dtype=np.int64))
    extra = ["--labels", tmp_path / "labels.npy"] if option == "--mask" else []
    assert_one_error_line(run("loss", tmp_path / "logits.csv", option, tmp_path / unnamed, *extra),
                          "named 0..9 in another order", "index=False")


def test_a_shuffled_frame_with_its_own_label_column_is_paired_row_by_row(tmp_path):
    # The labels come from the same rows: nothing to pair, nothing refused.
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(rng.normal(size=(10, 3)), columns=CLASSES)
    frame["label"] = rng.integers(0, 3, 10)
    shuffled = frame.sample(frac=1, random_state=4)
    shuffled.to_csv(tmp_path / "scored.csv")
    completed = run("loss", tmp_path / "scored.csv", "--labels", tmp_path / "scored.csv", "--labels-key", "label",
                    "-f", "json")
    assert completed.returncode == 0, completed.stderr
    logits, labels = shuffled[CLASSES].to_numpy(), shuffled["label"].to_numpy()
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(10), labels])
    import json
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rows", ["tail", "every-other", "reversed"])
def test_a_parquet_range_index_of_another_start_or_step_names_the_rows(tmp_path, rows):
    """df.iloc[5:] (a validation split), df.iloc[::2] or df.iloc[::-1] written by to_parquet(): the RangeIndex is kept
    in the metadata and pd.read_parquet gives it back, so labels indexed alike pair by it, as pandas aligns them."""
    rng = np.random.default_rng(13)
    frame = pd.DataFrame(rng.normal(size=(16, 3)), columns=CLASSES)
    labels = pd.Series(rng.integers(0, 3, 16), name="label")
    part = {"tail": slice(5, None), "every-other": slice(None, None, 2), "reversed": slice(None, None, -1)}[rows]
    frame.iloc[part].to_parquet(tmp_path / "logits.parquet")
    labels.iloc[part].sample(frac=1, random_state=0).to_csv(tmp_path / "labels.csv")  # the same rows, shuffled
    completed = run("loss", tmp_path / "logits.parquet", "--labels", tmp_path / "labels.csv", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    logits, truth = frame.iloc[part].to_numpy(), labels.iloc[part].to_numpy()
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(truth)), truth])
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)
