"""Finite logits and a finite positive temperature never give NaN, and the core raises no NumPy warning (issue 12).

``x - max(x)`` overflows for logits 2e308 apart, and ``(x - max) / T`` for a
tiny T: the true values are then below -1.8e308, so ``exp`` of them is 0 and
``-inf`` is their correctly rounded log. The core computes exactly that,
silently; the tests run with warnings turned into errors, so a raw
``RuntimeWarning`` fails them. The entry point also silences warnings as a
last resort, so the CLI cases here run in process (Typer's CliRunner on the
app, which bypasses that filter) to prove the real fix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_cli import core

EXTREMES = [1e308, -1e308, np.finfo(np.float64).max, -np.finfo(np.float64).max, 5e-324, -5e-324, 0.0, 1.0, -1.0]
finite = st.one_of(st.sampled_from(EXTREMES), st.floats(allow_nan=False, allow_infinity=False))
logits = hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 5)), elements=finite)
temperatures = st.one_of(st.sampled_from([5e-324, 1e-320, 1e-300, 1.0, 1e300, np.finfo(np.float64).max]),
                         st.floats(min_value=5e-324, max_value=np.finfo(np.float64).max))


def strict(function, *args, **kwargs):
    """Call ``function`` with every warning an error, so a raw NumPy warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


@settings(max_examples=300, deadline=None)
@given(logits, temperatures)
def test_softmax_family_never_nan_nor_warns(x, t):
    p = strict(core.softmax, x, temperature=t)
    log_p = strict(core.log_softmax, x, temperature=t)
    assert not np.isnan(p).any() and not np.isnan(log_p).any(), (x, t)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(log_p <= 0)
    assert not np.isnan(strict(core.entropy, x, temperature=t)).any()
    assert not np.isnan(strict(core.logsumexp, x)).any()


@settings(max_examples=300, deadline=None)
@given(logits, temperatures, st.booleans())
def test_jacobian_and_vjp_never_nan_nor_warn(x, t, log):
    assert not np.isnan(strict(core.softmax_jacobian, x, temperature=t, log=log)).any(), (x, t, log)
    upstream = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    assert not np.isnan(strict(core.softmax_vjp, x, upstream, temperature=t, log=log)).any(), (x, t, log)


@settings(max_examples=300, deadline=None)
@given(logits, temperatures, st.sampled_from([0.0, 0.1]))
def test_cross_entropy_and_topk_never_nan_nor_warn(x, t, smoothing):
    labels = np.arange(x.shape[0]) % x.shape[1]
    options = dict(temperature=t, label_smoothing=smoothing)
    for reduction in ("mean", "sum", "none"):
        assert not np.isnan(strict(core.cross_entropy, x, labels, reduction=reduction, **options)).any(), (x, t)
    _, top = strict(core.topk, x, 1, temperature=t)
    assert not np.isnan(top).any()


def test_the_reported_cases_have_their_exact_limits():
    # Computed by hand: exp(-2e308) and exp(-1/1e-320) are 0 in any float.
    np.testing.assert_array_equal(strict(core.softmax, [1e308, -1e308]), [1.0, 0.0])
    np.testing.assert_array_equal(strict(core.log_softmax, [1e308, -1e308]), [0.0, -np.inf])
    np.testing.assert_array_equal(strict(core.softmax, [1.0, 2.0, 3.0], temperature=1e-320), [0.0, 0.0, 1.0])
    # Every entry of diag(s) - s s^T is a product with a zero (or 1 - 1) before the division by T.
    np.testing.assert_array_equal(strict(core.softmax_jacobian, [1.0, 2.0, 3.0], temperature=1e-320), np.zeros((3, 3)))


