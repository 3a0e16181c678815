"""A signal that arrives while Python runs a callback it cannot unwind from still stops the run.

The suite saw it once: SIGHUP during a streamed write landed in an import
lock's weakref callback, where the raised ``Interrupted`` is printed as
"Exception ignored ..." with a traceback and dropped; the run went on, renamed
its output into place and exited 0. Here the signal is sent from inside a
weakref callback run just before the output is renamed, through the real
entry point: the run must end as any interrupted run does (exit 128 + 1,
nothing on stderr, no output, no temporary file).

CI saw it again during start-up: a SIGINT swallowed while the command's
modules were imported was kept for the process, and the run that began next
started with none; it read an empty standard input and exited 2.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

SCRIPT = r"""
import os, signal, sys, weakref

def hook(event, args):
    # os.chmod of the temporary output: the last step before the rename, with signals not blocked.
    if event == "os.chmod" and str(args[0]).endswith(".part"):
        class Thing:
            pass
        thing = Thing()
        def callback(_):
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):  # the Python handler runs here, inside the callback
                pass
        ref = weakref.ref(thing, callback)
        del thing

sys.addaudithook(hook)
sys.argv = ["softmax", *sys.argv[1:]]
from softmax_cli.__main__ import main
main()
"""


def test_a_signal_inside_a_callback_still_interrupts_the_run(tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((4, 3), dtype=np.float32))
    completed = subprocess.run([sys.executable, "-c", SCRIPT, "probs", "in.npy", "-o", "out.npy"], cwd=tmp_path,
                               capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                               stdin=subprocess.DEVNULL, timeout=120)
    assert (completed.returncode, completed.stderr) == (128 + 1, "")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.npy"]


def test_other_exceptions_python_cannot_raise_are_still_printed(tmp_path):
    # Only the signal's Interrupted is kept: a library's failing __del__ stays Python's own "Exception ignored".
    np.save(tmp_path / "in.npy", np.zeros((4, 3), dtype=np.float32))
    script = SCRIPT.replace("os.kill(os.getpid(), signal.SIGHUP)", "raise ValueError('from a callback')")
    completed = subprocess.run([sys.executable, "-c", script, "probs", "in.npy", "-o", "out.npy"], cwd=tmp_path,
                               capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                               stdin=subprocess.DEVNULL, timeout=120)
    assert completed.returncode == 0
    assert "Exception ignored" in completed.stderr and "ValueError: from a callback" in completed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.npy", "out.npy"]


def test_a_signal_swallowed_during_start_up_interrupts_the_run_that_follows(tmp_path):
    # The weakref callback fires while softmax_cli.cli is imported, before any run has begun.
    script = SCRIPT.replace('event == "os.chmod" and str(args[0]).endswith(".part")',
                            'event == "import" and args[0] == "softmax_cli.cli"')
    completed = subprocess.run([sys.executable, "-c", script, "probs", "-", "-f", "csv"], cwd=tmp_path,
                               capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                               stdin=subprocess.DEVNULL, timeout=120)
    assert (completed.returncode, completed.stderr) == (128 + 1, "")


def test_sigint_while_the_entry_point_imports_its_errors_module_is_quiet(tmp_path):
    # The first thing __main__ imports: before, Python's own SIGINT handler raised KeyboardInterrupt in it, with a
    # traceback and death by the signal.
    script = """
import os, signal, sys

def hook(event, args):
    if event == "import" and args[0] == "softmax_cli.errors":
        os.kill(os.getpid(), signal.SIGINT)

sys.addaudithook(hook)
sys.argv = ["softmax", "probs", "1,2,3"]
from softmax_cli.__main__ import main
main()
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                               timeout=120)
    assert (completed.returncode, completed.stderr, completed.stdout) == (128 + 2, "", "")


def test_a_signal_python_wraps_in_another_exception_still_ends_the_run_quietly(tmp_path):
    """A SIGTERM inside ``__set_name__`` (a dataclass's field, as a lazily imported module defines it) comes out as
    "RuntimeError: Error calling __set_name__" with the Interrupted as its cause: a traceback and exit 1 before.
    The trace hook only picks the instant; the signal is real."""
    script = """
import os, signal, sys

fired = []

def trace(frame, event, arg):
    if (event == "call" and frame.f_code.co_name == "__set_name__" and not fired
            and frame.f_back is not None and frame.f_back.f_code.co_filename.endswith("tidy.py")):
        fired.append(1)
        os.kill(os.getpid(), signal.SIGTERM)

sys.argv = ["softmax", "probs", "1,2,3", "-o", "out.parquet"]
from softmax_cli.__main__ import main
sys.settrace(trace)
main()
"""
    pytest.importorskip("pyarrow")
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                               timeout=120)
    assert (completed.returncode, completed.stderr) == (128 + 15, "")
    assert list(tmp_path.iterdir()) == []


def test_a_signal_lost_where_it_was_raised_still_ends_the_run(tmp_path):
    """A signal whose Interrupted Python loses where it is raised (seen inside the compile() of a module imported
    without bytecode, in Performance.apply's import of the core: 15 of 750 signals sent 80-120 ms after start)
    ended with exit 0 and the whole output; the run keeps every signal it handles and ends with it."""
    script = """
import os, signal, sys
sys.argv = ["softmax", "probs", "1,2,3", "-o", "p.npy"]
import softmax_cli.__main__ as entry
from softmax_cli import options

apply = options.Performance.apply

def losing_apply(self, *args, **kwargs):
    try:  # as the place the signal lands loses its exception
        os.kill(os.getpid(), signal.SIGUSR2)
    except BaseException:
        pass
    return apply(self, *args, **kwargs)

options.Performance.apply = losing_apply
entry.main()
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                               timeout=120)
    assert (completed.returncode, completed.stderr) == (128 + signal.SIGUSR2, "")
    assert sorted(path.name for path in tmp_path.iterdir()) == []
