"""Exactness past the peers: log-sum-exp that keeps the small terms, float64 probabilities to a few ULP.

References are computed with mpmath at 60 significant digits from the float
inputs, independently of the code under test.

* scipy gh-18295: after the shift by the row maximum the sum is ``1 + s``; with
  ``s`` below half an ULP of 1, ``log(1 + s)`` rounds to 0, so a confident,
  correct row (the largest logit dominating by 20-700) lost all its loss.
  Taking ``log1p`` of the terms other than the maximum keeps it.
* The rounding of ``x - max`` is amplified by ``exp`` (an absolute error of
  ``|x - max| * 2**-53`` is a relative error in ``exp``): 211 ULP on rows
  mixing scales 0.1...1000, as scipy (211) and torch (210). ``exact=True``
  carries the subtraction's rounding error.
"""

from __future__ import annotations

import io
import json

import mpmath
import numpy as np
import pytest
from conftest import assert_one_error_line

from softmax_cli import core
from softmax_cli.core import blocks

mp = mpmath.mp.clone()
mp.dps = 60
inf = np.inf

# log(1 + e^-40), the loss of `softmax loss 0 -40 --labels 0` (mpmath, 60 digits).
LOSS_0_40 = 4.248354255291589e-18


def _max_and_rest(row):
    """The row's maximum and ``log1p`` of the sum of the other terms after the shift by it."""
    values = sorted((mp.mpf(float(x)) for x in row if x != -inf), reverse=True)
    return values[0], mp.log1p(mp.fsum(mp.exp(v - values[0]) for v in values[1:]))


def mp_lse(row) -> mpmath.mpf:
    top, rest = _max_and_rest(row)
    return top + rest


def mp_log_softmax(row) -> list:
    # (x - m) - log1p(rest), not x - lse: 60 digits cannot hold 700 + e^-700.
    top, rest = _max_and_rest(row)
    return [(mp.mpf(float(x)) - top) - rest if x != -inf else mp.mpf("-inf") for x in row]


def mp_softmax(row) -> list:
    return [mp.exp(v) if v != mp.mpf("-inf") else mp.mpf(0) for v in mp_log_softmax(row)]


def ulps(got: np.ndarray, exact: list, dtype=np.float64) -> np.ndarray:
    """Distance of each result from the exact value, in ULP of the result's dtype at the exact value."""
    distances = []
    for value, reference in zip(np.asarray(got, dtype=np.float64).ravel(), exact):
        if not mp.isfinite(reference):
            distances.append(0.0 if mp.mpf(float(value)) == reference else inf)
            continue
        spacing = np.spacing(np.abs(np.array(float(reference), dtype=dtype)))
        distances.append(float(abs(mp.mpf(float(value)) - reference) / mp.mpf(float(spacing))))
    return np.array(distances)


# Rows whose largest logit dominates the others by 20-700: confident, correct predictions.
DOMINATED = [
    [0.0, -40.0],
    [0.0, -20.0],
    [3.5, -96.5],
    [0.0, -300.0, -310.0],
    [700.0, 0.0],
    [0.0, 0.0, -40.0],  # a tie at the maximum: only one of the two is the "1" of 1 + s
    [0.0, -inf, -40.0],  # a masked class
    [2.0, -30.0, -25.0, -60.0, -inf],
]


# --------------------------------------------------------------------------- 1. log-sum-exp (gh-18295)


@pytest.mark.parametrize("row", DOMINATED)
def test_logsumexp_keeps_the_small_terms(row):
    assert ulps(core.logsumexp(row), [mp_lse(row)]).max() <= 1


@pytest.mark.parametrize("row", DOMINATED)
def test_log_softmax_keeps_the_small_terms(row):
    got = core.log_softmax(row)
    assert ulps(got, mp_log_softmax(row)).max() <= 2, got


def test_log_softmax_of_the_gh_18295_row():
    assert core.log_softmax([0.0, -40.0]).tolist() == [-LOSS_0_40, -40.0]


@pytest.mark.parametrize("classes", [3, 100])  # the narrow (< 64 classes) and the wide kernel
def test_log_softmax_keeps_the_small_terms_in_both_kernels(classes):
    # Whole numbers, so that x - max is exact: the rounding of the shift (amplified by exp up to
    # |x - max| * 2**-53 relative in the small terms) is part 2's subject, not log1p's.
    rng = np.random.default_rng(7)
    rows = rng.integers(-720, -20, size=(6, classes)).astype(np.float64)
    rows[np.arange(6), rng.integers(0, classes, 6)] = rng.integers(-1, 2, 6)
    rows[0, :2] = rows[0].max()  # a tie at the maximum
    rows[1, -1] = -inf
    got = core.log_softmax(rows)
    exact = [v for row in rows for v in mp_log_softmax(row)]
    assert ulps(got, exact).max() <= 2


