"""`softmax attention` end to end, against a direct float64 reference written here."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest


def reference(q, k, v, mask=None, causal=False, lower_right=False, scale=None):
    """softmax(q kᵀ s + bias) v in float64; rows with nothing to attend give zeros (torch >= 2.5)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    length, keys = q.shape[-2], k.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) * (1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    hidden = np.zeros((length, keys), dtype=bool)
    if causal:
        offset = keys - length if lower_right else 0
        hidden = np.arange(keys)[None, :] > np.arange(length)[:, None] + offset
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype == bool:
            hidden = hidden | ~mask
        else:
            scores = scores + mask
    scores = np.where(hidden, -np.inf, scores)
    top = scores.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    weights = np.exp(scores - top)
    total = weights.sum(axis=-1, keepdims=True)
    weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    return weights @ v, weights


@pytest.fixture
def qkv(tmp_path):
    rng = np.random.default_rng(11)
    q = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
    k = rng.normal(size=(2, 3, 6, 4)).astype(np.float32)
    v = rng.normal(size=(2, 3, 6, 2)).astype(np.float32)
    paths = {}
    for name, array in zip("qkv", (q, k, v)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    return q, k, v, paths


def npz_of(completed) -> dict:
    assert completed.returncode == 0, completed.stderr
    with np.load(io.BytesIO(completed.stdout)) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("options", [[], ["--causal"], ["--causal", "--causal-align", "lower-right"],
                                     ["--scale", "0.3"]])
def test_three_npy_files_match_the_reference(softmax, qkv, options):
    q, k, v, paths = qkv
    result = npz_of(softmax("attention", paths["q"], paths["k"], paths["v"], *options, "--return-weights", "-f", "npz",
                        text=False))
    expected, weights = reference(q, k, v, causal="--causal" in options, lower_right="lower-right" in options,
                                  scale=0.3 if "--scale" in options else None)
    assert result["output"].dtype == np.float32
    np.testing.assert_allclose(result["output"], expected, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(result["weights"], weights, rtol=2e-5, atol=2e-6)


def test_one_npz_with_a_mask(softmax, qkv, tmp_path):
    q, k, v, _ = qkv
    mask = np.random.default_rng(2).random((5, 6)) > 0.4
    mask[1] = False  # a query with nothing to attend
    np.savez(tmp_path / "qkv.npz", q=q, k=k, v=v, mask=mask)
    result = npz_of(softmax("attention", tmp_path / "qkv.npz", "-f", "npz", text=False))
    expected, _ = reference(q, k, v, mask=mask)
    np.testing.assert_allclose(result["output"], expected, rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(result["output"][:, :, 1], 0)
    assert set(result) == {"output", "metadata"}  # metadata: what produced it (docs/ci.md)


def test_float_mask_combines_with_causal(softmax, qkv, tmp_path):
    q, k, v, paths = qkv
    bias = np.random.default_rng(3).normal(size=(1, 3, 5, 6)).astype(np.float32)
    np.save(tmp_path / "bias.npy", bias)
    result = npz_of(softmax("attention", paths["q"], paths["k"], paths["v"], "--mask", tmp_path / "bias.npy",
                        "--causal", "-f", "npz", text=False))
    expected, _ = reference(q, k, v, mask=bias.astype(np.float64), causal=True)
    np.testing.assert_allclose(result["output"], expected, rtol=2e-5, atol=2e-6)


def test_typed_numbers_and_json(softmax):
    completed = softmax("attention", "1 0; 0 1", "1 0; 0 1", "1 2; 3 4", "--causal", "--return-weights", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    expected, weights = reference([[1, 0], [0, 1]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], causal=True)
    np.testing.assert_allclose(data["output"], expected, rtol=1e-14)
    np.testing.assert_allclose(data["weights"], weights, rtol=1e-14)


def test_masked_rows_policies(softmax):
    args = ["attention", "1 0; 0 1; 1 1", "1 0; 0 1", "1 2; 3 4", "--causal", "--causal-align", "lower-right"]
    zero = softmax(*args, "-f", "json")
    assert json.loads(zero.stdout)["output"][0] == [0.0, 0.0]
    error = softmax(*args, "--masked-rows", "error")
    assert error.returncode == 2 and error.stderr.startswith("error: ") and "query 0" in error.stderr
    nan = softmax(*args, "--masked-rows", "nan", "-f", "json")
    assert json.loads(nan.stdout)["output"][0] == [None, None]


@pytest.mark.parametrize(
    ("shapes", "mask", "fragment"),
    [
        (((2, 4), (3, 5), (3, 2)), None, "(2, 4)"),  # feature sizes differ: names q's shape
        (((2, 4), (3, 4), (5, 2)), None, "(5, 2)"),  # keys differ between k and v
        (((2, 4), (3, 4), (3, 2)), np.ones((4, 4), dtype=bool), "(4, 4)"),  # mask does not broadcast
        (((2, 4), (3, 4), (3, 2)), np.ones((2, 3), dtype=np.int64), "int64"),  # neither bool nor float
    ],
)
def test_bad_shapes_and_masks_exit_2_naming_them(softmax, tmp_path, shapes, mask, fragment):
    paths = []
    for name, shape in zip("qkv", shapes):
        paths.append(tmp_path / f"{name}.npy")
        np.save(paths[-1], np.ones(shape, dtype=np.float32))
    extra = []
    if mask is not None:
        np.save(tmp_path / "mask.npy", mask)
        extra = ["--mask", tmp_path / "mask.npy"]
    completed = softmax("attention", *paths, *extra, "-f", "csv")
    assert completed.returncode == 2
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], completed.stderr
    assert completed.stdout == ""


def test_wrong_number_of_operands_is_a_usage_error(softmax, qkv):
    _, _, _, paths = qkv
    completed = softmax("attention", paths["q"], paths["k"])
    assert completed.returncode == 2 and "Q K V" in completed.stderr


def test_torch_agrees_where_installed(softmax, qkv):
    torch = pytest.importorskip("torch")
    q, k, v, paths = qkv
    result = npz_of(softmax("attention", paths["q"], paths["k"], paths["v"], "--causal", "-f", "npz", text=False))
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), is_causal=True).numpy()
    np.testing.assert_allclose(result["output"], expected, rtol=1e-5, atol=1e-6)
