"""core.divergence and its summary against independent references, and the laws KL, JS and TV obey.

References: mpmath at 50 digits (written out here from the definitions),
``torch.nn.functional.kl_div`` with ``log_target``, ``scipy.special.rel_entr``,
``scipy.spatial.distance.jensenshannon`` (which returns the square root of JS,
in nats by default), ``scipy.stats.entropy`` (which normalises its inputs) and
``scipy.stats.sem`` for the standard error. None of them calls
``softmax_cli.core``.
"""

from __future__ import annotations

from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from softmax_cli.core import MaskedRowError, blocks
from softmax_cli.core.blocks import block_of
from softmax_cli.core.divergence_stats import QUANTILE_LEVELS, divergence, divergence_summary
from softmax_cli.core.rowdivergence import RowDivergence, divergence_rows
from softmax_cli.errors import InputError, UsageError

mpmath.mp.dps = 60
inf = np.inf
LN2 = float(mpmath.log(2))
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


# --------------------------------------------------------------------------- independent references


def mp_distribution(row, temperature=1.0):
    """``(log p, p)`` of one row of logits at 60 digits; ``None`` for a ``-inf`` logit."""
    scaled = [None if v == -inf else mpmath.mpf(float(v)) / temperature for v in row]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in scaled if v is not None))
    logs = [None if v is None else v - lse for v in scaled]
    return logs, [mpmath.mpf(0) if v is None else mpmath.exp(v) for v in logs]


def mp_figures(ref_row, cand_row, temperature=1.0):
    """KL, JS, TV and max |Δp| of one pair of rows, from the definitions, at 60 digits."""
    lp, p = mp_distribution(ref_row, temperature)
    lq, q = mp_distribution(cand_row, temperature)
    kl = mpmath.mpf(0)
    for a, b, pa in zip(lp, lq, p):
        if a is not None:  # 0 log 0 = 0
            if b is None:
                return inf, None, None, None
            kl += pa * (a - b)
    js = mpmath.mpf(0)
    for pa, qa in zip(p, q):
        m = (pa + qa) / 2
        js += sum(x * mpmath.log(x / m) for x in (pa, qa) if x > 0) / 2
    tv = mpmath.fsum(abs(pa - qa) for pa, qa in zip(p, q)) / 2
    return float(kl), float(js), float(tv), float(max(abs(pa - qa) for pa, qa in zip(p, q)))