@pytest.mark.parametrize("row", DOMINATED)
def test_cross_entropy_of_the_correct_label_keeps_the_small_terms(row):
    label = int(np.argmax(row))
    expected = -mp_log_softmax(row)[label]
    per_sample = core.cross_entropy([row], [label], reduction="none")
    assert ulps(per_sample, [expected]).max() <= 2
    # The same row given as a one-hot target distribution.
    onehot = np.eye(len(row))[label][None, :]
    assert ulps(core.cross_entropy([row], onehot, reduction="none"), [expected]).max() <= 2


@pytest.mark.parametrize("row", [r for r in DOMINATED if -inf not in r])
def test_label_smoothing_term_keeps_the_small_terms(row):
    eps, classes = 0.1, len(row)
    label = int(np.argmax(row))
    log_p = mp_log_softmax(row)
    expected = -(1 - mp.mpf(eps)) * log_p[label] - mp.mpf(eps) / classes * mp.fsum(log_p)
    got = core.cross_entropy([row], [label], label_smoothing=eps, reduction="none")
    assert ulps(got, [expected]).max() <= 4


def test_nll_and_sweep_keep_the_small_terms():
    rows = np.array([[0.0, -40.0], [5.0, -35.0, -50.0]], dtype=object)
    logits = np.array([[0.0, -40.0, -inf], [5.0, -35.0, -50.0]])
    expected = (-mp_log_softmax(rows[0])[0] - mp_log_softmax(rows[1])[0]) / 2
    assert ulps(core.nll(logits, [0, 0]), [expected]).max() <= 2
    assert ulps(core.temperature_sweep(logits, [1.0], labels=[0, 0])["nll"], [expected]).max() <= 2


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 2), (np.float16, 1)])
def test_low_precision_keeps_the_small_terms(dtype, tolerance):
    row = np.array([0.0, -12.0, -15.0], dtype=dtype)  # float16 holds e^-12 only as a subnormal
    exact = mp_log_softmax(row)
    got = core.log_softmax(row)
    assert got.dtype == dtype
    assert got[0] < 0
    assert ulps(got, exact, dtype).max() <= tolerance
    loss = core.cross_entropy(row[None, :], [0], reduction="none")
    assert ulps(loss, [-exact[0]], dtype).max() <= tolerance


def test_masked_rows_are_unchanged_by_the_log1p():
    rows = np.array([[0.0, -40.0], [-inf, -inf]])
    assert core.log_softmax(rows, masked_rows="zero")[1].tolist() == [-inf, -inf]
    assert np.isnan(core.log_softmax(rows, masked_rows="nan")[1]).all()
    assert np.isneginf(core.logsumexp(rows)[1])
    per_sample = core.cross_entropy(rows, [0, 1], reduction="none")
    assert per_sample[0] == LOSS_0_40 and np.isnan(per_sample[1])
    assert core.cross_entropy(rows, [0, 1], reduction="none", masked_rows="zero")[1] == inf


def test_dominated_rows_are_bit_identical_across_thread_counts(monkeypatch):
    rng = np.random.default_rng(3)
    rows = rng.uniform(-700, -20, size=(1200, 900))
    rows[np.arange(1200), rng.integers(0, 900, 1200)] = 0.0
    monkeypatch.setattr(blocks, "PARALLEL_MIN_ELEMENTS", 1)
    results = {}
    try:
        for threads in (1, 2, 3):
            blocks.set_threads(threads)
            results[threads] = (core.log_softmax(rows), core.softmax(rows, exact=True))
    finally:
        blocks.set_threads(blocks.available_cores())
    for threads in (2, 3):
        for got, single in zip(results[threads], results[1]):
            np.testing.assert_array_equal(got, single)
    assert (results[1][0].max(axis=1) < 0).all()  # the dominant class keeps its tiny loss


