"""The fused forms of ``compare``'s per-row divergence against mpmath and float64 references.

``core.rowdivergence`` computes a side's log-probabilities and probabilities
from one ``exp`` pass (``core.softmax.log_probs_and_probs``), and the KL and
JS terms of classes whose log-ratio ``r = log q - log p`` is small from
Taylor series instead of ``expm1`` and ``log1p``. The references here are
mpmath at 80 digits, written out from the definitions, and NumPy float64.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from softmax_cli.core import log_softmax
from softmax_cli.core.rowdivergence import _scratch, _terms, divergence_rows
from softmax_cli.core.softmax import log_probs_and_probs
from softmax_cli.errors import InputError

mpmath.mp.dps = 80
inf = np.inf


def mp_class_terms(lp: float, lq: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """``p log(p/q) - p + q`` and ``p log(p/m) + q log(q/m)`` (twice the class's JS) for these log-probabilities."""
    a, b = mpmath.mpf(lp), mpmath.mpf(lq)
    p, q = mpmath.exp(a), mpmath.exp(b)
    m = (p + q) / 2
    return p * (a - b) - p + q, p * mpmath.log(p / m) + q * mpmath.log(q / m)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_terms_are_within_a_few_ulps_of_mpmath(dtype):
    """Log-ratios inside the series' reach, around its edge and beyond it (where expm1/log1p take over)."""
    rng = np.random.default_rng(25)
    r = np.concatenate([np.linspace(-0.3, 0.3, 241), np.geomspace(1e-6, 0.3, 40), -np.geomspace(1e-6, 0.3, 40),
                        [0.124, 0.126, -0.124, -0.126, 0.249, 0.251, -0.249, -0.251, 0.6, -0.6, 1.0, -1.0]])
    lp = rng.uniform(-12, -0.5, r.size).astype(dtype)
    lq = (lp + r).astype(dtype)
    lp, lq = lp[None, :], lq[None, :]
    p, q = np.exp(lp), np.exp(lq)
    buf = _scratch(1, r.size, np.dtype(dtype))
    kl, js = _terms(lp, lq, p, q, buf)
    eps = np.finfo(dtype).eps
    for i in range(r.size):
        if lp[0, i] == lq[0, i]:
            assert kl[0, i] == js[0, i] == 0
            continue
        kl_exact, js_exact = mp_class_terms(float(lp[0, i]), float(lq[0, i]))
        ratio = abs(float(lq[0, i]) - float(lp[0, i]))
        # p and q enter as the rounded exp of the log-probabilities: a few ulps of the whole term. Beyond the
        # series' reach JS is q r - (p + q) log1p(expm1(r) / 2), whose first-order parts cancel: p's and q's
        # rounding then weighs 4 / |r| times more.
        js_tolerance = 8 * eps * (1 if ratio < 0.12 else 1 + 4 / ratio)
        assert abs(float(kl[0, i]) / kl_exact - 1) < 8 * eps, (float(r[i]), float(kl[0, i]), float(kl_exact))
        assert abs(float(js[0, i]) / js_exact - 1) < js_tolerance, (float(r[i]), float(js[0, i]), float(js_exact))


def mp_row(ref_row, cand_row, temperature=1.0):
    """KL, JS, TV, max |p - q| of one pair of rows of logits from the definitions (``None`` for a ``-inf`` logit)."""
    def distribution(row):
        scaled = [None if v == -inf else mpmath.mpf(float(v)) / temperature for v in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in scaled if v is not None))
        return [mpmath.mpf(0) if v is None else mpmath.exp(v - lse) for v in scaled]

    p, q = distribution(ref_row), distribution(cand_row)
    if any(pa > 0 and qa == 0 for pa, qa in zip(p, q)):
        kl = mpmath.inf
    else:
        kl = mpmath.fsum(pa * mpmath.log(pa / qa) for pa, qa in zip(p, q) if pa > 0)
    js = mpmath.fsum(x * mpmath.log(2 * x / (pa + qa)) for pa, qa in zip(p, q) for x in (pa, qa) if x > 0) / 2
    tv = mpmath.fsum(abs(pa - qa) for pa, qa in zip(p, q)) / 2
    return float(kl), float(js), float(tv), float(max(abs(pa - qa) for pa, qa in zip(p, q)))


def wide_pair(dtype, seed):
    """Rows of 200 classes; the candidate's log-ratios are mostly small, some beyond the series' reach, some -inf."""
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((6, 200)) * 3
    cand = ref + rng.standard_normal((6, 200)) * np.array([[1e-4], [1e-2], [0.05], [0.2], [1.0], [0.1]])
    ref[5, :7] = -inf  # classes P gives 0 (finite KL)
    cand[5, 3:11] = -inf  # and Q gives 0 where P has mass: infinite KL
    return ref.astype(dtype), cand.astype(dtype)


