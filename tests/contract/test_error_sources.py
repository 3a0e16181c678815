"""Errors name the source that holds the bad value (issue 13, point 3), through the real entry point.

A bad label, target probability, class weight, upstream gradient or mask is
reported with the file (or ``<stdin>``, or the option of typed numbers) it was
read from and its own row and column, never with the logits' file; a bad
logit still names the logits' file. Inputs are written by ``np.save`` and the
commands run with ``cwd`` set to the files' folder, so the whole line can be
compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_one_error_line

Z = np.array([[[2.0, 1.0, 0.1], [0.5, 0.2, 3.0]], [[1.0, 1.0, 1.0], [0.0, -1.0, 2.0]]])  # (2, 2, 3)


@pytest.fixture
def folder(tmp_path):
    """z.npy (2, 2, 3) logits and a 2-D copy zz.npy, in a fresh folder."""
    np.save(tmp_path / "z.npy", Z)
    np.save(tmp_path / "zz.npy", Z.reshape(4, 3))
    return tmp_path


def save(folder, name: str, array) -> str:
    np.save(folder / name, np.asarray(array))
    return name


def error_line(completed) -> str:
    return assert_one_error_line(completed)


def test_negative_target_names_the_labels_file(cli, folder):
    t = np.full(Z.shape, 1 / 3)
    t[0, 0, 1] = -1.187
    save(folder, "t.npy", t)
    line = error_line(cli("loss", "z.npy", "--labels", "t.npy", "-f", "json", cwd=folder))
    assert line == "error: target probability -1.187 is negative (t.npy, row (0, 0), column 1)"


def test_out_of_range_label_names_the_labels_file(cli, folder):
    save(folder, "y.npy", np.array([0, 2, 254, 1], dtype=np.uint8))
    line = error_line(cli("loss", "zz.npy", "--labels", "y.npy", "-f", "json", cwd=folder))
    assert line == "error: label 254 is out of range for 3 classes (y.npy, row 2)"


def test_typed_labels_name_their_option(cli, folder):
    line = error_line(cli("loss", "zz.npy", "--labels", "0,5,1,1", "-f", "json", cwd=folder))
    assert line == "error: label 5 is out of range for 3 classes (--labels, row 1)"


def test_labels_from_stdin_name_stdin(cli, folder):
    line = error_line(cli("loss", "zz.npy", "--labels", "-", "-f", "json", input="0\n1\n7\n2\n", cwd=folder))
    assert line == "error: label 7 is out of range for 3 classes (<stdin>, row 2)"


def test_typed_logits_with_a_bad_label_name_the_labels(cli):
    line = error_line(cli("loss", "1 2 3; 3 2 1", "--labels", "0,3", "-f", "json"))
    assert line == "error: label 3 is out of range for 3 classes (--labels, row 1)"


def test_bad_weight_names_the_weights_file(cli, folder):
    save(folder, "y.npy", np.array([0, 2, 1, 1]))
    save(folder, "w.npy", np.array([1.0, -2.0, 3.0]))
    line = error_line(cli("loss", "zz.npy", "--labels", "y.npy", "--weights", "w.npy", "-f", "json", cwd=folder))
    assert line == "error: class weight -2 for class 1 must be finite and >= 0 (w.npy)"
    line = error_line(cli("grad", "zz.npy", "--labels", "y.npy", "--weights", "1,nan,1", "-f", "json", cwd=folder))
    assert line == "error: class weight nan for class 1 must be finite and >= 0 (--weights)"


def test_non_finite_upstream_names_the_upstream_file(cli, folder):
    g = np.ones(Z.shape)
    g[1, 0, 2] = np.nan
    save(folder, "g.npy", g)
    line = error_line(cli("grad", "z.npy", "--upstream", "g.npy", "-f", "json", cwd=folder))
    assert line == "error: the upstream gradient must be finite (g.npy, row (1, 0), column 2)"


def test_label_errors_of_topk_and_temperature_sweep_name_the_labels(cli, folder):
    save(folder, "y.npy", np.array([0, 1, 3, 1]))
    for command in (["topk", "zz.npy", "-k", "2"], ["temperature-sweep", "zz.npy"]):
        line = error_line(cli(*command, "--labels", "y.npy", "-f", "json", cwd=folder))
        assert line == "error: label 3 is out of range for 3 classes (y.npy, row 2)", command


def test_bad_mask_names_the_mask_file(cli, folder):
    q = np.ones((2, 4))
    for name in "qkv":
        save(folder, f"{name}.npy", q)
    mask = np.zeros((2, 2))
    mask[1, 0] = np.nan
    save(folder, "m.npy", mask)
    line = error_line(cli("attention", "q.npy", "k.npy", "v.npy", "--mask", "m.npy", "-f", "json", cwd=folder))
    assert line == ("error: the float mask holds NaN or +inf; only finite values and -inf (hide) are allowed "
                    "(m.npy, index (1, 0))")


def test_non_finite_value_names_its_operand_file(cli, folder):
    save(folder, "q.npy", np.ones((2, 4)))
    save(folder, "v.npy", np.ones((2, 4)))
    k = np.ones((2, 4))
    k[0, 3] = np.inf
    save(folder, "k.npy", k)
    line = error_line(cli("attention", "q.npy", "k.npy", "v.npy", "-f", "json", cwd=folder))
    assert line.startswith("error: +inf in k;") and line.endswith("(k.npy, k index (0, 3))")


def test_bad_logits_still_name_the_logits_file(cli, folder):
    z = Z.reshape(4, 3).copy()
    z[3, 1] = np.nan
    save(folder, "bad.npy", z)
    save(folder, "y.npy", np.array([0, 1, 2, 1]))
    line = error_line(cli("loss", "bad.npy", "--labels", "y.npy", "-f", "json", cwd=folder))
    assert line.endswith("(bad.npy, row 3, column 1)"), line


def test_batch_names_the_labels_file_for_every_input(cli, folder):
    save(folder, "y.npy", np.array([0, 1, 9, 1]))
    completed = cli("loss", "zz.npy", "zz.npy", "--labels", "y.npy", "-f", "json", cwd=folder)
    assert error_line(completed) == "error: label 9 is out of range for 3 classes (y.npy, row 2)"


# ---------------------------------------------------------------- streamed .npy logits: whole-file rows

N_ROWS, C = 40, 3


@pytest.fixture
def streamed(folder):
    """A 40-row logits file read in 3-row blocks, and targets bad in a late block."""
    rng = np.random.default_rng(13)
    save(folder, "big.npy", rng.normal(size=(N_ROWS, C)).astype(np.float32))
    t = np.full((N_ROWS, C), 1 / 3, dtype=np.float32)
    t[37, 2] = -0.25
    save(folder, "t.npy", t)
    return {"SOFTMAX_BLOCK_BYTES": str(3 * C * 4)}


@pytest.mark.parametrize("command, output", [("loss", []), ("grad", []), ("grad", ["-o", "g.npy"])])
def test_streamed_targets_name_the_labels_file_and_whole_file_row(softmax, folder, streamed, command, output):
    completed = softmax(command, "big.npy", "--labels", "t.npy", "-f", "npy", *output, env=streamed, cwd=folder)
    assert error_line(completed) == "error: target probability -0.25 is negative (t.npy, row 37, column 2)"
    assert not (folder / "g.npy").exists()


def test_streamed_labels_name_the_labels_file(softmax, folder, streamed):
    y = np.zeros(N_ROWS, dtype=np.int64)
    y[38] = 3
    save(folder, "y.npy", y)
    completed = softmax("loss", "big.npy", "--labels", "y.npy", "-f", "json", env=streamed, cwd=folder)
    assert error_line(completed) == "error: label 3 is out of range for 3 classes (y.npy, row 38)"


def test_flat_labels_of_nd_logits_are_named_by_their_own_row(cli, folder):
    save(folder, "y.npy", np.array([0, 1, 5, 2]))  # one label per row of the (2, 2) rows of z.npy, flat
    line = error_line(cli("topk", "z.npy", "-k", "2", "--labels", "y.npy", "-f", "json", cwd=folder))
    assert line == "error: label 5 is out of range for 3 classes (y.npy, row 2)"
