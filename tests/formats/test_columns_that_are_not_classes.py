"""A table's column that is not a class (an id, a flag, labels, integer column names) is refused, not softmaxed.

Each file is written by its real producer (pandas, polars, pyarrow through
them). Before, each of these gave a confident result and exit 0: the id or
flag became one more class, or the header of integer column names became a
row of logits. ``--as-logits`` keeps such a column as a class, and ``--header``
says what the first row is; the results are then checked against NumPy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(8, 3))
CLASSES = ["cat", "dog", "fish"]


def frame() -> pd.DataFrame:
    return pd.DataFrame(LOGITS, columns=CLASSES)


def written(frame: pd.DataFrame, path, index: bool = False):
    if path.suffix == ".csv":
        frame.to_csv(path, index=index)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=index)
    else:
        frame.reset_index(drop=True).to_feather(path)
    return path


def probabilities(completed) -> np.ndarray:
    return np.array([line.split(",") for line in completed.stdout.splitlines()[1:]], dtype=float)


@pytest.mark.parametrize("suffix", ["parquet", "feather", "csv"])
def test_an_id_column_counting_from_one_is_refused_and_index_col_names_the_rows_by_it(tmp_path, suffix):
    """polars stores no index: --index-col, which the refusal suggests, names the rows by the ids (in Parquet and
    Arrow files it was ignored)."""
    pl = pytest.importorskip("polars")
    table = pl.DataFrame({name: LOGITS[:, j] for j, name in enumerate(CLASSES)}).with_row_index("id", offset=1)
    path = tmp_path / f"scored.{suffix}"
    {"parquet": table.write_parquet, "feather": table.write_ipc, "csv": table.write_csv}[suffix](path)
    assert_one_error_line(run("probs", path, "-f", "csv"), "'id'", "read it as row names with --index-col")
    completed = run("probs", path, "--index-col", "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "id,cat,dog,fish"
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in range(1, 9)]
    np.testing.assert_allclose(probabilities(completed)[:, 1:], reference_softmax(LOGITS), rtol=1e-12)


def test_the_index_column_of_a_filtered_frame_is_refused(tmp_path):
    filtered = frame()[frame().index % 3 != 0].reset_index()  # index 1, 2, 4, 5, 7: not row positions 0..n-1
    path = tmp_path / "filtered.feather"
    filtered.to_feather(path)
    assert_one_error_line(run("probs", path, "-f", "csv"), "'index'", "--as-logits")


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_ids_written_as_floats_are_refused(tmp_path, suffix):
    table = frame()
    table.insert(0, "sample_id", np.arange(1001, 1009, dtype=np.float64))
    path = written(table, tmp_path / f"scored.{suffix}")
    assert_one_error_line(run("probs", path, "-f", "csv"), "'sample_id'", "--as-logits")


@pytest.mark.parametrize("suffix", ["parquet", "feather"])
def test_a_boolean_column_is_refused(tmp_path, suffix):
    table = frame()
    table["is_val"] = [True, False] * 4
    path = written(table, tmp_path / f"flags.{suffix}")
    assert_one_error_line(run("probs", path, "-f", "csv"), "'is_val'", "--as-logits")


def test_as_logits_keeps_such_a_column_as_a_class(tmp_path):
    table = frame()
    table["is_val"] = [True, False] * 4
    path = written(table, tmp_path / "flags.parquet")
    completed = run("probs", path, "-f", "csv", "--as-logits")
    assert completed.returncode == 0, completed.stderr
    kept = np.column_stack([LOGITS, [1.0, 0.0] * 4])
    np.testing.assert_allclose(probabilities(completed), reference_softmax(kept), rtol=1e-15)


@pytest.mark.parametrize("name", ["targets", "y_true", "label_id", "gt", "true_label", "class_id"])
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_label_column_under_a_name_people_give_labels_is_refused(tmp_path, name, suffix):
    table = frame()
    table[name] = [0, 1, 2, 0, 1, 2, 0, 1]
    path = written(table, tmp_path / f"scored.{suffix}")
    line = assert_one_error_line(run("topk", path, "-f", "csv"), repr(name))
    assert f"--labels-key {name}" in line


def test_a_label_column_under_another_name_is_scored_with_labels_key(tmp_path):
    table = frame()
    table["targets"] = [0, 1, 2, 0, 1, 2, 0, 1]
    path = written(table, tmp_path / "scored.csv")
    completed = run("loss", path, "--labels", path, "--labels-key", "targets", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    import json

    expected = -np.log(reference_softmax(LOGITS)[np.arange(8), table["targets"]]).mean()
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-14)


def test_whole_logits_beside_whole_ones_stay_classes(tmp_path):
    # Rounded logits: a column whole in every row is what chance gives when most values are whole.
    rounded = np.round(LOGITS[:4] * 2) / 2
    rounded[:, 0] = [1.0, -2.0, 0.0, 3.0]
    path = written(pd.DataFrame(rounded, columns=CLASSES), tmp_path / "rounded.csv")
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(probabilities(completed), reference_softmax(rounded), rtol=1e-15)


@pytest.mark.parametrize("columns", [[0, 2, 3], [1, 2, 3], [3, 1, 2]])
def test_a_header_of_integer_column_names_is_not_read_as_logits(tmp_path, columns):
    path = tmp_path / "subset.csv"
    pd.DataFrame(RNG.normal(size=(5, 4)), columns=[0, 1, 2, 3] if columns[0] == 0 else [*columns, 9])[columns] \
        .to_csv(path, index=False)  # df[[0, 2, 3]]: a subset of a frame's unnamed columns
    assert_one_error_line(run("probs", path, "-f", "csv"), "--header yes", "--header no")


def test_header_yes_reads_integer_column_names_as_names(tmp_path):
    path = tmp_path / "subset.csv"
    pd.DataFrame(LOGITS, columns=[3, 1, 2]).to_csv(path, index=False)
    completed = run("probs", path, "-f", "csv", "--header", "yes")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == "3,1,2"
    np.testing.assert_allclose(probabilities(completed), reference_softmax(LOGITS), rtol=1e-15)


def test_a_first_row_of_integers_above_integer_rows_is_data(tmp_path):
    path = tmp_path / "typed.csv"
    path.write_text("3,1,2\n1,0,2\n")
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    rows = np.array([line.split(",") for line in completed.stdout.splitlines()], dtype=float)
    np.testing.assert_allclose(rows, reference_softmax([[3, 1, 2], [1, 0, 2]]), rtol=1e-15)


NAMES = ["cat", "dog", "fish", "dog", "cat", "fish", "dog", "cat"]


@pytest.mark.parametrize("suffix", ["csv", "parquet", "feather"])
def test_a_column_of_class_names_in_the_logits_table_is_scored_with_labels_key(tmp_path, suffix):
    import json

    table = frame()
    table["label"] = NAMES
    path = written(table, tmp_path / f"scored.{suffix}")
    completed = run("loss", path, "--labels", path, "--labels-key", "label", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    indices = [CLASSES.index(name) for name in NAMES]
    expected = -np.log(reference_softmax(LOGITS)[np.arange(8), indices]).mean()
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_column_of_class_names_without_labels_key_says_how_to_score_against_it(tmp_path, suffix):
    table = frame()
    table["label"] = NAMES
    path = written(table, tmp_path / f"scored.{suffix}")
    assert_one_error_line(run("probs", path), "column 'label'", "--labels-key label")


@pytest.mark.parametrize("column", [np.zeros(8), np.full(8, -1e9), np.full(8, np.finfo(np.float32).min)],
                         ids=["baseline-0", "masked-1e9", "masked-finfo-min"])
def test_a_baseline_or_masked_class_of_whole_numbers_stays_a_class(tmp_path, column):
    # A multinomial logit's baseline class (np.c_[zeros, z]) and a class filled by masked_fill are logits.
    table = np.column_stack([column, LOGITS])
    path = tmp_path / "logits.csv"
    pd.DataFrame(table, columns=["base", *CLASSES]).to_csv(path, index=False)
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(probabilities(completed), reference_softmax(table), rtol=1e-13, atol=1e-300)


def test_a_small_table_with_one_whole_column_is_no_evidence(tmp_path):
    path = tmp_path / "typed.csv"
    path.write_text("a,b,c\n2.1,3,0.5\n0.2,1,1.1\n1.5,2,0.25\n")
    completed = run("probs", path, "-f", "csv")
    assert completed.returncode == 0, completed.stderr


def test_decimal_columns_say_how_to_cast_them_to_float(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from decimal import Decimal

    decimals = pa.array([Decimal("1.5")] * 6, pa.decimal128(6, 3))
    pytest.importorskip("pyarrow.parquet").write_table(
        pa.table({"cat": decimals, "dog": np.ones(6), "bird": np.zeros(6)}), tmp_path / "x.parquet")
    line = assert_one_error_line(run("probs", tmp_path / "x.parquet"), "'cat'", "decimal128(6, 3)", "astype(float)",
                                 "cast")
    assert "--key" not in line  # no list column to choose


def test_a_list_column_among_columns_that_are_not_numbers_is_offered_with_key(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("pyarrow.parquet").write_table(
        pa.table({"scores": [[1.0, 2.0], [0.5, 1.0]], "when": ["x", "y"], "b": [1.0, 2.0]}), tmp_path / "x.parquet")
    assert_one_error_line(run("probs", tmp_path / "x.parquet"), "'when'", "--key NAME (scores)")
    (tmp_path / "logits.txt").write_text("1 2\n3 4\n")
    assert_one_error_line(run("loss", tmp_path / "logits.txt", "--labels", tmp_path / "x.parquet"),
                          "--labels-key NAME (scores)")


@pytest.mark.parametrize("metadata", [b"\xff\xfe", b"[1,2]", b'{"index_columns": {"id": 1}}'])
def test_a_text_index_column_not_first_under_unreadable_pandas_metadata_says_what_to_do(tmp_path, metadata):
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(frame().set_index(pd.Index(list("abcdefgh"), name="id")))
    assert table.schema.names[-1] == "id"  # pyarrow writes a pandas index after the columns
    pytest.importorskip("pyarrow.parquet").write_table(table.replace_schema_metadata({b"pandas": metadata}),
                                                       tmp_path / "x.parquet")
    line = assert_one_error_line(run("probs", tmp_path / "x.parquet"), "'id'", "text", "first column",
                                 "set_index('id')", "drop")
    assert "--key" not in line


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_decision_trees_probabilities_are_read_with_from_probs(tmp_path, suffix):
    """A pure leaf makes a class column exactly 0 and 1: it was refused as an id or flag column, even with
    --from-probs, and the remedy offered (--as-logits) is refused beside --from-probs."""
    datasets = pytest.importorskip("sklearn.datasets")
    tree = pytest.importorskip("sklearn.tree")
    metrics = pytest.importorskip("sklearn.metrics")
    x, t = datasets.load_iris(return_X_y=True)
    proba = tree.DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, t).predict_proba(x)[:, ::-1]
    path = written(pd.DataFrame(proba, columns=["virginica", "versicolor", "setosa"]), tmp_path / f"dt{suffix}")
    np.save(tmp_path / "t.npy", 2 - t)
    assert_one_error_line(run("loss", path, "--labels", tmp_path / "t.npy"), "these look like probabilities",
                          "--from-probs")
    completed = run("loss", path, "--labels", tmp_path / "t.npy", "--from-probs", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["loss"] == pytest.approx(metrics.log_loss(2 - t, proba), rel=1e-9)