# float32: the closest row (KL 1e-9) is as far off as its float32 log-probabilities' own rounding makes it.
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-3)])
@pytest.mark.parametrize("temperature", [1.0, 1.7])
def test_wide_rows_match_mpmath(dtype, rtol, temperature):
    ref, cand = wide_pair(dtype, seed=int(temperature * 10))
    rows = divergence_rows(ref, cand, temperature=temperature)
    for i in range(ref.shape[0]):
        kl, js, tv, max_dp = mp_row(ref[i].astype(np.float64), cand[i].astype(np.float64), temperature)
        assert rows.kl[i] == (inf if kl == inf else pytest.approx(kl, rel=rtol))
        assert rows.js[i] == pytest.approx(js, rel=rtol)
        # TV and |p - q| are differences of rounded probabilities: their error is an ulp of p, not of p - q.
        atol = 4 * float(np.finfo(dtype).eps)
        assert rows.tv[i] == pytest.approx(tv, rel=rtol, abs=atol)
        assert rows.row_max_abs_dp[i] == pytest.approx(max_dp, rel=rtol, abs=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_identical_rows_give_exactly_zero(dtype):
    ref, _ = wide_pair(dtype, seed=3)
    rows = divergence_rows(ref, ref.copy())
    for figure in (rows.kl, rows.js, rows.tv, rows.row_max_abs_dp):
        np.testing.assert_array_equal(figure, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_one_exp_pass_gives_log_softmax_bits_and_close_probabilities(dtype, temperature):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 300)) * 4).astype(dtype)
    x[1, 10] = x[1, 20] = x[1].max() + 1  # a tie for the maximum: argmax is the lower index
    x[2, :50] = -inf
    x[3] = -inf  # a masked row
    log_out, out = np.empty_like(x), np.empty_like(x)
    top, masked = log_probs_and_probs(x, log_out, out, temperature)
    np.testing.assert_array_equal(log_out, log_softmax(x, temperature=temperature, masked_rows="zero"))
    np.testing.assert_array_equal(masked, [False, False, False, True, False])
    np.testing.assert_array_equal(top[[0, 1, 2, 4]], x[[0, 1, 2, 4]].argmax(axis=1))
    assert top[1] == 10
    np.testing.assert_array_equal(out[3], 0.0)
    z = x[[0, 1, 2, 4]].astype(np.longdouble) / np.longdouble(temperature)  # 64-bit mantissa on x86
    z -= z.max(axis=1, keepdims=True)
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    # The shift (x - max) / T is rounded twice, to an ulp of itself, which exp turns into a relative error of
    # eps |log p|; exp and the scaling add a few ulps.
    expected = expected.astype(np.float64)
    shown = expected > 0
    bound = np.finfo(dtype).eps * (6 + 2 * np.abs(np.log(np.where(shown, expected, 1))))
    error = np.where(shown, np.abs(out[[0, 1, 2, 4]] / np.where(shown, expected, 1) - 1), out[[0, 1, 2, 4]])
    assert (error <= bound).all()


def test_one_exp_pass_refuses_nan_naming_the_position():
    x = np.zeros((3, 100), dtype=np.float32)
    x[2, 41] = np.nan
    with pytest.raises(InputError, match="row 2, column 41"):
        log_probs_and_probs(x, np.empty_like(x), np.empty_like(x), 1.0)


def test_rows_across_work_blocks_give_the_same_bits_in_any_block():
    """70 rows of 8192 classes span five of the divergence's work blocks (16 rows each): any split, the same bits."""
    rng = np.random.default_rng(70)
    ref = (rng.standard_normal((70, 8192)) * 3).astype(np.float32)
    cand = (ref + rng.standard_normal(ref.shape) * rng.choice([1e-3, 0.1, 1.0], (70, 1))).astype(np.float32)
    ref[40, :100] = -inf
    labels = rng.integers(0, 8192, 70)
    whole = divergence_rows(ref, cand, labels)
    for height in (1, 7, 33):
        parts = [divergence_rows(ref[s:s + height], cand[s:s + height], labels[s:s + height])
                 for s in range(0, 70, height)]
        for name in ("kl", "js", "tv", "row_max_abs_dp", "top1_same", "nll_ref", "nll_cand", "dp"):
            joined = np.concatenate([getattr(part, name) for part in parts])
            assert np.array_equal(joined, getattr(whole, name), equal_nan=True), (height, name)
