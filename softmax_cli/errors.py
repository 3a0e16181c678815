"""The project's exception types.

Core and input code raise these where a problem is found; the command layer
turns them into one ``error: ...`` line and the contract's exit status in a
single place (``softmax_cli.app.SoftmaxCommand.invoke``).
"""

from __future__ import annotations

import signal
import sys

# Handled like Ctrl-C: the command unwinds, removing its temporary files, and exits 128 + the signal.
QUIET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SoftmaxError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = 2
    prefix = "error"

    def __init__(self, message: str, *, where: str | None = None, operand: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        # Which input holds the bad value ("labels", "weights", "upstream", "mask", "q", ...), when it
        # is not the logits: the command layer names that input's source (see operands.naming_sources).
        self.operand = operand

    def located(self, where: str) -> "SoftmaxError":
        """Prefix the location (a file name, say) to whatever is known already."""
        self.where = where if not self.where else f"{where}, {self.where}"
        return self

    def __str__(self) -> str:
        return f"{self.message} ({self.where})" if self.where else self.message


class InputError(SoftmaxError, ValueError):
    """Bad input data: unreadable file, NaN in logits, label out of range...

    Also a ``ValueError``, as NumPy and SciPy raise for bad values, so that
    ``except ValueError`` around a call of :mod:`softmax_cli.core` catches it.
    """


class UsageError(SoftmaxError):
    """A bad combination of arguments or options."""


class GateFailed(SoftmaxError):
    """A CI gate (``--max-loss``, ``--min-accuracy``) said no: exit status 1."""

    exit_code = 1
    prefix = "gate failed"


class OutputError(SoftmaxError):
    """An output that cannot be written: a full or read-only file system, a closed stream, a FIFO."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: unwind (temporary files are removed on the way) and exit 128 + the signal.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` stops it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum


_told: list[str] = []


def tell(line: str) -> None:
    """A ``warning: ...`` or ``note: ...`` line for standard error, shown when the command ends.

    A failed run prints one ``error:`` line and nothing else (the contract), so
    what was told before an error is dropped; a failed gate keeps it.
    """
    _told.append(line)


def end_telling(show: bool) -> None:
    """Print (or drop) what was told, once the command's outcome is known."""
    lines = list(_told)
    _told.clear()
    if show:
        for line in lines:
            print(line, file=sys.stderr)
