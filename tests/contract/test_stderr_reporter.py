"""Every line on standard error comes from one reporter: escaped, in order, at most one ``error:`` line.

The kinds: ``error:`` (at most one, last), ``gate failed:``, ``failed:`` (one
input of a batch), ``warning:`` and ``note:`` (dropped by ``--quiet``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run

from softmax_cli.core import blocks

# Characters that would end, split or hide a line in a log reader, and a comma that would
# split a location string: a file name may hold any of them.
AWKWARD = "bad\r, x\x1eq\u2028z"
ESCAPED = "bad\\r, x\\x1eq\\u2028z"


def kinds(stderr: str) -> list[str]:
    return [line.split(": ")[0] for line in stderr.splitlines()]


@pytest.fixture
def awkward_batch(tmp_path):
    """Three .npy inputs; the one with an awkward name holds a NaN at row 1, class 2."""
    good = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    bad = good.copy()
    bad[1, 2] = np.nan
    np.save(tmp_path / "a.npy", good)
    np.save(tmp_path / f"{AWKWARD}.npy", bad)
    np.save(tmp_path / "c.npy", good)
    return tmp_path


def test_a_batch_failure_line_escapes_the_file_name_and_one_error_line_ends_the_run(awkward_batch, tmp_path):
    out = tmp_path / "out"
    completed = run("probs", awkward_batch / "a.npy", awkward_batch / f"{AWKWARD}.npy", awkward_batch / "c.npy",
                    "--out-dir", out, "--keep-going")
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.splitlines()
    assert kinds(completed.stderr) == ["failed", "error"], lines
    name = f"{awkward_batch}/{ESCAPED}.npy"
    assert lines[0].startswith("failed: NaN in logits") and lines[0].endswith(f"({name}, row 1, column 2)")
    assert lines[1] == f"error: 1 of 3 inputs failed: {name}"
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "c.npy"]


def test_an_error_about_labels_names_their_file_once_even_with_a_comma_in_its_name(tmp_path):
    logits = tmp_path / "logits.npy"
    np.save(logits, np.zeros((3, 4)))
    labels = tmp_path / "y, labels.npy"
    np.save(labels, np.array([0, 7, 1]))
    completed = run("loss", logits, "--labels", labels)
    assert completed.returncode == 2 and kinds(completed.stderr) == ["error"], completed.stderr
    line = completed.stderr.strip()
    assert line.count(str(labels)) == 1 and str(logits) not in line, line


def test_quiet_drops_notes_and_warnings_but_keeps_the_result(tmp_path):
    logits = tmp_path / "x.csv"
    logits.write_text("1,2,3\n4,5,6\n")
    loud = run("topk", logits, "-k", "2", "-f", "npy", text=False)
    quiet = run("topk", logits, "-k", "2", "-f", "npy", "-q", text=False)
    assert loud.returncode == quiet.returncode == 0
    assert loud.stderr.decode().startswith("note: ") and quiet.stderr == b""
    assert quiet.stdout == loud.stdout
    assert run("topk", logits, "-k", "2", "-f", "npy", "--quiet", text=False).stderr == b""


def test_quiet_keeps_the_failed_and_error_lines_of_a_batch(awkward_batch, tmp_path):
    completed = run("probs", awkward_batch / "a.npy", awkward_batch / f"{AWKWARD}.npy", "--out-dir",
                    tmp_path / "out", "--keep-going", "-q")
    assert completed.returncode == 2 and kinds(completed.stderr) == ["failed", "error"], completed.stderr


def test_quiet_keeps_a_gate_failure(tmp_path):
    logits = tmp_path / "x.npy"
    np.save(logits, np.array([[0.0, 3.0], [0.0, 3.0]]))
    completed = run("loss", logits, "--labels", "0,0", "--max-loss", "0.1", "-q", "-f", "json")
    assert completed.returncode == 1
    loss = float(np.log1p(np.exp(3.0)))  # -log softmax([0, 3])[0]
    assert completed.stderr == f"gate failed: loss {loss:.6g} > --max-loss 0.1 ({logits})\n"


def test_capital_v_is_the_version():
    long, short = run("--version"), run("-V")
    assert short.returncode == 0 and short.stdout == long.stdout and short.stdout.startswith("softmax ")


# ---------------------------------------------------------------- one invocation's state ends with it


def test_a_note_is_shown_by_every_in_process_invocation(cli, tmp_path):
    logits = tmp_path / "x.csv"
    logits.write_text("1,2,3\n4,5,6\n")
    first = cli("topk", logits, "-k", "2", "-f", "npy", text=False)
    second = cli("topk", logits, "-k", "2", "-f", "npy", text=False)
    assert first.returncode == second.returncode == 0
    assert first.stderr.decode().startswith("note: ") and second.stderr == first.stderr


def test_quiet_ends_with_its_invocation(cli, tmp_path):
    logits = tmp_path / "x.csv"
    logits.write_text("1,2,3\n4,5,6\n")
    assert cli("topk", logits, "-k", "2", "-f", "npy", "-q", text=False).stderr == b""
    assert cli("topk", logits, "-k", "2", "-f", "npy", text=False).stderr.decode().startswith("note: ")


@pytest.fixture
def thread_pools(tmp_path, monkeypatch):
    """``(pools, logits)``: the worker count of every thread pool a run creates, and a small ``.npy`` that uses one."""
    if blocks.available_cores() < 2:
        pytest.skip("one core: the default run uses no thread pool either")
    import concurrent.futures

    pools: list[int] = []
    original = concurrent.futures.ThreadPoolExecutor

    class Counting(original):
        def __init__(self, workers, *args, **kwargs):
            pools.append(workers)
            super().__init__(workers, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Counting)
    monkeypatch.setattr(blocks, "PARALLEL_MIN_ELEMENTS", 1)  # threads even for this small array
    logits = tmp_path / "x.npy"
    np.save(logits, np.arange(64.0).reshape(16, 4))
    return pools, logits


def test_a_threads_option_ends_with_its_invocation(cli, thread_pools):
    pools, logits = thread_pools
    assert cli("probs", logits, "--threads", "1", "-f", "npy", text=False).returncode == 0
    assert pools == []  # one thread: no pool
    assert cli("probs", logits, "-f", "npy", text=False).returncode == 0
    assert pools and pools[0] == min(blocks.available_cores(), 16)
    assert blocks.thread_count() == blocks.available_cores()


def test_a_thread_count_set_by_the_caller_does_not_reach_a_run_in_process(cli, thread_pools):
    # The installed suite failed once: a count some earlier code left in the caller's context (3) was the
    # command's, because a run in process starts from a copy of that context.
    import contextvars

    pools, logits = thread_pools

    def after_the_caller_set_its_own_count():
        blocks.set_threads(blocks.available_cores() + 1)
        return cli("probs", logits, "-f", "npy", text=False)

    assert contextvars.copy_context().run(after_the_caller_set_its_own_count).returncode == 0
    assert pools == [min(blocks.available_cores(), 16)]
