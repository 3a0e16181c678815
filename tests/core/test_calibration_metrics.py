"""Every calibration figure of temperature-sweep against the peer that defines it.

torchmetrics (float64 tensors, ``--bin-edges bucketize``), netcal (``--bin-edges left``, its
``equal_intervals=False`` for ``--binning quantile``), sklearn's ``brier_score_loss``, and the
gpleiss loop (``--bin-edges right``), on logits of models trained on sklearn's bundled data sets.
The classwise ECE has no packaged peer here: it is checked against Kull et al.'s formula written
out as a loop over classes and bins.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from softmax_cli import core

torch = pytest.importorskip("torch")
pytest.importorskip("torchmetrics")
# torchmetrics' public functions cast confidences to float32; its binning and norms, fed float64, are these.
_ce_compute = pytest.importorskip("torchmetrics.functional.classification.calibration_error")._ce_compute


def torchmetrics_error(confidence: np.ndarray, hits: np.ndarray, bins: int, norm: str) -> float:
    return float(_ce_compute(torch.from_numpy(confidence), torch.from_numpy(hits.astype(np.float64)), bins, norm))

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@functools.cache
def model_logits(data: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    """Held-out logits and labels of a small model trained on one of sklearn's bundled data sets."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = getattr(sklearn_datasets, f"load_{data}")(return_X_y=True)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.4, random_state=0, stratify=y)
    if model == "logistic":
        fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_fit, y_fit)
        scores = fitted.decision_function(x_val)
        # A binary model's one score is the logit of class 1 against class 0.
        logits = np.stack([np.zeros_like(scores), scores], axis=1) if scores.ndim == 1 else scores
    else:
        fitted = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=300, random_state=0)).fit(x_fit, y_fit)
        # log p are logits of p: softmax(log p) = p.
        with np.errstate(divide="ignore"):
            logits = np.maximum(np.log(fitted.predict_proba(x_val)), -700.0)
    return logits.astype(np.float64), y_val.astype(np.int64)


CASES = [(data, model) for data in ("digits", "wine", "breast_cancer") for model in ("logistic", "mlp")]
TEMPERATURES = (0.5, 1.0, 2.5)


def probs_at(data: str, model: str, t: float) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = model_logits(data, model)
    shifted = (logits - logits.max(axis=1, keepdims=True)) / t
    p = np.exp(shifted)
    return p / p.sum(axis=1, keepdims=True), labels


def sweep_at(data: str, model: str, t: float, **options) -> dict:
    logits, labels = model_logits(data, model)
    sweep = core.temperature_sweep(logits, [t], labels, **options)
    return {name: value[0] for name, value in sweep.items()}