def f64_probs(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def random_pair(shape, scale=3.0, noise=0.1, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal(shape) * scale
    return ref.astype(dtype), (ref + noise * rng.standard_normal(shape)).astype(dtype)


# --------------------------------------------------------------------------- per-row figures against references


def test_kl_matches_torch_kl_div_with_log_target():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    ref, cand = random_pair((50, 37), noise=1.0)
    rows = divergence_rows(ref, cand)
    log_p = F.log_softmax(torch.from_numpy(ref), dim=-1)
    log_q = F.log_softmax(torch.from_numpy(cand), dim=-1)
    expected = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(rows.kl, expected, rtol=1e-12)


def test_figures_match_scipy():
    special = pytest.importorskip("scipy.special")
    distance = pytest.importorskip("scipy.spatial.distance")
    ref, cand = random_pair((40, 11), noise=0.7, seed=1)
    p, q = f64_probs(ref), f64_probs(cand)
    rows = divergence_rows(ref, cand)
    np.testing.assert_allclose(rows.kl, special.rel_entr(p, q).sum(axis=1), rtol=1e-12)
    # jensenshannon is the square root of JS (natural log by default).
    np.testing.assert_allclose(rows.js, distance.jensenshannon(p, q, axis=1) ** 2, rtol=1e-10)
    np.testing.assert_allclose(rows.tv, 0.5 * np.abs(p - q).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(rows.row_max_abs_dp, np.abs(p - q).max(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(rows.top1_same, ref.argmax(axis=1) == cand.argmax(axis=1))


EXTREME_PAIRS = [
    # close rows: KL of order 1e-9, where log-probabilities' rounding is the whole answer
    ([3.0, 2.0, 1.0, 0.5], [3.0, 2.0 + 1e-4, 1.0, 0.5 - 1e-4]),
    # saturated: logits 1e4 apart
    ([1e4, 0.0, -1e4], [0.0, 1e4, 0.0]),
    ([1e4, 1e4 - 3.0, 0.0], [1e4, 1e4 + 2.0, -1e4]),
    ([0.0, 1e4], [0.0, 1e4 - 30.0]),
    # -inf in the reference: P gives 0 where Q does not (finite KL)
    ([0.0, -inf, 1.0], [0.0, 2.0, 1.0]),
    # -inf in the candidate where P has mass: infinite KL
    ([0.0, 1.0, 2.0], [0.0, -inf, 2.0]),
    # -inf on both sides in the same class: as if the class were absent
    ([0.5, -inf, 2.0, -1.0], [0.0, -inf, 2.5, -1.0]),
    # -inf on both sides in different classes: disjoint-ish supports
    ([0.0, -inf, -inf], [-inf, 0.0, 3.0]),
    # tail classes with likelihood ratios beyond e^80
    ([0.0, -200.0, -300.0], [0.0, -50.0, -10.0]),
]


@pytest.mark.parametrize("ref, cand", EXTREME_PAIRS)
def test_extreme_rows_match_mpmath(ref, cand):
    kl, js, tv, max_dp = mp_figures(ref, cand)
    rows = divergence_rows([ref], [cand])
    assert rows.kl[0] == pytest.approx(kl, rel=1e-9, abs=1e-300)
    if kl != inf:
        assert rows.js[0] == pytest.approx(js, rel=1e-9, abs=1e-300)
        assert rows.tv[0] == pytest.approx(tv, rel=1e-9, abs=1e-300)
        assert rows.row_max_abs_dp[0] == pytest.approx(max_dp, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("ref, cand", [pair for pair in EXTREME_PAIRS if -inf in pair[0] + pair[1]])
def test_rows_with_minus_inf_match_scipy_rel_entr(ref, cand):
    special = pytest.importorskip("scipy.special")
    distance = pytest.importorskip("scipy.spatial.distance")
    p, q = f64_probs(ref), f64_probs(cand)
    rows = divergence_rows([ref], [cand])
    assert rows.kl[0] == pytest.approx(special.rel_entr(p, q).sum(), rel=1e-12)
    assert rows.js[0] == pytest.approx(distance.jensenshannon(p, q) ** 2, rel=1e-10)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-4), (np.float16, 2e-3)])
def test_half_and_single_precision_against_mpmath(dtype, rtol):
    """Close rows in float32/float16 inputs: figures in float32, near the exact KL of those very inputs."""
    ref, cand = random_pair((6, 40), noise=0.02, seed=2, dtype=dtype)
    rows = divergence_rows(ref, cand)
    assert rows.kl.dtype == rows.js.dtype == np.float32
    for i in range(ref.shape[0]):
        kl, js, tv, max_dp = mp_figures(ref[i].astype(np.float64), cand[i].astype(np.float64))
        assert rows.kl[i] == pytest.approx(kl, rel=rtol)
        assert rows.js[i] == pytest.approx(js, rel=rtol)
        assert rows.tv[i] == pytest.approx(tv, rel=rtol)


def test_float32_kl_keeps_its_digits_where_the_plain_sum_does_not():
    """Regression for the naive float32 sum, whose error (eps |log p|) swamps a quantised model's KL."""
    torch = pytest.importorskip("torch")
    ref, cand = random_pair((8, 4096), noise=3e-3, seed=3, dtype=np.float32)
    exact = divergence_rows(ref.astype(np.float64), cand.astype(np.float64)).kl
    ours = divergence_rows(ref, cand).kl
    F = torch.nn.functional
    theirs = F.kl_div(F.log_softmax(torch.from_numpy(cand), -1), F.log_softmax(torch.from_numpy(ref), -1),
                      log_target=True, reduction="none").sum(-1).numpy()
    ours_error = np.abs(ours / exact - 1).max()
    assert ours_error < 1e-3
    assert ours_error < np.abs(theirs / exact - 1).max()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("row", [[3.0, 2.0, 1.0], [1e4, 0.0, -1e4], [0.0, -inf, 5.0], [-inf, 2.0, -inf], [7.0]])
def test_identical_rows_give_exactly_zero(dtype, row):
    x = np.array([row, row], dtype=dtype)
    rows = divergence_rows(x, x.copy())
    for figure in (rows.kl, rows.js, rows.tv, rows.row_max_abs_dp):
        np.testing.assert_array_equal(figure, 0.0)
    assert rows.top1_same.all()


def test_mixed_dtypes_are_computed_in_the_wider():
    ref, cand = random_pair((5, 9), seed=4)
    half = cand.astype(np.float16)
    rows = divergence_rows(ref, half)
    assert rows.kl.dtype == np.float64
    np.testing.assert_array_equal(rows.kl, divergence_rows(ref, half.astype(np.float64)).kl)
    single = divergence_rows(ref.astype(np.float32), half)
    assert single.kl.dtype == np.float32
    np.testing.assert_array_equal(single.kl, divergence_rows(ref.astype(np.float32), half.astype(np.float32)).kl)


def test_bfloat16_is_computed_in_float32():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ref, cand = random_pair((4, 16), seed=5, dtype=np.float32)
    bf16 = cand.astype(ml_dtypes.bfloat16)
    rows = divergence_rows(ref, bf16)
    assert rows.kl.dtype == np.float32
    np.testing.assert_array_equal(rows.kl, divergence_rows(ref, bf16.astype(np.float32)).kl)


def test_temperature_divides_both_sides():
    ref, cand = random_pair((7, 6), seed=6)
    rows = divergence_rows(ref, cand, temperature=2.5)
    for i in range(ref.shape[0]):
        kl, js, tv, _ = mp_figures(ref[i], cand[i], temperature=2.5)
        assert (rows.kl[i], rows.js[i], rows.tv[i]) == pytest.approx((kl, js, tv), rel=1e-10)


def test_class_axis_and_nd_rows():
    ref, cand = random_pair((3, 5, 4), seed=7)
    labels = np.arange(12).reshape(3, 4) % 5
    moved = divergence_rows(np.moveaxis(ref, 1, -1), np.moveaxis(cand, 1, -1), labels)
    rows = divergence_rows(ref, cand, labels, axis=1)
    assert rows.kl.shape == (3, 4)
    for name in ("kl", "js", "tv", "row_max_abs_dp", "top1_same", "nll_ref", "nll_cand", "dp"):
        np.testing.assert_array_equal(getattr(rows, name), getattr(moved, name))


def test_label_figures_match_torch_cross_entropy_and_ignore_rows():
    torch = pytest.importorskip("torch")
    ref, cand = random_pair((30, 8), noise=0.5, seed=8)
    labels = np.random.default_rng(8).integers(0, 8, 30)
    labels[[3, 17]] = -100
    rows = divergence_rows(ref, cand, labels)
    F = torch.nn.functional
    y = torch.from_numpy(labels)
    np.testing.assert_allclose(rows.nll_ref, F.cross_entropy(torch.from_numpy(ref), y, reduction="none").numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(rows.nll_cand, F.cross_entropy(torch.from_numpy(cand), y, reduction="none").numpy(),
                               rtol=1e-12)
    kept = labels != -100
    p, q = f64_probs(ref), f64_probs(cand)
    expected_dp = np.where(kept, q[np.arange(30), np.where(kept, labels, 0)] - p[np.arange(30), np.where(kept, labels, 0)], 0)
    np.testing.assert_allclose(rows.dp, expected_dp, rtol=1e-10, atol=1e-16)
    np.testing.assert_array_equal(rows.labelled, kept)
    np.testing.assert_array_equal(rows.dp[~kept], 0)
    summary = divergence_summary(rows)
    ce_ref = float(F.cross_entropy(torch.from_numpy(ref), y))
    ce_cand = float(F.cross_entropy(torch.from_numpy(cand), y))
    assert summary.ppl_ref == pytest.approx(np.exp(ce_ref), rel=1e-12)
    assert summary.ppl_cand == pytest.approx(np.exp(ce_cand), rel=1e-12)
    assert summary.ppl_ratio == pytest.approx(np.exp(ce_cand - ce_ref), rel=1e-12)
    assert summary.dp_mean == pytest.approx(expected_dp[kept].mean(), rel=1e-10)
    assert summary.dp_rms == pytest.approx(np.sqrt((expected_dp[kept] ** 2).mean()), rel=1e-10)
    np.testing.assert_allclose(summary.dp_quantiles, np.quantile(expected_dp[kept], QUANTILE_LEVELS), rtol=1e-9)


def test_small_probability_differences_keep_their_digits():
    """Δp = q[y] - p[y] of 1e-12 on a probability of 0.5: mpmath, not a float64 subtraction, is the reference."""
    ref, cand = [[0.0, 0.0]], [[0.0, 4e-12]]
    _, p = mp_distribution(ref[0])
    _, q = mp_distribution(cand[0])
    rows = divergence_rows(ref, cand, [1])
    assert rows.dp[0] == pytest.approx(float(q[1] - p[1]), rel=1e-9)


def test_label_at_a_masked_class_has_infinite_nll():
    rows = divergence_rows([[0.0, 1.0, -inf]], [[0.0, 1.0, 3.0]], [2])
    assert rows.nll_ref[0] == inf and np.isfinite(rows.nll_cand[0])
    assert rows.dp[0] == pytest.approx(float(mp_distribution([0.0, 1.0, 3.0])[1][2]), rel=1e-12)


# --------------------------------------------------------------------------- probabilities as inputs


def test_from_probs_with_zeros_matches_scipy_entropy_which_normalises():
    stats = pytest.importorskip("scipy.stats")
    distance = pytest.importorskip("scipy.spatial.distance")
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.25, 0.25, 0.5], [0.7, 0.2, 0.1]])
    q = np.array([[0.25, 0.5, 0.25], [0.2, 0.3, 0.5], [0.5, 0.0, 0.5], [0.6, 0.3, 0.1003]])  # last row sums to 1.0003
    rows = divergence_rows(p, q, from_probs=True)
    np.testing.assert_allclose(rows.kl, stats.entropy(p, q, axis=1), rtol=1e-12)
    assert rows.kl[1] == 0 and rows.kl[2] == inf
    np.testing.assert_allclose(rows.js, distance.jensenshannon(p, q, axis=1) ** 2, rtol=1e-10)


def test_from_probs_refuses_what_is_not_a_probability():
    with pytest.raises(InputError, match=r"probability 1\.5 .*\(cand\.npy, row 1, column 0\)"):
        divergence_rows([[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [1.5, 0.5]], from_probs=True,
                        names=("ref.npy", "cand.npy"))
    with pytest.raises(UsageError, match="temperature"):
        divergence_rows([[0.5, 0.5]], [[0.5, 0.5]], from_probs=True, temperature=2.0)


# --------------------------------------------------------------------------- masked rows and errors


def test_masked_rows_error_names_the_input_and_row():
    with pytest.raises(MaskedRowError, match=r"every logit in the row is -inf.*\(new\.npy, row 2\)"):
        divergence_rows([[0.0, 1.0]] * 3, [[0.0, 1.0], [0.0, 1.0], [-inf, -inf]], masked_rows="error",
                        names=("old.npy", "new.npy"))
    with pytest.raises(MaskedRowError, match=r"every probability in the row is 0.*\(reference, row 0\)"):
        divergence_rows([[0.0, 0.0]], [[0.5, 0.5]], from_probs=True, masked_rows="error")


def test_masked_rows_nan_makes_the_row_nan():
    rows = divergence_rows([[0.0, 1.0], [-inf, -inf]], [[0.0, 2.0], [0.0, 1.0]], [0, 1], masked_rows="nan")
    for name in ("kl", "js", "tv", "row_max_abs_dp", "nll_ref", "nll_cand", "dp"):
        assert np.isfinite(getattr(rows, name)[0]) and np.isnan(getattr(rows, name)[1]), name
    assert rows.top1_same.tolist() == [True, False]
    summary = divergence_summary(rows)
    assert np.isnan(summary.kl_mean) and np.isnan(summary.kl_max) and np.isnan(summary.kl_quantiles).all()
    assert summary.top1_agreement == 0.5


def test_masked_rows_zero_uses_the_zero_vector():
    q = f64_probs([0.0, 1.0, 2.0])
    rows = divergence_rows([[-inf] * 3, [0.0, 1.0, 2.0], [-inf] * 3],
                           [[0.0, 1.0, 2.0], [-inf] * 3, [-inf] * 3], [2, 2, 2], masked_rows="zero")
    np.testing.assert_array_equal(rows.kl, [0.0, inf, 0.0])  # sum 0 log(0/q) = 0; P's mass where Q has none
    np.testing.assert_allclose(rows.js, [LN2 / 2, LN2 / 2, 0.0], rtol=1e-15)
    np.testing.assert_allclose(rows.tv, [0.5, 0.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(rows.row_max_abs_dp, [q.max(), q.max(), 0.0], rtol=1e-15)
    np.testing.assert_array_equal(rows.top1_same, [False, False, True])
    np.testing.assert_allclose(rows.nll_ref, [inf, -np.log(q[2]), inf], rtol=1e-15)
    np.testing.assert_allclose(rows.dp, [q[2], -q[2], 0.0], rtol=1e-15)


def test_bad_inputs_are_refused_naming_the_input_and_position():
    with pytest.raises(InputError, match=r"reference has shape \(2, 3\) but candidate has shape \(3, 2\)"):
        divergence_rows(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"NaN in logits.*\(candidate, row 1, column 2\)"):
        divergence_rows(np.zeros((2, 3)), [[0.0, 0.0, 0.0], [0.0, 0.0, np.nan]])
    with pytest.raises(InputError, match=r"\+inf in logits.*\(reference, row 0, column 0\)"):
        divergence_rows([[inf, 0.0]], [[0.0, 0.0]])
    with pytest.raises(InputError, match=r"dtype complex128.*\(candidate\)"):
        divergence_rows([[0.0, 0.0]], np.zeros((1, 2), dtype=complex))
    with pytest.raises(InputError, match="out of range"):
        divergence_rows([[0.0, 0.0]], [[0.0, 0.0]], [2])
    with pytest.raises(InputError, match="no classes"):
        divergence_rows(np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(InputError, match="quantile levels"):
        divergence_summary(divergence_rows([[0.0, 1.0]], [[1.0, 0.0]]), quantile_levels=[0.5, 95])


def test_errors_in_a_streamed_block_name_the_row_of_the_whole_file():
    ref = np.zeros((4, 3))
    cand = np.zeros((4, 3))
    cand[3, 1] = np.nan
    with block_of((10, 3), -1, 6), pytest.raises(InputError, match=r"\(candidate, row 9, column 1\)"):
        divergence_rows(ref, cand)


# --------------------------------------------------------------------------- the summary


def test_summary_against_numpy_and_scipy_sem():
    stats = pytest.importorskip("scipy.stats")
    ref, cand = random_pair((101, 12), noise=0.3, seed=9)
    rows = divergence_rows(ref, cand)
    summary = divergence_summary(rows)
    kl = rows.kl
    assert summary.kl_mean == pytest.approx(kl.mean(), rel=1e-14)
    assert summary.kl_stderr == pytest.approx(float(stats.sem(kl)), rel=1e-12)
    assert summary.kl_max == kl.max()
    np.testing.assert_array_equal(summary.quantile_levels, QUANTILE_LEVELS)
    np.testing.assert_allclose(summary.kl_quantiles, np.quantile(kl, QUANTILE_LEVELS), rtol=1e-14)
    assert summary.top1_agreement == pytest.approx(rows.top1_same.mean())
    assert summary.js_mean == pytest.approx(rows.js.mean(), rel=1e-14)
    assert summary.tv_mean == pytest.approx(rows.tv.mean(), rel=1e-14)
    assert summary.max_abs_dp == rows.row_max_abs_dp.max()
    assert summary.ppl_ref is None and summary.dp_quantiles is None


def test_infinite_kl_rows_make_the_mean_and_upper_quantiles_infinite():
    finite = np.linspace(0.0, 1.0, 9)
    kl = np.concatenate([finite, [inf]])  # ten rows, one of them infinite
    rows = RowDivergence(kl=kl, js=np.zeros(10), tv=np.zeros(10), row_max_abs_dp=np.zeros(10),
                         top1_same=np.ones(10, bool))
    summary = divergence_summary(rows, quantile_levels=[0.0, 0.5, 8 / 9, 0.9, 1.0])
    assert summary.kl_mean == inf and summary.kl_stderr == inf and summary.kl_max == inf
    # Positions (n - 1) * level = 0, 4.5, 8 (exactly the last finite row), 8.1, 9.
    np.testing.assert_array_equal(summary.kl_quantiles, [0.0, np.quantile(finite, 0.5 * 9 / 8), 1.0, inf, inf])


def test_summary_of_no_labelled_rows_is_nan_and_one_row_has_no_stderr():
    rows = divergence_rows([[0.0, 1.0]], [[0.0, 2.0]], [-100])
    summary = divergence_summary(rows)
    assert np.isnan(summary.kl_stderr)
    for value in (summary.ppl_ref, summary.ppl_cand, summary.ppl_ratio, summary.dp_mean, summary.dp_rms):
        assert np.isnan(value)
    assert np.isnan(summary.dp_quantiles).all()


def test_no_rows_give_an_all_nan_summary_without_warnings():
    with np.errstate(all="raise"):
        summary, rows = divergence(np.zeros((0, 5)), np.zeros((0, 5)), np.zeros(0, dtype=int))
    assert rows.kl.shape == (0,)
    assert summary.n_scored == 0
    assert all(np.isnan(value).all() for name, value in summary._asdict().items()
               if name not in ("quantile_levels", "n_scored"))


def test_divergence_is_rows_then_summary():
    ref, cand = random_pair((20, 5), seed=10)
    summary, rows = divergence(ref, cand, quantile_levels=[0.25, 0.75])
    expected = divergence_summary(divergence_rows(ref, cand), [0.25, 0.75])
    for name, value, other in zip(summary._fields, summary, expected):
        assert np.array_equal(value, other), name
    np.testing.assert_array_equal(summary.kl_quantiles, np.quantile(rows.kl, [0.25, 0.75]))


# --------------------------------------------------------------------------- streaming: block and thread invariance


def streamed(ref, cand, labels, height, **options) -> RowDivergence:
    parts = []
    for start in range(0, ref.shape[0], height):
        block = slice(start, start + height)
        with block_of(ref.shape, -1, start):
            parts.append(divergence_rows(ref[block], cand[block], labels[block], **options))
    return RowDivergence.concatenate(parts)


def assert_same_bits(a: RowDivergence, b: RowDivergence) -> None:
    for name, x, y in zip(RowDivergence._fields, a, b):
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(np.ravel(x), np.ravel(y), equal_nan=True), name
    sa, sb = divergence_summary(a), divergence_summary(b)
    for name, x, y in zip(sa._fields, sa, sb):
        assert np.array_equal(x, y, equal_nan=True), name


@pytest.mark.parametrize("n_rows, n_classes, heights", [(37, 10, [1, 5, 7, 36]), (36, 10, [6, 9, 12]),
                                                      (23, 300, [4, 11, 22]), (12, 8192, [3, 5])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_of_any_height_give_the_same_bits(n_rows, n_classes, heights, dtype):
    ref, cand = random_pair((n_rows, n_classes), noise=0.2, seed=n_rows, dtype=dtype)
    ref[2, :3] = -inf  # a row that takes the masked path
    cand[5, 1] = -inf  # and one with infinite KL
    labels = np.random.default_rng(n_rows).integers(0, n_classes, n_rows)
    labels[::4] = -100
    whole = divergence_rows(ref, cand, labels)
    for height in heights:
        assert_same_bits(streamed(ref, cand, labels, height), whole)


def test_any_thread_count_gives_the_same_bits():
    ref, cand = random_pair((160, 8192), noise=0.05, seed=11, dtype=np.float32)  # over the parallel threshold
    labels = np.arange(160) * 37 % 8192
    before = blocks.thread_count()
    try:
        blocks.set_threads(1)
        one = divergence_rows(ref, cand, labels)
        blocks.set_threads(3)
        three = divergence_rows(ref, cand, labels)
    finally:
        blocks.set_threads(before)
    assert_same_bits(one, three)


# --------------------------------------------------------------------------- laws


logit_rows = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 12)),
                    elements=st.one_of(st.floats(-1e4, 1e4), st.just(-inf)))


def has_distribution(x: np.ndarray) -> bool:
    return bool((x.max(axis=1) > -inf).all())


@settings(max_examples=200, deadline=None)
@given(logit_rows, st.data())
def test_laws(ref, data):
    cand = data.draw(arrays(np.float64, ref.shape, elements=st.one_of(st.floats(-1e4, 1e4), st.just(-inf))))
    if not (has_distribution(ref) and has_distribution(cand)):
        return
    rows = divergence_rows(ref, cand)
    assert (rows.kl >= 0).all()  # Gibbs' inequality (inf allowed)
    assert ((rows.js >= 0) & (rows.js <= LN2)).all()
    assert ((rows.tv >= 0) & (rows.tv <= 1)).all()
    assert (rows.row_max_abs_dp <= rows.tv * 2 + 1e-15).all()
    # Pinsker: TV <= sqrt(KL / 2).
    assert (rows.tv <= np.sqrt(rows.kl / 2) * (1 + 1e-9) + 1e-12).all()
    np.testing.assert_array_equal(rows.tv, divergence_rows(cand, ref).tv)
    same = divergence_rows(ref, ref.copy())
    np.testing.assert_array_equal(same.kl, 0.0)
    np.testing.assert_array_equal(same.js, 0.0)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 300)),
              elements=st.one_of(st.floats(-1e4, 1e4, width=32), st.just(-inf))), st.integers(0, 2**32 - 1))
