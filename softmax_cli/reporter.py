"""Every line on standard error, and the state that belongs to one invocation.

A run speaks on standard error in six kinds of line, all written by the
:class:`Reporter` of its invocation:

- ``error: WHAT (WHERE)``: why the run failed; at most one per run, last;
- ``gate failed: WHAT``: a CI gate said no (exit 1);
- ``failed: WHAT (WHERE)``: one input of a batch (``--keep-going``), as it fails;
- ``warning: ...`` and ``note: ...``: held until the outcome is known, shown
  once each, dropped when the run fails with an error, and by ``--quiet``;
- ``::error title=...::...``: a GitHub Actions workflow command (``--report
  github``), as the runner reads it, with no prefix of ours.

Each line is one line whatever it quotes: a file name holding ``\\r``,
``\\x1e`` or ``\\u2028`` is escaped.

An invocation (:func:`in_invocation`) runs in a fresh copy of the context, so
what a run sets (the reporter, its held lines and ``--quiet``, the core's
thread count) ends with it: two in-process invocations behave like two
processes.
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .errors import SoftmaxError

Value = TypeVar("Value")

# Lines shown only when the run gets on with its work, in the order they were told.
HELD_KINDS = ("warning", "note")


def one_line(text: str) -> str:
    """``text`` with what would break, split or hide the line escaped (``\\r``, ``\\x1e``, ``\\u2028``, ``\\x1b``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


class Reporter:
    """The one writer of standard error for an invocation: it escapes, orders and counts the lines."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.counts: Counter[str] = Counter()
        self._held: list[tuple[str, str]] = []

    def tell(self, line: str) -> None:
        """Hold a ``warning: ...`` or ``note: ...`` line until the outcome is known (an identical line once)."""
        kind, _, text = line.partition(": ")
        if kind not in HELD_KINDS:
            kind, text = "note", line
        if (kind, text) not in self._held:
            self._held.append((kind, text))

    def end_telling(self, show: bool) -> None:
        """Print (or drop) the held lines, once the command's outcome is known."""
        held, self._held = self._held, []
        if show:
            for kind, text in held:
                self.line(kind, text)

    def note_now(self, text: str) -> None:
        """A ``note:`` the user needs while the run goes on (the Dask dashboard's address).

        Printed at once when standard error is a terminal, where someone is
        watching, as the progress bar is; otherwise (a script's log) held as
        every note is, so that a failed or interrupted run's ``error:`` line,
        or its silence, stays alone.
        """
        if sys.stderr is not None and sys.stderr.isatty():
            self.line("note", text)
        else:
            self.tell(f"note: {text}")

    def failed(self, error: SoftmaxError) -> None:
        """One input of a batch failed; the run goes on, and its one ``error:`` line counts the failures."""
        self.line("failed", str(error))

    def gate_failed(self, error: SoftmaxError) -> None:
        """A gate said no, for the run or one input of a batch."""
        self.line(error.prefix, str(error))

    def error(self, error: SoftmaxError) -> None:
        """The run's ``error:`` line (or its ``gate failed:`` line): the last word, printed once."""
        if os.environ.get("SOFTMAX_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        if error.prefix == "error" and self.counts["error"]:
            return  # the contract: at most one error line; the first one says why the run stopped
        self.line(error.prefix, str(error))

    def annotation(self, command: str) -> None:
        """A CI system's own line (a GitHub workflow command), written as it is: its syntax is the runner's."""
        self.counts["annotation"] += 1
        if sys.stderr is not None:
            print(one_line(command), file=sys.stderr)

    def line(self, kind: str, text: str) -> None:
        if self.quiet and kind in HELD_KINDS:
            return
        self.counts[kind] += 1
        stream = sys.stderr
        if stream is None:
            return
        print(f"{kind}: {one_line(text)}", file=stream)


class Invocation:
    """What one run of a command owns: its reporter (more may join: state that must end with the run)."""

    def __init__(self) -> None:
        self.reporter = Reporter()
        # A signal's Interrupted, kept as it is raised: where Python could not unwind it (see check_signals) it is
        # raised again.
        self.swallowed_signal: BaseException | None = None


# What the process's entry point does once a run's outcome is decided (the console script ignores
# further signals, so a late one cannot change the status); unset when a test runs commands in process.
when_settled: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("softmax_when_settled",
                                                                                         default=None)


def check_signals() -> None:
    """Raise again a signal's Interrupted that Python swallowed, before an output is committed or the run settles.

    A signal arriving while the main thread runs a callback Python cannot
    unwind from (a weakref's, an import lock's, a ``__del__``) raised its
    Interrupted there, where Python prints "Exception ignored" and carries on;
    one arriving inside ``compile()`` (a module imported without bytecode) is
    lost there. The entry point keeps each (``__main__``), and it takes effect
    here.
    """
    swallowed = current().swallowed_signal
    if swallowed is not None:
        raise swallowed


def settled() -> None:
    """The run's outcome is decided (its outputs in place, its status known): tell the entry point."""
    check_signals()
    hook = when_settled.get()
    if hook is not None:
        hook()


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("softmax_invocation", default=None)
# Used from Python outside any command (the API, a test rendering a Result): lines wait here.
_outside = Invocation()


def current() -> Invocation:
    """The running invocation (outside a command: the process's own)."""
    return _current.get() or _outside


def reporter() -> Reporter:
    """The reporter of the running invocation."""
    return current().reporter


def in_invocation(function: Callable[..., Value], *args, **kwargs) -> Value:
    """``function(*args, **kwargs)`` as one invocation: in a fresh copy of the context, with its own state."""

    def start() -> Value:
        # A signal swallowed before the run began (while the console script imported it) stops this run.
        check_signals()
        _current.set(Invocation())
        return function(*args, **kwargs)

    return contextvars.copy_context().run(start)