@pytest.mark.parametrize("args", [
    ("probs", "1e308", "-1e308"), ("probs", "1", "2", "3", "-t", "1e-320"), ("probs", "--log", "1e308", "-1e308"),
    ("jacobian", "1", "2", "3", "-t", "1e-320"), ("jacobian", "1e308", "-1e308"),
    ("grad", "1e308", "-1e308", "--labels", "1"), ("grad", "1", "2", "3", "--upstream", "1,2,3", "-t", "1e-320"),
    ("loss", "1", "2", "3", "--labels", "0", "-t", "1e-320"), ("topk", "1e308", "-1e308", "-t", "1e-320"),
    ("temperature-sweep", "1e308", "-1e308"),
])
def test_the_cli_gives_no_nan_and_no_warning(cli, args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        completed = cli(*args, "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    assert "Warning" not in completed.stderr and "Traceback" not in completed.stderr
    assert "nan" not in completed.stdout.lower(), completed.stdout



@settings(max_examples=300, deadline=None)
@given(logits, temperatures, st.sampled_from([0.0, 0.1]))
def test_cross_entropy_grad_never_nan_nor_warns(x, t, smoothing):
    labels = np.arange(x.shape[0]) % x.shape[1]
    for reduction in ("mean", "sum", "none"):
        grad = strict(core.cross_entropy_grad, x, labels, reduction=reduction, temperature=t, label_smoothing=smoothing)
        assert not np.isnan(grad).any(), (x, t, reduction)


def test_the_reported_gradient_is_exact():
    # softmax([1, 2, 3] / 1e-320) is one-hot on the label, so the gradient is exactly 0.
    np.testing.assert_array_equal(strict(core.cross_entropy_grad, [1.0, 2.0, 3.0], 2, temperature=1e-320),
                                  np.zeros(3))


def test_the_cli_gradient_has_no_nan(cli):
    completed = cli("grad", "1", "2", "3", "--labels", "2", "-t", "1e-320", "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    assert "nan" not in completed.stdout.lower(), completed.stdout


def test_float16_log_probabilities_past_its_range_are_minus_inf_without_a_warning():
    """Regression (found by the 100,000-case fuzz): -t 1e-3 --log on float16 logits gives
    log-probabilities below -65504, whose float16 rounding is -inf; the cast raised no error
    but a raw NumPy overflow warning."""
    from softmax_cli import core

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = core.log_softmax(np.array([[0, 70, -3]], dtype=np.float16), temperature=1e-3)
    assert result.dtype == np.float16
    assert result[0, 1] == 0 and np.isneginf(result[0, 0]) and np.isneginf(result[0, 2])


def test_float16_losses_past_its_range_are_inf_without_a_warning():
    """Regression (found by the long fuzz on the final commit): a float16 cross-entropy above 65504
    (soft targets [0, 945, 835.5] against the same logits) rounds to inf in float16, as torch's
    float16 loss does; the cast to the logits' dtype raised a raw NumPy overflow warning."""
    x = np.array([[0.0, 945.0, 835.5]], dtype=np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = core.cross_entropy_terms(x, x, reduction="none")
        loss = core.cross_entropy(x, x)
    assert terms.per_sample.dtype == np.float16 and np.isposinf(terms.per_sample[0])
    assert np.isposinf(loss)
    expected = -(x.astype(np.float64) * (x - x.max() - np.log(np.exp(x.astype(np.float64) - x.max()).sum()))).sum()
    assert expected > np.finfo(np.float16).max  # the loss float64 gives is past float16's range


def test_float16_gradients_past_its_range_are_inf_without_a_warning():
    """The same cast in the gradient: (p - y) / T for -t 1e-6 is past float16's range."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad = core.cross_entropy_grad(np.array([[0.0, 1.0, 2.0]], dtype=np.float16), [0], temperature=1e-6)
    assert grad.dtype == np.float16
    assert np.isneginf(grad[0, 0]) and grad[0, 1] == 0 and np.isposinf(grad[0, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("t", [1e-320, 1e-50])
def test_a_temperature_that_is_0_in_the_compute_dtype_gives_the_limit_not_nan(dtype, t):
    """Regression (found by the long fuzz on 3f147b4): -t 1e-320 on float32 (or float16) logits. NumPy
    rounds a Python float to the array's dtype, where 1e-320 is 0: (x - max) / 0 made every row NaN
    (0 / 0 at the maximum), with raw divide warnings. The quotient is now taken in float64, so a row
    goes to its limit (one-hot, ties shared) as in float64."""
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=dtype)
    wide = x.astype(np.float64)
    p = strict(core.softmax, x, temperature=t)
    assert p.dtype == dtype
    np.testing.assert_array_equal(p, strict(core.softmax, wide, temperature=t).astype(dtype))
    np.testing.assert_array_equal(p, np.array([[0, 0, 1], [1 / 3, 1 / 3, 1 / 3]]).astype(dtype))
    with np.errstate(over="ignore"):  # float64's -1e50 is float32's -inf
        expected_log = strict(core.log_softmax, wide, temperature=t).astype(dtype)
    np.testing.assert_array_equal(strict(core.log_softmax, x, temperature=t), expected_log)
    labels = np.array([2, 0])
    assert strict(core.cross_entropy, x, labels, temperature=t) == pytest.approx(np.log(3) / 2, rel=1e-3)
    for result in (strict(core.cross_entropy_grad, x, labels, temperature=t),
                   strict(core.softmax_jacobian, x, temperature=t),
                   strict(core.divergence_rows, x, x, temperature=t).kl):
        assert not np.isnan(result).any()
