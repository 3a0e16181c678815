"""Per-sequence figures of a language model's per-position ones: a sequence is one index of the leading axes.

Logits shaped (…, seq, vocab) have rows shaped (…, seq); every index of the
axes before ``seq`` is a sequence (a (seq, vocab) array is one sequence).
Each figure is over the sequence's scored positions only, in float64; a
sequence with none has NaN figures and a count of 0.
"""

from __future__ import annotations

import numpy as np

from .rowdivergence import RowDivergence

SEQUENCE_FIGURES = ("seq_n_scored", "seq_kl_mean", "seq_kl_max", "seq_top1_agreement")
SEQUENCE_LABEL_FIGURES = ("seq_nll_ref", "seq_nll_cand", "seq_ppl_ref", "seq_ppl_cand", "seq_ppl_ratio")


def _grid(values: np.ndarray, seq_len: int) -> np.ndarray:
    return np.ravel(values).reshape(-1, seq_len)


def sequence_means(values: np.ndarray, scored: np.ndarray | None, lead_shape: tuple[int, ...]) -> tuple:
    """``(mean, count)`` per sequence of per-position ``values`` over the scored positions (flat arrays).

    Examples
    --------
    >>> sequence_means(np.array([1.0, 3.0, 5.0, 7.0]), np.array([True, True, True, False]), (2, 2))
    (array([2., 5.]), array([2, 1]))
    """
    seq_len = lead_shape[-1] if lead_shape else 1
    grid = _grid(values, seq_len).astype(np.float64)
    keep = np.ones(grid.shape, dtype=bool) if scored is None else _grid(scored, seq_len)
    count = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(keep, grid, 0).sum(axis=1) / count
    return np.where(count > 0, mean, np.nan), count


def sequence_figures(rows: RowDivergence, lead_shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per sequence: scored positions, mean and max KL, top-1 agreement; with labels mean NLLs and perplexities.

    ``lead_shape`` is the rows' shape (…, seq). Arrays are flat, one entry per
    sequence in C order of the leading axes. Perplexities are ``exp`` of the
    mean NLL over the sequence's scored positions, as
    :func:`~softmax_cli.core.divergence_stats.divergence_summary` is over all.

    Examples
    --------
    >>> from softmax_cli.core.rowdivergence import divergence_rows
    >>> rows = divergence_rows(np.zeros((2, 2, 3)), [[[0, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 0, 0]]])
    >>> sequence_figures(rows, (2, 2))["seq_kl_max"].round(6)
    array([0.119499, 0.      ])
    """
    seq_len = lead_shape[-1] if lead_shape else 1
    scored = rows.scored
    kl_mean, count = sequence_means(rows.kl, scored, lead_shape)
    keep = np.ones((count.size, seq_len), dtype=bool) if scored is None else _grid(scored, seq_len)
    kl = _grid(rows.kl, seq_len).astype(np.float64)
    kl_max = np.where(count > 0, np.where(keep, kl, -np.inf).max(axis=1, initial=-np.inf), np.nan)
    agreement, _ = sequence_means(rows.top1_same, scored, lead_shape)
    figures = {"seq_n_scored": count.astype(np.int64), "seq_kl_mean": kl_mean, "seq_kl_max": kl_max,
               "seq_top1_agreement": agreement}
    if rows.labelled is not None:
        nll_ref, _ = sequence_means(rows.nll_ref, scored, lead_shape)
        nll_cand, _ = sequence_means(rows.nll_cand, scored, lead_shape)
        with np.errstate(over="ignore", invalid="ignore"):
            figures |= {"seq_nll_ref": nll_ref, "seq_nll_cand": nll_cand, "seq_ppl_ref": np.exp(nll_ref),
                        "seq_ppl_cand": np.exp(nll_cand), "seq_ppl_ratio": np.exp(nll_cand - nll_ref)}
    return figures
