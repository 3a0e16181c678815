"""Attention's masked-row policy lives in the core: a query that can attend no key gives zeros, an error or NaN.

The reference is plain NumPy in float64: softmax over the attended keys, and
the unattended queries read straight off the boolean mask.
"""

from __future__ import annotations

import numpy as np
import pytest

from softmax_cli.core import MaskedRowError, attention
from softmax_cli.errors import InputError

RNG = np.random.default_rng(18)
Q, K, V = RNG.normal(size=(2, 4, 3)), RNG.normal(size=(2, 5, 3)), RNG.normal(size=(2, 5, 2))
MASK = RNG.random((2, 4, 5)) < 0.6
MASK[1, 2] = False  # batch 1, query 2 attends nothing
MASK[0, 0] = True


def _reference(q, k, v, mask):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = np.where(mask, scores, -np.inf)
    unattended = ~mask.any(axis=-1)
    shifted = scores - np.where(unattended, 0, scores.max(axis=-1))[..., None]
    e = np.exp(shifted)
    weights = e / np.where(unattended, 1, e.sum(axis=-1))[..., None]
    return weights @ v, weights, unattended


@pytest.mark.parametrize("return_weights", [False, True])
def test_nan_marks_exactly_the_queries_that_attend_nothing(return_weights):
    expected, expected_weights, unattended = _reference(Q, K, V, MASK)
    result = attention(Q, K, V, mask=MASK, masked_rows="nan", return_weights=return_weights)
    out = result[0] if return_weights else result
    np.testing.assert_array_equal(np.isnan(out).all(axis=-1), unattended)
    np.testing.assert_allclose(out[~unattended], expected[~unattended], rtol=1e-12, atol=1e-12)
    if return_weights:
        np.testing.assert_array_equal(np.isnan(result[1]).all(axis=-1), unattended)
        np.testing.assert_allclose(result[1][~unattended], expected_weights[~unattended], rtol=1e-12, atol=1e-15)


def test_zero_is_torchs_answer_and_the_default():
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(Q), torch.from_numpy(K), torch.from_numpy(V), attn_mask=torch.from_numpy(MASK)).numpy()
    np.testing.assert_allclose(attention(Q, K, V, mask=MASK), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(attention(Q, K, V, mask=MASK, masked_rows="zero"), attention(Q, K, V, mask=MASK))


def test_error_names_the_first_query_that_attends_nothing():
    with pytest.raises(MaskedRowError, match=r"can attend no key.*\(query \(1, 2\)\)"):
        attention(Q, K, V, mask=MASK, masked_rows="error")


def test_error_passes_when_every_query_attends_a_key():
    mask = MASK.copy()
    mask[1, 2, 0] = True
    expected, _, _ = _reference(Q, K, V, mask)
    np.testing.assert_allclose(attention(Q, K, V, mask=mask, masked_rows="error"), expected, rtol=1e-12, atol=1e-12)


def test_an_unknown_policy_is_refused_before_any_work():
    with pytest.raises(InputError, match="masked_rows must be one of error, zero, nan"):
        attention(Q, K, V, masked_rows="skip")
