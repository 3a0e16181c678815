"""Cross-entropy, its gradient, and softmax's VJP and Jacobian against independent references.

References: REFERENCE.md's torch numbers, plain float64 NumPy formulas written
out here, central finite differences, mpmath at 50 digits, and (when
installed) torch's own ``F.cross_entropy`` and autograd.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from softmax_cli.core import (
    MaskedRowError,
    blocks,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_terms,
    jacobian_nbytes,
    jacobian_shape,
    softmax_jacobian,
    softmax_jacobian_into,
    softmax_vjp,
    unnormalised_rows,
)
from softmax_cli.errors import InputError, SoftmaxError, UsageError

mpmath.mp.dps = 50
inf = np.inf

# REFERENCE.md's worked example.
Z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]])
Y = np.array([0, 1, -100])
W = np.array([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- independent references


def ref_log_softmax(z, temperature=1.0):
    z = np.asarray(z, dtype=np.float64) / temperature
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def ref_coefficients(labels, n_classes, weights, smoothing, ignore_index=-100):
    """The dense weighted, smoothed target ``a`` (N, C) and the kept-row mask, written out naively."""
    labels = np.asarray(labels)
    w = np.ones(n_classes) if weights is None else np.asarray(weights, dtype=np.float64)
    if labels.ndim == 1:
        kept = labels != ignore_index
        onehot = np.zeros((len(labels), n_classes))
        onehot[np.flatnonzero(kept), labels[kept]] = 1
        a = (1 - smoothing) * onehot * w + smoothing / n_classes * w * kept[:, None]
        a[~kept] = 0
        return a, kept, float((w[labels[kept]]).sum())
    t = (1 - smoothing) * labels + smoothing / n_classes
    return t * w, np.ones(len(labels), bool), float(len(labels))


def ref_loss(z, labels, weights=None, smoothing=0.0, reduction="mean", temperature=1.0):
    a, kept, denominator = ref_coefficients(labels, np.shape(z)[-1], weights, smoothing)
    per_row = -(a * ref_log_softmax(z, temperature)).sum(axis=-1)
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.sum() / denominator


def central_differences(f, x, h=1e-5):
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def mp_cross_entropy(row, label):
    """``-log softmax(row)[label]`` at 50 significant digits."""
    values = [mpmath.mpf(float(v)) for v in row]
    return mpmath.log(mpmath.fsum(mpmath.exp(v) for v in values)) - values[label]


RNG = np.random.default_rng(20240611)
LOGITS = RNG.normal(scale=2.0, size=(5, 4))
INDEX = np.array([3, 0, -100, 1, 2])
SOFT = RNG.dirichlet(np.ones(4), size=5)
WEIGHTS = np.array([0.5, 2.0, 1.0, 1.5])

COMBOS = list(
    itertools.product(
        ["index", "probs"],  # target kind
        [None, "weights"],
        [0.0, 0.2],  # label smoothing
        ["mean", "sum", "none"],
        [1.0, 0.7],  # temperature
    )
)


def combo_kwargs(kind, weights, smoothing, reduction, temperature):
    labels = INDEX if kind == "index" else SOFT
    options = dict(weights=WEIGHTS if weights else None, label_smoothing=smoothing, reduction=reduction,
                   temperature=temperature)
    return labels, options


# --------------------------------------------------------------------------- REFERENCE.md's numbers


def test_reference_index_targets_without_weights():
    np.testing.assert_allclose(cross_entropy(Z, Y, reduction="none"), [0.41703, 0.22005, 0], atol=1e-5)
    np.testing.assert_allclose(cross_entropy(Z, Y), 0.31854, atol=1e-5)


def test_reference_index_targets_with_weights():
    np.testing.assert_allclose(cross_entropy(Z, Y, weights=W), 0.28571, atol=1e-5)
    np.testing.assert_allclose(cross_entropy(Z, Y, weights=W), (1 * 0.41703 + 2 * 0.22005) / 3, atol=1e-5)
    assert cross_entropy_terms(Z, Y, weights=W).denominator == 3.0


def test_reference_label_smoothing():
    np.testing.assert_allclose(cross_entropy(Z, Y, label_smoothing=0.1, reduction="none"), [0.51370, 0.36005, 0],
                               atol=1e-5)
    np.testing.assert_allclose(cross_entropy(Z, Y, label_smoothing=0.1), 0.43687, atol=1e-5)
    np.testing.assert_allclose(cross_entropy(Z, Y, weights=W, label_smoothing=0.1, reduction="none"),
                               [0.71540, 0.72677, 0], atol=1e-5)
    np.testing.assert_allclose(cross_entropy(Z, Y, weights=W, label_smoothing=0.1), 0.48072, atol=1e-5)


def test_reference_every_row_ignored_mean_is_nan_sum_is_zero():
    ignored = np.full(3, -100)
    assert np.isnan(cross_entropy(Z, ignored))
    assert cross_entropy(Z, ignored, reduction="sum") == 0
    np.testing.assert_array_equal(cross_entropy(Z, ignored, reduction="none"), 0)
    np.testing.assert_array_equal(cross_entropy_grad(Z, ignored), 0)
    assert np.isnan(cross_entropy_terms(Z, ignored).accuracy)


def test_reference_probability_targets_one_hot_equal_index_targets_and_mean_divides_by_rows():
    onehot = np.eye(3)[[0, 1]]
    np.testing.assert_allclose(cross_entropy(Z[:2], onehot, reduction="none"), [0.41703, 0.22005], atol=1e-5)
    # Weighted probability targets: mean divides by N, not by the weights.
    np.testing.assert_allclose(cross_entropy(Z[:2], onehot, weights=W), (1 * 0.41703 + 2 * 0.22005) / 2, atol=1e-5)
    assert cross_entropy_terms(Z[:2], onehot, weights=W).denominator == 2.0


def test_reference_probability_targets_with_smoothing_use_smoothed_targets():
    soft = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    for weights in (None, W):
        for smoothing in (0.0, 0.1):
            expected = ref_loss(Z, soft, weights, smoothing, "none")
            np.testing.assert_allclose(
                cross_entropy(Z, soft, weights=weights, label_smoothing=smoothing, reduction="none"), expected,
                rtol=1e-12)
            np.testing.assert_allclose(cross_entropy(Z, soft, weights=weights, label_smoothing=smoothing),
                                       expected.sum() / 3, rtol=1e-12)


def test_reference_gradient_of_mean_loss():
    # (softmax - onehot) * w[y] / sum(w[y]); the ignored row exactly 0.
    p = np.exp(ref_log_softmax(Z))
    expected = (p - np.eye(3)[[0, 1, 0]]) * W[[0, 1, 0]][:, None] / 3
    expected[2] = 0
    grad = cross_entropy_grad(Z, Y, weights=W)
    np.testing.assert_allclose(grad, expected, rtol=1e-12)
    assert (grad[2] == 0).all()


# --------------------------------------------------------------------------- every option combination


@pytest.mark.parametrize("kind,weights,smoothing,reduction,temperature", COMBOS)
def test_loss_matches_the_written_out_formula(kind, weights, smoothing, reduction, temperature):
    labels, options = combo_kwargs(kind, weights, smoothing, reduction, temperature)
    expected = ref_loss(LOGITS, labels, options["weights"], smoothing, reduction, temperature)
    np.testing.assert_allclose(cross_entropy(LOGITS, labels, **options), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind,weights,smoothing,reduction,temperature", COMBOS)
def test_gradient_matches_central_finite_differences(kind, weights, smoothing, reduction, temperature):
    labels, options = combo_kwargs(kind, weights, smoothing, reduction, temperature)
    # "none" differentiates the sum of the per-row losses (documented).
    summed = dict(options, reduction="sum") if reduction == "none" else options
    expected = central_differences(lambda z: float(cross_entropy(z, labels, **summed)), LOGITS)
    grad = cross_entropy_grad(LOGITS, labels, **options)
    assert grad.shape == LOGITS.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-9)
    if kind == "index":
        assert (grad[2] == 0).all()  # the ignored row


@pytest.mark.parametrize("kind,weights,smoothing,reduction", [c[:4] for c in COMBOS if c[4] == 1.0])
def test_from_probs_gradient_matches_central_finite_differences(kind, weights, smoothing, reduction):
    labels, options = combo_kwargs(kind, weights, smoothing, reduction, 1.0)
    del options["temperature"]
    probs = np.exp(ref_log_softmax(LOGITS))
    summed = dict(options, reduction="sum") if reduction == "none" else options
    expected_loss = ref_loss(LOGITS, labels, options["weights"], smoothing, reduction)
    np.testing.assert_allclose(cross_entropy(probs, labels, from_probs=True, **options), expected_loss, rtol=1e-12)
    expected = central_differences(lambda p: float(cross_entropy(p, labels, from_probs=True, **summed)), probs,
                                   h=1e-7)
    np.testing.assert_allclose(cross_entropy_grad(probs, labels, from_probs=True, **options), expected, rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("kind,weights,smoothing,reduction,temperature", COMBOS)
def test_loss_and_autograd_match_torch(kind, weights, smoothing, reduction, temperature):
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    labels, options = combo_kwargs(kind, weights, smoothing, reduction, temperature)
    z = torch.tensor(LOGITS, requires_grad=True)
    loss = functional.cross_entropy(
        z / temperature, torch.tensor(labels), weight=torch.tensor(WEIGHTS) if weights else None,
        reduction=reduction, label_smoothing=smoothing)
    loss.sum().backward()
    np.testing.assert_allclose(cross_entropy(LOGITS, labels, **options), loss.detach().numpy(), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(cross_entropy_grad(LOGITS, labels, **options), z.grad.numpy(), rtol=1e-10,
                               atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_n_dimensional_logits_with_class_axis_1_match_torch(dtype):
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    z = RNG.normal(size=(2, 5, 3, 4)).astype(dtype)
    y = RNG.integers(0, 5, size=(2, 3, 4))
    y[0, 1, 2] = -100
    zt = torch.tensor(z, requires_grad=True)
    loss = functional.cross_entropy(zt, torch.tensor(y), weight=torch.tensor(WEIGHTS.tolist() + [1.0], dtype=zt.dtype),
                                    label_smoothing=0.1)
    loss.backward()
    options = dict(weights=WEIGHTS.tolist() + [1.0], label_smoothing=0.1, axis=1)
    got = cross_entropy(z, y, **options)
    assert got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, loss.item(), rtol=tol)
    grad = cross_entropy_grad(z, y, **options)
    assert grad.shape == z.shape and grad.dtype == dtype
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=tol, atol=tol * 1e-2)
    assert cross_entropy(z, y, reduction="none", axis=1).shape == (2, 3, 4)


def test_masked_class_matches_torch_where_torch_is_defined():
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    z = np.array([[0.0, -inf, 1.0], [2.0, 0.5, -inf]])
    for smoothing in (0.0, 0.1):
        zt = torch.tensor(z, requires_grad=True)
        loss = functional.cross_entropy(zt, torch.tensor([0, 1]), label_smoothing=smoothing)
        loss.backward()
        np.testing.assert_allclose(cross_entropy(z, [0, 1], label_smoothing=smoothing), loss.item(), rtol=1e-12)
        np.testing.assert_allclose(cross_entropy_grad(z, [0, 1], label_smoothing=smoothing), zt.grad.numpy(),
                                   rtol=1e-12)


# --------------------------------------------------------------------------- extremes and exactness


def test_loss_of_0_1000_with_label_0_is_exactly_1000():
    assert float(cross_entropy([0.0, 1000.0], [0])) == 1000.0
    assert float(cross_entropy([0, 1000], 0)) == 1000.0
    assert float(cross_entropy([[0.0, 1000.0]], [0])) == 1000.0
    assert float(cross_entropy(np.array([[0.0, 1000.0]], dtype=np.float32), [0])) == 1000.0
    np.testing.assert_array_equal(cross_entropy_grad([[0.0, 1000.0]], [0]), [[-1.0, 1.0]])


@pytest.mark.parametrize(
    "row,label",
    [([0.0, 1000.0], 0), ([3.0, 2.0, 1.0], 2), ([1e-8, -1e-8, 0.0], 1), ([700.0, 701.0, 699.5], 1),
     ([-745.0, -744.0, -750.0], 2), ([30.0, -30.0, 0.5, 7.25], 1)],
)
def test_loss_matches_mpmath(row, label):
    # Constants computed with mpmath at 50 digits, not with the code under test.
    expected = float(mp_cross_entropy(row, label))
    np.testing.assert_allclose(float(cross_entropy(row, [label])), expected, rtol=1e-14)


def test_labelled_masked_class_gives_inf_not_nan():
    assert cross_entropy([[0.0, -inf, 1.0]], [1]) == inf
    # With smoothing, mass on a masked class is infinite loss, as torch.
    assert cross_entropy([[0.0, -inf, 1.0]], [0], label_smoothing=0.1) == inf


def test_zero_coefficient_on_a_masked_class_counts_as_zero():
    # 0 * log 0 = 0: a zero target or zero weight on a masked class adds nothing (torch gives NaN).
    z = [[0.0, -inf, 1.0]]
    np.testing.assert_allclose(cross_entropy(z, [[0.5, 0.0, 0.5]]), -0.5 * (ref_log_softmax([0.0, 1.0]).sum()),
                               rtol=1e-12)
    expected = 0.9 * -ref_log_softmax([0.0, 1.0])[0] + 0.1 / 3 * -ref_log_softmax([0.0, 1.0]).sum()
    np.testing.assert_allclose(cross_entropy(z, [0], label_smoothing=0.1, weights=[1, 0, 1]), expected, rtol=1e-12)


def test_from_probs_zero_probability_is_inf_and_eps_clips_only_when_given():
    assert cross_entropy([[0.0, 1.0]], [0], from_probs=True) == inf
    assert cross_entropy([[0.0, 1.0]], [[1.0, 0.0]], from_probs=True) == inf
    assert cross_entropy([[0.0, 1.0]], [1], from_probs=True) == 0
    np.testing.assert_allclose(cross_entropy([[0.0, 1.0]], [0], from_probs=True, eps=1e-7), -np.log(1e-7),
                               rtol=1e-15)
    # Exact, not -log(p + 1e-7): a tiny probability keeps its true loss.
    np.testing.assert_allclose(cross_entropy([[1e-300, 1.0]], [0], from_probs=True), 300 * np.log(10), rtol=1e-14)
    grad = cross_entropy_grad([[0.0, 1.0], [0.25, 0.75]], [0, 0], from_probs=True, reduction="sum")
    np.testing.assert_array_equal(grad, [[-inf, 0.0], [-4.0, 0.0]])
    clipped = cross_entropy_grad([[0.0, 1.0]], [0], from_probs=True, eps=1e-3)
    np.testing.assert_array_equal(clipped, [[0.0, 0.0]])


def test_masked_row_policies():
    z = np.array([[-inf, -inf], [1.0, 2.0]])
    with pytest.raises(MaskedRowError, match="every logit in the row is -inf") as caught:
        cross_entropy(z, [0, 1], masked_rows="error")
    assert "row 0" in str(caught.value)
    with pytest.raises(MaskedRowError):
        cross_entropy_grad(z, [0, 1], masked_rows="error")
    nan_terms = cross_entropy_terms(z, [0, 1], masked_rows="nan")
    assert np.isnan(nan_terms.per_sample[0]) and np.isnan(nan_terms.loss)
    assert np.isnan(cross_entropy_grad(z, [0, 1], masked_rows="nan")[0]).all()
    zero_terms = cross_entropy_terms(z, [0, 1], masked_rows="zero")
    assert zero_terms.per_sample[0] == inf  # its probabilities are 0: -log 0
    np.testing.assert_allclose(cross_entropy_grad(z, [0, 1], masked_rows="zero", reduction="sum")[0], [-1.0, 0.0])
    assert zero_terms.accuracy == 0.5  # a row with no distribution predicts nothing


def test_ignored_fully_masked_row_is_not_an_error():
    # Padding rows are often fully masked and labelled with the ignore index.
    z = np.array([[-inf, -inf], [1.0, 2.0]])
    expected = -ref_log_softmax([1.0, 2.0])[1]
    np.testing.assert_allclose(cross_entropy(z, [-100, 1], masked_rows="error"), expected, rtol=1e-15)
    np.testing.assert_array_equal(cross_entropy_grad(z, [-100, 1], masked_rows="error")[0], [0.0, 0.0])


def test_nan_and_plus_inf_logits_are_errors_naming_the_position():
    with pytest.raises(InputError, match="NaN in logits") as caught:
        cross_entropy([[1.0, 2.0], [3.0, np.nan]], [0, 1])
    assert "row 1, column 1" in str(caught.value)
    with pytest.raises(InputError, match=r"\+inf in logits"):
        cross_entropy_grad([[inf, 2.0]], [0])
    with pytest.raises(InputError, match="NaN in logits"):
        softmax_jacobian([[1.0, np.nan]])


def test_half_precision_is_computed_in_float32_and_returned_as_half():
    z = RNG.normal(size=(6, 5)).astype(np.float16)
    y = RNG.integers(0, 5, size=6)
    loss, grad = cross_entropy(z, y), cross_entropy_grad(z, y)
    assert loss.dtype == np.float16 and grad.dtype == np.float16
    expected = ref_loss(z.astype(np.float64), y)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-3)
    assert cross_entropy([[1, 2, 3]], [2]).dtype == np.float64  # integers become float64


# --------------------------------------------------------------------------- labels, accuracy, reporting


def test_label_kind_is_decided_by_shape():
    assert cross_entropy_terms(Z, Y).target_kind == "index"
    assert cross_entropy_terms(Z, np.eye(3)).target_kind == "probs"
    # Floats holding whole numbers (as read from text) are class indices.
    np.testing.assert_array_equal(cross_entropy(Z, [0.0, 1.0, -100.0], reduction="none"),
                                  cross_entropy(Z, Y, reduction="none"))
    # An integer one-hot matrix is a distribution.
    np.testing.assert_array_equal(cross_entropy(Z, np.eye(3, dtype=int)), cross_entropy(Z, [0, 1, 2]))
    # One row, one label: a scalar or a length-1 array.
    assert cross_entropy([1.0, 2.0], 1) == cross_entropy([1.0, 2.0], [1]) == cross_entropy([[1.0, 2.0]], 1)


def test_accuracy_ties_to_the_lower_index_and_skips_ignored_rows():
    z = [[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [5.0, 0.0, 0.0], [0.0, 0.0, 9.0]]
    assert cross_entropy_terms(z, [0, 2, -100, 2]).accuracy == pytest.approx(2 / 3)
    soft = [[0.4, 0.4, 0.2], [0.1, 0.2, 0.7], [0.5, 0.5, 0.0], [0, 0, 1]]
    assert cross_entropy_terms(z, soft).accuracy == pytest.approx(3 / 4)


def test_unnormalised_target_rows_are_reported_not_refused():
    soft = np.array([[0.5, 0.5, 0.0], [0.5, 0.4, 0.0], [0.2, 0.2, 0.6]])
    terms = cross_entropy_terms(Z, soft)
    np.testing.assert_array_equal(terms.unnormalised_rows, [1])
    np.testing.assert_allclose(terms.per_sample, ref_loss(Z, soft, reduction="none"), rtol=1e-12)
    np.testing.assert_array_equal(unnormalised_rows(soft), [1])
    assert cross_entropy_terms(Z, soft + [[1e-8, 0, 0]] * 3).unnormalised_rows.tolist() == [1]
    assert cross_entropy_terms(Z, Y).unnormalised_rows.size == 0


def test_reduction_none_shape_is_the_logits_shape_without_the_class_axis():
    z = RNG.normal(size=(3, 4, 5))
    assert cross_entropy(z, np.zeros((3, 4), int), reduction="none").shape == (3, 4)
    assert cross_entropy(z, np.zeros((4, 5), int), reduction="none", axis=0).shape == (4, 5)
    assert cross_entropy(z, np.zeros((3, 4), int)).shape == ()
    assert cross_entropy(z, np.zeros((3, 4), int), reduction="none").shape == \
        cross_entropy_terms(z, np.zeros((3, 4), int)).per_sample.shape


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "labels,options,fragment",
    [
        ([0, 1, 5], {}, "label 5 is out of range for 3 classes (row 2)"),
        ([0, -1, 1], {}, "label -1 is out of range for 3 classes (row 1)"),
        ([0, 1.5, 1], {}, "label 1.5 is not a class index"),
        ([0, np.nan, 1], {}, "label nan is not a class index"),
        ([[0.5, 0.5, 0], [1.2, -0.2, 0], [0, 0, 1]], {}, "target probability -0.2 is negative (row 1, column 1)"),
        ([[0.5, 0.5, 0], [1, 0, 0], [0, np.inf, 1]], {}, "target probability inf is not finite (row 2, column 1)"),
        ([0, 1], {}, "labels of shape (2,) do not fit logits of shape (3, 3)"),
        ([[0, 1], [1, 0], [0, 1]], {}, "labels of shape (3, 2) do not fit logits of shape (3, 3)"),
        ([0, 1, 2], {"weights": [1, 2]}, "class weights have shape (2,); expected 3 values"),
        ([0, 1, 2], {"weights": [1, -2, 1]}, "class weight -2 for class 1 must be finite and >= 0"),
        ([0, 1, 2], {"weights": [1, np.nan, 1]}, "class weight nan"),
        ([0, 1, 2], {"label_smoothing": 1.5}, "label smoothing must be between 0 and 1, got 1.5"),
        ([0, 1, 2], {"label_smoothing": -0.1}, "label smoothing must be between 0 and 1"),
        ([0, 1, 2], {"reduction": "avg"}, "reduction must be one of mean, sum, none, got 'avg'"),
        ([0, 1, 2], {"temperature": 0}, "temperature must be finite and > 0"),
        ([0, 1, 2], {"masked_rows": "drop"}, "masked_rows must be one of"),
        (["a", "b", "c"], {}, "class indices must be integers"),
    ],
)
def test_validation_errors_are_input_errors_naming_the_value(labels, options, fragment):
    for function in (cross_entropy, cross_entropy_grad, cross_entropy_terms):
        with pytest.raises(InputError) as caught:
            function(Z, labels, **options)
        assert fragment in str(caught.value)


def test_bad_from_probs_inputs_and_option_combinations():
    with pytest.raises(InputError, match=r"probability -0.1 is not between 0 and 1; .* \(row 0, column 0\)"):
        cross_entropy([[-0.1, 1.1]], [0], from_probs=True)
    with pytest.raises(InputError, match="probability 1.5"):
        cross_entropy_grad([[0.5, 1.5]], [0], from_probs=True)
    with pytest.raises(UsageError, match="temperature"):
        cross_entropy([[0.5, 0.5]], [0], from_probs=True, temperature=2)
    with pytest.raises(UsageError, match="only with from_probs"):
        cross_entropy([[0.5, 0.5]], [0], eps=1e-7)
    with pytest.raises(InputError, match="eps must be between 0 and 1"):
        cross_entropy([[0.5, 0.5]], [0], from_probs=True, eps=0)
    with pytest.raises(InputError, match="no classes"):
        cross_entropy(np.zeros((2, 0)), [0, 0])
    with pytest.raises(InputError, match="dtype complex"):
        cross_entropy([[1j, 2]], [0])


def test_vjp_and_jacobian_validation():
    with pytest.raises(InputError, match=r"upstream gradient of shape \(2,\) does not match logits of shape \(3,\)"):
        softmax_vjp([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InputError, match=r"upstream gradient must be finite \(row 1, column 0\)"):
        softmax_vjp([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [np.nan, 4.0]])
    with pytest.raises(InputError, match=r"C-contiguous output of shape \(2, 2\)"):
        softmax_jacobian_into(np.empty((3, 3)), [1.0, 2.0])
    with pytest.raises(InputError, match="C-contiguous"):
        softmax_jacobian_into(np.empty((2, 2)).T.copy(order="F"), [1.0, 2.0])
    with pytest.raises(MaskedRowError):
        softmax_jacobian([[-inf, -inf]], masked_rows="error")
    assert issubclass(InputError, SoftmaxError)


# --------------------------------------------------------------------------- softmax's Jacobian and VJP


def ref_softmax(z, temperature=1.0):
    return np.exp(ref_log_softmax(z, temperature))


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_jacobian_rows_sum_to_zero_is_symmetric_and_matches_finite_differences(temperature):
    z = RNG.normal(scale=2, size=(3, 5))
    jac = softmax_jacobian(z, temperature=temperature)
    assert jac.shape == (3, 5, 5)
    np.testing.assert_allclose(jac.sum(axis=-1), 0, atol=1e-15)
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), rtol=0, atol=0)
    for n in range(3):
        # Column j of the finite-difference matrix is d softmax / d z_j.
        columns = [central_differences(lambda x: ref_softmax(x, temperature)[i], z[n]) for i in range(5)]
        np.testing.assert_allclose(jac[n], np.array(columns), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_log_softmax_jacobian_is_identity_minus_ones_s_transpose(temperature):
    z = RNG.normal(size=(2, 4))
    jac = softmax_jacobian(z, temperature=temperature, log=True)
    s = ref_softmax(z, temperature)
    np.testing.assert_allclose(jac, (np.eye(4) - s[:, None, :]) / temperature, rtol=1e-14)
    for n in range(2):
        rows = [central_differences(lambda x: ref_log_softmax(x, temperature)[i], z[n]) for i in range(4)]
        np.testing.assert_allclose(jac[n], np.array(rows), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_vjp_equals_jacobian_transpose_times_upstream(log, temperature):
    z = RNG.normal(size=(4, 6))
    g = RNG.normal(size=(4, 6))
    jac = softmax_jacobian(z, temperature=temperature, log=log)
    expected = np.einsum("nij,ni->nj", jac, g)
    np.testing.assert_allclose(softmax_vjp(z, g, temperature=temperature, log=log), expected, rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("log", [False, True])
def test_vjp_matches_torch_autograd(log):
    torch = pytest.importorskip("torch")
    z = RNG.normal(size=(3, 2, 5))
    g = RNG.normal(size=(3, 2, 5))
    zt = torch.tensor(z, requires_grad=True)
    out = (torch.log_softmax if log else torch.softmax)(zt / 0.7, dim=1)
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(softmax_vjp(z, g, axis=1, temperature=0.7, log=log), zt.grad.numpy(), rtol=1e-12,
                               atol=1e-15)


def test_jacobian_moves_the_class_axis_last_and_keeps_the_dtype():
    z = RNG.normal(size=(3, 4, 2)).astype(np.float32)
    jac = softmax_jacobian(z, axis=1)
    assert jac.shape == jacobian_shape(z.shape, 1) == (3, 2, 4, 4) and jac.dtype == np.float32
    np.testing.assert_allclose(jac[1, 0], softmax_jacobian(z[1, :, 0]), rtol=1e-6)
    half = softmax_jacobian(z.astype(np.float16))
    assert half.dtype == np.float16
    assert softmax_vjp(np.array([1, 2]), np.array([1, 0])).dtype == np.float64


def test_jacobian_nbytes():
    assert jacobian_nbytes((1000, 1000), np.float32) == 4_000_000_000
    assert jacobian_nbytes((7, 3, 5), np.float16, axis=1) == 7 * 5 * 3 * 3 * 2
    assert jacobian_nbytes((10,), np.int64) == 10 * 10 * 8  # integers become float64
    assert jacobian_nbytes((65536, 8192), np.float32) == 65536 * 8192 * 8192 * 4  # no overflow


def test_jacobian_streams_into_a_memory_map(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 40)  # 2 rows of 4 x 4 a block, 7 rows: an uneven last block
    z = RNG.normal(size=(7, 4))
    path = tmp_path / "jac.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=jacobian_shape(z.shape))
    softmax_jacobian_into(out, z, log=True)
    out.flush()
    del out
    s = ref_softmax(z)
    np.testing.assert_allclose(np.load(path), np.eye(4) - s[:, None, :], rtol=1e-14)


def test_masked_classes_and_rows_in_the_jacobian_and_vjp():
    z = np.array([[0.0, -inf, 0.0], [-inf, -inf, -inf]])
    jac = softmax_jacobian(z, masked_rows="zero")
    np.testing.assert_allclose(jac[0], [[0.25, 0, -0.25], [0, 0, 0], [-0.25, 0, 0.25]])
    np.testing.assert_array_equal(jac[1], 0)
    np.testing.assert_array_equal(softmax_jacobian(z, masked_rows="zero", log=True)[1], 0)
    assert np.isnan(softmax_jacobian(z)[1]).all()
    vjp = softmax_vjp(z, np.ones_like(z), masked_rows="zero", log=True)
    np.testing.assert_array_equal(vjp[1], 0)
    assert np.isnan(softmax_vjp(z, np.ones_like(z))[1]).all()


# --------------------------------------------------------------------------- blocked equals unblocked


@pytest.mark.parametrize("block_elements", [1, 4, 9, 12, 21])
@pytest.mark.parametrize("kind", ["index", "probs"])
def test_blocked_equals_unblocked(monkeypatch, block_elements, kind):
    z = RNG.normal(size=(10, 3))
    z[4, 1] = -inf
    labels = RNG.integers(0, 3, size=10) if kind == "index" else RNG.dirichlet(np.ones(3), size=10)
    if kind == "index":
        labels[[2, 7]] = -100
    else:
        labels[6] *= 0.9  # an unnormalised row, found whichever block it is in
    options = dict(weights=[0.5, 1.0, 2.0], label_smoothing=0.05, temperature=1.3)
    whole_terms = cross_entropy_terms(z, labels, reduction="none", **options)
    whole_grad = cross_entropy_grad(z, labels, **options)
    g = RNG.normal(size=z.shape)
    whole_vjp, whole_jac = softmax_vjp(z, g, log=True), softmax_jacobian(z)
    # 3 classes: 1, 4, 9, 12, 21 elements give 1, 1, 3, 4 and 7 rows a block; none divides 10 but 1.
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", block_elements)
    terms = cross_entropy_terms(z, labels, reduction="none", **options)
    np.testing.assert_array_equal(terms.per_sample, whole_terms.per_sample)
    assert terms.accuracy == whole_terms.accuracy
    np.testing.assert_array_equal(terms.unnormalised_rows, whole_terms.unnormalised_rows)
    np.testing.assert_array_equal(cross_entropy_grad(z, labels, **options), whole_grad)
    np.testing.assert_array_equal(softmax_vjp(z, g, log=True), whole_vjp)
    np.testing.assert_array_equal(softmax_jacobian(z), whole_jac)


def test_errors_name_the_global_row_when_blocked(monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 6)  # 2 rows a block
    z = np.zeros((9, 3))
    z[7, 2] = np.nan
    with pytest.raises(InputError, match=r"row 7, column 2"):
        cross_entropy(z, np.zeros(9, int))
    soft = np.full((9, 3), 1 / 3)
    soft[5, 0] = -1
    with pytest.raises(InputError, match=r"row 5, column 0"):
        cross_entropy(np.zeros((9, 3)), soft)


# --------------------------------------------------------------------------- laws (hypothesis)

finite_logits = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                       elements=st.floats(-50, 50, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(z=finite_logits, data=st.data())
def test_laws_for_index_labels(z, data):
    n, c = z.shape
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    per_row = cross_entropy(z, labels, reduction="none", label_smoothing=smoothing)
    assert (per_row >= 0).all()
    # Shift invariance: adding a constant to a row changes nothing.
    shift = data.draw(st.floats(-100, 100))
    np.testing.assert_allclose(cross_entropy(z + shift, labels, reduction="none", label_smoothing=smoothing),
                               per_row, rtol=1e-9, atol=1e-9)
    grad = cross_entropy_grad(z, labels, label_smoothing=smoothing)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(z=finite_logits, data=st.data())
def test_laws_for_weighted_probability_targets(z, data):
    n, c = z.shape
    raw = data.draw(arrays(np.float64, (n, c), elements=st.floats(0.01, 1)))
    targets = raw / raw.sum(axis=1, keepdims=True)
    weights = data.draw(arrays(np.float64, (c,), elements=st.floats(0, 3)))
    per_row = cross_entropy(z, targets, weights=weights, reduction="none")
    assert (per_row >= 0).all()
    # With any weights and targets the gradient rows still sum to 0: p sum(a) - a.
    grad = cross_entropy_grad(z, targets, weights=weights)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-12)
    # Gibbs' inequality: without weights the loss is at least the targets' entropy.
    entropy = -(targets * np.log(targets)).sum(axis=1)
    assert (cross_entropy(z, targets, reduction="none") >= entropy - 1e-9).all()


def test_mean_of_losses_near_the_float_range_is_their_mean_not_inf():
    """Regression (found by hypothesis): two per-row losses of 1e308 sum past the float range;
    their mean is 1e308, with no overflow warning."""
    import warnings

    from softmax_cli.core import reduce_losses

    losses = np.array([1e308, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(reduce_losses(losses, 2.0)) == 1e308
        assert float(reduce_losses(losses, 2.0, "sum")) == np.inf  # the true sum is past the range
