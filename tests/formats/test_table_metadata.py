"""Parquet and Feather tables with damaged pandas metadata, clashing names, text only, or another encoding.

Every table is made by pyarrow (or pandas through it); the expected numbers
are plain NumPy softmax of the values written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax, run

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
feather = pytest.importorskip("pyarrow.feather")

VALUES = np.array([[0.5, 1.5, -0.25], [2.25, 0.75, 1.0]])
COMMANDS = [["probs"], ["topk", "-k", "2"], ["temperature-sweep", "--labels", "0,1"], ["compare", "{path}"]]


def save(table, path):
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        feather.write_feather(table, path)
    return path


def numbers(metadata=None):
    return pa.table({name: VALUES[:, j] for j, name in enumerate("abc")}).replace_schema_metadata(metadata)


def run_command(command, path):
    args = [str(path) if arg == "{path}" else arg for arg in command]
    return run(args[0], path, *args[1:], "-f", "json")


@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
@pytest.mark.parametrize("pandas", [b"not json {", b"[1, 2]", b'"text"', b'{"index_columns": 7}',
                                    b'{"index_columns": [["a"]]}'], ids=["not JSON", "a list", "a string",
                                                                          "a number", "nested lists"])
def test_pandas_metadata_that_is_not_an_object_of_names_is_ignored(tmp_path, suffix, pandas):
    path = save(numbers({b"pandas": pandas}), tmp_path / f"t{suffix}")
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["classes"] == ["a", "b", "c"]
    np.testing.assert_allclose(result["probs"], reference_softmax(VALUES), rtol=1e-15)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
def test_two_columns_of_one_name_are_refused_naming_it(tmp_path, suffix, command):
    table = pa.Table.from_arrays([pa.array(VALUES[:, 0]), pa.array(VALUES[:, 1])], names=["x", "x"])
    path = save(table, tmp_path / f"t{suffix}")
    assert_one_error_line(run_command(command, path), "'x' given twice", str(path))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
def test_a_table_whose_only_column_is_text_is_refused(tmp_path, suffix, command):
    path = save(pa.table({"name": ["r1", "r2"]}), tmp_path / f"t{suffix}")
    assert_one_error_line(run_command(command, path), "no columns of numbers", str(path))


def test_a_dictionary_encoded_feather_column_is_read_as_parquet_reads_it(tmp_path):
    columns = {name: pa.array(VALUES[:, j]).dictionary_encode() for j, name in enumerate("abc")}
    table = pa.table(columns)
    outputs = []
    for suffix in (".feather", ".parquet"):
        completed = run("probs", save(table, tmp_path / f"t{suffix}"), "-f", "json")
        assert completed.returncode == 0, completed.stderr
        outputs.append(json.loads(completed.stdout)["probs"])
    np.testing.assert_allclose(outputs[0], reference_softmax(VALUES), rtol=1e-15)
    assert outputs[0] == outputs[1]


def test_a_feather_v1_file_is_read(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "v1.feather"
    with pytest.warns(DeprecationWarning):  # pyarrow still writes it, saying so
        feather.write_feather(pd.DataFrame(VALUES, columns=list("abc")), path, version=1)
    assert path.read_bytes()[:4] == b"FEA1"
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr
    result = json.loads(completed.stdout)
    assert result["classes"] == ["a", "b", "c"]
    np.testing.assert_allclose(result["probs"], reference_softmax(VALUES), rtol=1e-15)


@pytest.mark.parametrize("columns", [b"7", b'{"a": 1}', b'[[1]]', b'[{"field_name": [1], "name": "x"}]',
                                     b'[{"field_name": "idx", "name": {"a": 1}}]'],
                         ids=["a number", "an object", "nested lists", "a list as field name", "an object as name"])
def test_pandas_column_descriptions_of_the_wrong_kind_leave_the_index_unnamed(tmp_path, columns):
    table = pa.table({"idx": ["r0", "r1"], **{name: VALUES[:, j] for j, name in enumerate("abc")}})
    metadata = {b"pandas": b'{"index_columns": ["idx"], "columns": ' + columns + b"}"}
    path = save(table.replace_schema_metadata(metadata), tmp_path / "t.parquet")
    completed = run("probs", path, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["rows"] == ["r0", "r1"] and result["classes"] == ["a", "b", "c"]
