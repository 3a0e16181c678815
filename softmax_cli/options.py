"""Every option shared by two or more commands, declared once, and the option groups.

A single shared option is an ``Annotated`` alias: a command writes
``labels: LabelsOpt = None``. Options that always travel together are a group:
a frozen dataclass whose fields are those aliases (:class:`Source`,
:class:`SoftmaxInput`, :class:`LossOptions`, :class:`Output`,
:class:`BatchOutput`, :class:`Performance`). A command takes a group as one
keyword-only parameter (``source: Source``); :func:`shared_options` spreads it
into the group's options for Typer and packs the parsed values back into the
dataclass. Every option names its help panel (:data:`PANELS`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .formats.registry import SUFFIXES
from .render import OutputFormat

# The help panels, in the order ``--help`` shows them (see app.SoftmaxCommand).
INPUT, COMPUTATION, OUTPUT, GATES, PERFORMANCE = PANELS = ("Input", "Computation", "Output", "Gates", "Performance")


class HeaderRow(str, Enum):
    auto = "auto"
    yes = "yes"
    no = "no"


class MaskedRows(str, Enum):
    error = "error"
    zero = "zero"
    nan = "nan"


InputsArg = Annotated[
    Optional[list[str]],
    typer.Argument(
        metavar="INPUTS...",
        help=f"Logits: numbers (3 2 1, 3,2,1, '1 2; 3 4') or one source: {' '.join(SUFFIXES)}, "
        "or - for standard input. None: read piped standard input.",
        show_default=False,
    ),
]
AxisOpt = Annotated[int, typer.Option("--axis", help="The class axis; every other index is a row.",
                                      rich_help_panel=INPUT)]
KeyOpt = Annotated[
    Optional[str],
    typer.Option("--key", help="Array to read from an .npz, .safetensors or JSON object, or column of a table "
                 "(default: the only one, else 'logits').",
                 show_default=False, rich_help_panel=INPUT),
]
class VoidAs(str, Enum):
    bfloat16 = "bfloat16"


VoidAsOpt = Annotated[
    Optional[VoidAs],
    typer.Option("--void-as", help="Read 2-byte void values (how np.save writes ml_dtypes' bfloat16) as this dtype.",
                 show_default=False, rich_help_panel=INPUT),
]
ClassesOpt = Annotated[
    Optional[str],
    typer.Option("--classes", help="Class names: a,b,c or a file with one name a line (wins over a CSV header).",
                 show_default=False, rich_help_panel=INPUT),
]
HeaderOpt = Annotated[
    HeaderRow,
    typer.Option("--header", help="Is a text file's first row column names? auto: when a field is not a number, "
                 "or it is 0..C-1 over rows not all integers (pandas' header).", rich_help_panel=INPUT),
]
IndexColOpt = Annotated[
    Optional[bool],
    typer.Option("--index-col/--no-index-col", help="Is a text file's first column row names?  [default: under an "
                 "empty header field (pandas' index), or text under a named one]", show_default=False,
                 rich_help_panel=INPUT),
]
TemperatureOpt = Annotated[
    float, typer.Option("--temperature", "-t", help="Divide the logits by T (finite, > 0) before the softmax.",
                        rich_help_panel=COMPUTATION)
]
LogOpt = Annotated[
    bool, typer.Option("--log", help="Log-softmax instead of softmax.", rich_help_panel=COMPUTATION)
]
ExactOpt = Annotated[
    bool, typer.Option("--exact", help="Probabilities within 4 ULP of the exact value in float64 (float32: 1 ULP "
                       "of the correctly rounded one) by carrying the rounding of x - max; 2-3x the time.",
                       rich_help_panel=COMPUTATION)
]
MaskedRowsOpt = Annotated[
    MaskedRows,
    typer.Option("--masked-rows", help="A row whose logits are all -inf: refuse it, or give zeros, or NaN.",
                 rich_help_panel=COMPUTATION),
]
FormatOpt = Annotated[
    Optional[OutputFormat],
    typer.Option("--format", "-f", help="Output format. Default: table on a terminal, csv on a pipe, "
                 "else from the -o file's extension.", show_default=False, rich_help_panel=OUTPUT),
]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write to FILE (atomically); its extension gives the format.",
                 show_default=False, dir_okay=False, rich_help_panel=OUTPUT),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output file.", rich_help_panel=OUTPUT)]
PrecisionOpt = Annotated[
    Optional[int],
    typer.Option("--precision", help="Round to N decimals for display (every text format).", show_default=False,
                 rich_help_panel=OUTPUT),
]
LabelsOpt = Annotated[
    Optional[str],
    typer.Option("--labels", help="Labels: class indices, one per row (0,2,1 or a file; from an .npz the array "
                 "'labels'). loss and grad also take target distributions of the logits' shape.",
                 show_default=False, rich_help_panel=INPUT),
]
IgnoreIndexOpt = Annotated[
    int, typer.Option("--ignore-index", help="Rows labelled with this value are left out, as in torch.",
                      rich_help_panel=COMPUTATION)
]


class Reduction(str, Enum):
    mean = "mean"
    sum = "sum"
    none = "none"


ReductionOpt = Annotated[
    Reduction, typer.Option("--reduction", help="mean (weighted, as torch), sum, or none (one loss per row).",
                            rich_help_panel=COMPUTATION)
]
LabelSmoothingOpt = Annotated[
    float, typer.Option("--label-smoothing", help="Mix eps of the uniform distribution into the targets, 0..1.",
                        rich_help_panel=COMPUTATION)
]
WeightsOpt = Annotated[
    Optional[str],
    typer.Option("--weights", help="C class weights: numbers (1,2,0.5) or a file.", show_default=False,
                 rich_help_panel=COMPUTATION),
]
FromProbsOpt = Annotated[
    bool, typer.Option("--from-probs", help="The inputs are probabilities, not logits: used exactly (log 0 = -inf).",
                       rich_help_panel=INPUT)
]
EpsOpt = Annotated[
    Optional[float],
    typer.Option("--eps", help="With --from-probs, clip probabilities below EPS (only on request).",
                 show_default=False, rich_help_panel=COMPUTATION),
]
PerRowOpt = Annotated[
    bool, typer.Option("--per-row", help="Also write the per-row arrays to CSV, TSV and JSON, after the summary "
                       "(binary formats always hold them).", rich_help_panel=OUTPUT)
]
ReportOpt = Annotated[
    Optional[list[str]],
    typer.Option("--report", metavar="FORMAT[=PATH]", help="Also report the gates' verdicts for CI (repeatable): "
                 "github (annotations, and $GITHUB_STEP_SUMMARY), junit=PATH (JUnit XML), markdown=PATH.",
                 show_default=False, rich_help_panel=GATES),
]
OutDirOpt = Annotated[
    Optional[Path],
    typer.Option("--out-dir", help="Write one output per input into DIR (created if missing), named after the "
                 "input; format from -f, else the input's own.", show_default=False, file_okay=False,
                 rich_help_panel=OUTPUT),
]
KeepGoingOpt = Annotated[
    bool, typer.Option("--keep-going", help="In a batch, go on past a bad input; list the failures at the end.",
                       rich_help_panel=INPUT)
]
ThreadsOpt = Annotated[
    Optional[int],
    typer.Option("--threads", help="Threads for large arrays (default: the available cores); results are "
                 "identical for any count.", show_default=False, min=1, rich_help_panel=PERFORMANCE),
]

SchedulerOpt = Annotated[
    Optional[str],
    typer.Option("--scheduler", help="Run on a Dask cluster: tcp://HOST:PORT, or local:N for N worker processes "
                 "here (else $SOFTMAX_SCHEDULER). Inputs: .npy files, directories of them, Zarr arrays, on storage "
                 "every worker reaches; needs the dask extra.", show_default=False, metavar="ADDRESS",
                 rich_help_panel=PERFORMANCE),
]

class CausalAlign(str, Enum):
    upper_left = "upper-left"
    lower_right = "lower-right"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the logits are in their source: the array, the class names, the class axis, a table's header and index,
    the dtype of voids."""

    key: KeyOpt = None
    classes: ClassesOpt = None
    axis: AxisOpt = -1
    header: HeaderOpt = HeaderRow.auto
    index_col: IndexColOpt = None
    void_as: VoidAsOpt = None


