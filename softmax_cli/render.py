"""Where a :class:`Result` goes: the ``-f`` choices, the sink (standard output or an atomic file), tables.

The file formats themselves (csv, tsv, json, npy, npz) are written by their
modules in :mod:`softmax_cli.formats`; this module picks one, checks the
destination before any work is done, and owns the atomic-file machinery
(temporary file in the destination folder, rename, ``--force``, never
overwriting an input) for every format.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import QUIET_SIGNALS, OutputError, UsageError
from .formats import registry
from .reporter import check_signals

if TYPE_CHECKING:
    import numpy as np

    from .result import Result

# When the command started, near enough: this module is imported with the options (their -f choices).
STARTED = time.monotonic()

# The -f choices: a table for people, then every format the registry can write.
OutputFormat = Enum("OutputFormat", [("table", "table"), *((fmt.name, fmt.name) for fmt in registry.WRITERS)],
                    type=str, module=__name__)
BINARY_FORMATS = tuple(OutputFormat(fmt.name) for fmt in registry.WRITERS if fmt.binary)
# The text formats a pipeline reads: a reduction's summary first, its per-row arrays only with --per-row.
SUMMARY_FIRST = (OutputFormat.csv, OutputFormat.tsv, OutputFormat.json)


@dataclass
class Sink:
    """Where and how a result is written, decided before any work is done."""

    fmt: OutputFormat
    path: Path | None
    force: bool
    precision: int | None
    label: str | None = None  # in a batch printed to stdout: the input each result comes from


class Inputs:
    """The files a run reads, which no output may be: by resolved path, and by file identity (hard links).

    Built once per run, so a batch of N files checks each output in constant
    time (comparing every output with every input was quadratic: 42 ms a file
    in a batch of 1,000).
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.resolved = {destination(path) for path in self.paths}
        self.identities = set()
        for path in self.paths:
            try:
                status = os.stat(path)
            except (OSError, ValueError):
                continue
            self.identities.add((status.st_dev, status.st_ino))

    @classmethod
    def of(cls, inputs: Sequence[Path] | Inputs) -> Inputs:
        """``inputs`` as an :class:`Inputs`, built from paths only when they are not one already."""
        return inputs if isinstance(inputs, Inputs) else cls(inputs)

    def hold(self, target: Path) -> bool:
        """Whether writing ``target`` (a resolved path) would overwrite one of the inputs."""
        if target in self.resolved:
            return True
        try:
            status = os.stat(target)
        except (OSError, ValueError):
            return False
        return (status.st_dev, status.st_ino) in self.identities


def _stdout_is_terminal() -> bool:
    return sys.stdout is not None and sys.stdout.isatty()


def stdout_format() -> OutputFormat:
    """The format standard output gets without ``-f``: a table for people, CSV for pipes."""
    return OutputFormat.table if _stdout_is_terminal() else OutputFormat.csv


def open_sink(
    fmt: OutputFormat | None,
    output: Path | None,
    force: bool,
    precision: int | None,
    inputs: Sequence[Path] | Inputs = (),
) -> Sink:
    """Resolve the format and check the destination, so bad usage fails before computing."""
    if output is not None and str(output) == "-":  # inputs read '-' as standard input, so people type it
        raise UsageError("-o - would write a file named '-'; leave out -o to write to standard output")
    if fmt is None:
        if output is not None:
            written = registry.output_for_path(output)
            if written is None:
                raise UsageError(
                    f"cannot tell the output format from {output.name!r}; "
                    f"pass -f {'|'.join(f.value for f in OutputFormat)}"
                )
            fmt = OutputFormat(written.name)
        else:
            fmt = stdout_format()
    if output is None:
        if fmt in BINARY_FORMATS and _stdout_is_terminal():
            raise UsageError(f"refusing to write binary {fmt.value} to a terminal; redirect it or use -o FILE")
        return Sink(fmt, None, force, precision)
    check_destination(output, force, inputs)
    return Sink(fmt, output, force, precision)


def destination(output: Path) -> Path:
    """The file ``-o`` writes: a symbolic link is followed, as the shell's ``>`` does; the link itself stays."""
    try:
        return Path(os.path.realpath(output))
    except ValueError:  # a NUL byte (possible in process, never in a real argv) names no file to follow
        return Path(output)


