"""Tests of softmax_cli.core.reliability and .temperature: ECE, reliability bins, NLL, sweeps, fitted temperature.

References are independent of the code under test: a per-bin loop written
out as in the gpleiss/temperature_scaling script, log-softmax and
torch.nn.functional.cross_entropy, mpmath at 50 digits, and a dense grid
search over the temperature.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from softmax_cli.core import (
    MaskedRowError,
    ReliabilityBins,
    entropy,
    expected_calibration_error,
    fit_temperature,
    log_softmax,
    nll,
    reliability_bins,
    softmax,
    temperature_sweep,
)
from softmax_cli.errors import InputError

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
# The cross-entropy example of REFERENCE.md (torch: per-row 0.41703, 0.22005).
Z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])


def direct_ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """ECE written out bin by bin, as the reference script does: (lower, upper], empty bins skipped."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lower) & (confidence <= upper)
        if in_bin.sum() > 0:
            share = in_bin.mean()
            total += share * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return total


def overconfident(seed: int, n: int = 400, c: int = 6, scale: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model that is right ~70% of the time but too sure of itself."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    logits = rng.standard_normal((n, c))
    right = rng.random(n) < 0.7
    logits[np.arange(n), np.where(right, labels, (labels + 1) % c)] += 2.0
    return scale * logits, labels


def nll_slope_and_curvature(logits: np.ndarray, labels: np.ndarray, beta: float) -> tuple[float, float]:
    """dNLL/dβ = mean(E_p[z] - z_y) and d²NLL/dβ² = mean(Var_p[z]), written out independently."""
    p = softmax(beta * logits)
    mean = (p * logits).sum(axis=1)
    variance = (p * logits**2).sum(axis=1) - mean**2
    return float((mean - logits[np.arange(len(labels)), labels]).mean()), float(variance.mean())


# --- expected calibration error -----------------------------------------------


@pytest.mark.parametrize("bins", [1, 2, 5, 15, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_direct_per_bin_loop(bins, seed):
    logits, labels = overconfident(seed)
    probs = softmax(logits / 3.0)
    assert expected_calibration_error(probs, labels, bins=bins) == pytest.approx(
        direct_ece(probs, labels, bins), abs=1e-14
    )


def test_ece_matches_direct_loop_on_sample_data():
    logits = np.load(SAMPLE_DATA / "digits_val_logits.npy").astype(np.float64)
    labels = np.load(SAMPLE_DATA / "digits_val_labels.npy")
    probs = softmax(logits)
    assert expected_calibration_error(probs, labels) == pytest.approx(direct_ece(probs, labels, 15), abs=1e-14)


def test_ece_bins_are_closed_on_the_right():
    # Confidences exactly on an edge (0.5, 1.0) belong to the bin that edge closes.
    probs = np.array([[0.5, 0.5], [1.0, 0.0], [0.75, 0.25], [0.5, 0.5]])
    r = reliability_bins(probs, [0, 0, 1, 1], bins=2)
    np.testing.assert_array_equal(r.count, [2, 2])
    np.testing.assert_array_equal(r.lower, [0.0, 0.5])
    np.testing.assert_array_equal(r.upper, [0.5, 1.0])
    np.testing.assert_allclose(r.confidence, [0.5, 0.875])
    np.testing.assert_allclose(r.accuracy, [0.5, 0.5])
    assert expected_calibration_error(probs, [0, 0, 1, 1], bins=2) == pytest.approx(0.5 * 0.375)


def test_ece_of_a_calibrated_toy_is_zero_and_empty_bins_are_skipped():
    # Four rows at confidence 0.75, three right: acc = conf in the one occupied bin.
    probs = np.tile([0.75, 0.25], (4, 1))
    assert expected_calibration_error(probs, [0, 0, 0, 1]) == 0.0
    r = reliability_bins(probs, [0, 0, 0, 1])
    assert r.count.sum() == 4 and (r.count > 0).sum() == 1
    assert np.isnan(r.confidence[r.count == 0]).all() and np.isnan(r.accuracy[r.count == 0]).all()


def test_reliability_bins_reassemble_the_ece():
    logits, labels = overconfident(4)
    probs = softmax(logits)
    r = reliability_bins(probs, labels, bins=10)
    assert isinstance(r, ReliabilityBins)
    assert r.count.dtype == np.int64 and r.count.sum() == len(labels)
    occupied = r.count > 0
    rebuilt = np.sum(r.count[occupied] / len(labels) * np.abs(r.accuracy[occupied] - r.confidence[occupied]))
    assert rebuilt == pytest.approx(expected_calibration_error(probs, labels, bins=10), abs=1e-14)


def test_ece_ties_predict_the_lower_class_and_ignore_index():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    # Row 0 predicts class 0 (tie to the lower index), so label 0 is a hit.
    assert expected_calibration_error(probs, [0, 0, 1], bins=10) == pytest.approx((0.5 + 0.1 + 0.2) / 3)
    assert expected_calibration_error(probs, [0, -100, -100], bins=10) == pytest.approx(0.5)
    assert np.isnan(expected_calibration_error(probs, [-100, -100, -100]))


def test_ece_class_axis():
    logits, labels = overconfident(5, n=50)
    probs = softmax(logits)
    assert expected_calibration_error(probs.T, labels, axis=0) == expected_calibration_error(probs, labels)


@pytest.mark.parametrize("bins", [0, -3, 2.5, "many"])
def test_bad_bins_are_input_errors(bins):
    with pytest.raises(InputError, match="bins"):
        expected_calibration_error([[0.6, 0.4]], [0], bins=bins)


def test_ece_bad_labels_and_probabilities():
    with pytest.raises(InputError, match=r"label 2 is out of range for 2 classes"):
        expected_calibration_error([[0.6, 0.4]], [2])
    with pytest.raises(InputError, match=r"labels have shape \(2,\)"):
        expected_calibration_error([[0.6, 0.4]], [0, 1])
    with pytest.raises(InputError, match=r"probability 1.5 is outside \[0, 1\].*row 1, column 0"):
        expected_calibration_error([[0.6, 0.4], [1.5, 0.0]], [0, 0])
    with pytest.raises(InputError, match="probability nan"):
        reliability_bins([[np.nan, 0.4]], [0])


# --- negative log-likelihood ----------------------------------------------------


def test_nll_reference_values():
    # REFERENCE.md: torch gives per-row 0.41703, 0.22005 and mean 0.31854 with row 3 ignored.
    assert nll(Z, [0, 1, -100]) == pytest.approx(0.31854, abs=5e-6)
    assert nll(Z[:1], [0]) == pytest.approx(0.41703, abs=5e-6)


@pytest.mark.parametrize("temperature", [1e-3, 0.5, 1.0, 3.0, 1e4])
def test_nll_equals_mean_negative_log_softmax(temperature):
    logits, labels = overconfident(7)
    expected = -log_softmax(logits, temperature=temperature)[np.arange(len(labels)), labels].mean()
    assert nll(logits, labels, temperature) == pytest.approx(expected, rel=1e-14)


def test_nll_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    labels, temperature = [0, 1, 2], 0.7
    # Exact to 50 significant digits: log Σ exp(z/T) - z_y/T per row, then the mean.
    total = mpmath.mpf(0)
    for row, label in zip(Z.tolist(), labels):
        scaled = [mpmath.mpf(v) / mpmath.mpf(temperature) for v in row]
        total += mpmath.log(mpmath.fsum(mpmath.exp(v) for v in scaled)) - scaled[label]
    expected = float(total / len(labels))
    assert nll(Z, labels, temperature) == pytest.approx(expected, rel=1e-15)


def test_nll_against_torch_cross_entropy():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits, labels = overconfident(8)
    labels[::7] = -100
    for temperature in (0.3, 1.0, 2.5):
        expected = F.cross_entropy(torch.from_numpy(logits / temperature), torch.from_numpy(labels)).item()
        assert nll(logits, labels, temperature) == pytest.approx(expected, rel=1e-13)


def test_nll_exact_where_log_of_softmax_underflows():
    # log(softmax([1000, 1])[1]) is -inf; the NLL of label 1 is exactly 999.
    assert nll([[1000.0, 1.0]], [1]) == 999.0
    assert nll([[1000.0, 1.0]], [0]) == 0.0


def test_nll_float32_logits_in_float64():
    logits, labels = overconfident(9)
    assert nll(logits.astype(np.float32), labels) == pytest.approx(
        nll(logits.astype(np.float32).astype(np.float64), labels), rel=1e-15
    )


def test_nll_masked_logits():
    logits = np.array([[2.0, -np.inf, 0.0], [-np.inf, 1.0, 1.0]])
    assert nll(logits, [0, 2]) == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2, rel=1e-14)
    with pytest.raises(InputError, match=r"label's logit is -inf.*row 0, column 1"):
        nll(logits, [1, 2])
    with pytest.raises(MaskedRowError, match="row 1"):
        nll(np.array([[1.0, 0.0], [-np.inf, -np.inf]]), [0, 1])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_nll_bad_temperature(bad):
    with pytest.raises(InputError, match="temperature must be finite and > 0"):
        nll(Z, [0, 1, 2], bad)


def test_nll_bad_input_names_position():
    with pytest.raises(InputError, match=r"NaN in logits.*row 1, column 2"):
        nll([[1.0, 2.0, 3.0], [1.0, 2.0, np.nan]], [0, 1])
    with pytest.raises(InputError, match=r"label 3 is out of range.*row 1"):
        nll(Z, [0, 3, 1])
    with pytest.raises(InputError, match=r"labels have shape \(2,\)"):
        nll(Z, [0, 1])


def test_nll_every_row_ignored_is_nan():
    assert math.isnan(nll(Z, [-100, -100, -100]))


# --- temperature sweep --------------------------------------------------------------


def test_sweep_at_t_one_reproduces_probs():
    x = np.array([3.0, 2.0, 1.0, -np.inf])
    sweep = temperature_sweep(x, [1.0])
    np.testing.assert_allclose(sweep["probs"], softmax(x)[None], rtol=1e-15)
    assert sweep["entropy"][0] == pytest.approx(float(entropy(x)), rel=1e-14)
    assert sweep["max_prob"][0] == pytest.approx(softmax(x).max(), rel=1e-15)


def test_sweep_tiny_temperature_is_one_hot_and_huge_is_uniform():
    x = np.array([0.5, 2.0, 1.0])
    sweep = temperature_sweep(x, [1e-6, 1e12])
    np.testing.assert_array_equal(sweep["probs"][0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(sweep["probs"][1], 1 / 3, rtol=1e-10)
    assert np.isfinite(sweep["probs"]).all()
    assert sweep["entropy"][0] == 0.0 and sweep["max_prob"][0] == 1.0
    assert sweep["entropy"][1] == pytest.approx(math.log(3), rel=1e-10)


def test_sweep_tiny_temperature_with_labels_has_no_nan():
    logits, labels = overconfident(10)
    sweep = temperature_sweep(logits, [1e-6], labels)
    for name in ("entropy", "max_prob", "nll", "accuracy", "ece"):
        assert np.isfinite(sweep[name]).all(), name
    assert sweep["max_prob"][0] == 1.0
    assert sweep["ece"][0] == pytest.approx(1 - sweep["accuracy"][0], abs=1e-12)


def test_sweep_summaries_match_the_single_functions():
    logits, labels = overconfident(11)
    temps = [0.25, 1.0, 2.0, 8.0]
    sweep = temperature_sweep(logits, temps, labels, bins=10)
    assert set(sweep) == {"temperatures", "entropy", "max_prob", "nll", "accuracy", "ece", "ece_l2", "mce",
                          "classwise_ece", "brier", "bin_lower", "bin_upper", "bin_count", "bin_confidence",
                          "bin_accuracy"}
    np.testing.assert_array_equal(sweep["temperatures"], temps)
    for i, t in enumerate(temps):
        probs = softmax(logits, temperature=t)
        assert sweep["entropy"][i] == pytest.approx(entropy(logits, temperature=t).mean(), rel=1e-13)
        assert sweep["max_prob"][i] == pytest.approx(probs.max(axis=1).mean(), rel=1e-14)
        assert sweep["nll"][i] == pytest.approx(nll(logits, labels, t), rel=1e-14)
        assert sweep["ece"][i] == pytest.approx(expected_calibration_error(probs, labels, bins=10), abs=1e-13)
    # Dividing by one positive number never changes the argmax.
    np.testing.assert_array_equal(sweep["accuracy"], np.mean(logits.argmax(axis=1) == labels))


def test_sweep_probs_only_for_a_single_row_and_keep_dtype():
    one = temperature_sweep(np.array([[1.0, 2.0]], dtype=np.float32), [0.5, 1.0, 2.0])
    assert one["probs"].shape == (3, 2) and one["probs"].dtype == np.float32
    half = temperature_sweep(np.array([1.0, 2.0], dtype=np.float16), [1.0])
    assert half["probs"].dtype == np.float16
    many = temperature_sweep(np.zeros((4, 2)), [0.5, 1.0])
    assert "probs" not in many and many["entropy"].shape == (2,)


def test_sweep_nd_with_axis_and_ignore_index():
    logits, labels = overconfident(12, n=60)
    cube = logits.reshape(3, 20, 6).transpose(0, 2, 1)  # class axis 1
    labels = labels.copy()
    labels[:5] = -100
    sweep = temperature_sweep(cube, [0.5, 2.0], labels.reshape(3, 20), axis=1)
    flat = temperature_sweep(logits[5:], [0.5, 2.0], labels[5:])
    for name in ("nll", "accuracy", "ece"):
        np.testing.assert_allclose(sweep[name], flat[name], rtol=1e-14)


@pytest.mark.parametrize("bad", [[0.0], [1.0, -2.0], [float("nan")], [float("inf")], []])
def test_sweep_bad_temperatures_name_the_value(bad):
    with pytest.raises(InputError, match="temperature"):
        temperature_sweep([1.0, 2.0], bad)


def test_sweep_bad_labels_and_bins():
    with pytest.raises(InputError, match="label 5 is out of range"):
        temperature_sweep(Z, [1.0], [0, 5, 1])
    with pytest.raises(InputError, match="bins"):
        temperature_sweep(Z, [1.0], [0, 1, 1], bins=0)
    with pytest.raises(InputError, match=r"NaN in logits.*row 0, column 1"):
        temperature_sweep([[1.0, np.nan]], [1.0])


# --- fitted temperature ---------------------------------------------------------------


def test_fit_closed_form():
    # Three of four right with margin 4: the optimum has σ(4/T) = 3/4, so T = 4 / ln 3.
    logits = np.array([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    assert fit_temperature(logits, [0, 0, 0, 0]) == pytest.approx(4 / math.log(3), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fit_beats_dense_grid_and_zeroes_the_slope(seed):
    logits, labels = overconfident(seed, scale=[0.3, 1.0, 4.0, 20.0][seed])
    t = fit_temperature(logits, labels)
    best = nll(logits, labels, t)
    grid = np.geomspace(t / 100, t * 100, 4001)
    grid_nll = np.array([nll(logits, labels, g) for g in grid])
    assert best <= grid_nll.min() + 1e-14 * best
    # First-order condition: the Newton step left, |NLL'/NLL''|, is tiny relative to β,
    # so T is within far less than 1e-8 of the exact minimiser.
    slope, curvature = nll_slope_and_curvature(logits, labels, 1 / t)
    assert abs(slope / curvature) * t < 1e-10


def test_fit_against_scipy_bounded_minimiser():
    optimize = pytest.importorskip("scipy.optimize")
    logits, labels = overconfident(13)
    found = optimize.minimize_scalar(
        lambda log_t: nll(logits, labels, math.exp(log_t)), bounds=(-5, 5), method="bounded",
        options={"xatol": 1e-10},
    )
    assert fit_temperature(logits, labels) == pytest.approx(math.exp(found.x), rel=1e-6)


def test_fit_is_scale_equivariant_and_float32_ok():
    logits, labels = overconfident(14)
    t = fit_temperature(logits, labels)
    assert fit_temperature(8 * logits, labels) == pytest.approx(8 * t, rel=1e-10)
    assert fit_temperature(logits.astype(np.float32), labels) == pytest.approx(t, rel=1e-5)


def test_fit_with_masked_logits_and_ignored_rows():
    logits, labels = overconfident(15, n=200)
    # Mask one wrong class per row; rows labelled -100 must not count at all.
    masked = logits.copy()
    masked[np.arange(200), (labels + 3) % 6] = -np.inf
    labels = labels.copy()
    labels[:20] = -100
    t = fit_temperature(masked, labels)
    kept = slice(20, None)
    grid = np.geomspace(t / 10, t * 10, 2001)
    best = nll(masked[kept], labels[kept], t)
    assert best <= min(nll(masked[kept], labels[kept], g) for g in grid) + 1e-14 * best


def test_fit_class_axis():
    logits, labels = overconfident(16, n=100)
    assert fit_temperature(logits.T, labels, axis=0) == pytest.approx(fit_temperature(logits, labels), rel=1e-12)


def test_fit_nll_after_never_worse_than_before():
    for seed in range(5):
        logits, labels = overconfident(20 + seed)
        t = fit_temperature(logits, labels)
        assert nll(logits, labels, t) <= nll(logits, labels, 1.0)


def test_fit_all_correct_has_no_finite_temperature():
    # Every label holds the largest logit: NLL -> 0 as T -> 0, no minimum.
    logits = np.array([[3.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    with pytest.raises(InputError, match="T -> 0"):
        fit_temperature(logits, [0, 1])


@pytest.mark.parametrize(
    "logits, labels",
    [
        (np.zeros((3, 4)), [0, 1, 2]),  # uninformative: every T is as good
        (np.array([[3.0, 0.0], [0.0, 3.0]]), [1, 0]),  # always wrong: β* < 0
        (np.array([[2.0, 0.0], [0.0, 2.0]]), [0, 0]),  # one right, one wrong, equal margins: β* = 0
    ],
)
def test_fit_uninformative_has_no_finite_temperature(logits, labels):
    with pytest.raises(InputError, match="T -> inf"):
        fit_temperature(logits, labels)


def test_fit_bad_input():
    with pytest.raises(InputError, match="no labelled rows"):
        fit_temperature(Z, [-100, -100, -100])
    with pytest.raises(InputError, match="label 3 is out of range"):
        fit_temperature(Z, [0, 3, 1])
    with pytest.raises(InputError, match=r"label's logit is -inf"):
        fit_temperature([[1.0, -np.inf], [0.0, 1.0]], [1, 0])


def test_fit_on_the_digits_sample_improves_nll_and_ece():
    # Validation logits of a weakly regularised logistic regression
    # (scripts/make_digits_logits.py): overconfident, so T > 1.
    logits = np.load(SAMPLE_DATA / "digits_val_logits.npy")
    labels = np.load(SAMPLE_DATA / "digits_val_labels.npy")
    assert logits.dtype == np.float32 and labels.dtype == np.int64 and logits.shape == (719, 10)
    t = fit_temperature(logits, labels)
    assert 2.0 < t < 3.5
    before = temperature_sweep(logits, [1.0, t], labels)
    assert before["nll"][1] < before["nll"][0]
    assert before["ece"][1] < before["ece"][0]
    slope, curvature = nll_slope_and_curvature(logits.astype(np.float64), labels, 1 / t)
    assert abs(slope / curvature) * t < 1e-10
    with np.load(SAMPLE_DATA / "digits_val.npz") as bundle:
        np.testing.assert_array_equal(bundle["logits"], logits)
        np.testing.assert_array_equal(bundle["labels"], labels)
