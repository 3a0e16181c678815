"""``compare --per-sequence`` and its gates: each sequence's figures equal a loop over sequences in NumPy float64."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run
from llama_reference import log_softmax64

BATCH, SEQ, VOCAB = 4, 9, 7


@pytest.fixture
def batch(tmp_path):
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(2, BATCH // 2, SEQ, VOCAB)) * 2  # two leading axes: 4 sequences
    cand = ref + rng.normal(size=ref.shape) * np.array([0.1, 0.5, 0.2, 1.0]).reshape(2, 2, 1, 1)
    ids = rng.integers(0, VOCAB, ref.shape[:-1])
    mask = np.ones(ref.shape[:-1], dtype=np.int64)
    mask[0, 1, 6:] = 0
    mask[1, 0, 3:] = 0
    for name, value in (("ref", ref), ("cand", cand), ("ids", ids), ("mask", mask)):
        np.save(tmp_path / f"{name}.npy", value)
    return tmp_path, ref, cand, ids, mask.astype(bool)


def expected_sequences(ref, cand, ids, mask):
    """A loop over sequences, next-token scoring: position t against ids[t + 1] where mask[t + 1]."""
    figures = {name: [] for name in ("seq_n_scored", "seq_kl_mean", "seq_kl_max", "seq_top1_agreement",
                                     "seq_nll_ref", "seq_nll_cand", "seq_ppl_ratio")}
    for r, c, y, m in zip(ref.reshape(-1, SEQ, VOCAB), cand.reshape(-1, SEQ, VOCAB), ids.reshape(-1, SEQ),
                          mask.reshape(-1, SEQ)):
        scored = np.append(m[1:], False)
        r, c, y = r[scored], c[scored], y[1:][scored[:-1]]
        lp, lq = log_softmax64(r), log_softmax64(c)
        kl = (np.exp(lp) * (lp - lq)).sum(-1)
        nll_ref, nll_cand = -lp[np.arange(len(y)), y], -lq[np.arange(len(y)), y]
        figures["seq_n_scored"].append(len(y))
        figures["seq_kl_mean"].append(kl.mean())
        figures["seq_kl_max"].append(kl.max())
        figures["seq_top1_agreement"].append(np.mean(r.argmax(-1) == c.argmax(-1)))
        figures["seq_nll_ref"].append(nll_ref.mean())
        figures["seq_nll_cand"].append(nll_cand.mean())
        figures["seq_ppl_ratio"].append(np.exp(nll_cand.mean() - nll_ref.mean()))
    return {name: np.array(values) for name, values in figures.items()}


def compare(folder, *extra):
    return run("compare", folder / "ref.npy", folder / "cand.npy", "--labels", folder / "ids.npy", "--shift-labels",
               "--mask", folder / "mask.npy", *extra)


def test_per_sequence_figures_equal_a_loop_over_sequences(batch):
    folder, ref, cand, ids, mask = batch
    completed = compare(folder, "--per-sequence", "-f", "json")
    assert completed.returncode == 0, completed.stderr
    out = json.loads(completed.stdout)
    expected = expected_sequences(ref, cand, ids, mask)
    assert out["seq_n_scored"] == expected["seq_n_scored"].tolist()
    for name, values in expected.items():
        np.testing.assert_allclose(out[name], values, rtol=1e-10, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(out["seq_ppl_ref"], np.exp(expected["seq_nll_ref"]), rtol=1e-10)


def test_per_sequence_csv_is_one_line_per_sequence(batch):
    folder, ref, cand, ids, mask = batch
    completed = compare(folder, "--per-sequence", "-f", "csv")
    assert completed.returncode == 0, completed.stderr
    lines = [line for line in completed.stdout.splitlines() if not line.startswith("#")]
    header = lines[0].split(",")
    assert header[0] == "seq_n_scored" and len(lines) == 1 + BATCH
    column = header.index("seq_ppl_ratio")
    np.testing.assert_allclose([float(line.split(",")[column]) for line in lines[1:]],
                               expected_sequences(ref, cand, ids, mask)["seq_ppl_ratio"], rtol=1e-10)


def test_worst_sequence_gate_fails_naming_it_and_passes_above_it(batch):
    folder, ref, cand, ids, mask = batch
    ratios = expected_sequences(ref, cand, ids, mask)["seq_ppl_ratio"]
    worst = int(np.argmax(ratios))
    bound = (ratios[worst] + np.sort(ratios)[-2]) / 2  # between the worst and the next
    failed = compare(folder, "--max-seq-ppl-ratio", f"{bound:.9g}", "-f", "json")
    assert failed.returncode == 1
    assert f"sequence {worst}'s perplexity ratio" in failed.stderr
    assert compare(folder, "--max-seq-ppl-ratio", f"{ratios[worst] * 1.001:.9g}", "-f", "json").returncode == 0
    kl = expected_sequences(ref, cand, ids, mask)["seq_kl_mean"]
    assert compare(folder, "--max-seq-kl", f"{kl.max() * 0.999:.9g}", "-f", "json").returncode == 1
    assert compare(folder, "--max-seq-kl", f"{kl.max() * 1.001:.9g}", "-f", "json").returncode == 0
