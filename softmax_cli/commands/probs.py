"""``softmax probs`` and ``softmax jacobian``: the softmax itself and its Jacobian, row by row."""

from __future__ import annotations

import functools

from ..errors import UsageError
from ..options import BatchOutput, ExactOpt, FromProbsOpt, InputsArg, LogOpt, SchedulerOpt, SoftmaxInput
from . import described, logits_loader, named_rows


def probs(inputs: InputsArg = None, log: LogOpt = False, exact: ExactOpt = False, from_probs: FromProbsOpt = False,
          scheduler: SchedulerOpt = None, *, source: SoftmaxInput,
          outputs: BatchOutput) -> None:
    """Softmax probabilities (or --log log-probabilities) of the logits.

    \b
    Examples:
      softmax probs 3 2 1
      softmax probs logits.csv -f json
      softmax probs runs/*.npy --out-dir probs/
      softmax probs shards/ --out-dir probs/ --scheduler tcp://scheduler:8786
    """
    from .. import batch, core, render, scheduled, stream
    from ..result import Layout, Result

    if exact and log:
        raise UsageError("--exact applies to probabilities, not to --log (see docs/exactness.md)")
    axis, temperature, masked_rows = source.axis, source.temperature, source.masked_rows
    options = dict(temperature=temperature, masked_rows=masked_rows)
    if (cluster := scheduled.address(scheduler)) is not None:
        scheduled.map_arrays(cluster, scheduled.sources_of(inputs, source, [("--from-probs", from_probs)]), outputs,
                             "log_softmax" if log else "softmax", "log_probs" if log else "probs",
                             **options, **({"exact": True} if exact else {}))
        return
    function = core.log_softmax if log else functools.partial(core.softmax, exact=exact)

    def one(logits, sink: render.Sink) -> None:
        table = sink.fmt is render.OutputFormat.table
        # A table of a batch shows an entropy column and its mean (a batch: 2-D with the classes last).
        entropy = table and not log and logits.array.ndim == 2 and axis in (-1, 1)
        rows = stream.rows_for_output(logits, axis, sink, masked_rows)
        shown = stream.for_table(logits, axis, lambda block: function(block, **options), masked_rows,
                                 temperature, entropy) if table else None
        if shown is not None:  # a table of a file: only the rows it shows are computed
            values, display = shown
        else:
            if rows is not None:
                values = stream.map_rows(rows, lambda block, _: function(block, **options),
                                         core.output_dtype(rows.dtype))
            else:
                values = function(logits.array, axis=axis, **options)
            per_row = core.entropy(logits.array, axis=axis, temperature=temperature) if entropy else None
            display = stream.entropy_display(per_row, *stream.known_sum(per_row)) if entropy else {}
        class_last = axis in (-1, values.ndim - 1)
        render.write(Result({"log_probs" if log else "probs": values}, classes=logits.classes, **named_rows(logits),
                            header=logits.classes if class_last else None,
                            layout=Layout.distribution if class_last else Layout.grid, display=display,
                            command="probs", inputs=described("logits", logits)), sink)

    batch.run(inputs, outputs, logits_loader(source, from_probs=from_probs, logs_of_probs=True), one)


JACOBIAN_MEMORY_LIMIT = 1 << 30


def jacobian(inputs: InputsArg = None, log: LogOpt = False, *, source: SoftmaxInput, outputs: BatchOutput) -> None:
    """Per-row Jacobian of softmax, diag(s) - s s^T, of shape (..., C, C).

    With --log, log-softmax's Jacobian I - 1 s^T.
    Outputs above 1 GiB are refused unless written as .npy to a file, which is
    then filled row by row through a memory map.

    \b
    Example:
      softmax jacobian 1 2 3 --classes a,b,c
    """
    from .. import batch, core, render
    from ..result import Layout, Result

    axis, temperature, masked_rows = source.axis, source.temperature, source.masked_rows
    options = dict(axis=axis, temperature=temperature, log=log, masked_rows=masked_rows)

    def one(logits, sink: render.Sink) -> None:
        size = core.jacobian_nbytes(logits.array.shape, logits.array.dtype, axis)
        if size > JACOBIAN_MEMORY_LIMIT:
            if sink.fmt is not render.OutputFormat.npy or sink.path is None:
                raise UsageError(f"the Jacobian would take {size / 2**30:.1f} GiB; write it to a file with -o FILE.npy")
            shape = core.jacobian_shape(logits.array.shape, axis)
            render.write_npy_in_place(sink, shape, core.output_dtype(logits.array.dtype),
                                      lambda out: core.softmax_jacobian_into(out, logits.array, **options))
            return
        values = core.softmax_jacobian(logits.array, **options)
        render.write(Result({"jacobian": values}, classes=logits.classes, header=logits.classes,
                            layout=Layout.jacobian, command="jacobian", inputs=described("logits", logits)), sink)

    batch.run(inputs, outputs, logits_loader(source), one)