@pytest.mark.parametrize("data,model", CASES)
@pytest.mark.parametrize("t", TEMPERATURES)
@pytest.mark.parametrize("norm,name", [("l1", "ece"), ("l2", "ece_l2"), ("max", "mce")])
def test_top_label_errors_equal_torchmetrics_in_float64(data, model, t, norm, name):
    p, y = probs_at(data, model, t)
    ours = sweep_at(data, model, t, bins=15, bin_edges="bucketize")
    theirs = torchmetrics_error(p.max(axis=1), p.argmax(axis=1) == y, 15, norm)
    assert ours[name] == pytest.approx(theirs, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("model", ["logistic", "mlp"])
@pytest.mark.parametrize("t", TEMPERATURES)
@pytest.mark.parametrize("norm,name", [("l1", "ece"), ("l2", "ece_l2"), ("max", "mce")])
def test_binary_errors_equal_torchmetrics_binary_calibration_error(model, t, norm, name):
    p, y = probs_at("breast_cancer", model, t)
    ours = sweep_at("breast_cancer", model, t, bins=15, bin_edges="bucketize", binary=True)
    # binary_calibration_error bins P(class 1) against y == 1.
    theirs = torchmetrics_error(p[:, 1], y == 1, 15, norm)
    assert ours[name] == pytest.approx(theirs, rel=1e-12, abs=1e-14)


def test_binary_and_top_label_differ_on_breast_cancer():
    # The figures: the positive-class ECE is not the top-label one.
    top = sweep_at("breast_cancer", "logistic", 1.0)
    positive = sweep_at("breast_cancer", "logistic", 1.0, binary=True)
    assert positive["ece"] != pytest.approx(top["ece"], abs=1e-6)


netcal_metrics = pytest.importorskip("netcal.metrics")


@pytest.mark.parametrize("data,model", CASES)
@pytest.mark.parametrize("t", TEMPERATURES)
@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_ece_and_mce_equal_netcal(data, model, t, binning):
    p, y = probs_at(data, model, t)
    # netcal scores two-class data by P(class 1) whatever the input's width: that is --binary.
    ours = sweep_at(data, model, t, bins=10, binning=binning, bin_edges="left", binary=p.shape[1] == 2)
    equal = binning == "uniform"
    ece = netcal_metrics.ECE(bins=10, equal_intervals=equal).measure(p, y)
    mce = netcal_metrics.MCE(bins=10, equal_intervals=equal).measure(p, y)
    # netcal clips confidences into [eps, 1 - eps] before binning: differences of ~1e-16 per row.
    assert ours["ece"] == pytest.approx(ece, abs=1e-13)
    assert ours["mce"] == pytest.approx(mce, abs=1e-13)


@pytest.mark.parametrize("model", ["logistic", "mlp"])
def test_binary_ece_equals_netcal_on_the_positive_class(model):
    p, y = probs_at("breast_cancer", model, 1.0)
    ours = sweep_at("breast_cancer", model, 1.0, bins=10, bin_edges="left", binary=True)
    # A 1-D input is netcal's binary mode: P(class 1) against y == 1.
    assert ours["ece"] == pytest.approx(netcal_metrics.ECE(bins=10).measure(p[:, 1], y), abs=1e-13)
    assert ours["ece"] == pytest.approx(netcal_metrics.ECE(bins=10).measure(p, y), abs=1e-13)


@pytest.mark.parametrize("data,model", CASES)
@pytest.mark.parametrize("t", TEMPERATURES)
def test_brier_equals_sklearn(data, model, t):
    from sklearn.metrics import brier_score_loss

    p, y = probs_at(data, model, t)
    ours = sweep_at(data, model, t)
    if p.shape[1] == 2:
        # Two classes: sklearn's binary form (scale_by_half="auto"), from both columns or from P(class 1) alone.
        assert ours["brier"] == pytest.approx(brier_score_loss(y, p[:, 1]), rel=1e-12)
        assert ours["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)
        assert sweep_at(data, model, t, binary=True)["brier"] == ours["brier"]
    else:
        assert ours["brier"] == pytest.approx(brier_score_loss(y, p, labels=np.arange(p.shape[1])), rel=1e-12)


def classwise_reference(p: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Kull et al. (2019): per class, equal-width bins (lower, upper] of p_c, the gap of frequency and mean p_c."""
    n, classes = p.shape
    edges = np.arange(bins + 1) / bins
    total = 0.0
    for c in range(classes):
        for m in range(bins):
            inside = (p[:, c] > edges[m]) & (p[:, c] <= edges[m + 1])
            if m == 0:
                inside |= p[:, c] == 0.0
            if inside.any():
                total += inside.sum() / n * abs(np.mean(y[inside] == c) - np.mean(p[inside, c]))
    return total / classes


@pytest.mark.parametrize("data,model", CASES)
@pytest.mark.parametrize("t", TEMPERATURES)
def test_classwise_ece_equals_kull_formula(data, model, t):
    p, y = probs_at(data, model, t)
    assert sweep_at(data, model, t, bins=15)["classwise_ece"] == pytest.approx(classwise_reference(p, y, 15),
                                                                              abs=1e-13)


def gpleiss_ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """The gpleiss/temperature_scaling loop, in float64: bins (lower, upper] of torch.linspace edges."""
    conf, acc = torch.from_numpy(confidence), torch.from_numpy(correct.astype(np.float64))
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    ece = torch.zeros(1, dtype=torch.float64)
    for lower, upper in itertools.pairwise(edges):
        inside = conf.gt(lower.item()) * conf.le(upper.item())
        share = inside.double().mean()
        if share.item() > 0:
            ece += torch.abs(acc[inside].mean() - conf[inside].mean()) * share
    return float(ece)


# Confidences on the edges 0.2, 0.4, 0.6, 0.8 and 1.0 of five bins (torch.linspace's edges are i/5 exactly).
EDGE_PROBS = np.array([[1.0, 0.0], [1.0, 0.0], [0.8, 0.2], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.8, 0.2],
                       [0.0, 1.0], [0.5, 0.5], [0.9, 0.1]])
EDGE_LABELS = np.array([0, 1, 0, 1, 0, 0, 0, 1, 1, 0])


def test_edge_case_each_rule_equals_its_peer():
    p, y = EDGE_PROBS, EDGE_LABELS
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == y

    def ours(rule: str) -> dict:
        return core.calibration_metrics(p, y, bins=5, bin_edges=rule)

    assert ours("right")["ece"] == pytest.approx(gpleiss_ece(confidence, correct, 5), abs=1e-15)
    torchmetrics = {norm: torchmetrics_error(confidence, correct, 5, norm) for norm in ("l1", "l2", "max")}
    bucketize = ours("bucketize")
    assert (bucketize["ece"], bucketize["ece_l2"], bucketize["mce"]) == pytest.approx(
        (torchmetrics["l1"], torchmetrics["l2"], torchmetrics["max"]), abs=1e-15)
    # netcal's edges are np.linspace's (0.6000000000000001 of five bins): on-edge values of quarters instead.
    # Two classes: netcal scores P(class 1), which is --binary.
    quarters = np.array([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.5, 0.5], [0.0, 1.0], [0.5, 0.5], [0.75, 0.25]])
    labels = np.array([0, 1, 1, 0, 1, 1, 0])
    netcal = netcal_metrics.ECE(bins=4).measure(quarters, labels)
    left = core.calibration_metrics(quarters, labels, bins=4, bin_edges="left", binary=True)["ece"]
    assert left == pytest.approx(netcal, abs=1e-15)
    # The three rules bin these rows differently, and so disagree.
    assert len({round(ours(rule)["ece"], 12) for rule in ("right", "left", "bucketize")}) == 3


def test_edge_case_bins_hold_what_each_rule_promises():
    p, y = EDGE_PROBS, EDGE_LABELS
    right = core.reliability_bins(p, y, bins=5, bin_edges="right")
    left = core.reliability_bins(p, y, bins=5, bin_edges="left")
    bucketize = core.reliability_bins(p, y, bins=5, bin_edges="bucketize")
    # Confidences 1, 1, .8, .8, .6, .6, .8, 1, .5, .9 (the 0.5 row's argmax is class 0).
    np.testing.assert_array_equal(right.count, [0, 0, 3, 3, 4])  # (.4,.6]: .6,.6,.5; (.6,.8]: .8 x3
    np.testing.assert_array_equal(left.count, [0, 0, 1, 2, 7])  # [.4,.6): .5; [.6,.8): .6,.6; [.8,1]: the rest
    np.testing.assert_array_equal(bucketize.count, [0, 0, 1, 2, 4, 3])  # the three 1.0s alone in [1, 1]
    np.testing.assert_array_equal(bucketize.lower, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_array_equal(bucketize.upper, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


@pytest.mark.parametrize("rule", ["right", "left", "bucketize"])
@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_bins_reproduce_the_errors(rule, binning):
    y = model_logits("digits", "mlp")[1]
    sweep = sweep_at("digits", "mlp", 2.0, bins=12, binning=binning, bin_edges=rule)
    count, gap = sweep["bin_count"], np.abs(sweep["bin_accuracy"] - sweep["bin_confidence"])
    filled = count > 0
    n = count.sum()
    assert n == y.size
    assert sweep["ece"] == pytest.approx((count[filled] / n * gap[filled]).sum(), abs=1e-14)
    assert sweep["ece_l2"] == pytest.approx(np.sqrt((count[filled] / n * gap[filled] ** 2).sum()), abs=1e-14)
    assert sweep["mce"] == pytest.approx(gap[filled].max(), abs=1e-15)


def test_quantile_bins_hold_equal_shares():
    p, y = probs_at("digits", "logistic", 1.0)
    bins = core.reliability_bins(p, y, bins=8, binning="quantile")
    # Distinct confidences: each bin holds n/8 rows, give or take the one a quantile falls between.
    assert bins.count.max() - bins.count.min() <= 1
    assert bins.lower[0] == 0.0 and bins.upper[-1] == 1.0
    confidence = np.sort(p.max(axis=1))
    np.testing.assert_allclose(bins.upper[:-1], np.quantile(confidence, np.arange(1, 8) / 8), rtol=1e-15)


def test_binary_needs_two_classes():
    from softmax_cli.errors import InputError

    with pytest.raises(InputError, match="two-class"):
        core.temperature_sweep(np.zeros((2, 3)), [1.0], [0, 1], binary=True)
