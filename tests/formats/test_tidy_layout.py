"""A tidy table (what CSV, TSV, Parquet and Arrow write) takes a result's kind from its Layout, not its array names."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_cli.result import Layout, Result
from softmax_cli.tidy import tidy

INDICES = np.array([[2, 0], [1, 2]])
PROBS = np.array([[0.7, 0.2], [0.5, 0.3]])


def test_a_topk_result_is_laid_out_rank_by_rank():
    table = tidy(Result({"indices": INDICES, "probs": PROBS}, layout=Layout.topk))
    assert table.header == ["rank1_index", "rank1_prob", "rank2_index", "rank2_prob"]


def test_arrays_named_like_topks_in_another_result_keep_their_own_columns():
    # Two (rows, 2) arrays that happen to be called indices and probs are not ranks unless the result says so.
    table = tidy(Result({"indices": INDICES, "probs": PROBS, "other": np.ones(2)}, layout=Layout.grid))
    assert not any(name.startswith("rank") for name in table.header or [])


def test_a_layouts_name_is_the_layout():
    assert Result({"probs": PROBS}, layout="distribution").layout is Layout.distribution
    with pytest.raises(ValueError):
        Result({"probs": PROBS}, layout="no-such-layout")
