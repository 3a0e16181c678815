"""Batches of inputs in one call (issue 6), through the installed ``softmax`` script.

``softmax probs runs/*.npy --out-dir probs/`` writes one output per input,
atomically; a bad file stops the batch (``--keep-going`` finishes the rest);
existing outputs need ``--force``; inputs are never overwritten. Expected
values come from NumPy float64 references (conftest), never from
``softmax_cli.core``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import assert_one_error_line, read_csv_output, reference_softmax, run

RNG = np.random.default_rng(60)
A = RNG.normal(size=(4, 3)) * 2
B = RNG.normal(size=(2, 3)) * 2
C_ = RNG.normal(size=(5, 3)) * 2


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part") or p.name.startswith("."))


def save_npy(path, array):
    np.save(path, array)
    return path


def write_csv(path, array, header=None):
    lines = ([",".join(header)] if header else []) + [",".join(repr(float(v)) for v in row) for row in array]
    path.write_text("\n".join(lines) + "\n")
    return path


def bad_npy(path, rows=3, position=(1, 2)):
    array = np.arange(rows * 3, dtype=np.float64).reshape(rows, 3)
    array[position] = np.nan
    np.save(path, array)
    return path


@pytest.fixture
def three(tmp_path):
    """a.npy, b.npy, c.npy in ``in/``."""
    folder = tmp_path / "in"
    folder.mkdir()
    return [save_npy(folder / "a.npy", A), save_npy(folder / "b.npy", B), save_npy(folder / "c.npy", C_)]


# ---------------------------------------------------------------- --out-dir

def test_out_dir_created_and_each_output_keeps_its_input_format(softmax, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sources = [
        save_npy(folder / "n.npy", A),
        write_csv(folder / "c.csv", B, header=["cat", "dog", "bird"]),
        folder / "w.txt",
        folder / "j.json",
        folder / "l.jsonl",
        folder / "t.tsv",
    ]
    sources[2].write_text("# white space\n" + "\n".join("  ".join(repr(float(v)) for v in row) for row in C_) + "\n")
    sources[3].write_text(json.dumps(A.tolist()))
    sources[4].write_text("\n".join(json.dumps(row) for row in B.tolist()) + "\n")
    sources[5].write_text("\n".join("\t".join(repr(float(v)) for v in row) for row in C_) + "\n")
    out = tmp_path / "deep" / "probs"  # missing, two levels
    completed = softmax("probs", *sources, "--out-dir", out)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["c.csv", "j.json", "l.json", "n.npy", "t.tsv", "w.tsv"]

    npy = np.load(out / "n.npy")
    assert npy.dtype == np.float64
    np.testing.assert_allclose(npy, reference_softmax(A), rtol=1e-13)
    header, csv = read_csv_output((out / "c.csv").read_text())
    assert header == ["cat", "dog", "bird"]
    np.testing.assert_allclose(csv, reference_softmax(B), rtol=1e-13)
    for name in ("w.tsv", "t.tsv"):
        rows = [line.split("\t") for line in (out / name).read_text().splitlines() if line]
        np.testing.assert_allclose(np.array(rows, dtype=float), reference_softmax(C_), rtol=1e-13)
    np.testing.assert_allclose(json.loads((out / "j.json").read_text())["probs"], reference_softmax(A), rtol=1e-13)
    np.testing.assert_allclose(json.loads((out / "l.json").read_text())["probs"], reference_softmax(B), rtol=1e-13)
    assert leftovers(out) == []


def test_directory_input_and_format_option(softmax, tmp_path, three):
    (three[0].parent / "notes.md").write_text("not logits\n")  # ignored: not an input format
    out = tmp_path / "out"
    completed = softmax("probs", three[0].parent, "--log", "--out-dir", out, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json", "c.json"]
    for name, x in zip("abc", (A, B, C_)):
        got = np.array(json.loads((out / f"{name}.json").read_text())["log_probs"])
        np.testing.assert_allclose(got, np.log(reference_softmax(x)), rtol=1e-12, atol=1e-14)


def test_npz_inputs_and_npz_format(softmax, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    np.savez(folder / "z.npz", logits=A, labels=np.array([0, 1, 2, 0]))
    out = tmp_path / "out"
    completed = softmax("probs", folder / "z.npz", save_npy(folder / "y.npy", B), "--out-dir", out)
    assert completed.returncode == 0, completed.stderr
    with np.load(out / "z.npz") as archive:
        np.testing.assert_allclose(archive["probs"], reference_softmax(A), rtol=1e-13)
    np.testing.assert_allclose(np.load(out / "y.npy"), reference_softmax(B), rtol=1e-13)


def test_loss_grad_and_topk_batches(softmax, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    x1, x2 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    sources = [save_npy(folder / "one.npy", x1.astype(np.float32)), save_npy(folder / "two.npy", x2)]
    labels = save_npy(tmp_path / "labels.npy", np.array([0, 2, 1, 1]))
    onehot = np.eye(3)[[0, 2, 1, 1]]

    completed = softmax("grad", *sources, "--labels", labels, "--out-dir", tmp_path / "g")
    assert completed.returncode == 0, completed.stderr
    g1, g2 = np.load(tmp_path / "g" / "one.npy"), np.load(tmp_path / "g" / "two.npy")
    assert g1.dtype == np.float32 and g2.dtype == np.float64  # each keeps its dtype
    np.testing.assert_allclose(g1, (reference_softmax(x1.astype(np.float32)) - onehot) / 4, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g2, (reference_softmax(x2) - onehot) / 4, rtol=1e-12, atol=1e-15)

    completed = softmax("loss", *sources, "--labels", labels, "--out-dir", tmp_path / "l", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    for name, x in (("one", x1.astype(np.float32)), ("two", x2)):
        expected = -np.mean(np.log(reference_softmax(x))[np.arange(4), [0, 2, 1, 1]])
        got = json.loads((tmp_path / "l" / f"{name}.json").read_text())
        assert got["loss"] == pytest.approx(expected, rel=1e-5)

    completed = softmax("topk", *sources, "-k", "2", "--out-dir", tmp_path / "t", "-f", "npz")
    assert completed.returncode == 0, completed.stderr
    with np.load(tmp_path / "t" / "two.npz") as archive:
        assert np.array_equal(archive["indices"], np.argsort(-x2, axis=1, kind="stable")[:, :2])


def test_single_file_with_out_dir(softmax, tmp_path, three):
    completed = softmax("probs", three[1], "--out-dir", tmp_path / "o")
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o" / "b.npy"), reference_softmax(B), rtol=1e-13)


def test_out_dir_with_typed_numbers_is_refused(softmax, tmp_path):
    completed = softmax("probs", "3", "2", "1", "--out-dir", tmp_path / "o")
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ") and "Traceback" not in completed.stderr


def test_empty_directory_is_an_error(softmax, tmp_path):
    (tmp_path / "empty").mkdir()
    completed = softmax("probs", tmp_path / "empty", "--out-dir", tmp_path / "o")
    assert completed.returncode == 2
    assert "empty" in completed.stderr and "Traceback" not in completed.stderr


# ---------------------------------------------------------------- failures

@pytest.mark.parametrize("bad", ["nan", "missing", "garbage"])
def test_bad_file_in_the_middle_stops_the_batch(softmax, tmp_path, three, bad):
    middle = three[1]
    if bad == "nan":
        bad_npy(middle)
    elif bad == "missing":
        middle.unlink()
    else:
        middle.write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "out"
    completed = softmax("probs", *three, "--out-dir", out)
    assert completed.returncode == 2
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    assert "b.npy" in lines[0]
    if bad == "nan":
        assert "row 1, column 2" in lines[0]
    assert "Traceback" not in completed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.npy"]  # earlier output complete, later ones absent
    np.testing.assert_allclose(np.load(out / "a.npy"), reference_softmax(A), rtol=1e-13)
    assert leftovers(out) == []


def test_keep_going_processes_the_rest_and_lists_failures(softmax, tmp_path, three):
    bad_npy(three[1])
    extra = tmp_path / "in" / "d.npy"
    bad_npy(extra, position=(2, 0))
    out = tmp_path / "out"
    completed = softmax("probs", *three, extra, "--out-dir", out, "--keep-going")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.splitlines()
    # One `failed:` line per bad input and one `error:` line, the summary (the contract: at most one error: line).
    assert all(line.startswith("failed: ") for line in lines[:-1]) and lines[-1].startswith("error: "), lines
    assert any("b.npy" in line and "row 1, column 2" in line for line in lines[:-1]), lines
    assert any("d.npy" in line and "row 2, column 0" in line for line in lines[:-1]), lines
    summary = lines[-1]
    assert "b.npy" in summary and "d.npy" in summary and "2 of 4" in summary, summary
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "c.npy"]
    np.testing.assert_allclose(np.load(out / "c.npy"), reference_softmax(C_), rtol=1e-13)
    assert leftovers(out) == []


def test_keep_going_to_stdout_prints_the_good_ones(softmax, tmp_path, three):
    bad_npy(three[0])
    completed = softmax("probs", *three, "-f", "json", "--keep-going")
    assert completed.returncode == 2
    records = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [r["source"] for r in records] == [str(three[1]), str(three[2])]
    assert "a.npy" in completed.stderr.splitlines()[-1]


# ---------------------------------------------------------------- --force and input = output

def test_existing_output_needs_force(softmax, tmp_path, three):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.npy").write_bytes(b"keep me")
    completed = softmax("probs", *three, "--out-dir", out)
    assert completed.returncode == 2
    assert "b.npy" in completed.stderr and "--force" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert (out / "b.npy").read_bytes() == b"keep me"
    assert leftovers(out) == []

    completed = softmax("probs", *three, "--out-dir", out, "--force")
    assert completed.returncode == 0, completed.stderr
    for name, x in zip("abc", (A, B, C_)):
        np.testing.assert_allclose(np.load(out / f"{name}.npy"), reference_softmax(x), rtol=1e-13)
    assert leftovers(out) == []


@pytest.mark.parametrize("force", [False, True])
def test_output_equal_to_an_input_is_refused(softmax, tmp_path, three, force):
    folder = three[0].parent
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    completed = softmax("probs", *three, "--out-dir", folder, *(["--force"] if force else []))
    assert completed.returncode == 2
    assert "input" in completed.stderr and "Traceback" not in completed.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # The same folder with another format is fine: a.csv is not an input.
    completed = softmax("probs", *three, "--out-dir", folder, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "a.npy", "b.csv", "b.npy", "c.csv", "c.npy"]


def test_labels_file_is_never_an_output(softmax, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    x = save_npy(folder / "x.npy", A)
    out = tmp_path / "out"
    out.mkdir()
    labels = save_npy(out / "y.npy", np.array([0, 1, 2, 0]))
    y = save_npy(folder / "y.npy", A)  # would write out/y.npy, the labels file
    completed = softmax("grad", x, y, "--labels", labels, "--out-dir", out, "--force")
    assert completed.returncode == 2
    assert "input" in completed.stderr and "y.npy" in completed.stderr and "Traceback" not in completed.stderr
    assert np.array_equal(np.load(labels), [0, 1, 2, 0])
    assert leftovers(out) == []


@pytest.mark.parametrize("second", ["other/a.npy", "a.csv"])
def test_two_inputs_writing_the_same_output_are_refused(softmax, tmp_path, second):
    folder = tmp_path / "in"
    (folder / "other").mkdir(parents=True)
    first = save_npy(folder / "a.npy", A)
    path = folder / second
    if path.suffix == ".npy":
        save_npy(path, B)
    else:
        write_csv(path, B)
    out = tmp_path / "out"
    completed = softmax("probs", first, path, "--out-dir", out, "-f", "npy")
    assert completed.returncode == 2
    assert "a.npy" in completed.stderr and "Traceback" not in completed.stderr
    assert not out.exists() or list(out.iterdir()) == []  # refused before anything was written


# ---------------------------------------------------------------- several inputs to standard output

@pytest.mark.parametrize("fmt, delimiter", [(None, ","), ("csv", ","), ("tsv", "\t")])
def test_text_outputs_one_after_another_under_file_names(softmax, three, fmt, delimiter):
    completed = softmax("probs", *three, *(["-f", fmt] if fmt else []))
    assert completed.returncode == 0, completed.stderr
    sections, current = [], None
    for line in completed.stdout.splitlines():
        if line.startswith("# "):
            current = (line[2:], [])
            sections.append(current)
        elif line:
            current[1].append([float(v) for v in line.split(delimiter)])
    assert [name for name, _ in sections] == [str(p) for p in three]
    for (_, rows), x in zip(sections, (A, B, C_)):
        np.testing.assert_allclose(np.array(rows), reference_softmax(x), rtol=1e-13)


def test_json_outputs_are_json_lines_with_source(softmax, three):
    completed = softmax("probs", *three, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    records = [json.loads(line) for line in completed.stdout.splitlines() if line]
    assert [r["source"] for r in records] == [str(p) for p in three]
    for record, x in zip(records, (A, B, C_)):
        np.testing.assert_allclose(record["probs"], reference_softmax(x), rtol=1e-13)


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_binary_formats_refused_without_out_dir(softmax, three, fmt):
    completed = softmax("probs", *three, "-f", fmt, text=False)
    assert completed.returncode == 2
    assert completed.stdout == b""
    assert b"--out-dir" in completed.stderr and b"Traceback" not in completed.stderr


def test_output_option_with_several_inputs_refused(softmax, tmp_path, three):
    completed = softmax("probs", *three, "-o", tmp_path / "all.csv")
    assert completed.returncode == 2
    assert "--out-dir" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "all.csv").exists()
    completed = softmax("probs", *three, "-o", tmp_path / "all.csv", "--out-dir", tmp_path / "o")
    assert completed.returncode == 2
    assert not (tmp_path / "all.csv").exists()


# ---------------------------------------------------------------- gates

def test_gate_failures_exit_1_after_all_files(softmax, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    labels = save_npy(tmp_path / "labels.npy", np.array([0, 1, 2]))
    wrong = np.eye(3)[[1, 2, 0]] * 5  # top-1 never right
    right = np.eye(3) * 5  # always right
    sources = [save_npy(folder / "w.npy", wrong), save_npy(folder / "r.npy", right)]
    out = tmp_path / "out"
    completed = softmax("topk", *sources, "-k", "1", "--labels", labels, "--min-accuracy", "0.9", "--out-dir", out,
                        "-f", "json")
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "w.json"]  # the failing gate did not stop it
    assert json.loads((out / "w.json").read_text())["topk_accuracy"] == 0
    assert json.loads((out / "r.json").read_text())["topk_accuracy"] == 1
    assert "w.npy" in completed.stderr.splitlines()[-1] and "r.npy" not in completed.stderr.splitlines()[-1]

    completed = softmax("topk", sources[1], sources[1], "-k", "1", "--labels", labels, "--min-accuracy", "0.9")
    assert completed.returncode == 0, completed.stderr


def test_bad_input_outranks_gate_with_keep_going(softmax, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    labels = save_npy(tmp_path / "labels.npy", np.array([0, 1, 2]))
    sources = [save_npy(folder / "w.npy", np.eye(3)[[1, 2, 0]]), bad_npy(folder / "x.npy"),
               save_npy(folder / "r.npy", np.eye(3))]
    out = tmp_path / "out"
    completed = softmax("topk", *sources, "-k", "1", "--labels", labels, "--min-accuracy", "0.9", "--out-dir", out,
                        "--keep-going", "-f", "json")
    assert completed.returncode == 2
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "w.json"]
    assert leftovers(out) == []


def test_an_output_that_is_another_input_by_hard_link_or_link_is_refused(softmax, tmp_path):
    # Inputs are resolved once per batch (a set, not a scan per output): a hard link and a symbolic link are
    # still found, whichever input they lead to.
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    for name in ("a", "b", "c"):
        np.save(folder / f"{name}.npy", np.zeros((2, 3), dtype=np.float32))
    os.link(folder / "c.npy", out / "a.npy")  # writing out/a.npy would overwrite the input c.npy
    (out / "b.npy").symlink_to(folder / "a.npy")
    before = {name: (folder / f"{name}.npy").read_bytes() for name in ("a", "b", "c")}
    completed = softmax("probs", folder, "--out-dir", out, "-f", "npy", "--force", "--keep-going")
    assert completed.returncode == 2
    failed = [line for line in completed.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2 and all("is an input; inputs are never overwritten" in line for line in failed)
    assert {name: (folder / f"{name}.npy").read_bytes() for name in ("a", "b", "c")} == before
    np.testing.assert_array_equal(np.load(out / "c.npy"), reference_softmax(np.zeros((2, 3))).astype(np.float32))


@pytest.mark.parametrize("keep_going", [[], ["--keep-going"]], ids=["stop", "keep-going"])
def test_a_batch_refused_before_any_output_leaves_no_folder_behind(softmax, tmp_path, keep_going):
    for name in ("bad.csv", "worse.csv"):
        (tmp_path / name).write_text("a,b\n0.5,nope\n")
    completed = softmax("probs", tmp_path / "bad.csv", tmp_path / "worse.csv", "--out-dir", tmp_path / "new" / "probs",
                        *keep_going)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert not (tmp_path / "new").exists()


def test_a_folder_that_was_there_stays(softmax, tmp_path):
    for name in ("bad.csv", "worse.csv"):
        (tmp_path / name).write_text("a,b\n0.5,nope\n")
    (tmp_path / "probs").mkdir()
    assert softmax("probs", tmp_path / "bad.csv", tmp_path / "worse.csv", "--out-dir", tmp_path / "probs").returncode == 2
    assert (tmp_path / "probs").is_dir()


def test_an_empty_input_name_is_refused_not_read_as_this_folder(tmp_path):
    # softmax probs "$UNSET" read every logits file in the current folder.
    np.save(tmp_path / "a.npy", np.zeros((2, 3)))
    assert_one_error_line(run("probs", "", cwd=tmp_path), "empty name", "input 1")
    assert_one_error_line(run("probs", tmp_path / "a.npy", "", cwd=tmp_path), "empty name", "input 2")


def test_an_input_name_too_long_for_the_system_is_that_inputs_error(tmp_path):
    # It was "cannot write to standard output: File name too long".
    name = "x" * 300
    line = assert_one_error_line(run("probs", name, cwd=tmp_path), "File name too long")
    assert "standard output" not in line and name in line