def test_laws_in_float32(ref, seed):
    rng = np.random.default_rng(seed)
    cand = (ref + rng.standard_normal(ref.shape).astype(np.float32) * rng.choice([1e-4, 1e-2, 1.0])).astype(np.float32)
    if not (has_distribution(ref) and has_distribution(cand)):
        return
    rows = divergence_rows(ref, cand)
    assert rows.kl.dtype == np.float32
    assert (rows.kl >= 0).all()
    assert ((rows.js >= 0) & (rows.js <= np.float32(LN2))).all()
    assert ((rows.tv >= 0) & (rows.tv <= 1)).all()
    same = divergence_rows(cand, cand.copy())
    np.testing.assert_array_equal(same.kl, 0.0)
    np.testing.assert_array_equal(same.tv, 0.0)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 70)), elements=st.floats(-50, 50, width=32)),
       st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_block_split_invariance(ref, height, seed):
    rng = np.random.default_rng(seed)
    cand = (ref + rng.standard_normal(ref.shape).astype(np.float32)).astype(np.float32)
    labels = rng.integers(0, ref.shape[1], ref.shape[0])
    assert_same_bits(streamed(ref, cand, labels, height), divergence_rows(ref, cand, labels))


# --------------------------------------------------------------------------- real data


def test_sample_pair_of_an_int8_quantised_model():
    """sample_data/compare_*.npy: one MLP's logits with float32 and with int8 weights (make_compare_logits.py)."""
    special = pytest.importorskip("scipy.special")
    ref, cand = np.load(SAMPLE_DATA / "compare_ref.npy"), np.load(SAMPLE_DATA / "compare_cand.npy")
    labels = np.load(SAMPLE_DATA / "digits_val_labels.npy")
    assert ref.dtype == cand.dtype == np.float32 and ref.shape == cand.shape == (len(labels), 10)
    summary, rows = divergence(ref, cand, labels)
    lp, lq = special.log_softmax(ref.astype(np.float64), axis=1), special.log_softmax(cand.astype(np.float64), axis=1)
    kl = special.rel_entr(np.exp(lp), np.exp(lq)).sum(axis=1)
    np.testing.assert_allclose(rows.kl, kl, rtol=1e-3, atol=1e-10)
    assert summary.kl_mean == pytest.approx(kl.mean(), rel=1e-4)
    assert 0 < summary.kl_mean < 1e-3  # quantisation moved the distributions, a little
    assert summary.top1_agreement == np.mean(ref.argmax(axis=1) == cand.argmax(axis=1))
    at = np.arange(len(labels))
    assert summary.ppl_ratio == pytest.approx(np.exp(-lq[at, labels].mean() + lp[at, labels].mean()), rel=1e-6)