def check_destination(output: Path, force: bool, inputs: Sequence[Path] | Inputs) -> None:
    """Refuse an output that is an input, a folder, not a regular file, in a missing folder, or exists without ``--force``.

    A FIFO or a device node is never replaced, even with ``--force``; a
    dangling symbolic link counts as existing (its target is created only with
    ``--force``).
    """
    try:
        _check_destination(output, force, inputs)
    except OSError as error:  # a name too long for the file system, a loop of links: the output's own fault
        raise UsageError(f"cannot write to {str(output)!r}: {error.strerror or error}") from None


def _check_destination(output: Path, force: bool, inputs: Sequence[Path] | Inputs) -> None:
    target = destination(output)
    if Inputs.of(inputs).hold(target):
        raise UsageError(f"the output {str(output)!r} is an input; inputs are never overwritten")
    if target.is_dir():
        raise UsageError(f"the output {str(output)!r} is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"the output folder {str(target.parent)!r} does not exist")
    if target.exists() and not target.is_file():
        raise UsageError(f"the output {str(output)!r} is not a regular file (a FIFO or a device); "
                         "-o replaces regular files only")
    if os.path.lexists(output) and not force:
        dangling = "" if target.exists() else f" (a symbolic link to the missing {str(target)!r})"
        raise UsageError(f"{str(output)!r} exists{dangling}; pass --force to replace it")
    check_writable(target, output)


def check_writable(target: Path, output: Path) -> None:
    """Refuse a destination whose folder takes no new file (read-only, no permission), before any work.

    Asked of the system (``access``, which reports a read-only file system to
    root too) rather than tried with a file, which a signal could leave behind.
    ``--scheduler`` runs reach the cluster only after it.
    """
    import errno

    folder = target.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return
    try:
        read_only = hasattr(os, "statvfs") and bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    code = errno.EROFS if read_only else errno.EACCES
    raise cannot_write_in(target, output, OSError(code, os.strerror(code))) from None


def cannot_write_in(target: Path, output: Path, error: OSError) -> OutputError:
    return OutputError(f"cannot write in {str(target.parent)!r}: {error.strerror}", where=str(output))


def table_text(result: Result, precision: int | None, stream, terminal: bool) -> None:
    from . import tables  # Rich is imported only when a table is drawn

    tables.draw(result, precision, stream, terminal)


# ---------------------------------------------------------------- writing

def summary_first(result: Result, fmt: OutputFormat) -> Result:
    """``result`` as ``fmt`` writes it: CSV, TSV and JSON get a reduction's summary, per-row arrays on request.

    Without ``--per-row`` the per-row arrays (and the input's row names, which
    label them) are left out, and a note says where they are; with it, JSON
    lists the summary before them. Tables and binary formats keep everything.
    """
    present = [name for name in result.per_row_names if name in result.arrays]
    if not present or fmt not in SUMMARY_FIRST:
        return result
    summary = {name: value for name, value in result.arrays.items() if name not in present}
    if not result.per_row:
        from .formats.base import note

        note(f"the per-row figures ({', '.join(present)}) are in -f npz, or in {fmt.value.upper()} with --per-row")
        return replace(result, arrays=summary, rows=None)
    if fmt is OutputFormat.json:
        return replace(result, arrays=summary | {name: result.arrays[name] for name in present})
    return result


def _write_result(result: Result, sink: Sink, stream: BinaryIO, terminal: bool) -> None:
    from .formats.base import WriteOptions

    result = summary_first(result, sink.fmt)
    fmt = None if sink.fmt is OutputFormat.table else registry.named(sink.fmt.value)
    if fmt is not None and fmt.binary:
        fmt.write(result, stream, WriteOptions(sink.precision, sink.label))
        return
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n", write_through=True)
    try:
        if fmt is None:
            arrays = {k: v.materialise() if hasattr(v, "blocks") else v for k, v in result.arrays.items()}
            title = f"{sink.label}: {result.title}" if sink.label else result.title
            table_text(replace(result, arrays=arrays, title=title), sink.precision, text, terminal)
        else:
            fmt.write(result, text, WriteOptions(sink.precision, sink.label))
        text.flush()
    finally:
        text.detach()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_prefix(path: Path) -> str:
    """``.NAME.`` for the temporary of ``path``, NAME shortened so the whole name fits the folder's limit.

    mkstemp adds 8 characters and ``.part`` the suffix: 15 beyond NAME.
    """
    try:
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    return f".{path.name[: max(1, name_max - 15)]}."


def atomic_file(path: Path, force: bool, fill) -> None:
    """Call ``fill(stream, temporary_path)``, then rename the temporary file onto ``path``.

    The temporary file sits in the destination folder, so the rename is atomic
    and an error or an interrupt never leaves a partial output behind; its
    name ends in ``.part``, so one left by SIGKILL is never taken for an
    output. It is written through the descriptor ``mkstemp`` opened: reopening
    it with "wb" truncates it, and ext4 then flushes the whole file to disk on
    close (0.6-0.75 s per 2 GiB measured here). A file system that refuses
    (full, read-only, no permission) is one :class:`OutputError`.
    """
    import tempfile

    target = destination(path)
    temporary = None
    # Signals wait while the temporary is created, so an interrupt always finds its name to remove.
    signal.pthread_sigmask(signal.SIG_BLOCK, QUIET_SIGNALS)
    try:
        try:
            descriptor, temporary = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".part",
                                                     dir=target.parent)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, QUIET_SIGNALS)
        with os.fdopen(descriptor, "wb") as stream:
            fill(stream, temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        if os.path.lexists(path) and not force:
            raise UsageError(f"{str(path)!r} exists; pass --force to replace it")
        check_signals()
        os.replace(temporary, target)
    except OSError as error:
        if temporary is None:
            raise cannot_write_in(target, path, error) from None
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"cannot write the output: {error.strerror or error}", where=str(path)) from None
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise


