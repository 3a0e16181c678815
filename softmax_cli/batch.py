"""Several inputs in one call: ``softmax probs runs/*.npy --out-dir probs/``.

Each input gets its own output, written atomically, so a failure never leaves
a partial or temporary file behind and finished outputs stay complete. A bad
input stops the batch (exit 2, naming it); with ``--keep-going`` the rest are
processed, each failure is a ``failed: WHY (FILE)`` line, and the one ``error:``
line at the end counts them. Without ``--out-dir``, text
formats are printed one input after another, each under its file name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import render
from .errors import GateFailed, InputError, InputsFailed, OutputError, SoftmaxError, UsageError
from .formats import registry
from .formats.base import note
from .formats.registry import SUFFIXES, output_for_path
from .inputs import Loaded, in_natural_order, is_number_text
from .operands import Operands, locate
from .options import BatchOutput as Outputs
from .progress import Progress
from .render import BINARY_FORMATS, OutputFormat
from .reporter import reporter

if TYPE_CHECKING:
    from .reports import Ledger


def batch_sources(inputs: list[str] | None) -> list[str] | None:
    """The files of a batch (directories expanded), or None for typed numbers or a single source."""
    if not inputs or any(is_number_text(token) for token in inputs):
        return None  # numbers (or numbers mixed with files, which load() refuses)
    if "" in inputs:  # Path("") is the current folder: an unset "$VAR" would read every file in it
        raise UsageError("an input is an empty name (an unset shell variable?); give a file, a folder (. for this "
                         "one), numbers, or - for standard input", where=f"input {inputs.index('') + 1}")
    if len(inputs) == 1 and not _is_folder(inputs[0]):
        return None
    sources = []
    for item in inputs:
        path = Path(item)
        folder = _is_folder(item)
        if folder and registry.is_zarr_array(path):  # a folder, but one array, not a batch of files
            raise UsageError(registry.zarr_refusal(path, "logits"), where=item)
        if folder:
            found = [str(p) for p in in_natural_order(p for p in path.iterdir()
                                                      if p.is_file() and p.suffix.lower() in SUFFIXES)]
            folders = sum(1 for p in path.iterdir() if p.is_dir())
            if folders:  # a batch reads one folder, not a tree: say so rather than skip them unseen
                note(f"{folders} subfolder{'s' if folders > 1 else ''} of {item} not read "
                     "(a batch reads the files directly in a folder)")
            if not found:
                raise InputError(f"no files ending in {', '.join(SUFFIXES)}", where=item)
            sources += found
        else:
            sources.append(item)
    return sources


def _is_folder(item: str) -> bool:
    """Whether the input ``item`` names a folder; a name the system refuses (too long) is that input's error."""
    try:
        return Path(item).is_dir()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=item) from None


def planned_outputs(sources: list[str], outputs: Outputs) -> list[tuple[OutputFormat, Path | None]]:
    """The format and file (None: standard output) of each source's output, refusing clashes."""
    if outputs.out_dir is None:
        if outputs.output is not None:
            raise UsageError("-o names one output; for several inputs use --out-dir DIR")
        fmt = outputs.fmt or render.stdout_format()
        if fmt in BINARY_FORMATS:
            raise UsageError(f"several inputs cannot share one {fmt.value} output; use --out-dir DIR")
        return [(fmt, None)] * len(sources)
    if outputs.output is not None:
        raise UsageError("give -o FILE or --out-dir DIR, not both")
    planned, seen = [], {}
    for source in sources:
        # Without -f each output keeps its input's format, or the nearest one we write.
        own = output_for_path(source)
        fmt = outputs.fmt or (OutputFormat(own.name) if own else OutputFormat.csv)
        if fmt is OutputFormat.table:
            raise UsageError("--out-dir writes files; choose a file format with -f")
        path = outputs.out_dir / f"{Path(source).stem}.{fmt.value}"
        if path in seen:
            raise UsageError(f"{seen[path]} and {source} would both write {path}")
        seen[path] = source
        planned.append((fmt, path))
    return planned


def inputs_failed(failed: list[str], total: int) -> InputsFailed:
    """The last word of a batch whose inputs ``failed`` (each already reported on its own line)."""
    return InputsFailed(f"{len(failed)} of {total} inputs failed: {', '.join(failed)}")


@contextmanager
def output_folder(folder: Path | None) -> Iterator[None]:
    """``--out-dir``, made with its missing parents for the run inside; those it made are removed again when the
    run fails before writing into them, so a refused run leaves nothing behind."""
    if folder is None:
        yield
        return
    made = [path for path in (folder, *folder.parents) if not path.exists()]  # innermost first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the output folder: {error.strerror}", where=str(folder)) from None
    try:
        yield
    except BaseException:  # a signal too
        for path in made:
            try:
                path.rmdir()
            except OSError:  # an output was written into it, or it is gone
                break
        raise


def run(
    inputs: list[str] | None,
    outputs: Outputs,
    load: Callable[[list[str] | None], Loaded],
    process: Callable[[Loaded, render.Sink], None],
    *,
    operands: Operands | None = None,
    ledger: Ledger | None = None,
) -> None:
    """Load, process and write every input; the ``operands`` are never overwritten.

    ``operands`` are what the logits are scored against, by the name the core
    gives them (``{"labels": ..., "weights": ...}``): an error about one of
    them names its source, any other error the input's. The ``ledger``'s report
    files are checked against the same inputs and against the outputs.
    """
    operands = operands or {}
    side_inputs = [path for operand in operands.values() if operand for path in operand.paths]
    sources = batch_sources(inputs)
    if sources is None and outputs.out_dir is None:
        loaded = load(inputs)
        try:
            protected = render.Inputs(loaded.paths + side_inputs)
            if ledger is not None:
                ledger.check(protected, [outputs.output])
            process(loaded, render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision,
                                             protected))
        except SoftmaxError as error:  # name the file, as a batch does
            raise locate(error, loaded.source, operands) from None
        return
    if sources is None:
        if not inputs or any(is_number_text(token) for token in inputs):
            raise UsageError("--out-dir needs input files")
        sources = list(inputs)
    planned = planned_outputs(sources, outputs)
    protected = render.Inputs([Path(s) for s in sources] + side_inputs)  # resolved once, not once per output
    if ledger is not None:
        ledger.check(protected, [path for _, path in planned])
    if not outputs.force and not outputs.keep_going:
        # Refuse before writing anything rather than stop half-way through.
        existing = [str(path) for _, path in planned if path is not None and path.exists()]
        if existing:
            raise UsageError(f"{len(existing)} output(s) exist ({', '.join(existing[:3])}"
                             f"{', ...' if len(existing) > 3 else ''}); pass --force to replace them")
    failed, gates = [], []
    with output_folder(outputs.out_dir), Progress(len(sources), "files", "files") as progress:
        for source, (fmt, path) in zip(sources, planned):
            try:
                sink = render.open_sink(fmt, path, outputs.force, outputs.precision, protected)
                sink.label = source if path is None else None
                process(load([source]), sink)
            except GateFailed as error:
                gates.append(source)
                reporter().gate_failed(locate(error, source, operands))
            except SoftmaxError as error:
                if not outputs.keep_going:
                    raise locate(error, source, operands) from None
                failed.append(source)
                # One `failed:` line per input; the single `error:` line is the summary below.
                reporter().failed(locate(error, source, operands))
            progress.advance()
        if failed:
            raise inputs_failed(failed, len(sources))
    if gates:
        raise GateFailed(f"{len(gates)} of {len(sources)} inputs failed their gate: {', '.join(gates)}")
