"""A big ``.npy`` on a terminal: the table computes only the rows it shows and streams the summary (issue 12).

The streamed table must be the table the in-memory path draws (the same
logits from an ``.npz``, which cannot be streamed), and the whole file is
still checked: a bad value in a row the table does not show is an error.
Peak memory is measured in ``benchmarks/end_to_end.py``, not here.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_one_error_line, run

TINY_BLOCKS = {"SOFTMAX_BLOCK_BYTES": "256", "COLUMNS": "100"}


def reference_entropy(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(axis=-1)


@pytest.fixture
def big(tmp_path):
    x = np.random.default_rng(7).normal(size=(2000, 6)).astype(np.float32) * 3
    np.save(tmp_path / "big.npy", x)
    np.savez(tmp_path / "big.npz", logits=x)
    return x, tmp_path / "big.npy", tmp_path / "big.npz"


def test_streamed_table_is_the_in_memory_table(big):
    _, npy, npz = big
    streamed = run("probs", npy, "-f", "table", env=TINY_BLOCKS)
    in_memory = run("probs", npz, "-f", "table", env=TINY_BLOCKS)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == in_memory.stdout
    assert "… 1,980 more rows (10 to 1989) of 2,000" in streamed.stdout or "(10 to 1989) of 2000" in streamed.stdout


def test_the_table_summarises_every_row(big):
    x, npy, _ = big
    completed = run("probs", npy, "-f", "table", env=TINY_BLOCKS)
    mean = float(np.mean(reference_entropy(x)))
    line = next(line for line in completed.stdout.splitlines() if line.strip().startswith("mean entropy"))
    assert float(line.split()[-1]) == pytest.approx(mean, rel=1e-3), line


def test_a_bad_value_in_a_row_the_table_does_not_show_is_still_an_error(big, tmp_path):
    x, _, _ = big
    x = x.copy()
    x[1000, 2] = np.nan
    np.save(tmp_path / "bad.npy", x)
    assert_one_error_line(run("probs", tmp_path / "bad.npy", "-f", "table", env=TINY_BLOCKS), "NaN",
                          "row 1000, column 2")
    x[1000, 2] = 0.0
    x[1500] = -np.inf
    np.save(tmp_path / "masked.npy", x)
    assert_one_error_line(run("probs", tmp_path / "masked.npy", "-f", "table", env=TINY_BLOCKS), "row 1500",
                          "--masked-rows")
    allowed = run("probs", tmp_path / "masked.npy", "-f", "table", "--masked-rows", "zero", env=TINY_BLOCKS)
    assert allowed.returncode == 0, allowed.stderr


def test_log_probs_and_temperature_stream_too(big):
    _, npy, npz = big
    for options in (["--log"], ["-t", "2.5"]):
        streamed = run("probs", npy, "-f", "table", *options, env=TINY_BLOCKS)
        assert streamed.returncode == 0, streamed.stderr
        assert streamed.stdout == run("probs", npz, "-f", "table", *options, env=TINY_BLOCKS).stdout
