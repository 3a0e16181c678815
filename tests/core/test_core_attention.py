"""Tests of ``softmax_cli.core.sdpa`` against an independent float64 reference and torch.

The reference below is the textbook formula written out directly (repeat the
key/value heads for GQA, scores, mask, softmax per row, matmul) with none of
the core's machinery: no blocks, no running max, no GQA reshaping.
"""

from __future__ import annotations

import importlib
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softmax_cli.core.sdpa import attention
from softmax_cli.errors import InputError

# The module itself, even once softmax_cli.core re-exports the function under its name.
attention_module = importlib.import_module("softmax_cli.core.sdpa")


def reference(q, k, v, mask=None, causal=False, causal_align="upper-left", scale=None):
    """Direct float64 attention: returns (output, weights)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    if q.ndim >= 3 and k.ndim >= 3 and k.shape[-3] not in (1, q.shape[-3]) and q.shape[-3] % k.shape[-3] == 0:
        # torch's enable_gqa: repeat_interleave the key/value heads.
        k = np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
        v = np.repeat(v, q.shape[-3] // v.shape[-3], axis=-3)
    length, keys = q.shape[-2], k.shape[-2]
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = scale * (q @ np.swapaxes(k, -1, -2))
    allowed = np.ones((length, keys), dtype=bool)
    if causal:
        shift = 0 if causal_align == "upper-left" else keys - length
        allowed = np.arange(keys)[None, :] <= np.arange(length)[:, None] + shift
    bias = np.where(allowed, 0.0, -np.inf)
    if mask is not None:
        mask = np.asarray(mask)
        bias = np.where(mask, bias, -np.inf) if mask.dtype == bool else bias + mask
    scores = scores + bias
    weights = np.zeros(scores.shape)
    for index in np.ndindex(scores.shape[:-1]):
        row = scores[index]
        if np.isfinite(row).any():
            e = np.exp(row - row.max())
            weights[index] = e / e.sum()
    v = np.broadcast_to(v, np.broadcast_shapes(weights.shape[:-2], v.shape[:-2]) + v.shape[-2:])
    return weights @ v, weights


def _arrays(seed, q_shape, k_shape, v_shape):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape) for shape in (q_shape, k_shape, v_shape))


def _bool_mask(seed, shape, p=0.7):
    return np.random.default_rng(seed).random(shape) < p


def _float_mask(seed, shape):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(shape) < 0.2, -np.inf, rng.standard_normal(shape))


def _fully_masked_bool():
    mask = _bool_mask(7, (2, 3, 5, 7))
    mask[0, 1, 2] = False
    mask[1, :, 4] = False
    return mask


def _fully_masked_float():
    mask = _float_mask(8, (5, 7))
    mask[3] = -np.inf
    return mask


# name -> (q, k, v, keyword arguments of attention)
CASES = {
    "plain": (*_arrays(0, (5, 4), (7, 4), (7, 3)), {}),
    "single_key": (*_arrays(1, (3, 4), (1, 4), (1, 2)), {}),
    "batched_heads": (*_arrays(2, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6)), {}),
    "broadcast_kv": (*_arrays(3, (2, 3, 5, 4), (3, 7, 4), (1, 7, 2)), {}),
    "gqa": (*_arrays(4, (2, 6, 5, 4), (2, 2, 7, 4), (2, 2, 7, 3)), {}),
    "gqa_head_mask": (*_arrays(5, (2, 6, 5, 4), (2, 2, 7, 4), (2, 2, 7, 3)),
                      {"mask": _bool_mask(5, (6, 5, 7)), "causal": True}),
    "gqa_one_kv_head": (*_arrays(6, (6, 5, 4), (1, 7, 4), (1, 7, 3)), {"mask": _float_mask(6, (6, 1, 7))}),
    "bool_mask": (*_arrays(7, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3)), {"mask": _bool_mask(7, (2, 3, 5, 7))}),
    "float_mask": (*_arrays(8, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3)), {"mask": _float_mask(8, (2, 3, 5, 7))}),
    "broadcast_mask_ls": (*_arrays(9, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3)), {"mask": _bool_mask(9, (5, 7))}),
    "broadcast_mask_keys": (*_arrays(10, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3)),
                            {"mask": _float_mask(10, (3, 1, 7))}),
    "broadcast_mask_rows": (*_arrays(11, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3)),
                            {"mask": _bool_mask(11, (2, 1, 5, 1), p=0.6)}),
    "causal_square": (*_arrays(12, (2, 9, 4), (2, 9, 4), (2, 9, 3)), {"causal": True}),
    "causal_short": (*_arrays(13, (2, 4, 4), (2, 9, 4), (2, 9, 3)), {"causal": True}),
    "causal_tall": (*_arrays(14, (2, 9, 4), (2, 4, 4), (2, 4, 3)), {"causal": True}),
    "lower_right_short": (*_arrays(15, (2, 4, 4), (2, 9, 4), (2, 9, 3)),
                          {"causal": True, "causal_align": "lower-right"}),
    "lower_right_tall": (*_arrays(16, (2, 9, 4), (2, 4, 4), (2, 4, 3)),
                         {"causal": True, "causal_align": "lower-right"}),
    "causal_and_bool_mask": (*_arrays(17, (2, 3, 8, 4), (2, 3, 8, 4), (2, 3, 8, 3)),
                             {"mask": _bool_mask(17, (2, 3, 8, 8)), "causal": True}),
    "causal_and_float_mask": (*_arrays(18, (2, 6, 4), (2, 9, 4), (2, 9, 3)),
                              {"mask": _float_mask(18, (6, 9)), "causal": True, "causal_align": "lower-right"}),
    "custom_scale": (*_arrays(19, (2, 5, 4), (2, 7, 4), (2, 7, 3)), {"scale": 0.3}),
    "negative_scale": (*_arrays(20, (2, 5, 4), (2, 7, 4), (2, 7, 3)), {"scale": -2.0}),
    "fully_masked_bool_rows": (*_arrays(21, (2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3)),
                               {"mask": _fully_masked_bool()}),
    "fully_masked_float_rows": (*_arrays(22, (5, 4), (7, 4), (7, 3)), {"mask": _fully_masked_float()}),
    # Issue 10: 2-D q and k with a batched v and a mask was a broadcasting traceback.
    "batched_value_mask_ls": (*_arrays(23, (5, 4), (7, 4), (2, 1, 7, 3)), {"mask": _bool_mask(23, (5, 7))}),
    "batched_value_mask_varies": (*_arrays(24, (5, 4), (7, 4), (2, 1, 7, 3)),
                                  {"mask": _float_mask(24, (2, 1, 5, 7))}),
}


@pytest.mark.parametrize("name", CASES)
def test_output_matches_reference(name):
    q, k, v, kwargs = CASES[name]
    expected, _ = reference(q, k, v, **kwargs)
    np.testing.assert_allclose(attention(q, k, v, **kwargs), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_weights_match_reference(name):
    q, k, v, kwargs = CASES[name]
    expected_out, expected_weights = reference(q, k, v, **kwargs)
    # The weights come for every output row, V's batch dimensions included.
    expected_weights = np.broadcast_to(expected_weights, expected_out.shape[:-1] + expected_weights.shape[-1:])
    out, weights = attention(q, k, v, return_weights=True, **kwargs)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-12)
    assert weights.shape == out.shape[:-1] + (k.shape[-2],)


BLOCK_SIZES = [1, 2, 3, 4, 7, 9, 64, (1, 5), (4, 3), (5, 2), (9, 4)]


@pytest.mark.parametrize("block_size", BLOCK_SIZES, ids=str)
@pytest.mark.parametrize("name", CASES)
def test_online_equals_direct(name, block_size):
    # Block sizes 1..9 against L, S in 1..9: some divide them, some do not,
    # and with causal some key blocks are skipped entirely.
    q, k, v, kwargs = CASES[name]
    direct, _ = attention(q, k, v, return_weights=True, **kwargs)
    online = attention(q, k, v, block_size=block_size, **kwargs)
    np.testing.assert_allclose(online, direct, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(0, 12),
    keys=st.integers(0, 12),
    heads=st.sampled_from([(1, 1), (2, 2), (4, 2), (6, 3), (3, 1)]),
    causal=st.sampled_from([None, "upper-left", "lower-right"]),
    mask_kind=st.sampled_from([None, "bool", "float"]),
    query_block=st.integers(1, 13),
    key_block=st.integers(1, 13),
    seed=st.integers(0, 2**16),
)
def test_online_equals_reference_for_any_shape_and_blocks(length, keys, heads, causal, mask_kind,
                                                          query_block, key_block, seed):
    (hq, hkv), rng = heads, np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(shape) for shape in ((hq, length, 3), (hkv, keys, 3), (hkv, keys, 2)))
    kwargs = {"causal": causal is not None, "causal_align": causal or "upper-left"}
    if mask_kind == "bool":
        kwargs["mask"] = rng.random((hq, length, keys)) < 0.6
    elif mask_kind == "float":
        kwargs["mask"] = np.where(rng.random((length, keys)) < 0.3, -np.inf, rng.standard_normal((length, keys)))
    expected, _ = reference(q, k, v, **kwargs)
    online = attention(q, k, v, block_size=(query_block, key_block), **kwargs)
    np.testing.assert_allclose(online, expected, rtol=1e-12, atol=1e-12)


def _torch_call(torch, q, k, v, mask=None, causal=False, causal_align="upper-left", scale=None):
    """torch's SDPA for a case; mask + causal (which torch refuses) is combined by hand."""
    from torch.nn.attention.bias import causal_lower_right

    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in (q, k, v)]
    gqa = q.ndim >= 3 and k.ndim >= 3 and k.shape[-3] not in (1, q.shape[-3])
    length, keys = q.shape[-2], k.shape[-2]
    attn_mask, is_causal = None, False
    if causal and mask is None:
        if causal_align == "upper-left":
            is_causal = True
        else:
            with warnings.catch_warnings():
                # It warns of NaN for L > S; torch >= 2.5 gives zero rows instead.
                warnings.simplefilter("ignore", UserWarning)
                attn_mask = causal_lower_right(length, keys)
    elif mask is not None:
        attn_mask = torch.from_numpy(np.asarray(mask))
        if causal:
            shift = 0 if causal_align == "upper-left" else keys - length
            allowed = torch.from_numpy(np.arange(keys)[None, :] <= np.arange(length)[:, None] + shift)
            if attn_mask.dtype == torch.bool:
                attn_mask = attn_mask & allowed
            else:
                attn_mask = attn_mask + torch.where(allowed, 0.0, -torch.inf).to(attn_mask.dtype)
    result = torch.nn.functional.scaled_dot_product_attention(
        *t, attn_mask=attn_mask, is_causal=is_causal, scale=scale, enable_gqa=gqa
    )
    return result.numpy()


