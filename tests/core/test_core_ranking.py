"""Tests of softmax_cli.core.ranking: topk and topk_accuracy.

The reference for every ranking is a full stable argsort of the negated
logits, whose first k entries are by definition "largest first, ties to the
lower index"; topk must agree while using only a partition.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_cli.core import MaskedRowError, check_labels, softmax, topk, topk_accuracy
from softmax_cli.errors import InputError


def stable_topk(x: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """The definition: the first k of a stable argsort of -x, the class axis moved last."""
    return np.argsort(-np.moveaxis(x, axis, -1), axis=-1, kind="stable")[..., :k]


# --- the promised order -----------------------------------------------------


def test_reference_example_ties_to_lower_index():
    # REFERENCE.md: torch.topk gives [2, 4] here; a stable argsort and jax give [0, 2].
    indices, probs = topk([3.0, 1.0, 3.0, 2.0, 3.0], k=2)
    np.testing.assert_array_equal(indices, [0, 2])
    np.testing.assert_allclose(probs, softmax([3.0, 1.0, 3.0, 2.0, 3.0])[[0, 2]])


@pytest.mark.parametrize("k", [1, 2, 5, 17, 32])
def test_random_rows_match_stable_argsort(k):
    x = np.random.default_rng(k).standard_normal((300, 32))
    np.testing.assert_array_equal(topk(x, k)[0], stable_topk(x, k))


@pytest.mark.parametrize("k", [1, 3, 6, 10])
def test_heavily_tied_rows_match_stable_argsort(k):
    # Few distinct values, so most rows have a tie straddling the k-th place,
    # where argpartition's own choice among equal values is arbitrary.
    x = np.random.default_rng(100 + k).integers(-2, 3, size=(500, 10)).astype(np.float64)
    np.testing.assert_array_equal(topk(x, k)[0], stable_topk(x, k))


def test_all_equal_row_gives_first_k_indices():
    indices, probs = topk(np.zeros((3, 6)), k=4)
    np.testing.assert_array_equal(indices, np.tile(np.arange(4), (3, 1)))
    np.testing.assert_allclose(probs, 1 / 6)


def test_argpartition_boundary_tie_regression():
    # The k-th value (5) occurs at columns 1, 4 and 6; a plain argpartition may
    # return column 4 or 6 for the last place. The promise is column 1.
    x = np.array([[9.0, 5.0, 1.0, 7.0, 5.0, 0.0, 5.0]], dtype=np.float64)
    np.testing.assert_array_equal(topk(x, 3)[0], [[0, 3, 1]])
    np.testing.assert_array_equal(topk(x, 4)[0], [[0, 3, 1, 4]])


@settings(max_examples=300, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.sampled_from([-np.inf, -2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0]),
    ),
    data=st.data(),
)
def test_hypothesis_matches_stable_argsort(x, data):
    # Rows that are all -inf have no distribution; keep at least one finite value.
    x[:, 0] = np.where(np.isneginf(x).all(axis=1), 0.0, x[:, 0])
    k = data.draw(st.integers(1, x.shape[1]))
    indices, probs = topk(x, k)
    np.testing.assert_array_equal(indices, stable_topk(x, k))
    np.testing.assert_array_equal(probs, np.take_along_axis(softmax(x), indices, axis=-1))


@settings(max_examples=100, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
        elements=st.floats(-4, 4, width=32),
    ),
    data=st.data(),
)
def test_hypothesis_nd_any_axis(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    k = data.draw(st.integers(1, x.shape[axis]))
    indices, probs = topk(x, k, axis=axis)
    expected = stable_topk(x, k, axis)
    np.testing.assert_array_equal(indices, expected)
    assert probs.dtype == np.float32
    moved = np.moveaxis(softmax(x, axis=axis), axis, -1)
    np.testing.assert_array_equal(probs, np.take_along_axis(moved, expected, axis=-1))


def test_k_equals_c_is_a_full_stable_sort():
    x = np.array([[0.5, 2.0, 0.5, -np.inf, 2.0]])
    indices, probs = topk(x, 5)
    np.testing.assert_array_equal(indices, [[1, 4, 0, 2, 3]])
    np.testing.assert_allclose(probs.sum(), 1.0)
    assert probs[0, -1] == 0.0


def test_k_one_is_argmax_first_maximum():
    x = np.random.default_rng(7).integers(0, 3, size=(200, 5)).astype(np.float32)
    indices, probs = topk(x, 1)
    assert indices.shape == (200, 1)
    np.testing.assert_array_equal(indices[:, 0], np.argmax(x, axis=1))
    np.testing.assert_array_equal(probs[:, 0], softmax(x).max(axis=1))


def test_nd_with_axis_moves_class_axis_last():
    x = np.random.default_rng(3).standard_normal((2, 7, 3))
    indices, probs = topk(x, 4, axis=1)
    assert indices.shape == probs.shape == (2, 3, 4)
    np.testing.assert_array_equal(indices, stable_topk(x, 4, axis=1))
    for a in range(2):
        for b in range(3):
            np.testing.assert_allclose(probs[a, b], softmax(x[a, :, b])[indices[a, b]], rtol=1e-15)


def test_many_rows_cross_block_boundaries():
    # More rows than one cache block (2**16 elements), so several blocks are stitched.
    x = np.random.default_rng(11).integers(0, 4, size=(70_000, 3)).astype(np.float64)
    np.testing.assert_array_equal(topk(x, 2)[0], stable_topk(x, 2))


def test_ranks_by_logits_where_probabilities_underflow_to_equal():
    indices, probs = topk([1000.0, 0.0, -1.0], k=3)
    np.testing.assert_array_equal(indices, [0, 1, 2])
    np.testing.assert_array_equal(probs, [1.0, 0.0, 0.0])


def test_masked_logits_rank_last():
    indices, probs = topk([-np.inf, 1.0, -np.inf, 0.0], k=3)
    np.testing.assert_array_equal(indices, [1, 3, 0])
    assert probs[-1] == 0.0


def test_temperature_changes_probs_not_order():
    x = np.random.default_rng(5).standard_normal((50, 8))
    cold, cold_p = topk(x, 3, temperature=0.25)
    hot, hot_p = topk(x, 3, temperature=4.0)
    np.testing.assert_array_equal(cold, hot)
    np.testing.assert_allclose(hot_p, np.take_along_axis(softmax(x / 4.0), hot, axis=-1), rtol=1e-12)
    assert (cold_p[:, 0] > hot_p[:, 0]).all()


def test_tiny_temperature_is_one_hot_without_nan():
    _, probs = topk([[2.0, 1.0, 0.0]], 3, temperature=1e-6)
    np.testing.assert_array_equal(probs, [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("dtype, out", [(np.float16, np.float16), (np.float32, np.float32), (np.int64, np.float64)])
def test_probs_dtype_follows_softmax(dtype, out):
    indices, probs = topk(np.array([[3, 1, 2]], dtype=dtype), 2)
    assert probs.dtype == out
    np.testing.assert_array_equal(indices, [[0, 2]])


# --- masked rows and bad input ----------------------------------------------


def test_masked_row_policies():
    x = np.array([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    with pytest.raises(MaskedRowError, match="row 1"):
        topk(x, 2, masked_rows="error")
    indices, probs = topk(x, 2, masked_rows="nan")
    np.testing.assert_array_equal(indices, [[2, 1], [0, 1]])
    assert np.isnan(probs[1]).all()
    _, probs = topk(x, 2, masked_rows="zero")
    np.testing.assert_array_equal(probs[1], [0.0, 0.0])


@pytest.mark.parametrize("k", [0, -1, 4, 2.5, "two", True])
def test_k_out_of_range_names_k_and_c(k):
    with pytest.raises(InputError, match=r"k .*C = 3.*k = "):
        topk([1.0, 2.0, 3.0], k)


def test_whole_float_k_is_accepted():
    np.testing.assert_array_equal(topk([1.0, 2.0, 3.0], 2.0)[0], [2, 1])


@pytest.mark.parametrize("bad, name", [(np.nan, "NaN"), (np.inf, r"\+inf")])
def test_nan_and_inf_logits_are_errors(bad, name):
    with pytest.raises(InputError, match=name):
        topk([[1.0, 2.0], [bad, 0.0]], 1)


def test_zero_rows():
    indices, probs = topk(np.zeros((0, 4)), 2)
    assert indices.shape == probs.shape == (0, 2)


# --- against torch -------------------------------------------------------------


def test_against_torch_topk():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(21).standard_normal((64, 20))
    for k in (1, 5, 20):
        indices, probs = topk(x, k)
        values, torch_indices = torch.topk(torch.softmax(torch.from_numpy(x), dim=-1), k, dim=-1)
        # Without ties the order is unique, so torch's indices must agree too.
        np.testing.assert_array_equal(indices, torch_indices.numpy())
        np.testing.assert_allclose(probs, values.numpy(), rtol=1e-14)


def test_torch_values_agree_on_ties_even_where_order_differs():
    torch = pytest.importorskip("torch")
    x = np.array([[3.0, 1.0, 3.0, 2.0, 3.0]])
    values, _ = torch.topk(torch.from_numpy(x), 2)
    indices, _ = topk(x, 2)
    np.testing.assert_array_equal(np.take_along_axis(x, indices, axis=-1), values.numpy())


# --- accuracy ------------------------------------------------------------------


def test_topk_accuracy():
    indices = np.array([[0, 2], [1, 0], [2, 1], [0, 1]])
    assert topk_accuracy(indices, [0, 0, 0, 1]) == (0.25, 0.75)


def test_topk_accuracy_ignores_rows():
    indices = np.array([[0, 2], [1, 0], [2, 1]])
    assert topk_accuracy(indices, [0, -100, 1]) == (0.5, 1.0)
    assert topk_accuracy(indices, [0, 7, 1], ignore_index=7) == (0.5, 1.0)


def test_topk_accuracy_every_row_ignored_is_nan():
    top1, topk_ = topk_accuracy([[0, 1]], [-100])
    assert np.isnan(top1) and np.isnan(topk_)


def test_topk_accuracy_from_topk_nd():
    x = np.random.default_rng(2).standard_normal((4, 5, 6))
    labels = np.random.default_rng(3).integers(0, 6, size=(4, 5))
    indices, _ = topk(x, 3)
    top1, top3 = topk_accuracy(indices, labels, num_classes=6)
    ranks = stable_topk(x, 3)
    assert top1 == np.mean(ranks[..., 0] == labels)
    assert top3 == np.mean((ranks == labels[..., None]).any(axis=-1))
    # Flat labels, one per row in C order, are accepted too.
    assert topk_accuracy(indices, labels.ravel(), num_classes=6) == (top1, top3)


def test_topk_accuracy_label_out_of_range_names_value():
    with pytest.raises(InputError, match=re.escape("label 6 is out of range for 6 classes (row 1)")):
        topk_accuracy([[0, 1], [1, 2]], [0, 6], num_classes=6)
    with pytest.raises(InputError, match="label -3"):
        topk_accuracy([[0, 1], [1, 2]], [0, -3])


def test_topk_accuracy_shape_mismatch():
    with pytest.raises(InputError, match=r"shape \(3,\).*2 row"):
        topk_accuracy([[0, 1], [1, 2]], [0, 1, 2])


def test_labels_whole_floats_accepted_fractions_refused():
    np.testing.assert_array_equal(check_labels(np.array([1.0, 2.0]), (2,), 3), [1, 2])
    with pytest.raises(InputError, match="label 1.5 is not a class index"):
        check_labels(np.array([1.0, 1.5]), (2,), 3)
    with pytest.raises(InputError, match="class indices must be integers"):
        check_labels(np.array(["a", "b"]), (2,), 3)


@pytest.mark.parametrize(
    "labels, shown",
    [(np.array([0.0, 1e30]), "1e+30"), (np.array([0, 2**64 - 1], dtype=np.uint64), "18446744073709551615")],
)
def test_huge_labels_are_not_wrapped_into_range(labels, shown):
    # Regression: casting to int64 before the range check can wrap a huge label to a valid class.
    with pytest.raises(InputError, match=re.escape(f"label {shown} is out of range")):
        check_labels(labels, (2,), 4)


def test_small_unsigned_labels_with_negative_ignore_index():
    np.testing.assert_array_equal(check_labels(np.array([3, 1], dtype=np.uint8), (2,), 4), [3, 1])


@pytest.mark.parametrize("seed", range(40))
def test_wide_rows_use_candidates_and_still_match_a_stable_argsort(seed):
    # Rows of >= 256 classes take the group-maxima candidate path; ties, -inf
    # (masked) classes and fully masked rows must not change the answer.
    rng = np.random.default_rng(seed)
    n, c, k = int(rng.integers(1, 12)), int(rng.integers(256, 900)), int(rng.integers(2, 20))
    x = rng.integers(-3, 4, size=(n, c)).astype(np.float64) if seed % 2 else rng.normal(size=(n, c))
    if seed % 3 == 0:
        x[rng.random((n, c)) < 0.4] = -np.inf
    if seed % 5 == 0:
        x[0] = -np.inf
    indices, _ = topk(x, k, masked_rows="nan")
    np.testing.assert_array_equal(indices, np.argsort(-x, axis=1, kind="stable")[:, :k])


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint64, np.int16])
def test_integers_and_booleans_are_ranked_as_their_values(dtype):
    # Issue 10's fuzz: bool logits were a TypeError (-x of a bool), and unsigned ones wrap around when negated.
    logits = np.array([[0, 1, 1, 0, 1], [1, 0, 0, 1, 0]] if dtype is bool else [[0, 3, 7, 3, 1], [9, 0, 2, 9, 5]],
                      dtype=dtype)
    indices, _ = topk(logits, k=3)
    expected = np.argsort(-logits.astype(np.float64), axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(indices, expected)
