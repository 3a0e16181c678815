"""The project's exception types.

Core and input code raise these where a problem is found; the command layer
turns them into one ``error: ...`` line and the contract's exit status in a
single place (``softmax_cli.app.SoftmaxCommand.invoke``).
"""

from __future__ import annotations

import signal

# Handled like Ctrl-C: the command unwinds, removing its temporary files, and exits 128 + the signal. Besides
# Ctrl-C, kill and a closed terminal: every signal whose default ends a process without a core dump that a
# run meets in practice (SLURM's --signal sends USR1 or USR2, ulimit -t XCPU, timers ALRM and VTALRM).
QUIET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM,
                 signal.SIGXCPU, signal.SIGVTALRM)


class SoftmaxError(Exception):
    """Base class: a problem the user can fix, reported without a traceback.

    Where the bad value is, is kept as fields, filled in as the error travels
    out (the core knows the row, a reader the line, its caller the file) and
    formatted once, by :meth:`location`:

    - ``sources``: who holds it, outermost first (``["--labels", "y.npz"]``);
      :meth:`located` adds one on the way out, ``source`` is the outermost;
    - ``member``: the archive member (``"labels.npy"``);
    - ``where``: the position in the data as the finder words it (``"row 3,
      column 2"``, ``"header"``, ``"--temperatures"``);
    - ``line`` and ``column``: the position in a text file (1-based).
    """

    exit_code = 2
    prefix = "error"

    def __init__(self, message: str, *, where: str | None = None, operand: str | None = None,
                 source: str | None = None, member: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        # Which input holds the bad value ("labels", "weights", "upstream", "mask", "q", ...), when it
        # is not the logits: the command layer names that input's source (see operands.naming_sources).
        self.operand = operand
        self.sources: list[str] = [source] if source else []
        self.member = member
        self.line = line
        self.column = column

    @property
    def source(self) -> str | None:
        """The outermost holder named so far (the file, or the option that named it), or None."""
        return self.sources[0] if self.sources else None

    def names(self, name: str) -> bool:
        """Whether ``name`` is already part of the location."""
        return name in self.sources or name == self.where

    def located(self, source: str) -> SoftmaxError:
        """Name the holder of the bad value (a file name, an option) around what is known already."""
        if source and not self.names(source):
            self.sources.insert(0, source)
        return self

    def location(self) -> str:
        """``y.npz, member 'labels.npy', row 3; line 4, column 2``: every field that is known, outermost first."""
        parts = list(self.sources)
        if self.member is not None:
            parts.append(f"member {self.member!r}")
        text = None
        if self.line is not None:
            text = f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")
        inner = f"{self.where}; {text}" if self.where and text else (self.where or text)
        if inner:
            parts.append(inner)
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{self.message} ({where})" if where else self.message


class InputError(SoftmaxError, ValueError):
    """Bad input data: unreadable file, NaN in logits, label out of range...

    Also a ``ValueError``, as NumPy and SciPy raise for bad values, so that
    ``except ValueError`` around a call of :mod:`softmax_cli.core` catches it.
    """


class InputsFailed(InputError):
    """Inputs of a batch run with ``--keep-going`` that failed (each already reported): the others' results stand,
    and so do their gates' verdicts, which the reports still record."""


class UsageError(SoftmaxError):
    """A bad combination of arguments or options."""


class GateFailed(SoftmaxError):
    """A CI gate (``--max-loss``, ``--min-accuracy``) said no: exit status 1."""

    exit_code = 1
    prefix = "gate failed"


class OutputError(SoftmaxError):
    """An output that cannot be written: a full or read-only file system, a closed stream, a FIFO."""


class Interrupted(BaseException):
    """One of :data:`QUIET_SIGNALS`: unwind (temporary files are removed on the way) and exit 128 + the signal.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` stops it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum


def interrupted_within(error: BaseException | None) -> Interrupted | None:
    """The signal's Interrupted that Python wrapped in another exception on its way out (``RuntimeError: Error
    calling __set_name__`` while a lazily imported module defines a dataclass, a cluster that did not start), if
    that is what ended the run."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, Interrupted):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def tell(line: str) -> None:
    """A ``warning: ...`` or ``note: ...`` line for standard error, shown when the command ends.

    A failed run prints one ``error:`` line and nothing else (the contract), so
    what was told before an error is dropped; a failed gate keeps it. The
    lines belong to the current invocation (:mod:`softmax_cli.reporter`).
    """
    from .reporter import reporter

    reporter().tell(line)


def end_telling(show: bool) -> None:
    """Print (or drop) what was told, once the command's outcome is known."""
    from .reporter import reporter

    reporter().end_telling(show)
