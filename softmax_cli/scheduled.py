"""The commands on a Dask cluster (``--scheduler``): what a command calls instead of :func:`softmax_cli.batch.run`.

The engine (:mod:`softmax_cli.cluster`) runs the core over row ranges of
``.npy`` files and Zarr arrays; this module puts it behind the commands. It
reads the inputs' headers and checks every destination with render's rules
before connecting (an output is never an input, never replaced without
``--force``). The cluster starts when the operation submits its first units,
after the checks it makes on the client (labels, ``k``, weights); then the
dashboard link is a ``note:`` line (at once on a terminal, else held as
notes are). It follows the units with the progress bar and reports failures
as a batch does
(the first one stops the run; with ``--keep-going`` each is listed and the
run exits 2). Array results are written by the workers into reserved
temporary files next to their destinations and renamed into place only when
every unit of that output succeeded.

A command asks :func:`address` first; None means the in-process path,
unchanged, and then neither ``dask`` nor the engine's package is imported.
A new command follows the same steps as ``loss``::

    if (cluster := scheduled.address(scheduler)) is not None:
        sources = scheduled.sources_of(inputs, source)             # refusals, headers, probabilities
        sink = scheduled.result_sink(sources, outputs, side_paths)  # render's destination rules
        with scheduled.session(cluster, sources, outputs.keep_going, "topk") as run:
            outcome = cluster.<operation>(run, ...)             # an Outcome(value, failures)
        render.write(Result(...), sink)
        scheduled.raise_failures(outcome, sources)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import batch, render
from .errors import InputError, UsageError
from .options import BatchOutput, Output, Source
from .progress import Progress
from .render import OutputFormat
from .reporter import reporter

if TYPE_CHECKING:
    from .inputs import Loaded
    from .reports import Ledger

SCHEDULER_VARIABLE = "SOFTMAX_SCHEDULER"


def address(option: str | None) -> str | None:
    """The scheduler of this run (``--scheduler``, else ``$SOFTMAX_SCHEDULER``), or None: run in process."""
    chosen = option or os.environ.get(SCHEDULER_VARIABLE) or None
    return chosen if chosen is None or chosen.strip() else None


def sources_of(inputs: list[str] | None, source: Source, unsupported: Sequence[tuple[str, object]] = (),
               probabilities: bool = False) -> list:
    """The engine's sources for the command's inputs, after refusing what the engine cannot honour.

    The workers read whole ``.npy`` files and Zarr arrays by path, class axis
    last; ``unsupported`` names a command's options that have no cluster path
    (``("--upstream", upstream)``), refused when given. Logits that look like
    probabilities are refused as in process, unless ``probabilities`` says
    they are (``--from-probs``).
    """
    from .cluster import expand_sources
    from .inputs import is_number_text

    refused = [option for option, given in unsupported if given]
    if source.key is not None or source.classes is not None:
        refused.append("--key" if source.key is not None else "--classes")
    if refused:
        raise UsageError(f"{' and '.join(refused)} cannot run on a cluster; leave out --scheduler")
    if not inputs or any(is_number_text(token) or token == "-" for token in inputs):
        raise UsageError("--scheduler reads .npy files and Zarr arrays by path (on storage every worker "
                         "reaches), not numbers or standard input")
    sources = expand_sources(inputs)
    if any(source.axis not in (-1, len(s.shape) - 1) for s in sources):
        raise UsageError("--scheduler needs the class axis last (--axis -1)")
    if not probabilities:
        refuse_probabilities(sources, sources[0].path, source)
    return sources


def stand_in(sources: list, spec: str):
    """The cluster's input as the in-process code sees its shape and dtype (a ``Loaded``); no value is read.

    One array keeps its shape; shards of one shape but their first axis join
    along it, others are rows of classes. Labels and masks are fitted to it
    (:mod:`softmax_cli.positions`) on the client, as in process.
    """
    import numpy as np

    from .inputs import Loaded

    shapes = [s.shape for s in sources]
    if len(sources) == 1:
        shape = shapes[0]
    elif len(shapes[0]) > 1 and len({shape[1:] for shape in shapes}) == 1:
        shape = (sum(shape[0] for shape in shapes), *shapes[0][1:])
    else:
        shape = (sum(s.n_rows for s in sources), sources[0].n_cols)
    # A broadcast scalar has any shape in no memory; nothing reads its values.
    values = np.broadcast_to(np.zeros((), dtype=np.dtype(sources[0].dtype)), shape)
    return Loaded(values, spec, paths=[Path(s.path) for s in sources])


def refuse_probabilities(sources: list, spec: str, source: Source) -> None:
    """The in-process refusal of probability-shaped logits (``--from-probs`` or ``--as-logits`` says which they are).

    It looks at the first rows only (:func:`softmax_cli.core.probability_shaped`),
    so the client reads those of the first input, before the cluster starts.
    """
    if source.as_logits:
        return
    from . import inputs

    inputs.refuse_probabilities(head_of(sources, spec), -1)


def head_of(sources: list, spec: str) -> Loaded:
    """The first rows of the first input, read on the client: what the probability check looks at."""
    from .cluster.units import Unit, read_rows
    from .core.plausibility import PROBABILITY_CHECK_ROWS
    from .inputs import Loaded

    first = sources[0]
    check_one_row([first])  # before its first rows are read
    try:
        head = read_rows(Unit(first, 0, 0, min(first.n_rows, PROBABILITY_CHECK_ROWS), 0))
    except InputError as error:
        raise error.located(first.path) from None
    return Loaded(head, spec)


def result_sink(sources: list, outputs: Output, side_inputs: Sequence[Path] = (),
                ledger: Ledger | None = None) -> render.Sink:
    """Where one result over all the inputs goes (loss, topk, temperature-sweep), checked before any work, with the
    ``ledger``'s report files."""
    if getattr(outputs, "out_dir", None) is not None:
        raise UsageError("--scheduler makes one result over all the inputs; --out-dir is for probs and grad")
    protected = render.Inputs([Path(s.path) for s in sources] + list(side_inputs))
    if ledger is not None:
        ledger.check(protected, [outputs.output])
    return render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, protected)