@dataclasses.dataclass(frozen=True)
class SoftmaxInput(Source):
    """The logits as the row-wise commands take them: their source, and how they enter the softmax."""

    temperature: TemperatureOpt = 1.0
    masked_rows: MaskedRowsOpt = MaskedRows.error

    def __post_init__(self) -> None:
        # Checked before any work: a streamed result is computed while it is written, so a bad
        # temperature found block by block would come after part of the output.
        from .core import check_temperature

        check_temperature(self.temperature)


@dataclasses.dataclass(frozen=True)
class LossOptions:
    """The cross-entropy as ``loss`` computes it and ``grad`` differentiates it (torch's options)."""

    labels: LabelsOpt = None
    reduction: ReductionOpt = Reduction.mean
    label_smoothing: LabelSmoothingOpt = 0.0
    weights: WeightsOpt = None
    ignore_index: IgnoreIndexOpt = -100
    from_probs: FromProbsOpt = False
    eps: EpsOpt = None


@dataclasses.dataclass(frozen=True)
class Output:
    """One result written to standard output or to one file."""

    fmt: FormatOpt = None
    output: OutputOpt = None
    force: ForceOpt = False
    precision: PrecisionOpt = None


@dataclasses.dataclass(frozen=True)
class Performance:
    """How the work is shared out; it never changes a result."""

    threads: ThreadsOpt = None

    def apply(self) -> None:
        """Set the thread count for the whole run (the core keeps it process-wide)."""
        if self.threads is not None:
            from . import core

            core.set_threads(self.threads)


@dataclasses.dataclass(frozen=True)
class BatchOutput(Output, Performance):
    """One output per input (:func:`softmax_cli.batch.run`), with ``--out-dir``, ``--keep-going`` and ``--threads``."""

    out_dir: OutDirOpt = None
    keep_going: KeepGoingOpt = False


def _is_group(annotation) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def shared_options(command):
    """Let ``command`` take option groups: each parameter typed by a group becomes the group's options.

    Typer reads a command's options from its signature, so the returned function
    shows Typer the command's own parameters followed by every group's fields
    (each an ``Annotated`` option with its help and panel), and on a call packs
    those values back into one group instance per group parameter. A
    :class:`Performance` group is applied before the command runs.
    """
    signature = inspect.signature(command, eval_str=True)
    groups = {name: p.annotation for name, p in signature.parameters.items() if _is_group(p.annotation)}
    parameters = [p for p in signature.parameters.values() if p.name not in groups]
    for group in groups.values():
        hints = typing.get_type_hints(group, include_extras=True)
        parameters += [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                                         annotation=hints[field.name]) for field in dataclasses.fields(group)]

    @functools.wraps(command)
    def with_groups(**values):
        for name, group in groups.items():
            values[name] = group(**{field.name: values.pop(field.name) for field in dataclasses.fields(group)})
            if isinstance(values[name], Performance):
                values[name].apply()  # threads are process-wide: in force before the command starts
        return command(**values)

    with_groups.__signature__ = signature.replace(parameters=parameters)
    with_groups.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_groups