def test_cli_loss_of_a_confident_correct_row(softmax):
    completed = softmax("loss", "0", "-40", "--labels", "0", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["loss"] == LOSS_0_40


def test_cli_log_probs_of_a_confident_row(softmax):
    completed = softmax("probs", "--log", "0", "-40", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["log_probs"] == [-LOSS_0_40, -40.0]


# --------------------------------------------------------------------------- 2. float64 probabilities to a few ULP


def mixed_scale_rows(count: int, classes: int, seed: int) -> np.ndarray:
    """Logits of both signs with magnitudes spread log-uniformly over 0.1...1000."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=(count, classes)) * 10 ** rng.uniform(-1, 3, size=(count, classes))


SATURATED = np.array([
    [1000.0, 0.0, 0.0, -1000.0],
    [1000.0, 999.9, 999.3, 0.1],
    [745.1, 0.3, -0.7, 1.1],
    [-3.3, 708.4, 707.9, 12.5],
])


@pytest.mark.parametrize("classes", [7, 200])  # the narrow and the wide kernel
def test_exact_float64_probabilities_within_4_ulp(classes):
    rows = np.concatenate([mixed_scale_rows(12, classes, seed=classes), np.pad(SATURATED, ((0, 0), (0, classes - 4)),
                                                                               constant_values=-inf)])
    got = core.softmax(rows, exact=True)
    exact = [v for row in rows for v in mp_softmax(row)]
    assert ulps(got, exact).max() <= 4


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_exact_low_precision_probabilities_within_1_ulp_of_the_correctly_rounded_value(dtype):
    rows = np.concatenate([mixed_scale_rows(12, 40, seed=5), np.pad(SATURATED, ((0, 0), (0, 36)))]).astype(dtype)
    got = core.softmax(rows, exact=True)
    assert got.dtype == dtype
    exact = [v for row in rows for v in mp_softmax(row)]
    # Within one ULP of the exact value means at most one ULP from its correct rounding.
    assert ulps(got, exact, dtype).max() < 1


def test_exact_keeps_the_other_promises():
    rows = np.array([[3.0, 2.0, 1.0], [-inf, -inf, -inf], [0.0, -inf, 5.0]])
    got = core.softmax(rows, exact=True, masked_rows="zero")
    np.testing.assert_array_equal(got[1], 0.0)
    assert got[2, 1] == 0.0
    np.testing.assert_allclose(got.sum(axis=1)[[0, 2]], 1.0, rtol=4e-16)
    assert np.isnan(core.softmax(rows, exact=True)[1]).all()
    np.testing.assert_allclose(core.softmax(rows[0], temperature=0.5, exact=True),
                               core.softmax(rows[0], temperature=0.5), rtol=1e-15)


# --------------------------------------------------------------------------- 2. through the command line: --exact


def mixed_scale_file(tmp_path, dtype, classes: int = 200) -> tuple[str, np.ndarray]:
    rows = np.concatenate([mixed_scale_rows(12, classes, seed=11),
                           np.pad(SATURATED, ((0, 0), (0, classes - 4)), constant_values=-inf)]).astype(dtype)
    np.save(tmp_path / "mixed.npy", rows)
    return str(tmp_path / "mixed.npy"), rows


@pytest.mark.parametrize("route", ["streamed", "stdin"])  # NpyRows blocks to a file, and one in-memory block
def test_cli_exact_float64_probabilities_within_4_ulp(softmax, tmp_path, route):
    path, rows = mixed_scale_file(tmp_path, np.float64)
    exact = [v for row in rows for v in mp_softmax(row)]
    out = tmp_path / "p.npy"
    if route == "streamed":
        completed = softmax("probs", path, "--exact", "-o", out, env={"SOFTMAX_BLOCK_BYTES": str(5 * 200 * 8)})
    else:
        completed = softmax("probs", "-", "--exact", "-o", out, input=(tmp_path / "mixed.npy").read_bytes())
    assert completed.returncode == 0, completed.stderr
    got = np.load(out)
    assert got.dtype == np.float64
    assert ulps(got, exact).max() <= 4
    # Without --exact the same rows are hundreds of ULP off, as scipy and torch: the flag is what buys it.
    assert softmax("probs", path, "-o", out, "--force").returncode == 0
    assert ulps(np.load(out), exact).max() > 4


def test_cli_exact_float32_probabilities_within_1_ulp_of_the_correctly_rounded_value(softmax, tmp_path):
    path, rows = mixed_scale_file(tmp_path, np.float32, classes=40)
    completed = softmax("probs", path, "--exact", "-f", "npy", text=False)
    assert completed.returncode == 0, completed.stderr
    got = np.load(io.BytesIO(completed.stdout))
    assert got.dtype == np.float32
    assert ulps(got, [v for row in rows for v in mp_softmax(row)], np.float32).max() < 1


def test_cli_exact_refuses_log(softmax):
    assert_one_error_line(softmax("probs", "--exact", "--log", "1", "2"), "--exact applies to probabilities")