def tell_written(path: Path, name: str, shape: tuple[int, ...], dtype) -> None:
    """After a long job on a terminal, one ``note:`` line says what was written: path, shape, dtype, size, time.

    Long is the progress bar's second (:data:`softmax_cli.progress.SHOW_AFTER_SECONDS`): a job that
    showed a bar, which is erased when it ends, says where its work went; a quick one, or one whose
    standard error is not a terminal (a script's log), says nothing more.
    """
    from .progress import SHOW_AFTER_SECONDS

    seconds = time.monotonic() - STARTED
    if seconds < SHOW_AFTER_SECONDS or sys.stderr is None or not sys.stderr.isatty():
        return
    from .formats.base import note
    from .limits import describe_bytes

    size = describe_bytes(os.path.getsize(destination(path)))
    note(f"wrote {path}: {name} of shape {tuple(shape)}, {dtype}, {size}, in {seconds:.1f} s")


def write_npy_in_place(sink: Sink, shape: tuple[int, ...], dtype: np.dtype, fill) -> None:
    """Write an ``.npy`` too large for memory: ``fill(out)`` writes into a memory map of the file."""
    import numpy as np

    from .formats import npy

    atomic_file(sink.path, sink.force, lambda _, temporary: npy.fill_in_place(temporary, shape, dtype, fill))
    tell_written(sink.path, "array", shape, np.dtype(dtype))


def write(result: Result, sink: Sink) -> None:
    """Write ``result`` to standard output, or to a file atomically (see :func:`atomic_file`).

    An existing file is kept unless ``--force``.
    """
    if sink.path is None:
        if sys.stdout is None:
            raise OutputError("standard output is closed; write to a file with -o FILE")
        stream = sys.stdout.buffer
        try:
            _write_result(result, sink, stream, terminal=sys.stdout.isatty())
            stream.flush()
        except BrokenPipeError:
            raise  # the reader went away: app.py ends quietly
        except OSError as error:
            raise OutputError(f"cannot write to standard output: {error.strerror or error}") from None
        return

    atomic_file(sink.path, sink.force, lambda stream, _: _write_result(result, sink, stream, terminal=False))
    tell_written(sink.path, result.primary_name, tuple(result.primary.shape), result.primary.dtype)
