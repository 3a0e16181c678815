"""Streamed ``.npy`` rows read into two reused buffers, and streamed writes in pieces (issue 25).

``FileRows.blocks`` reads each block with ``readinto`` on a reader thread
while the one before is computed; a streamed output goes to the kernel in
``WRITE_PIECE_BYTES`` pieces. The references are NumPy's own ``np.save`` /
``np.load`` and a float64 softmax.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import assert_one_error_line, reference_softmax

from softmax_cli.errors import InputError
from softmax_cli.formats import npy

# More than one write piece of float32 output, and rows that do not divide it evenly.
ROWS, COLS = 301, 1031


@pytest.fixture
def logits_file(tmp_path):
    logits = (np.random.default_rng(25).standard_normal((ROWS, COLS)) * 4).astype(np.float32)
    path = tmp_path / "logits.npy"
    np.save(path, logits)
    return path, logits


@pytest.mark.parametrize("block_rows", [1, 7, ROWS])
def test_blocks_read_the_file_exactly(logits_file, block_rows):
    path, logits = logits_file
    rows = npy.row_blocks(path, block_rows * COLS * 4)
    # A block is valid until the next is asked for: each is copied as it comes.
    kept = [(start, block.copy()) for start, block in rows.blocks(None)]
    assert [start for start, _ in kept] == list(range(0, ROWS, block_rows))
    np.testing.assert_array_equal(np.concatenate([block for _, block in kept]), np.load(path))
    np.testing.assert_array_equal(np.concatenate([block for _, block in kept]), logits)


def test_blocks_and_reserved_outputs_without_the_linux_only_calls(logits_file, tmp_path, monkeypatch):
    """macOS and Windows have no posix_fadvise or posix_fallocate: reading and filling in place go on without them."""
    monkeypatch.delattr("os.posix_fadvise", raising=False)
    monkeypatch.delattr("os.posix_fallocate", raising=False)
    path, logits = logits_file
    rows = npy.row_blocks(path, 7 * COLS * 4)
    np.testing.assert_array_equal(np.concatenate([block.copy() for _, block in rows.blocks(None)]), logits)
    out = tmp_path / "filled.npy"
    npy.fill_in_place(str(out), logits.shape, logits.dtype, lambda array: np.copyto(array, logits))
    np.testing.assert_array_equal(np.load(out), logits)


def test_a_file_cut_short_while_it_is_streamed_is_an_input_error_not_a_signal(logits_file):
    """Blocks that were views of a memory map killed the process by SIGBUS when the file shrank mid-run."""
    path, _ = logits_file
    rows = npy.row_blocks(path, 7 * COLS * 4)
    blocks = rows.blocks(None)
    first_start, first = next(blocks)
    with open(path, "r+b") as file:
        file.truncate(128 + 20 * COLS * 4)  # the header and 20 rows stay
    with pytest.raises(InputError, match="truncated") as raised:
        for _, block in blocks:
            float(block.sum())  # every value of every block is touched, as the core does
    assert raised.value.where == str(path)
    assert first_start == 0 and first.shape == (7, COLS)


def test_a_file_cut_short_after_its_header_was_read_is_an_input_error(logits_file):
    path, _ = logits_file
    rows = npy.row_blocks(path, 7 * COLS * 4)
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - 4)
    with pytest.raises(InputError, match="truncated") as raised:
        next(rows.blocks(None))
    assert raised.value.where == str(path)


def test_a_streamed_array_written_in_pieces_is_what_np_save_writes(logits_file):
    path, logits = logits_file
    # One block of the whole file: a full piece, then a partial one.
    assert npy.WRITE_PIECE_BYTES < logits.nbytes < 2 * npy.WRITE_PIECE_BYTES

    class Streamed:
        shape, dtype = logits.shape, logits.dtype

        def blocks(self):
            return (block for _, block in npy.row_blocks(path, logits.nbytes).blocks(None))

    written, expected = io.BytesIO(), io.BytesIO()
    npy.write_array(written, Streamed())
    np.save(expected, logits)
    assert written.getvalue() == expected.getvalue()


def test_probs_output_is_bit_identical_for_one_row_odd_and_default_blocks(softmax, logits_file, tmp_path):
    path, logits = logits_file
    outputs = []
    for block_bytes in (COLS * 4, 7 * COLS * 4, 16 << 20):
        out = tmp_path / f"probs_{block_bytes}.npy"
        completed = softmax("probs", path, "-o", out, env={"SOFTMAX_BLOCK_BYTES": str(block_bytes)})
        assert completed.returncode == 0, completed.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    probs = np.load(tmp_path / f"probs_{COLS * 4}.npy")
    np.testing.assert_allclose(probs, reference_softmax(logits.astype(np.float64)), rtol=2e-6, atol=1e-12)


def test_a_file_truncated_on_disk_is_one_error_line_and_no_output(softmax, logits_file, tmp_path):
    path, _ = logits_file
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - 4)
    out = tmp_path / "out" / "p.npy"
    out.parent.mkdir()
    completed = softmax("probs", path, "-o", out, env={"SOFTMAX_BLOCK_BYTES": str(7 * COLS * 4)})
    assert completed.returncode == 2
    assert_one_error_line(completed, "logits.npy")
    assert list(out.parent.iterdir()) == []