def array_destinations(sources: list, outputs: BatchOutput, side_inputs: Sequence[Path] = ()) -> list[Path]:
    """One ``.npy`` destination per source, checked as render checks every output, before any work.

    One input takes ``-o FILE.npy``; several take ``--out-dir DIR``, named
    as a batch names its outputs.
    """
    protected = [Path(s.path) for s in sources] + list(side_inputs)
    if outputs.out_dir is None:
        if len(sources) > 1:
            raise UsageError("several inputs make one output each: use --out-dir DIR")
        if outputs.output is None:
            raise UsageError("--scheduler writes array results to a file: give -o FILE.npy or --out-dir DIR")
        sink = render.open_sink(outputs.fmt, outputs.output, outputs.force, outputs.precision, protected)
        paths = [(sink.fmt, sink.path)]
    else:
        paths = batch.planned_outputs([s.path for s in sources],
                                      dataclasses.replace(outputs, fmt=outputs.fmt or OutputFormat.npy))
        for _, path in paths:
            render.check_destination(path, outputs.force, protected)
    if any(fmt is not OutputFormat.npy for fmt, _ in paths):
        raise UsageError("--scheduler writes array results as .npy files (-f npy)")
    return [path for _, path in paths]


def unit_bytes() -> int:
    """Input bytes per work unit: ``$SOFTMAX_UNIT_BYTES`` (the tests split small files with it), else the engine's."""
    from .cluster import DEFAULT_UNIT_BYTES
    from .limits import bytes_from_environment

    return bytes_from_environment("SOFTMAX_UNIT_BYTES", DEFAULT_UNIT_BYTES)


# What the client holds per planned unit (the unit, its future, the scheduler's task state), at most.
PLANNED_UNIT_BYTES = 4 << 10