@pytest.mark.parametrize("name", CASES)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    q, k, v, kwargs = CASES[name]
    if name == "broadcast_kv":
        # torch's matmul broadcasts too, but SDPA insists on equal batch dims.
        k, v = (np.broadcast_to(a, q.shape[:-2] + a.shape[-2:]) for a in (k, v))
    if name.startswith("batched_value"):
        q, k = (np.broadcast_to(a, v.shape[:-2] + a.shape[-2:]) for a in (q, k))
    expected = _torch_call(torch, q, k, v, **kwargs)
    np.testing.assert_allclose(attention(q, k, v, **kwargs), expected, rtol=1e-10, atol=1e-12)


def test_gqa_is_repeat_interleave():
    # Query head h uses key/value head h // (Hq / Hkv): heads 0-2 see kv 0, 3-5 see kv 1.
    q, k, v = _arrays(30, (6, 5, 4), (2, 7, 4), (2, 7, 3))
    out = attention(q, k, v)
    for head in range(6):
        np.testing.assert_allclose(out[head], attention(q[head], k[head // 3], v[head // 3]), rtol=1e-12)


def test_gqa_disabled_refuses_unequal_heads():
    q, k, v = _arrays(31, (6, 5, 4), (2, 7, 4), (2, 7, 3))
    with pytest.raises(InputError, match=r"\(6, 5, 4\).*\(2, 7, 4\)"):
        attention(q, k, v, enable_gqa=False)


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v, kwargs = CASES["lower_right_tall"]
    out, weights = attention(q, k, v, return_weights=True, **kwargs)
    # With L = 9 > S = 4 lower-right, query i sees keys j <= i - 5: rows 0-4 see none.
    assert not np.isnan(out).any()
    assert (out[:, :5] == 0).all() and (weights[:, :5] == 0).all()
    assert (attention(q, k, v, block_size=2, **kwargs)[:, :5] == 0).all()
    np.testing.assert_allclose(weights[:, 5:].sum(axis=-1), 1, rtol=1e-12)


def test_default_scale_is_inverse_sqrt_features():
    q, k, v = _arrays(32, (5, 16), (7, 16), (7, 3))
    np.testing.assert_allclose(attention(q, k, v), attention(q, k, v, scale=0.25), rtol=1e-15)


def test_zero_keys_give_zero_output():
    q, k, v = _arrays(33, (2, 5, 4), (2, 0, 4), (2, 0, 3))
    assert (attention(q, k, v) == 0).all() and attention(q, k, v).shape == (2, 5, 3)
    out, weights = attention(q, k, v, return_weights=True)
    assert out.shape == (2, 5, 3) and (out == 0).all() and weights.shape == (2, 5, 0)


def test_zero_queries_give_empty_output():
    q, k, v = _arrays(34, (2, 0, 4), (2, 7, 4), (2, 7, 3))
    assert attention(q, k, v, causal=True).shape == (2, 0, 3)


def test_regression_first_block_hidden_then_very_negative_scores():
    # Bug pinned: a row whose first key block is all hidden must still be
    # shifted by its true max later; shifting by a stand-in 0 made e^-1000
    # underflow and gave zeros instead of the mean of the later values.
    q = np.zeros((1, 4))
    k = np.zeros((8, 4))
    v = np.arange(16.0).reshape(8, 2)
    mask = np.array([[-np.inf] * 4 + [-1000.0] * 4])
    np.testing.assert_allclose(attention(q, k, v, mask=mask, block_size=4), [v[4:].mean(axis=0)], rtol=1e-12)


def test_saturated_scores_do_not_overflow():
    # Scores of 1e4 would overflow exp without the max shift; the weights are
    # softmax([1e4, 9900, 0]) = [1, e^-100, e^-10000 = 0] to double precision.
    q = np.array([[100.0, 0.0]])
    k = np.array([[100.0, 0.0], [99.0, 0.0], [0.0, 0.0]])
    v = np.eye(3)
    for block_size in (1, 2, 3):
        out = attention(q, k, v, scale=1.0, block_size=block_size)
        np.testing.assert_allclose(out, [[1.0, np.exp(-100.0), 0.0]], rtol=1e-12, atol=0)


def test_online_path_never_holds_the_score_matrix():
    # numpy reports its allocations to tracemalloc: the (L, S) float64 scores
    # would take 32 MiB; blocks of 64 x 128 take 64 KiB each.
    q, k, v = _arrays(35, (2048, 16), (2048, 16), (2048, 16))
    tracemalloc.start()
    try:
        attention(q, k, v, causal=True, block_size=(64, 128))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, peak


def test_default_blocks_bound_memory_for_many_heads():
    # 64 heads of 1024 x 1024 scores would be 256 MiB of float32.
    q, k, v = (np.ones((64, 1024, 8), dtype=np.float32) for _ in range(3))
    tracemalloc.start()
    try:
        attention(q, k, v)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 48 * 2**20, peak


def test_causal_skips_hidden_key_blocks(monkeypatch):
    visited = []
    original = attention_module._hide

    def spy(scores, ops, rows, cols):
        visited.append((rows, cols))
        return original(scores, ops, rows, cols)

    monkeypatch.setattr(attention_module, "_hide", spy)
    for align, shift in (("upper-left", 0), ("lower-right", 12 - 10)):
        visited.clear()
        q, k, v = _arrays(36, (10, 4), (12, 4), (12, 3))
        attention(q, k, v, causal=True, causal_align=align, block_size=(3, 2))
        # Every visited key block holds a key that some row of the query block sees...
        assert all(cols.start <= rows.stop - 1 + shift for rows, cols in visited)
        # ...and every visible (row block, key block) pair is visited exactly once.
        expected = {(r, c) for r in range(0, 10, 3) for c in range(0, 12, 2) if c <= min(r + 2, 9) + shift}
        assert sorted((rows.start, cols.start) for rows, cols in visited) == sorted(expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("return_weights", [False, True])
def test_float_dtypes_are_kept(dtype, return_weights):
    q, k, v, kwargs = CASES["causal_and_bool_mask"]
    q, k, v = (a.astype(dtype) for a in (q, k, v))
    result = attention(q, k, v, return_weights=return_weights, **kwargs)
    out = result[0] if return_weights else result
    assert out.dtype == dtype
    if return_weights:
        assert result[1].dtype == dtype
    # float16 is computed in float32, so only its final rounding is lost.
    tol = {np.float16: 2e-3, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    expected, _ = reference(q, k, v, **kwargs)
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=tol, atol=tol)


def test_float16_matches_float32_computation():
    q, k, v, kwargs = CASES["batched_heads"]
    half = [a.astype(np.float16) for a in (q, k, v)]
    expected = attention(*(a.astype(np.float32) for a in half), **kwargs).astype(np.float16)
    np.testing.assert_array_equal(attention(*half, **kwargs), expected)


def test_integers_become_float64():
    q = np.arange(6).reshape(3, 2)
    out = attention(q, q, q)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, reference(q, q, q)[0], rtol=1e-12)


def test_mixed_precision_uses_the_wider_dtype():
    q, k, v = _arrays(37, (5, 4), (7, 4), (7, 3))
    assert attention(q.astype(np.float32), k, v).dtype == np.float64


def test_docstring_example():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    v = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = attention(q, q, v, causal=True)
    # Row 1 weights: softmax([0, 1/sqrt(2)]).
    w = 1 / (1 + np.exp(1 / np.sqrt(2)))
    np.testing.assert_allclose(out, [[1.0, 2.0], [w * 1 + (1 - w) * 3, w * 2 + (1 - w) * 4]], rtol=1e-15)


# ---- every validation error is an InputError naming what is wrong ----

Q, K, V = _arrays(40, (2, 5, 4), (2, 7, 4), (2, 7, 3))


def _case(name, q, k, v, kwargs, message):
    return pytest.param(q, k, v, kwargs, message, id=name)


THREE_HEADS = np.stack([K[0]] * 3), np.stack([V[0]] * 3)


@pytest.mark.parametrize(
    "q, k, v, kwargs, message",
    [
        _case("q_1d", Q[0, 0], K, V, {}, r"q must have at least 2 dimensions.*\(4,\)"),
        _case("features", Q, K[:, :, :3], V, {}, r"q \(2, 5, 4\) and k \(2, 7, 3\) must have the same feature"),
        _case("keys", Q, K, V[:, :6], {}, r"k \(2, 7, 4\) and v \(2, 6, 3\) must have the same number of keys"),
        _case("batch", Q, *THREE_HEADS, {}, r"q \(2, 5, 4\), k \(3, 7, 4\) and v \(3, 7, 3\) do not broadcast"),
        _case("gqa_not_multiple", np.zeros((2, 5, 5, 4)), np.zeros((2, 2, 7, 4)), np.zeros((2, 2, 7, 3)), {},
              r"do not broadcast"),
        _case("mask_ls", Q, K, V, {"mask": np.ones((5, 6), bool)},
              r"mask of shape \(5, 6\) does not broadcast.*\(2, 5, 7\)"),
        _case("mask_batch", Q, K, V, {"mask": np.ones((3, 5, 7), bool)},
              r"mask of shape \(3, 5, 7\) does not broadcast.*\(2, 5, 7\)"),
        _case("mask_enlarges", Q[0], K[0], V[0], {"mask": np.ones((2, 5, 7), bool)},
              r"mask of shape \(2, 5, 7\) does not broadcast"),
        _case("mask_int", Q, K, V, {"mask": np.ones((5, 7), np.int64)}, r"mask must be boolean .* got dtype int64"),
        _case("mask_complex", Q, K, V, {"mask": np.ones((5, 7), complex)},
              r"mask must be boolean .* got dtype complex128"),
        _case("mask_nan", Q, K, V, {"mask": np.full((5, 7), np.nan)}, r"float mask holds NaN or \+inf"),
        _case("mask_inf", Q, K, V, {"mask": np.full((5, 7), np.inf)}, r"float mask holds NaN or \+inf"),
        _case("q_complex", Q.astype(complex), K, V, {}, r"q has dtype complex128"),
        _case("k_string", Q, K.astype(str), V, {}, r"k has dtype <U"),
        _case("scale_inf", Q, K, V, {"scale": np.inf}, r"scale must be finite"),
        _case("scale_nan", Q, K, V, {"scale": np.nan}, r"scale must be finite"),
        _case("causal_align", Q, K, V, {"causal": True, "causal_align": "diagonal"}, r"causal_align must be one of"),
        _case("block_zero", Q, K, V, {"block_size": 0}, r"block_size must be a positive integer"),
        _case("block_negative", Q, K, V, {"block_size": -3}, r"block_size must be a positive integer"),
        _case("block_float", Q, K, V, {"block_size": 2.5}, r"block_size must be a positive integer"),
        _case("block_triple", Q, K, V, {"block_size": (2, 3, 4)}, r"block_size must be a positive integer"),
    ],
)
def test_validation_errors_are_input_errors(q, k, v, kwargs, message):
    with pytest.raises(InputError, match=message):
        attention(q, k, v, **kwargs)


@pytest.mark.parametrize("name, index", [("q", 0), ("k", 1), ("v", 2)])
@pytest.mark.parametrize("bad, label", [(np.nan, "NaN"), (np.inf, r"\+inf"), (-np.inf, "-inf")])
def test_non_finite_inputs_name_the_array_and_position(name, index, bad, label):
    arrays = [Q.copy(), K.copy(), V.copy()]
    arrays[index][1, 2, 3 if index < 2 else 1] = bad
    with pytest.raises(InputError, match=rf"{label} in {name}\b") as info:
        attention(*arrays)
    assert info.value.where == f"{name} index (1, 2, {3 if index < 2 else 1})"


def test_threaded_query_blocks_are_bit_identical(monkeypatch):
    from softmax_cli.core import blocks

    rng = np.random.default_rng(21)
    q, k, v = rng.normal(size=(2, 70, 8)), rng.normal(size=(2, 90, 8)), rng.normal(size=(2, 90, 5))
    single = attention(q, k, v, causal=True, block_size=(16, 32))
    monkeypatch.setattr(attention_module, "PARALLEL_MIN_ELEMENTS", 1)
    try:
        for threads in (2, 3):
            blocks.set_threads(threads)
            np.testing.assert_array_equal(attention(q, k, v, causal=True, block_size=(16, 32)), single)
    finally:
        blocks.set_threads(blocks.available_cores())


@pytest.mark.parametrize("return_weights", [False, True])
def test_scores_beyond_the_float_range_are_refused(return_weights):
    # Issue 10's fuzz: q·kᵀ of 1.6e289 squared is inf, and inf - inf gave NaN weights or, online, a wrong row.
    q = np.array([[1.5707066227491946e289, -4.0], [4.0, -46.9]])
    with pytest.raises(InputError, match="too large"):
        attention(q, q, q, return_weights=return_weights)


def test_scores_near_the_float_range_are_computed():
    # E·max|q|·max|k|·scale just below float64's largest: accepted, and one-hot on the largest score.
    q = np.array([[1e150, 0.0], [0.0, 1e150]])
    out = attention(q, q, np.eye(2), scale=1e-2)
    np.testing.assert_array_equal(out, np.eye(2))
