"""The softmax core against mpmath at 50 digits, and the laws softmax obeys."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from softmax_cli.core import MaskedRowError, blocks, entropy, log_softmax, logsumexp, softmax
from softmax_cli.errors import InputError

mpmath.mp.dps = 50


def mp_log_softmax(row, temperature=1.0):
    """log softmax of one row at 50 significant digits (mpmath)."""
    scaled = [mpmath.mpf(float(v)) / mpmath.mpf(temperature) for v in row]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in scaled))
    return [v - lse for v in scaled]


CASES = [
    [3.0, 2.0, 1.0],
    [-1.0, 0.0, 2.5],
    [1e-8, -1e-8, 0.0],
    [30.0, -30.0, 0.5, 7.25],
    [700.0, 701.0, 699.5],
    [-745.0, -744.0, -750.0],
    [0.1] * 7,
]


@pytest.mark.parametrize("row", CASES)
@pytest.mark.parametrize("temperature", [1.0, 0.3, 4.0])
def test_softmax_and_log_softmax_match_mpmath(row, temperature):
    expected_log = [float(v) for v in mp_log_softmax(row, temperature)]
    expected = [float(mpmath.exp(v)) for v in mp_log_softmax(row, temperature)]
    np.testing.assert_allclose(log_softmax(row, temperature=temperature), expected_log, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(softmax(row, temperature=temperature), expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("row", CASES)
def test_logsumexp_matches_mpmath(row):
    expected = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row))
    assert logsumexp(row) == pytest.approx(float(expected), rel=1e-15)


def test_saturation_is_exact():
    np.testing.assert_array_equal(softmax([1000.0, 0.0, 0.0]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(log_softmax([1000.0, 0.0, 0.0]), [0.0, -1000.0, -1000.0])


def test_log_softmax_is_finite_where_log_of_softmax_is_not():
    with np.errstate(divide="ignore"):
        naive = np.log(softmax([1000.0, 1.0]))
    assert naive[1] == -np.inf
    np.testing.assert_array_equal(log_softmax([1000.0, 1.0]), [0.0, -999.0])


@pytest.mark.parametrize("temperature", [1e-6, 1e-12, 1e-300])
def test_tiny_temperature_gives_one_hot_without_nan(temperature):
    np.testing.assert_array_equal(softmax([1.0, 3.0, 2.0], temperature=temperature), [0.0, 1.0, 0.0])
    # A tie at the top shares the mass instead of producing NaN.
    np.testing.assert_array_equal(softmax([3.0, 3.0, 2.0], temperature=temperature), [0.5, 0.5, 0.0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_dtypes_are_kept(dtype):
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, -1.0]], dtype=dtype)
    for function in (softmax, log_softmax):
        assert function(x).dtype == dtype
    expected = softmax(x.astype(np.float64))
    tolerance = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-15}[dtype]
    np.testing.assert_allclose(softmax(x).astype(np.float64), expected, rtol=tolerance)


def test_float16_is_computed_in_float32():
    # 2000 equal logits: each p = 1/2000 = 5e-4; float16 sums would saturate.
    x = np.zeros(2000, dtype=np.float16)
    p = softmax(x)
    assert p.dtype == np.float16
    assert float(p[0]) == pytest.approx(5e-4, rel=1e-3)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.uint8])
def test_integers_and_booleans_become_float64(dtype):
    assert softmax(np.array([1, 0, 1], dtype=dtype)).dtype == np.float64


@pytest.mark.parametrize("bad", [np.array([1 + 2j, 0]), np.array(["a", "b"]), np.array([object(), 1], dtype=object)])
def test_non_real_dtypes_are_refused(bad):
    with pytest.raises(InputError):
        softmax(bad)


def test_masked_logit_has_probability_zero_and_log_minus_inf():
    np.testing.assert_array_equal(softmax([0.0, -np.inf]), [1.0, 0.0])
    np.testing.assert_array_equal(log_softmax([0.0, -np.inf]), [0.0, -np.inf])


def test_masked_rows_policies():
    x = np.array([[1.0, 2.0], [-np.inf, -np.inf], [0.0, -np.inf]])
    with pytest.raises(MaskedRowError, match="--masked-rows") as info:
        softmax(x, masked_rows="error")
    assert "row 1" in str(info.value)
    zero = softmax(x, masked_rows="zero")
    np.testing.assert_array_equal(zero[1], [0.0, 0.0])
    assert np.isnan(softmax(x, masked_rows="nan")[1]).all()
    np.testing.assert_array_equal(log_softmax(x, masked_rows="zero")[1], [-np.inf, -np.inf])
    np.testing.assert_array_equal(zero[2], [1.0, 0.0])


@pytest.mark.parametrize(
    ("x", "where"),
    [([1.0, np.nan, 2.0], "column 1"), ([[0.0, 1.0], [np.inf, 0.0]], "row 1, column 0")],
)
def test_nan_and_plus_inf_are_errors_naming_the_position(x, where):
    with pytest.raises(InputError) as info:
        softmax(np.array(x))
    assert info.value.where == where


def test_position_in_nd_arrays_names_the_row_tuple_and_the_class():
    x = np.zeros((2, 3, 4))
    x[1, 0, 2] = np.nan
    with pytest.raises(InputError) as info:
        softmax(x, axis=1)
    # With the class axis 1, the row is (1, 2) and the class is 0.
    assert info.value.where == "row (1, 2), column 0"


@pytest.mark.parametrize("temperature", [0.0, -1.0, np.inf, np.nan])
def test_bad_temperatures_are_refused(temperature):
    with pytest.raises(InputError, match="temperature"):
        softmax([1.0, 2.0], temperature=temperature)


def test_axis_moves_the_class_axis():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5))
    for axis in range(-3, 3):
        expected = np.exp(x - x.max(axis=axis, keepdims=True))
        expected /= expected.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(softmax(x, axis=axis), expected, rtol=1e-13)
    with pytest.raises(InputError, match="axis"):
        softmax(x, axis=3)


def test_blocked_equals_one_block(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 11)) * 20
    whole_p, whole_log = softmax(x), log_softmax(x)
    # 3 rows per block: blocks that do not divide 37 rows.
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 33)
    np.testing.assert_array_equal(softmax(x), whole_p)
    np.testing.assert_array_equal(log_softmax(x), whole_log)


def test_scipy_agrees_where_installed():
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 20)) * 10
    np.testing.assert_allclose(softmax(x), special.softmax(x, axis=-1), rtol=1e-13)
    np.testing.assert_allclose(log_softmax(x), special.log_softmax(x, axis=-1), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(logsumexp(x), special.logsumexp(x, axis=-1), rtol=1e-14)


def test_torch_agrees_where_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 20)).astype(np.float32) * 10
    expected = torch.softmax(torch.from_numpy(x), dim=-1).numpy()
    np.testing.assert_allclose(softmax(x), expected, rtol=2e-6, atol=1e-7)


def test_logsumexp_edge_cases_match_scipy_semantics():
    assert logsumexp([-np.inf, -np.inf]) == -np.inf
    assert logsumexp([np.inf, 0.0]) == np.inf
    assert logsumexp([0.0, -np.inf]) == 0.0
    assert logsumexp([1000.0, 1000.0]) == pytest.approx(1000 + np.log(2), rel=1e-15)


def test_entropy_matches_direct_formula():
    p = softmax([1.0, 2.0, 3.0])
    assert entropy([1.0, 2.0, 3.0]) == pytest.approx(-(p * np.log(p)).sum(), rel=1e-14)
    assert entropy([0.0, -np.inf]) == 0.0
    assert np.isnan(entropy(np.array([[-np.inf, -np.inf]]))[0])


finite_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 12)),
    elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(finite_rows)
def test_rows_sum_to_one(x):
    p = softmax(x)
    assert (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(finite_rows, st.floats(-1e3, 1e3))
def test_shift_invariance(x, shift):
    np.testing.assert_allclose(softmax(x + shift), softmax(x), rtol=1e-9, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(finite_rows)
def test_log_softmax_is_log_of_softmax_where_representable(x):
    p, log_p = softmax(x), log_softmax(x)
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(np.exp(log_p), p, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(log_p, x - logsumexp(x, keepdims=True), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("n_classes", [3, 100])
@pytest.mark.parametrize("function", [softmax, log_softmax])
def test_inputs_are_never_modified(function, n_classes, monkeypatch):
    # Regression: a one-row block of few classes was transposed in place.
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 1)
    x = np.random.default_rng(4).normal(size=(3, n_classes))
    before = x.copy()
    function(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("n_classes", [5, 63, 64, 300])
def test_threaded_results_are_bit_identical(n_classes, monkeypatch):
    x = np.random.default_rng(5).normal(size=(1001, n_classes)).astype(np.float32) * 8
    x[7, :] = -np.inf
    single = {f: f(x, masked_rows="zero") for f in (softmax, log_softmax)}
    monkeypatch.setattr(blocks, "PARALLEL_MIN_ELEMENTS", 1)
    for threads in (2, 3, 7):
        blocks.set_threads(threads)
        try:
            for f, expected in single.items():
                np.testing.assert_array_equal(f(x, masked_rows="zero"), expected)
        finally:
            blocks.set_threads(blocks.available_cores())


def test_threaded_error_names_the_first_bad_row(monkeypatch):
    x = np.zeros((1000, 8))
    x[900, 1] = np.nan
    x[100, 2] = np.inf
    monkeypatch.setattr(blocks, "PARALLEL_MIN_ELEMENTS", 1)
    blocks.set_threads(4)
    try:
        with pytest.raises(InputError) as info:
            softmax(x)
    finally:
        blocks.set_threads(blocks.available_cores())
    assert info.value.where == "row 100, column 2"


@pytest.mark.parametrize("n_classes", [2, 10, 63, 64, 65])
def test_narrow_and_wide_paths_agree_with_mpmath(n_classes):
    row = np.random.default_rng(n_classes).normal(size=n_classes) * 5
    expected = [float(v) for v in mp_log_softmax(row)]
    np.testing.assert_allclose(log_softmax(row), expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(softmax(row), np.exp(expected), rtol=1e-14)
