"""compare's summary on language-model shaped data: llama.cpp's statistics, and padding that never counts.

The reference for llama.cpp's report is tests/llama_reference.py, a float64
reimplementation of perplexity.cpp's formulas (never softmax_cli.core).
"""

from __future__ import annotations

import numpy as np
import pytest
from llama_reference import llama_report, log_softmax64, report_of_summary

from softmax_cli.core.divergence_stats import divergence
from softmax_cli.core.rowdivergence import divergence_rows


def lm_batch(seed: int, batch=3, seq=40, vocab=64):
    """Reference logits, a candidate near them, next tokens and a right-padded attention mask."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(batch, seq, vocab)) * 3
    cand = ref + rng.normal(size=ref.shape) * 0.2
    tokens = rng.integers(0, vocab, (batch, seq))
    lengths = rng.integers(seq // 2, seq + 1, batch)
    mask = np.arange(seq)[None, :] < lengths[:, None]
    return ref, cand, tokens, mask


def test_every_field_of_llama_cpps_report_matches_its_formulas():
    ref, cand, tokens, _ = lm_batch(1)
    summary, _ = divergence(ref, cand, tokens)
    got = report_of_summary(summary._asdict())
    expected = llama_report(ref.reshape(-1, 64), cand.reshape(-1, 64), tokens.reshape(-1))
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-14), name


def test_padding_and_ignored_labels_enter_no_statistic():
    ref, cand, tokens, mask = lm_batch(2)
    labels = np.where(np.random.default_rng(2).random(tokens.shape) < 0.1, -100, tokens)
    kept = mask & (labels != -100)
    summary, rows = divergence(ref, cand, labels, mask=mask)
    got = report_of_summary(summary._asdict())
    expected = llama_report(ref[kept], cand[kept], labels[kept])
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-14), name
    assert summary.n_scored == kept.sum()
    np.testing.assert_array_equal(rows.scored, kept)
    p, q = np.exp(log_softmax64(ref[kept])), np.exp(log_softmax64(cand[kept]))
    m = (p + q) / 2
    js = 0.5 * (p * np.log(p / m) + q * np.log(q / m)).sum(-1)
    assert summary.js_mean == pytest.approx(js.mean(), rel=1e-9)
    assert summary.tv_mean == pytest.approx(0.5 * np.abs(p - q).sum(-1).mean(), rel=1e-9)
    assert summary.max_abs_dp == pytest.approx(np.abs(p - q).max(), rel=1e-9)


def test_masked_positions_hold_garbage_and_change_nothing():
    ref, cand, tokens, mask = lm_batch(3)
    clean, _ = divergence(ref, cand, tokens, mask=mask)
    garbage_ref, garbage_cand = ref.copy(), cand.copy()
    garbage_ref[~mask] = np.nan
    garbage_cand[~mask] = np.inf
    garbage_ref[0, -1, 5] = -np.inf  # a fully masked row would be refused; padding is never read at all
    garbage_ref[~mask] = np.where(np.arange(64) % 2, np.nan, -np.inf)
    dirty, rows = divergence(garbage_ref, garbage_cand, tokens, mask=mask, masked_rows="error")
    for name, value, other in zip(clean._fields, clean, dirty):
        np.testing.assert_array_equal(value, other, err_msg=name)
    assert (rows.kl[~mask] == 0).all() and not rows.top1_same[~mask].any()


def test_smallest_padded_case_has_zero_kl():
    summary, _ = divergence([[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [9.0, 0.0]], [0, -100])
    assert (summary.kl_mean, summary.kl_max, summary.top1_agreement, summary.n_scored) == (0.0, 0.0, 1.0, 1)


def test_mask_is_checked_where_it_is_read():
    from softmax_cli.errors import InputError

    with pytest.raises(InputError, match="neither 1 .keep. nor 0"):
        divergence_rows([[0.0, 1.0]], [[0.0, 1.0]], mask=[2])
    with pytest.raises(InputError, match="the mask has shape"):
        divergence_rows([[0.0, 1.0]], [[0.0, 1.0]], mask=[1, 1])
