"""What a command says on standard error about files it wrote: --plot names its picture; the long-job note
(path, shape, dtype, size, seconds) is for a terminal only, never in a script's log."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run


def test_plot_says_where_the_picture_went(tmp_path):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "z.npy", np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]]))
    completed = run("temperature-sweep", "z.npy", "--labels", "0,1", "--plot", "reliability.png", "-f", "csv",
                    cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == ["note: the reliability diagram is in reliability.png"]
    assert (tmp_path / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_written_note_when_standard_error_is_not_a_terminal(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((4, 3)))
    completed = run("probs", "z.npy", "-o", "out.npy", cwd=tmp_path)
    assert completed.returncode == 0
    assert completed.stderr == ""
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.full((4, 3), 1 / 3))
