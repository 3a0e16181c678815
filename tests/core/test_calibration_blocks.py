"""temperature-sweep's figures read a file's rows a block at a time: the result does not depend on the blocks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from softmax_cli import core
from softmax_cli.core import blocks

FIGURES = ("entropy", "max_prob", "nll", "accuracy", "ece", "ece_l2", "mce", "brier", "bin_lower", "bin_upper",
           "bin_count", "bin_confidence", "bin_accuracy")


def labelled_logits():
    rng = np.random.default_rng(24)
    logits = (rng.standard_normal((1000, 7)) * 3).astype(np.float32)
    labels = rng.integers(0, 7, 1000)
    logits[np.arange(1000), labels] += 2.0
    labels[::17] = -100
    return logits, labels


@pytest.mark.parametrize("options", [{}, {"binning": "quantile", "bin_edges": "left"},
                                     {"bin_edges": "bucketize", "bins": 9}])
def test_a_memory_mapped_file_in_small_blocks_equals_one_block(tmp_path, monkeypatch, options):
    logits, labels = labelled_logits()
    np.save(tmp_path / "logits.npy", logits)
    temperatures = [0.3, 1.0, 4.0]
    whole = core.temperature_sweep(logits, temperatures, labels, **options)
    # 5 rows a block, from the file on disk: 200 blocks.
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 35)
    mapped = np.load(tmp_path / "logits.npy", mmap_mode="r")
    blocked = core.temperature_sweep(mapped, temperatures, labels, **options)
    for name in FIGURES:
        np.testing.assert_array_equal(blocked[name], whole[name], err_msg=name)
    # Classwise sums are added block by block: equal up to the order of float64 additions.
    np.testing.assert_allclose(blocked["classwise_ece"], whole["classwise_ece"], rtol=1e-14)


def test_blocks_agree_with_an_independent_float64_reference(monkeypatch):
    logits, labels = labelled_logits()
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 70)
    sweep = core.temperature_sweep(logits, [2.0], labels, bins=10)
    kept = labels != -100
    z = logits[kept].astype(np.float64) / 2.0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = labels[kept]
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == y
    edges = np.arange(11) / 10
    ece = sum(abs(correct[m].mean() - confidence[m].mean()) * m.mean()
              for m in ((confidence > lo) & (confidence <= hi) for lo, hi in itertools.pairwise(edges)) if m.any())
    assert sweep["ece"][0] == pytest.approx(ece, abs=1e-14)
    assert sweep["brier"][0] == pytest.approx(((p - np.eye(7)[y]) ** 2).sum(axis=1).mean(), rel=1e-13)
    assert sweep["nll"][0] == pytest.approx(-np.log(p[np.arange(y.size), y]).mean(), rel=1e-12)


def test_fit_from_a_memory_mapped_file_in_small_blocks_equals_one_block(tmp_path, monkeypatch):
    logits, labels = labelled_logits()
    np.save(tmp_path / "logits.npy", logits)
    whole = core.fit_temperature(logits, labels)
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 35)
    assert core.fit_temperature(np.load(tmp_path / "logits.npy", mmap_mode="r"), labels) == whole
    # The fitted T zeroes NLL'(1/T): the mean label probability gap, computed here in one float64 pass.
    z = logits[labels != -100].astype(np.float64) / whole
    y = labels[labels != -100]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    raw = z * whole
    slope = ((p * raw).sum(axis=1) - raw[np.arange(y.size), y]).mean()
    assert abs(slope) < 1e-10
