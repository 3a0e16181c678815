"""`softmax topk` and `softmax temperature-sweep` end to end, through the real entry point.

Expected values are NumPy float64 computations written here (a full stable
argsort, log-softmax, a per-bin ECE loop, a dense temperature grid), never
``softmax_cli.core``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_one_error_line, reference_log_softmax, reference_softmax

DIGITS = ROOT / "sample_data" / "digits_val.npz"


def loads(completed) -> dict:
    assert completed.returncode == 0, (completed.returncode, completed.stderr)
    assert "Traceback" not in completed.stderr
    return json.loads(completed.stdout)


def stable_topk(x, k):
    return np.argsort(-np.asarray(x), axis=-1, kind="stable")[..., :k]


def ece_reference(probs, labels, bins=15):
    """Expected calibration error written out: (lower, upper] bins of the max probability, weighted by share."""
    confidence = probs.max(-1)
    correct = probs.argmax(-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        inside = (confidence > lower) & (confidence <= upper)
        if not inside.any():
            continue
        total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def nll_reference(logits, labels, t):
    logp = reference_log_softmax(logits, temperature=t)
    return -np.take_along_axis(logp, labels[:, None], -1).mean()


@pytest.fixture(scope="module")
def digits():
    with np.load(DIGITS) as data:
        return data["logits"].astype(np.float64), data["labels"]


# --------------------------------------------------------------------------- topk

@pytest.mark.parametrize("kind", ["random", "tied"])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_topk_matches_a_full_stable_argsort(cli, tmp_path, kind, k):
    rng = np.random.default_rng(7)
    if kind == "random":
        x = rng.normal(size=(25, 7))
    else:
        x = rng.integers(0, 3, size=(25, 7)).astype(np.float64)  # many ties
    np.save(tmp_path / "x.npy", x)
    out = loads(cli("topk", tmp_path / "x.npy", "-k", k, "-f", "json"))
    indices = np.array(out["indices"])
    expected = stable_topk(x, k)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(out["probs"], np.take_along_axis(reference_softmax(x), expected, -1), rtol=1e-12)


def test_topk_reference_ties_to_lower_index(softmax):
    out = loads(softmax("topk", "3", "1", "3", "2", "3", "-k", "2", "-f", "json"))
    assert out["indices"] == [0, 2]


def test_topk_all_equal_row_keeps_index_order(cli):
    out = loads(cli("topk", "0", "0", "0", "0", "-k", "4", "-f", "json"))
    assert out["indices"] == [0, 1, 2, 3]
    np.testing.assert_allclose(out["probs"], [0.25] * 4)


def test_topk_nd_with_axis(cli, tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 5, 3))  # classes on axis 1
    np.save(tmp_path / "x.npy", x)
    indices = np.array(loads(cli("topk", tmp_path / "x.npy", "--axis", "1", "-k", "2", "-f", "json"))["indices"])
    np.testing.assert_array_equal(indices, stable_topk(np.moveaxis(x, 1, -1), 2))


@pytest.mark.parametrize("k", ["0", "4", "-1"])
def test_topk_k_out_of_range_exits_2(cli, k):
    assert_one_error_line(cli("topk", "1", "2", "3", f"--k={k}"), k)


def test_topk_k_out_of_range_in_a_subprocess(softmax):
    assert_one_error_line(softmax("topk", "1", "2", "3", "-k", "4"), "4")


def test_topk_names_from_classes_option(cli):
    out = loads(cli("topk", "1", "3", "2", "--classes", "a,b,c", "-k", "2", "-f", "json"))
    assert out["indices"] == [1, 2]
    assert out["names"] == ["b", "c"]


def test_topk_names_from_csv_header(cli):
    csv = ROOT / "sample_data" / "logits.csv"
    out = loads(cli("topk", csv, "-k", "2", "-f", "json"))
    lines = [line for line in csv.read_text().splitlines() if line and not line.startswith("#")]
    header = lines[0].split(",")
    x = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    expected = stable_topk(x, 2)
    np.testing.assert_array_equal(out["indices"], expected)
    assert out["names"] == np.array(header)[expected].tolist()


def test_topk_table_shows_names(softmax):
    completed = softmax("topk", "1", "3", "2", "--classes", "apple,banana,cherry", "-k", "2", "-f", "table")
    assert completed.returncode == 0, completed.stderr
    assert "banana" in completed.stdout and "cherry" in completed.stdout
    assert "apple" not in completed.stdout


def _accuracy_case(tmp_path):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 6))
    y = rng.integers(0, 6, size=40)
    y[::4] = np.argmax(x[::4], -1)  # some right answers
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return x, y


def test_topk_accuracy_matches_numpy(cli, tmp_path):
    x, y = _accuracy_case(tmp_path)
    out = loads(cli("topk", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-k", "3", "-f", "json"))
    top = stable_topk(x, 3)
    assert out["top1_accuracy"] == pytest.approx(np.mean(top[:, 0] == y), rel=1e-12)
    assert out["topk_accuracy"] == pytest.approx(np.mean((top == y[:, None]).any(-1)), rel=1e-12)


def test_topk_accuracy_leaves_out_ignored_rows(cli):
    out = loads(cli("topk", "3 1 2; 1 3 2; 1 2 3", "--labels", "0,0,-100", "-k", "1", "-f", "json"))
    assert out["top1_accuracy"] == 0.5


@pytest.mark.parametrize("command", ["topk", "temperature-sweep"])
def test_every_label_ignored_is_refused(softmax, command):
    # torch's cross_entropy over no kept row is NaN; an accuracy over no row is no figure, so a mistake: refused.
    assert_one_error_line(softmax(command, "3 1 2; 1 3 2", "--labels", "0,0", "--ignore-index", "0", "-f", "json"),
                          "every label is the ignore index (0), so nothing would be scored", "(--labels)")


def test_min_accuracy_gate(cli, softmax, tmp_path):
    x, y = _accuracy_case(tmp_path)
    accuracy = np.mean((stable_topk(x, 2) == y[:, None]).any(-1))
    args = ["topk", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "-k", "2", "-f", "json"]
    below = softmax(*args, "--min-accuracy", repr(float(accuracy) + 0.01))
    assert below.returncode == 1, below.stderr
    assert json.loads(below.stdout)["topk_accuracy"] == pytest.approx(accuracy)  # printed before the gate
    assert "Traceback" not in below.stderr
    assert cli(*args, "--min-accuracy", repr(float(accuracy))).returncode == 0  # at the bound
    assert cli(*args, "--min-accuracy", "0").returncode == 0


def test_min_accuracy_without_labels_exits_2(cli):
    assert_one_error_line(cli("topk", "1", "2", "3", "--min-accuracy", "0.5"), "--labels")


def test_topk_temperature_changes_probs_not_indices(cli, tmp_path):
    x = np.random.default_rng(3).normal(size=(10, 5)) * 2
    np.save(tmp_path / "x.npy", x)
    plain = loads(cli("topk", tmp_path / "x.npy", "-k", "3", "-f", "json"))
    hot = loads(cli("topk", tmp_path / "x.npy", "-k", "3", "--temperature", "4", "-f", "json"))
    assert hot["indices"] == plain["indices"]
    expected = np.take_along_axis(reference_softmax(x, temperature=4.0), stable_topk(x, 3), -1)
    np.testing.assert_allclose(hot["probs"], expected, rtol=1e-12)
    assert not np.allclose(hot["probs"], plain["probs"])


# --------------------------------------------------------------------------- temperature-sweep: temperatures

def test_sweep_explicit_temperatures(cli):
    x = np.array([2.0, 1.0, 0.0])
    out = loads(cli("temperature-sweep", "2", "1", "0", "--temperatures", "0.5,1,2", "-f", "json"))
    np.testing.assert_array_equal(out["temperatures"], [0.5, 1.0, 2.0])
    probs = np.array(out["probs"])
    assert probs.shape == (3, 3)
    expected = np.stack([reference_softmax(x, temperature=t) for t in (0.5, 1.0, 2.0)])
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    np.testing.assert_allclose(out["max_prob"], expected.max(-1), rtol=1e-12)
    np.testing.assert_allclose(out["entropy"], -(expected * np.log(expected)).sum(-1), rtol=1e-12)


@pytest.mark.parametrize("log_space", [False, True])
def test_sweep_range(cli, log_space):
    args = ["temperature-sweep", "2", "1", "0", "--range", "0.5:4:8", "-f", "json"] + (["--log-space"] if log_space
                                                                                      else [])
    out = loads(cli(*args))
    expected = np.geomspace(0.5, 4, 8) if log_space else np.linspace(0.5, 4, 8)
    np.testing.assert_allclose(out["temperatures"], expected, rtol=1e-12)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "abc"])
def test_sweep_bad_temperatures_exit_2_naming_the_value(cli, bad):
    line = assert_one_error_line(cli("temperature-sweep", "2", "1", "0", f"--temperatures=0.5,{bad},2"))
    assert bad in line


def test_sweep_bad_temperature_in_a_subprocess(softmax):
    line = assert_one_error_line(softmax("temperature-sweep", "2", "1", "0", "--temperatures", "-1"))
    assert "-1" in line


@pytest.mark.parametrize("bad", ["0:4:8", "0.5:inf:3", "0.5:4:x"])
def test_sweep_bad_range_exits_2(cli, bad):
    assert_one_error_line(cli("temperature-sweep", "2", "1", "0", "--range", bad))


def test_sweep_batch_means(cli, tmp_path):
    x = np.random.default_rng(8).normal(size=(12, 5)) * 3
    np.save(tmp_path / "x.npy", x)
    temps = [0.25, 1.0, 3.0]
    out = loads(cli("temperature-sweep", tmp_path / "x.npy", "--temperatures", "0.25,1,3", "-f", "json"))
    assert "probs" not in out  # only for a single vector
    p = [reference_softmax(x, temperature=t) for t in temps]
    np.testing.assert_allclose(out["max_prob"], [q.max(-1).mean() for q in p], rtol=1e-12)
    np.testing.assert_allclose(out["entropy"], [-(q * np.log(q)).sum(-1).mean() for q in p], rtol=1e-10)


def test_sweep_t1_reproduces_probs(softmax):
    swept = loads(softmax("temperature-sweep", "2", "-1", "0.5", "3", "--temperatures", "0.5,1,2", "-f", "json"))
    probs = loads(softmax("probs", "2", "-1", "0.5", "3", "-f", "json"))["probs"]
    np.testing.assert_allclose(swept["probs"][1], probs, rtol=1e-15, atol=0)


def test_sweep_tiny_temperature_is_one_hot_without_nan(cli):
    out = loads(cli("temperature-sweep", "2", "1", "0", "--temperatures", "1e-6,1", "-f", "json"))
    assert out["probs"][0] == [1.0, 0.0, 0.0]
    assert out["max_prob"][0] == 1.0
    assert out["entropy"][0] == 0.0


def test_sweep_tiny_temperature_tie_shares_the_mass(cli):
    out = loads(cli("temperature-sweep", "2", "2", "0", "--temperatures", "1e-6", "-f", "json"))
    np.testing.assert_allclose(out["probs"][0], [0.5, 0.5, 0.0])


# --------------------------------------------------------------------------- temperature-sweep: labels and --fit

def test_sweep_with_labels_on_digits(cli, digits):
    logits, labels = digits
    temps = [0.5, 1.0, 2.0, 4.0]
    out = loads(cli("temperature-sweep", DIGITS, "--labels", DIGITS, "--temperatures", "0.5,1,2,4", "-f", "json"))
    for name in ("temperatures", "entropy", "max_prob", "nll", "accuracy", "ece"):
        assert np.shape(out[name]) == (4,), name
    probs = [reference_softmax(logits, temperature=t) for t in temps]
    np.testing.assert_allclose(out["nll"], [nll_reference(logits, labels, t) for t in temps], rtol=1e-9)
    np.testing.assert_allclose(out["accuracy"], [np.mean(p.argmax(-1) == labels) for p in probs], rtol=1e-12)
    np.testing.assert_allclose(out["ece"], [ece_reference(p, labels) for p in probs], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["max_prob"], [p.max(-1).mean() for p in probs], rtol=1e-9)
    entropies = [-(p * np.where(p > 0, np.log(np.where(p > 0, p, 1)), 0)).sum(-1).mean() for p in probs]
    np.testing.assert_allclose(out["entropy"], entropies, rtol=1e-8, atol=1e-12)
    assert len(set(out["accuracy"])) == 1  # temperature does not change accuracy


def test_sweep_bins_option(cli, digits):
    logits, labels = digits
    out = loads(cli("temperature-sweep", DIGITS, "--labels", DIGITS, "--temperatures", "1.5", "--bins", "7",
                    "-f", "json"))
    assert out["ece"][0] == pytest.approx(ece_reference(reference_softmax(logits, temperature=1.5), labels, 7),
                                          rel=1e-9)


def test_fit_on_digits(softmax, digits):
    logits, labels = digits
    out = loads(softmax("temperature-sweep", DIGITS, "--labels", DIGITS, "--fit", "-f", "json"))
    t = out["fitted_temperature"]
    assert 0 < t < 100
    best = nll_reference(logits, labels, t)
    grid = np.linspace(0.5, 8.0, 1501)
    grid_nll = np.array([nll_reference(logits, labels, g) for g in grid])
    assert best <= grid_nll.min() + 1e-12
    # first-order condition on beta = 1/T: d NLL / d beta = mean(E_p[z] - z_y) = 0
    p = reference_softmax(logits, temperature=t)
    derivative = np.mean((p * logits).sum(-1) - np.take_along_axis(logits, labels[:, None], -1)[:, 0])
    assert abs(derivative) < 1e-6
    assert out["nll_before"] == pytest.approx(nll_reference(logits, labels, 1.0), rel=1e-9)
    assert out["nll_after"] == pytest.approx(best, rel=1e-9)
    assert out["nll_after"] <= out["nll_before"]
    assert out["ece_before"] == pytest.approx(ece_reference(reference_softmax(logits), labels), rel=1e-9)
    assert out["ece_after"] == pytest.approx(ece_reference(p, labels), rel=1e-9, abs=1e-12)
    # README's table for the shipped data
    assert t == pytest.approx(2.694, abs=5e-4)
    assert out["nll_before"] == pytest.approx(0.2106, abs=5e-5)


def test_fit_without_labels_exits_2(cli):
    assert_one_error_line(cli("temperature-sweep", "2", "1", "0", "--fit"), "--labels")


# --------------------------------------------------------------------------- temperature-sweep: --plot

@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<svg")])
def test_plot_writes_a_picture(cli, tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    picture = tmp_path / f"calib{suffix}"
    completed = cli("temperature-sweep", DIGITS, "--labels", DIGITS, "--temperatures", "0.5,1,2", "--fit",
                    "--plot", picture, "-f", "json")
    assert completed.returncode == 0, completed.stderr
    data = picture.read_bytes()
    assert data
    if suffix == ".png":
        assert data.startswith(magic)
    else:
        assert magic in data[:2000]


def test_plot_other_suffix_exits_2(cli, tmp_path):
    picture = tmp_path / "calib.pdf"
    assert_one_error_line(cli("temperature-sweep", "2", "1", "0", "--plot", picture), "pdf")
    assert not picture.exists()


def test_plot_without_matplotlib_says_how_to_install(tmp_path):
    picture = tmp_path / "calib.png"
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        f"sys.argv = ['softmax', 'temperature-sweep', {str(DIGITS)!r}, '--labels', {str(DIGITS)!r}, '--fit',"
        f" '--plot', {str(picture)!r}, '-f', 'json']\n"
        "import softmax_cli.__main__\n"
        "softmax_cli.__main__.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                               cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert "pip install" in completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    assert not picture.exists()
    assert list(tmp_path.iterdir()) == []
