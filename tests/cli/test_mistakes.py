"""Gates and values a person gets wrong, and messages that name the real problem (issue 12).

Each case runs through the real entry point and expects one ``error:`` line
(exit 2) that says what the right form is.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_error_line, run

# ------------------------------------------------------------------ gates outside their meaningful range

@pytest.mark.parametrize(("value", "fragment"), [("95", "fraction"), ("1.5", "fraction"), ("-0.1", "fraction"),
                                                 ("nan", "fraction")])
def test_min_accuracy_outside_0_to_1_is_refused_showing_the_form(cli, value, fragment):
    line = assert_one_error_line(cli("topk", "3 1 2; 1 3 2", "--labels", "0,1", "-k", "1",
                                     f"--min-accuracy={value}"), "--min-accuracy", fragment)
    assert "0.95" in line


@pytest.mark.parametrize("value", ["nan", "-1", "-inf"])
def test_max_loss_that_can_never_pass_is_refused(cli, value):
    assert_one_error_line(cli("loss", "2 1 0", "--labels", "0", f"--max-loss={value}"), "--max-loss", value)


def test_gate_bounds_at_the_edges_are_accepted(cli):
    assert cli("loss", "2 1 0", "--labels", "0", "--max-loss", "0", "-f", "json").returncode == 1  # a real gate
    assert cli("loss", "2 1 0", "--labels", "0", "--max-loss", "inf", "-f", "json").returncode == 0
    args = ("topk", "3 1 2; 1 3 2", "--labels", "0,1", "-k", "1", "-f", "json")
    assert cli(*args, "--min-accuracy", "1").returncode == 0
    assert cli(*args, "--min-accuracy", "0").returncode == 0


def test_min_accuracy_requires_top(cli):
    line = assert_one_error_line(cli("topk", "3 1 2; 1 3 2", "--labels", "0,1", "--min-accuracy", "0.5"),
                                 "-k/--top")
    assert "--min-accuracy" in line


def test_the_gate_message_and_the_table_name_k(cli):
    completed = cli("topk", "3 1 2; 1 3 2", "--labels", "1,0", "-k", "2", "--min-accuracy", "0.9", "-f", "table")
    assert completed.returncode == 1
    assert "top-2 accuracy" in completed.stderr
    assert "top-2" in completed.stdout


# ------------------------------------------------------------------ values

@pytest.mark.parametrize("value", ["", " ", ","])
def test_empty_temperatures_is_an_error_not_the_defaults(cli, value):
    assert_one_error_line(cli("temperature-sweep", "2", "1", "0", f"--temperatures={value}"), "--temperatures")


def test_duplicate_class_names_are_refused_naming_the_duplicate(cli, tmp_path):
    assert_one_error_line(cli("probs", "1 2 3", "--classes", "a,b,a"), "'a'", "--classes")
    csv = tmp_path / "dup.csv"
    csv.write_text("cat,dog,cat\n1,2,3\n")
    assert_one_error_line(cli("probs", csv), "'cat'")


def test_subfolders_of_a_batch_directory_are_named_not_skipped_silently(cli, tmp_path):
    folder = tmp_path / "runs"
    (folder / "nested").mkdir(parents=True)
    (folder / "other").mkdir()
    np.save(folder / "a.npy", np.array([[1.0, 2.0]]))
    np.save(folder / "nested" / "b.npy", np.array([[1.0, 2.0]]))
    completed = run("probs", folder, "--out-dir", tmp_path / "out")
    assert completed.returncode == 0, completed.stderr
    notes = [line for line in completed.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "2 subfolders" in notes[0] and str(folder) in notes[0], completed.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npy"]


@pytest.mark.parametrize(("name", "reader"), [
    ("out.txt", lambda text: [line.split("\t") for line in text.splitlines()]),
    ("out.jsonl", lambda text: json.loads(text)["probs"]),
])
def test_o_maps_txt_to_tsv_and_jsonl_to_json_as_batch_naming_does(cli, tmp_path, name, reader):
    out = tmp_path / name
    completed = cli("probs", "0 0", "-o", out)
    assert completed.returncode == 0, completed.stderr
    assert np.array(reader(out.read_text()), dtype=float).ravel().tolist() == [0.5, 0.5]


# ------------------------------------------------------------------ messages

@pytest.mark.parametrize(("command", "option", "owner"), [
    ("probs", "--max-loss", "loss"), ("probs", "--min-accuracy", "topk"), ("loss", "--fit", "temperature-sweep"),
    ("jacobian", "--causal", "attention"),
])
def test_another_commands_option_names_that_command(cli, command, option, owner):
    line = assert_one_error_line(cli(command, "1", "2", option, "1"), option)
    assert f"softmax {owner}" in line, line


def test_an_unknown_option_still_says_so(cli):
    assert_one_error_line(cli("probs", "1", "2", "--no-such-option"), "No such option: --no-such-option",
                          "see 'softmax probs --help'")
