"""A signal that arrives once a run's outcome is decided does not change it, nor kill the process.

The rule (docs/errors-and-exit-status.md): until the command has finished its
work, SIGINT, SIGTERM and SIGHUP stop it quietly with 128 + the signal and no
partial output; from the moment its outcome is decided (outputs in place, the
status known) to the process's end, including while Python winds down, they
are ignored and the process exits with the run's own status. The moment is
observed as an event: the run's ``note:`` line, printed after its work.
"""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import pytest
from conftest import softmax_command

# How often each signal is sent in the last moments: a late signal used to kill the
# process by the signal about one time in four, so 16 tries miss it with probability 1%.
TRIES = {"SIGTERM": 16, "SIGINT": 6, "SIGHUP": 6}


@pytest.fixture
def logits_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2,3\n6,5,4\n0,9,1\n")
    return path


@pytest.mark.parametrize("name", list(TRIES))
def test_a_signal_after_the_work_is_done_leaves_status_0_and_the_output(tmp_path, logits_csv, name):
    signum = getattr(signal, name)
    expected = np.argsort(-np.loadtxt(logits_csv, delimiter=","), axis=1, kind="stable")[:, :2]
    for attempt in range(TRIES[name]):
        out = tmp_path / f"top{attempt}.npy"
        process = subprocess.Popen([*softmax_command(), "topk", str(logits_csv), "-k", "2", "-o", str(out)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        note = process.stderr.readline()  # printed once the output is in place: the work is done
        assert note.startswith(b"note: "), note
        process.send_signal(signum)
        stdout, rest = process.communicate(timeout=120)
        assert process.returncode == 0, (attempt, process.returncode, rest.decode()[-2000:])
        assert stdout == b"" and rest == b"", rest
        np.testing.assert_array_equal(np.load(out), expected)
