"""topk's tie rules against the peers that define them: a stable argsort (ties low) and sklearn (ties high)."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_cli import core

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def tied_logits(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits from a few values, so most rows hold ties across the top k; labels often on a tied class."""
    rng = np.random.default_rng(seed)
    logits = rng.integers(0, 4, size=(rows, classes)).astype(np.float64)
    return logits, rng.integers(0, classes, size=rows)


@pytest.mark.parametrize("classes", [5, 12, 200])  # 200 classes: the grouped candidate search as well
@pytest.mark.parametrize("k", [1, 2, 3])
def test_ties_high_is_sklearns_top_k_accuracy(classes, k):
    logits, labels = tied_logits(400, classes, seed=classes + k)
    indices, _ = core.topk(logits, k, ties="high")
    ours = core.topk_accuracy(indices, labels)[1]
    theirs = sklearn_metrics.top_k_accuracy_score(labels, logits, k=k, labels=np.arange(classes))
    assert ours == theirs
    # sklearn's own ranking: a stable ascending argsort, reversed.
    np.testing.assert_array_equal(indices, np.argsort(logits, axis=1, kind="mergesort")[:, ::-1][:, :k])


@pytest.mark.parametrize("classes", [5, 200])
def test_ties_low_is_a_stable_argsort(classes):
    logits, _ = tied_logits(400, classes, seed=7)
    indices, _ = core.topk(logits, 2)
    np.testing.assert_array_equal(indices, np.argsort(-logits, axis=1, kind="stable")[:, :2])


def test_a_label_tied_for_first_above_the_lower_index_counts_only_under_ties_high():
    logits, labels = np.array([[3.0, 3.0, 1.0], [2.0, 0.0, 2.0]]), np.array([1, 2])
    assert sklearn_metrics.top_k_accuracy_score(labels, logits, k=1, labels=[0, 1, 2]) == 1.0
    assert core.topk_accuracy(core.topk(logits, 1, ties="high")[0], labels)[1] == 1.0
    assert core.topk_accuracy(core.topk(logits, 1)[0], labels)[1] == 0.0


def test_reference_example():
    # REFERENCE.md's row: torch.topk gives [2, 4] (order not promised), a stable argsort [0, 2].
    assert core.topk([3.0, 1.0, 3.0, 2.0, 3.0], 2)[0].tolist() == [0, 2]
    assert core.topk([3.0, 1.0, 3.0, 2.0, 3.0], 2, ties="high")[0].tolist() == [4, 2]