def check_plan(sources: list, unit_bytes: int, row_bytes: int) -> None:
    """Refuse, before any cluster starts, a run this process could not plan or gather.

    Each unit costs the client :data:`PLANNED_UNIT_BYTES` and each row
    ``row_bytes`` of gathered results (a reduction's per-row values); one row
    is the least a worker reads. So a declared shape of 2**45 rows is one
    line, not millions of units planned for an hour.
    """
    from .cluster.units import rows_for_bytes
    from .limits import check_memory

    n_rows = sum(s.n_rows for s in sources)
    units = sum(-(-s.n_rows // rows_for_bytes(s, unit_bytes)) for s in sources)
    try:
        check_memory(units * PLANNED_UNIT_BYTES + n_rows * row_bytes,
                     f"planning {n_rows:,} rows as {units:,} work units")
    except InputError as error:  # named by the input with the most rows
        raise error.located(max(sources, key=lambda s: s.n_rows).path) from None
    check_one_row(sources)


def check_one_row(sources: list) -> None:
    """Refuse inputs whose one row (the least anything reads) does not fit in this machine's memory."""
    import numpy as np

    from .limits import check_memory

    widest = max(sources, key=lambda s: s.n_cols * np.dtype(s.dtype).itemsize)
    try:
        check_memory(widest.n_cols * np.dtype(widest.dtype).itemsize, f"one row of {widest.n_cols:,} classes")
    except InputError as error:
        raise error.located(widest.path) from None


@contextmanager
def connected(scheduler: str, n_rows: int, keep_going: bool, description: str, passes: int = 1) -> Iterator:
    """An engine on the cluster, with the dashboard's link and a progress bar over ``n_rows`` rows.

    The cluster starts when the first units are submitted, after the checks
    the operation makes on the client. ``passes`` is how often the work goes
    over every row (0: not known beforehand, as for a temperature fit).
    """
    from .cluster import Engine, connect, dashboard_link

    with ExitStack() as stack:
        def start():
            client = stack.enter_context(connect(scheduler))
            link = dashboard_link(client)
            if link:
                reporter().note_now(f"the Dask dashboard is at {link}")
            bar = stack.enter_context(Progress(n_rows * passes or None, "rows", description))
            engine.on_unit_done = lambda u: bar.advance(u.n_rows)
            return client

        engine = Engine(start=start, keep_going=keep_going)
        yield engine


@contextmanager
def session(scheduler: str, sources: list, keep_going: bool, description: str, passes: int = 1,
            row_bytes: int = 8) -> Iterator:
    """A planned run of ``sources`` on the cluster (see :func:`connected`); ``row_bytes`` as :func:`check_plan`."""
    from .cluster import Run

    size = unit_bytes()  # checked before the cluster starts
    check_plan(sources, size, row_bytes)
    with connected(scheduler, sum(s.n_rows for s in sources), keep_going, description, passes) as engine:
        yield Run.plan(engine, sources, unit_bytes=size)


def raise_failures(outcome, sources: list) -> None:
    """With ``--keep-going``: one ``failed:`` line per failed input, then one ``error:`` line, as a batch does."""
    if outcome.failures:
        for error in outcome.failures:
            reporter().failed(error)
        raise batch.inputs_failed([error.source for error in outcome.failures], len(sources))


def map_arrays(scheduler: str, sources: list, outputs: BatchOutput, operation: str, description: str,
               side_inputs: Sequence[Path] = (), labels=None, **options) -> None:
    """``probs`` and ``grad``: ``operation`` of every source into its ``.npy`` output, written by the workers."""
    from .cluster import map_to_npy

    with batch.output_folder(outputs.out_dir):
        destinations = array_destinations(sources, outputs, side_inputs)
        with session(scheduler, sources, outputs.keep_going, description) as run:
            outcome = map_to_npy(run, operation, destinations, labels=labels, **options)
        raise_failures(outcome, sources)
