"""temperature-sweep's calibration figures and bins through the real entry point: every format, the cluster,
and --fit on perfectly separated data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
LOGITS, LABELS = SAMPLE / "digits_val_logits.npy", SAMPLE / "digits_val_labels.npy"
METRICS = ("ece", "ece_l2", "mce", "classwise_ece", "brier")
BINS = ("bin_lower", "bin_upper", "bin_count", "bin_confidence", "bin_accuracy")


def sweep(*options) -> dict:
    done = run("temperature-sweep", LOGITS, "--labels", LABELS, "--temperatures", "0.5,1,2.5", *options, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("options", [(), ("--bin-edges", "bucketize"), ("--binning", "quantile", "--bins", "7"),
                                     ("--bin-edges", "left", "--bins", "20")])
def test_the_bins_in_json_reproduce_the_errors(options):
    result = sweep(*options)
    for t in range(3):
        count = np.array(result["bin_count"][t], dtype=np.float64)
        # Empty bins have no mean: null in JSON.
        confidence = np.array([np.nan if v is None else v for v in result["bin_confidence"][t]])
        accuracy = np.array([np.nan if v is None else v for v in result["bin_accuracy"][t]])
        filled = count > 0
        share, gap = count[filled] / count.sum(), np.abs(accuracy - confidence)[filled]
        assert result["ece"][t] == pytest.approx((share * gap).sum(), abs=1e-14)
        assert result["ece_l2"][t] == pytest.approx(np.sqrt((share * gap**2).sum()), abs=1e-14)
        assert result["mce"][t] == pytest.approx(gap.max(), abs=1e-15)


def test_json_figures_equal_an_independent_float64_computation():
    z, y = np.load(LOGITS).astype(np.float64), np.load(LABELS)
    result = sweep()
    for t, temperature in enumerate((0.5, 1.0, 2.5)):
        p = np.exp(z / temperature - (z / temperature).max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        onehot = np.eye(p.shape[1])[y]
        assert result["brier"][t] == pytest.approx(((p - onehot) ** 2).sum(axis=1).mean(), rel=1e-12)
        assert sum(result["bin_count"][t]) == y.size


def test_every_machine_format_keeps_the_bins():
    npz = run("temperature-sweep", LOGITS, "--labels", LABELS, "--temperatures", "0.5,1,2.5", "-f", "npz",
              text=False)
    assert npz.returncode == 0
    arrays = np.load(io.BytesIO(npz.stdout))
    for name in METRICS + BINS:
        assert arrays[name].shape[0] == 3, name
    assert arrays["bin_count"].shape == (3, 15)
    csv = run("temperature-sweep", LOGITS, "--labels", LABELS, "--temperatures", "0.5,1,2.5", "-f", "csv")
    assert csv.returncode == 0 and csv.stderr == ""
    header = csv.stdout.splitlines()[0].split(",")
    assert [f"bin_count_{j}" for j in range(15)] == [h for h in header if h.startswith("bin_count_")]
    assert all(name in header for name in METRICS)
    rows = [line.split(",") for line in csv.stdout.splitlines()[1:4]]
    counts = [[int(row[header.index(f"bin_count_{j}")]) for j in range(15)] for row in rows]
    assert counts == arrays["bin_count"].tolist()


def test_fit_reports_every_figure_before_and_after():
    result = sweep("--fit")
    for name in ("nll",) + METRICS:
        assert f"{name}_before" in result and f"{name}_after" in result
    direct = sweep("--temperatures", f"1,{result['fitted_temperature']!r}")
    assert result["brier_after"] == pytest.approx(direct["brier"][1], rel=1e-12)
    assert result["mce_before"] == pytest.approx(direct["mce"][0], rel=1e-12)


def test_binary_needs_two_classes_in_one_line():
    done = run("temperature-sweep", LOGITS, "--labels", LABELS, "--binary")
    assert done.returncode == 2
    assert done.stderr.count("error:") == 1 and "10 classes" in done.stderr


SEPARABLE = "4 0; 0 3; 5 1"


def test_fit_on_separated_data_says_why_and_what_to_type(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0\n1\n0\n")
    done = run("temperature-sweep", SEPARABLE, "--labels", labels, "--fit", "-f", "json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: the NLL has no minimum")
    assert "--min-temperature" in done.stderr


def test_min_temperature_is_returned_with_a_warning_on_separated_data(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0\n1\n0\n")
    done = run("temperature-sweep", SEPARABLE, "--labels", labels, "--fit", "--min-temperature", "0.05", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fitted_temperature"] == 0.05
    assert done.stderr.startswith("warning: the NLL has no minimum") and done.stderr.count("\n") == 1


def test_min_temperature_above_the_minimum_is_the_bounded_fit():
    free = sweep("--fit")["fitted_temperature"]
    bound = 2 * free
    result = sweep("--fit", "--min-temperature", repr(bound))
    # NLL is convex in 1/T: with the minimum below the bound, the bound is the best allowed temperature.
    assert result["fitted_temperature"] == bound
    assert result["nll_after"] > sweep("--fit")["nll_after"]


@pytest.mark.parametrize("bound", ["-1", "0", "nan", "inf"])
def test_min_temperature_must_be_a_temperature(bound):
    done = run("temperature-sweep", LOGITS, "--labels", LABELS, "--fit", "--min-temperature", bound)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"error: --min-temperature takes a finite temperature > 0 (e.g. 0.05), got {bound}\n"
    assert done.stderr.count("\n") == 1


def test_min_temperature_needs_fit():
    done = run("temperature-sweep", LOGITS, "--labels", LABELS, "--min-temperature", "0.1")
    assert done.returncode == 2 and "add --fit" in done.stderr


@pytest.mark.parametrize("options", [("--binning", "quantile", "--bin-edges", "left"),
                                     ("--bin-edges", "bucketize", "--bins", "10")])
def test_cluster_equals_in_process(cluster, options):
    local = sweep(*options, "--fit")
    on_cluster = run("temperature-sweep", LOGITS, "--labels", LABELS, "--temperatures", "0.5,1,2.5", *options,
                     "--fit", "-f", "json", "--scheduler", cluster, env={"SOFTMAX_UNIT_BYTES": "20000"}, timeout=300)
    assert on_cluster.returncode == 0, on_cluster.stderr
    got = json.loads(on_cluster.stdout)
    for name in ("fitted_temperature", *METRICS, *BINS, *(f"{m}_after" for m in METRICS)):
        np.testing.assert_allclose(np.array(got[name], dtype=float), np.array(local[name], dtype=float),
                                   rtol=1e-12, atol=1e-15, err_msg=name)
