"""One-line messages that say what is wrong and where: the labels' file, the value as given, the output's name.

Each case ran before with an ``error:`` line that pointed elsewhere (no file,
a rounded value, "standard output", a folder of JSON files).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_one_error_line, run


@pytest.fixture
def logits(tmp_path):
    path = tmp_path / "logits.txt"
    path.write_text("1 2 3\n4 5 6\n")
    return path


def test_compare_names_the_labels_file_holding_a_bad_label(tmp_path, logits):
    labels = tmp_path / "labels.txt"
    labels.write_text("0\n7\n")
    line = assert_one_error_line(run("compare", logits, logits, "--labels", labels, "-f", "json"))
    assert "label 7 is out of range for 3 classes" in line and f"({labels}, row 1)" in line


@pytest.mark.parametrize("given", ["1.0000001", "-0.000001", "1.5e300", "inf"])
def test_a_gate_value_out_of_range_is_echoed_as_given(logits, given):
    line = assert_one_error_line(run("compare", logits, logits, "--min-agreement", given))
    assert line.endswith(f"got {given}")


def test_an_output_name_too_long_names_the_output(tmp_path):
    output = tmp_path / ("a" * 300 + ".csv")
    line = assert_one_error_line(run("probs", "1", "2", "-o", output))
    assert "File name too long" in line and "standard output" not in line and str(output) in line


@pytest.mark.parametrize("command", [["probs", "{z}", "-f", "csv"], ["probs", "{z}", "{z}", "--out-dir", "{out}"],
                                     ["compare", "{z}", "{z}"], ["loss", "{z}", "--labels", "0,1", "-f", "json"]],
                         ids=["probs", "batch", "compare", "loss"])
def test_a_zarr_folder_without_scheduler_is_refused_saying_to_add_it(tmp_path, command):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "logits.zarr"
    zarr.create_array(str(path), shape=(2, 3), chunks=(1, 3), dtype="f4")[:] = np.ones((2, 3), dtype=np.float32)
    args = [str(path) if a == "{z}" else str(tmp_path / "out") if a == "{out}" else a for a in command]
    assert_one_error_line(run(*args), "Zarr array", "--scheduler local:1", str(path))


@pytest.mark.parametrize("scheduler", [[], ["--scheduler", "local:1"]], ids=["in-process", "cluster"])
def test_zarr_labels_say_to_save_them_as_npy_not_to_add_scheduler(tmp_path, scheduler):
    zarr = pytest.importorskip("zarr")
    np.save(tmp_path / "logits.npy", np.ones((2, 3), dtype=np.float32))
    labels = tmp_path / "labels.zarr"
    zarr.create_array(str(labels), shape=(2,), chunks=(2,), dtype="i8")[:] = np.array([0, 2])
    line = assert_one_error_line(run("loss", tmp_path / "logits.npy", "--labels", labels, *scheduler, "-f", "json"),
                                 str(labels), "as .npy")
    assert "add --scheduler" not in line


@pytest.mark.parametrize("scheduler", [[], ["--scheduler", "local:1"]], ids=["in-process", "cluster"])
def test_a_zarr_group_names_its_arrays(tmp_path, scheduler):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "model.zarr"), mode="w")
    group.create_array("logits", shape=(2, 3), dtype="f4")[:] = np.ones((2, 3), dtype=np.float32)
    line = assert_one_error_line(run("probs", tmp_path / "model.zarr", *scheduler, "-o", tmp_path / "p.npy"),
                                 "Zarr group", str(tmp_path / "model.zarr" / "logits"))
    assert "add --scheduler" not in line and "node_type" not in line


def test_a_labels_table_of_several_columns_is_refused_naming_only_the_labels_file(tmp_path, logits):
    pd = pytest.importorskip("pandas")
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"y": [0, 2], "w": [1.5, 0.5]}, index=["s0", "s1"]).to_csv(labels)
    line = assert_one_error_line(run("loss", logits, "--labels", labels), "--labels-key y")
    assert line.endswith(f"({labels})")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_missing_label_written_by_pandas_says_to_write_the_ignore_index(tmp_path, logits, suffix):
    pd = pytest.importorskip("pandas")
    labels = pd.Series([0.0, None], name="label")
    path = tmp_path / f"labels.{suffix}"
    labels.to_csv(path, index=False) if suffix == "csv" else labels.to_frame().to_parquet(path)
    line = assert_one_error_line(run("loss", logits, "--labels", path), str(path))
    assert "ignore index (-100)" in line and "-inf" not in line and "class names" not in line


def test_with_labels_key_given_another_label_column_is_to_be_dropped_not_chosen(tmp_path):
    path = tmp_path / "scored.csv"
    path.write_text("cat,dog,label,label_name\n1.5,0.25,0,cat\n0.5,2.25,1,dog\n1.75,0.5,0,cat\n")
    line = assert_one_error_line(run("loss", path, "--labels", path, "--labels-key", "label_name"), "'label'")
    assert "drop it from the table" in line and "--labels-key label " not in line


def test_row_names_of_digits_that_are_not_ascii_are_names_not_positions(tmp_path):
    # "²" is a digit to str.isdigit and not to int(): a traceback before.
    labels = tmp_path / "labels.csv"
    labels.write_text(",label\n\u00b2,0\n1,1\n", encoding="utf-8")
    completed = run("loss", "1 2; 3 1", "--labels", labels, "-f", "json")
    assert completed.returncode == 0 and "Traceback" not in completed.stderr, completed.stderr


def test_an_option_of_other_commands_names_this_commands_nearest():
    """temperature-sweep -t: the message listed the commands that take -t, not the option meant here."""
    assert_one_error_line(run("temperature-sweep", "1 2 3; 3 2 1", "--labels", "0,1", "-t", "0.5,1,2"),
                          "-t is an option of softmax probs", "not of softmax temperature-sweep; did you mean "
                          "--temperatures?", "(see 'softmax temperature-sweep --help')")
    assert_one_error_line(run("probs", "1 2 3", "--max-loss", "1"),
                          "--max-loss is an option of softmax loss, not of softmax probs (see 'softmax loss --help')")
