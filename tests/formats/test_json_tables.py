"""Tables written as JSON by pandas and polars are read as the table they are, or refused saying how to write them.

``df.to_json(orient="records")``, its JSON lines (``lines=True``), polars'
``write_json`` and ``write_ndjson`` give one object a row: the keys are the
classes. pandas' ``orient="split"`` gives the classes, the row names and the
data. pandas' default ``to_json()`` (an object of objects) does not say which
keys are the rows, so it is refused. Before, each was refused with a cut-off
record as "is not a number", or "holds no arrays".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

pd = pytest.importorskip("pandas")

LOGITS = np.random.default_rng(11).normal(size=(5, 3))
CLASSES = ["cat", "dog", "fish"]


def written(path, write):
    write(pd.DataFrame(LOGITS, columns=CLASSES), path)
    return path


WRITERS = {
    "records.json": lambda frame, path: frame.to_json(path, orient="records", double_precision=15),
    "records.jsonl": lambda frame, path: frame.to_json(path, orient="records", lines=True, double_precision=15),
    "split.json": lambda frame, path: frame.set_axis([f"r{i}" for i in range(5)]).to_json(
        path, orient="split", double_precision=15),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_pandas_json_tables_are_read_with_their_class_names(tmp_path, name):
    path = written(tmp_path / name, WRITERS[name])
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["classes"] == CLASSES
    np.testing.assert_allclose(result["probs"], reference_softmax(LOGITS), rtol=1e-13)
    if name == "split.json":
        assert result["rows"] == [f"r{i}" for i in range(5)]


@pytest.mark.parametrize("write", ["write_json", "write_ndjson"])
def test_polars_json_tables_are_read_with_their_class_names(tmp_path, write):
    pl = pytest.importorskip("polars")
    path = tmp_path / ("table.json" if write == "write_json" else "table.jsonl")
    getattr(pl.DataFrame({name: LOGITS[:, j] for j, name in enumerate(CLASSES)}), write)(path)
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["classes"] == CLASSES
    np.testing.assert_allclose(result["probs"], reference_softmax(LOGITS), rtol=1e-15)


def test_a_label_column_in_json_records_is_refused_like_one_in_csv(tmp_path):
    frame = pd.DataFrame(LOGITS, columns=CLASSES).assign(label=[0, 1, 2, 0, 1])
    path = tmp_path / "scored.json"
    frame.to_json(path, orient="records")
    assert_one_error_line(run("probs", path), "'label'")


def test_records_of_other_columns_are_refused_naming_the_record(tmp_path):
    path = tmp_path / "ragged.jsonl"
    path.write_text('{"a": 1.5, "b": 2.5}\n{"a": 0.5, "c": 1.5}\n')
    assert_one_error_line(run("probs", path), "same columns", "line 2")


def test_pandas_default_json_is_refused_saying_how_to_write_it(tmp_path):
    path = tmp_path / "default.json"
    pd.DataFrame(LOGITS, columns=CLASSES).to_json(path)
    assert_one_error_line(run("probs", path), "orient='split'", str(path))


@pytest.mark.parametrize("name", ["records.jsonl", "split.json"])
def test_a_label_column_of_a_json_table_is_scored_with_labels_key(tmp_path, name):
    labels = [0, 1, 2, 0, 1]
    path = tmp_path / name
    frame = pd.DataFrame(LOGITS, columns=CLASSES).assign(label=labels)
    if name == "split.json":
        frame.to_json(path, orient="split", double_precision=15)
    else:
        frame.to_json(path, orient="records", lines=True, double_precision=15)
    completed = run("loss", path, "--labels", path, "--labels-key", "label", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = -np.log(reference_softmax(LOGITS)[np.arange(5), labels]).mean()
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-13)
    assert json.loads(completed.stdout)["classes"] == CLASSES


@pytest.mark.parametrize("orient", ["records", "split"])
def test_a_text_id_column_of_a_json_table_names_the_rows_as_in_csv(tmp_path, orient):
    # df.to_json() of a frame with an id column (split: beside its default index, which says nothing).
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.insert(0, "id", [f"a{i}" for i in range(5)])
    frame.to_json(tmp_path / "scored.json", orient=orient, double_precision=15)
    completed = run("probs", tmp_path / "scored.json", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["rows"] == [f"a{i}" for i in range(5)] and result["classes"] == CLASSES
    np.testing.assert_allclose(result["probs"], reference_softmax(LOGITS), rtol=1e-13)


def test_our_own_json_keeps_its_row_names_when_read_back(tmp_path):
    """compare pairs rows by name: JSON written by softmax, read back, must still name them (it paired the rows of a
    reordered file by position before)."""
    frame = pd.DataFrame(LOGITS, columns=CLASSES, index=[f"doc{i}" for i in range(5)])
    frame.to_csv(tmp_path / "logits.csv")
    frame.iloc[::-1].to_csv(tmp_path / "reversed.csv")
    written = run("probs", "--log", tmp_path / "logits.csv", "-o", tmp_path / "logp.json")
    assert written.returncode == 0, written.stderr
    completed = run("compare", tmp_path / "logp.json", tmp_path / "reversed.csv", "-f", "json", "--max-kl", "1e-12")
    assert completed.returncode == 0, completed.stderr
    assert "reordered by their names" in completed.stderr


def test_a_series_written_split_pairs_its_labels_by_its_index(tmp_path):
    # y.sample(frac=1).to_json(orient="split"): the index says which row each label belongs to.
    frame = pd.DataFrame(LOGITS, columns=CLASSES, index=[f"r{i}" for i in range(5)])
    frame.to_csv(tmp_path / "logits.csv")
    labels = pd.Series([2, 0, 1, 1, 0], index=frame.index, name="label")
    labels.iloc[[3, 0, 4, 1, 2]].to_json(tmp_path / "labels.json", orient="split")
    torch = pytest.importorskip("torch")
    expected = float(torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor(labels.to_numpy())))
    for key in ([], ["--labels-key", "data"], ["--labels-key", "label"]):
        completed = run("loss", tmp_path / "logits.csv", "--labels", tmp_path / "labels.json", *key, "-f", "json")
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_a_list_column_of_json_records_is_the_logits(tmp_path):
    """[{"id": ..., "logits": [...], "label": k}, ...] as people save model outputs: --key logits and
    --labels-key label read the same file."""
    records = [{"id": f"s{i}", "logits": LOGITS[i].tolist(), "label": i % 3} for i in range(5)]
    (tmp_path / "out.json").write_text(json.dumps(records))
    probs = run("probs", tmp_path / "out.json", "--key", "logits", "-f", "json")
    assert probs.returncode == 0, probs.stderr
    result = json.loads(probs.stdout)
    np.testing.assert_allclose(result["probs"], reference_softmax(LOGITS), rtol=1e-14)
    assert result["rows"] == [f"s{i}" for i in range(5)]
    torch = pytest.importorskip("torch")
    expected = float(torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.arange(5) % 3))
    loss = run("loss", tmp_path / "out.json", "--key", "logits", "--labels", tmp_path / "out.json", "--labels-key",
               "label", "-f", "json")
    assert loss.returncode == 0, loss.stderr
    assert json.loads(loss.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_weights_as_a_json_object_of_class_names(tmp_path):
    # pd.Series({"fish": 3.0, "cat": 1.0, "dog": 2.0}).to_json(): weights named by class, in any order.
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.to_csv(tmp_path / "logits.csv", index=False)
    pd.Series({"fish": 3.0, "cat": 1.0, "dog": 2.0}).to_json(tmp_path / "w.json")
    labels = np.array([2, 0, 1, 1, 0])
    np.save(tmp_path / "y.npy", labels)
    torch = pytest.importorskip("torch")
    expected = float(torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor(labels),
                                                       weight=torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)))
    completed = run("loss", tmp_path / "logits.csv", "--labels", tmp_path / "y.npy", "--weights", tmp_path / "w.json",
                    "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("layout", ["list", "series-split", "records"])
def test_class_name_labels_in_json(tmp_path, layout):
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.to_csv(tmp_path / "logits.csv", index=False)
    names = pd.Series(["fish", "cat", "dog", "dog", "cat"], name="label")
    key = []
    if layout == "list":
        (tmp_path / "labels.json").write_text(json.dumps(names.tolist()))
    elif layout == "series-split":
        names.to_json(tmp_path / "labels.json", orient="split")
    else:
        names.to_frame().to_json(tmp_path / "labels.json", orient="records")
        key = ["--labels-key", "label"]
    torch = pytest.importorskip("torch")
    expected = float(torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor([2, 0, 1, 1, 0])))
    completed = run("loss", tmp_path / "logits.csv", "--labels", tmp_path / "labels.json", *key, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_ndjson_is_json_lines(tmp_path):
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    frame.to_json(tmp_path / "table.ndjson", orient="records", lines=True, double_precision=15)
    completed = run("probs", tmp_path / "table.ndjson", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout)["probs"], reference_softmax(LOGITS), rtol=1e-13)


@pytest.mark.parametrize("index", ["names", "shuffled", "none"])
def test_pandas_table_schema_json_is_read_with_its_index(tmp_path, index):
    """df.to_json(orient="table"): the schema's primaryKey is the index, the other fields the classes."""
    frame = pd.DataFrame(LOGITS, columns=CLASSES)
    if index == "names":
        frame.index = [f"r{i}" for i in range(5)]
    elif index == "shuffled":
        frame = frame.sample(frac=1, random_state=0)
    frame.to_json(tmp_path / "table.json", orient="table", index=index != "none", double_precision=15)
    completed = run("probs", tmp_path / "table.json", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["classes"] == CLASSES
    assert result.get("rows") == (None if index == "none" else [str(name) for name in frame.index])
    np.testing.assert_allclose(result["probs"], reference_softmax(frame.to_numpy()), rtol=1e-13)


@pytest.mark.parametrize("layout", ["records-with-id", "series-default", "table"])
def test_class_name_labels_in_json_pair_by_their_row_names(tmp_path, layout):
    """Names in another order than the logits' rows, each saying which row it belongs to."""
    ids = [f"s{i}" for i in range(5)]
    frame = pd.DataFrame(LOGITS, columns=CLASSES, index=pd.Index(ids, name="id"))
    frame.to_csv(tmp_path / "logits.csv")
    names = pd.Series(["fish", "cat", "dog", "dog", "cat"], index=frame.index, name="label").iloc[::-1]
    key = ["--labels-key", "label"] if layout == "records-with-id" else []
    if layout == "records-with-id":
        names.reset_index().to_json(tmp_path / "labels.json", orient="records")
    elif layout == "series-default":
        names.to_json(tmp_path / "labels.json")
    else:
        names.to_json(tmp_path / "labels.json", orient="table")
    torch = pytest.importorskip("torch")
    expected = float(torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor([2, 0, 1, 1, 0])))
    completed = run("loss", tmp_path / "logits.csv", "--labels", tmp_path / "labels.json", *key, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["loss"] == pytest.approx(expected, rel=1e-12)


def test_a_split_table_with_a_list_column_is_read_as_records_are(tmp_path):
    """pandas' orient="split" of a frame with a column of lists: 'nested lists of unequal lengths', while the same
    frame as records or table was read."""
    torch = pytest.importorskip("torch")
    logits, labels = np.random.default_rng(7).normal(size=(20, 5)), np.arange(20) % 5
    pd.DataFrame({"logits": list(logits), "label": labels}).to_json(tmp_path / "s.json", orient="split")
    completed = run("loss", tmp_path / "s.json", "--key", "logits", "--labels", tmp_path / "s.json", "--labels-key",
                    "label", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
    assert json.loads(completed.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)
