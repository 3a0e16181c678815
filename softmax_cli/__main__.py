"""Entry point of the ``softmax`` command and of ``python -m softmax_cli``.

Before anything heavy is imported: SIGINT, SIGTERM, SIGHUP and the other signals of
:data:`~softmax_cli.errors.QUIET_SIGNALS` become a quiet
:class:`~softmax_cli.errors.Interrupted` (temporary files are removed on the
way out, the exit status is 128 + the signal's number) until the run's outcome
is decided, and are ignored from then on, through Python's shutdown (a late
signal cannot change the status or kill the process), standard streams the
caller closed are held open on /dev/null so no file the command opens takes
their place, and the last-resort filter keeps raw warnings off standard error.
"""

import signal

_arrived: list[int] = []


def _remember(signum, frame) -> None:
    _arrived.append(signum)


# From the moment the console script imports this module until main() runs, a
# signal is remembered rather than raised (nothing could catch it yet). SIGINT
# and SIGTERM first, before even errors is imported: Python's own SIGINT handler
# would raise KeyboardInterrupt with a traceback while it is.
signal.signal(signal.SIGINT, _remember)
signal.signal(signal.SIGTERM, _remember)

from .errors import QUIET_SIGNALS, Interrupted, interrupted_within  # noqa: E402  (signal and nothing else)

for _signum in QUIET_SIGNALS:
    signal.signal(_signum, _remember)

import os  # noqa: E402  (after the handlers, on purpose)
import sys  # noqa: E402
import warnings  # noqa: E402


def _interrupt(signum, frame) -> None:
    interrupted = Interrupted(signum)
    # Kept by the run as well as raised: Python swallows an exception raised in some places (a callback, the
    # compile() of a module imported without bytecode), and the run then raises it again before it settles.
    if (reporter := sys.modules.get("softmax_cli.reporter")) is not None:
        reporter.current().swallowed_signal = interrupted
    raise interrupted


def _keep_swallowed_interrupt(unraisable) -> None:
    """An Interrupted raised inside a callback Python cannot unwind is kept for the run, not printed and lost."""
    if isinstance(unraisable.exc_value, Interrupted):
        from .reporter import current

        current().swallowed_signal = unraisable.exc_value
        return
    sys.__unraisablehook__(unraisable)


def _hold_closed_streams() -> None:
    """Give a closed standard stream /dev/null: stdin reads empty, stderr is discarded, stdout stays ``None``.

    Otherwise the next file opened gets descriptor 0, 1 or 2, and with stderr
    closed ``print(..., file=sys.stderr)`` writes to standard output. A closed
    standard output keeps ``sys.stdout`` as ``None``: a result sent there is
    refused in one line (render.py), help and version print nothing.
    """
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


def _ignore_signals() -> None:
    """The run's outcome is decided: the quiet signals no longer change it, up to the process's end.

    Ignored, not held: Python resets the handlers it installed to the default
    action while it winds down, when a late SIGTERM would kill the process by
    the signal (a parent saw -15); an ignored signal stays ignored, in every
    thread.
    """
    for signum in QUIET_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def main() -> None:
    sys.unraisablehook = _keep_swallowed_interrupt
    try:
        try:
            # Inside the try: a signal landing between two of these raises Interrupted already.
            for signum in QUIET_SIGNALS:
                signal.signal(signum, _interrupt)
            early = _arrived[:1]
            _arrived.clear()  # the start-up's, not the process's: nothing of it outlives this call
            if early:
                raise Interrupted(early[0])
            _hold_closed_streams()
            # The last resort of "no raw warning reaches the user": the core keeps its
            # arithmetic quiet where it knows an overflow is the answer, and anything a
            # path still lets through is dropped here, unless asked for with -W /
            # PYTHONWARNINGS or SOFTMAX_DEBUG=1.
            if not sys.warnoptions and os.environ.get("SOFTMAX_DEBUG") != "1":
                warnings.simplefilter("ignore")
            # The command shares work out over the cores with its own threads; OpenBLAS
            # threads would then spin-wait against them (attention on a busy 2-core
            # machine: 10.9 s with two BLAS threads, 0.93 s with one). This must be set
            # before NumPy is imported; a user's own setting wins.
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            from .cli import main as run
            from .reporter import when_settled

            when_settled.set(_ignore_signals)
            run()
        finally:
            # Whatever ended the run (its status, an error, a signal), Python now winds down.
            _ignore_signals()
    except Interrupted as stop:
        _leave(stop.exit_code)
    except SystemExit as end:
        _leave(end.code)
    except BaseException as error:
        stop = interrupted_within(error)
        if stop is None:
            raise
        _leave(stop.exit_code)


def _leave(status) -> None:
    """End the process with ``status`` without Python's wind-down where nothing needs it.

    Tearing down every module and object (NumPy's, Typer's, Click's) takes
    about 70 ms, a fifth of ``softmax probs 3 2 1``, and does nothing a finished
    run needs: outputs are in place, standard output was flushed by the run
    (``app.run``, which decided the status on a failed flush) and the signals
    are ignored. A run that started processes (a Dask cluster) or left a
    thread running winds down as usual, so their exit handlers still run.
    """
    import threading

    if (not isinstance(status, int) or "multiprocessing" in sys.modules
            or any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread())):
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except (OSError, ValueError):
            pass  # the run already reported what standard output refused; stderr has no one left to tell
    os._exit(status)


if __name__ == "__main__":
    main()
