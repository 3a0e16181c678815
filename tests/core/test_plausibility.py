"""The plausibility tests of the core (issue 19) against independent references: scipy's binomial, NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softmax_cli.core import (
    below_chance,
    binomial_lower_tail,
    label_like_columns,
    next_token_alignment,
    padding_runs,
    probability_shaped,
    probability_tolerance,
)
from softmax_cli.core.plausibility import (
    BELOW_CHANCE_SIGNIFICANCE,
    PROBABILITY_CHECK_ROWS,
)


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.5), (3, 100, 0.1), (40, 1000, 0.1), (9, 12000, 0.001),
                                           (350, 719, 0.5), (0, 500, 0.01), (17, 20, 0.9)])
def test_binomial_lower_tail_matches_scipy(k, n, p):
    stats = pytest.importorskip("scipy.stats")
    assert binomial_lower_tail(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-10)


def test_below_chance_is_scipys_one_sided_binomial_test_at_the_stated_level():
    stats = pytest.importorskip("scipy.stats")
    for correct, counted, n_classes in [(3, 719, 10), (50, 719, 10), (2300, 5000, 2), (0, 200, 10), (9, 12000, 1000)]:
        p_value = stats.binomtest(correct, counted, 1 / n_classes, alternative="less").pvalue
        got = below_chance(correct, counted, n_classes)
        if p_value < BELOW_CHANCE_SIGNIFICANCE:
            assert got == pytest.approx(p_value, rel=1e-8)
        else:
            assert got is None


def test_below_chance_needs_enough_rows():
    # 10 classes, 50 rows: 5 expected right by chance, too few to tell even at zero right.
    assert below_chance(0, 50, 10) is None
    assert below_chance(0, 100, 10) is not None


def test_random_labels_at_chance_seldom_warn():
    rng = np.random.default_rng(0)
    for n_classes in (2, 10, 1000):
        counted = 20 * n_classes
        correct = rng.binomial(counted, 1 / n_classes, size=200)
        assert not any(below_chance(int(c), counted, n_classes) for c in correct)


def test_probability_rows_are_recognised_per_dtype():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 12))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    for dtype in (np.float16, np.float32, np.float64):
        assert probability_shaped(p.astype(dtype))
        assert not probability_shaped(z.astype(dtype))
    assert probability_shaped(p.T, axis=0)
    assert probability_shaped(p.reshape(30, 10, 12))


def test_tolerance_is_four_epsilons_with_a_floor():
    assert probability_tolerance(np.float64) == 1e-3
    assert probability_tolerance(np.float32) == 1e-3
    assert probability_tolerance(np.float16) == 4 * float(np.finfo(np.float16).eps)
    assert probability_shaped([0.333, 0.333, 0.333])  # three decimals: 0.999
    # Two decimals: 0.99 is within the rounding of three values to 0.01 (1.5e-2), not within 1e-3.
    assert probability_shaped([0.33, 0.33, 0.33])
    assert not probability_shaped([0.33, 0.33, 0.3])  # 0.96: past that rounding
    assert not probability_shaped([0.6, 0.3, 0.2])  # one decimal, as logits are typed: no rounding allowed


def test_percentages_are_rows_in_0_100_summing_to_100():
    assert probability_shaped([[70.0, 20.0, 10.0], [33.33, 33.33, 33.33]], total=100)
    assert not probability_shaped([0.7, 0.2, 0.1], total=100)  # probabilities, not percentages
    assert not probability_shaped([70.0, 20.0, 15.0], total=100)  # 105: past the rounding of whole percents


def test_what_is_not_probabilities():
    assert not probability_shaped([1.0, 0.0, 0.0])  # one-hot: as likely logits typed by hand
    assert not probability_shaped([1.0])  # one class
    assert not probability_shaped(np.array([0, 1, 0]))  # integers
    assert not probability_shaped([0.5, 0.6, -0.1])


def test_only_the_first_rows_are_read():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(PROBABILITY_CHECK_ROWS + 5, 4))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[-1] = [3.0, -1.0, 0.0, 0.0]  # past the rows read: the same answer streamed or whole
    assert probability_shaped(p)


def test_label_like_columns():
    table = np.array([[0.1, 2.0, 1.0], [0.3, -1.0, 0.0]])
    assert label_like_columns(["a", "b", "TARGET"], table) == ["TARGET"]
    assert label_like_columns(["a", "y", "c"], table) == ["y"]  # 2.0 and -1.0 are whole numbers
    table[1, 1] = -1.5
    assert label_like_columns(["a", "y", "c"], table) == []
    assert label_like_columns(["label", "b", "c"], table) == []  # 0.1 is not a whole number
    assert label_like_columns(None, table) == []


@pytest.mark.parametrize("n_classes", [3, 5000, 70000])  # many rows a chunk, a few, one
def test_every_checked_row_counts_however_the_rows_are_chunked(n_classes):
    rng = np.random.default_rng(n_classes)
    probs = rng.dirichlet(np.ones(n_classes), size=40).astype(np.float64)
    assert probability_shaped(probs)
    off = probs.copy()
    off[37] *= 0.9  # one late row sums to 0.9: logits after all
    assert not probability_shaped(off)
    assert not probability_shaped(off.T, axis=0)  # the same rows, not contiguous
    outside = probs.copy()
    outside[39, -1] = 1.5
    assert not probability_shaped(outside)


@pytest.mark.parametrize("seed", range(6))
def test_next_token_alignment_is_mcnemars_exact_test_of_scipy(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, (3, 30))
    labels[0, 5] = -100
    predicted = np.where(rng.random((3, 30)) < 0.3 + 0.1 * seed, np.roll(labels, -1, axis=1), rng.integers(0, 4, (3, 30)))
    found, next_only, own_only = next_token_alignment(predicted, labels)
    own, following, guess = labels[:, :-1].ravel(), labels[:, 1:].ravel(), predicted[:, :-1].ravel()
    counted = (own != -100) & (following != -100)
    assert next_only == int(((guess == following) & (guess != own) & counted).sum())
    assert own_only == int(((guess == own) & (guess != following) & counted).sum())
    p_next = stats.binomtest(next_only, next_only + own_only, 0.5, alternative="greater").pvalue if next_only + own_only else 1
    p_own = stats.binomtest(own_only, next_only + own_only, 0.5, alternative="greater").pvalue if next_only + own_only else 1
    assert found == (1 if p_next < BELOW_CHANCE_SIGNIFICANCE else 0 if p_own < BELOW_CHANCE_SIGNIFICANCE else None)


@given(st.integers(2, 8), st.integers(3, 40), st.integers(50, 5000), st.integers(0, 2**32 - 1))
def test_padding_runs_are_not_found_in_unpadded_token_ids(batch, seq, vocab, seed):
    ids = np.random.default_rng(seed).integers(0, vocab, (batch, seq))
    assert padding_runs(ids) is None


@pytest.mark.parametrize("pad", [0, 50256])
def test_padding_runs_find_right_and_left_padding_and_not_labels_that_mark_it(pad):
    rng = np.random.default_rng(1)
    lengths = [12, 9, 4]
    right = np.stack([np.concatenate([rng.integers(1, 1000, n), np.full(12 - n, pad)]) for n in lengths])
    left = np.stack([np.concatenate([np.full(12 - n, pad), rng.integers(1, 1000, n)]) for n in lengths])
    assert padding_runs(right) == (pad, "end", [3, 8])
    assert padding_runs(left) == (pad, "start", [3, 8])
    assert padding_runs(np.where(right == pad, -100, right)) is None
    assert padding_runs(right[:, :-3]) is None  # the runs left are 0 and 5 long: one sequence is no batch's padding
