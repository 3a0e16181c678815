"""Every option, declared once with its rule and its words, and the option groups.

An option is one :class:`Opt`: its names, help, panel, metavar and what it
takes (:class:`Number`, :class:`OneOf`, :class:`Pair`), the rule that refuses
anything else in one wording, ``--X takes WHAT, got V`` (exit 2, before any
work). A command writes ``labels: LabelsOpt = None``, where ``LabelsOpt`` is
``Annotated[type, Opt(...)]``. Options that always travel together are a group:
a frozen dataclass whose fields are those aliases (:class:`Source`,
:class:`SoftmaxInput`, :class:`LossOptions`, :class:`Output`,
:class:`BatchOutput`, :class:`Performance`); a rule between two options of a
group is checked in the group. :func:`shared_options` spreads a command's
groups into their options, turns every :class:`Opt` into Typer's option, and
packs the parsed values back into the groups. An ``Annotated`` Typer option
written in Typer's own style passes through unchanged.

Nothing here imports NumPy or a format module: the choices that come from the
core or the format registry are looked up when a command is built.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import typer

from .errors import UsageError
from .limits import MAX_BINS, MAX_PRECISION

# The help panels, in the order ``--help`` shows them (see app.SoftmaxCommand).
INPUT, COMPUTATION, OUTPUT, GATES, PERFORMANCE = PANELS = ("Input", "Computation", "Output", "Gates", "Performance")


def _number_text(value: float) -> str:
    return f"{value:,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:g}"


# The declarations below are plain classes, not dataclasses: some forty are made on every start-up, and a
# dataclass costs a compiled __init__ per class (issue 25's start-up budget).


class Number:
    """A number on the command line: finite (or +inf when ``up_to_inf``), whole when ``whole``, within
    ``low``..``high`` (an open lower end: ``above``).

    ``words`` replaces the generated description ("a whole number >= 1") where
    the option's own words say more ("0 to 17 decimals (...)").
    """

    def __init__(self, *, whole: bool = False, low: float | None = None, high: float | None = None,
                 above: float | None = None, up_to_inf: bool = False, words: str | None = None,
                 metavar: str = "X") -> None:
        self.whole, self.low, self.high, self.above = whole, low, high, above
        self.up_to_inf = up_to_inf  # a gate's bound that never fails (--max-loss inf) is a choice, not a typo
        self.words, self.metavar = words, metavar

    def describe(self) -> str:
        if self.words:
            return self.words
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            return f"{_number_text(self.low)} to {_number_text(self.high)}"
        if self.above is not None:
            return f"{kind} > {_number_text(self.above)}"
        if self.low is not None:
            return f"{kind} >= {_number_text(self.low)}"
        return kind

    def parse(self, text: str) -> float | int:
        value = int(text) if self.whole else float(text)
        if not (math.isfinite(value) or (self.up_to_inf and value == math.inf)):
            raise ValueError(text)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high) or (
                self.above is not None and value <= self.above):
            raise ValueError(text)
        return value

    def refused(self) -> str:
        """A value outside the range (or, with no range, no number at all): the contract test's probe."""
        if self.above is not None:
            return _number_text(self.above)
        if self.low is not None:
            return str(int(self.low) - 1) if self.whole else _number_text(self.low - 0.5)
        if self.high is not None:
            return str(int(self.high) + 1)
        return "1.5" if self.whole else "nan"

    def choices(self) -> tuple[str, ...]:
        return ()


class OneOf:
    """One of a fixed set of words; ``names`` gives them (called when the command is built, so the core's tuple or
    the format registry is imported only then)."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self.names = names

    def choices(self) -> tuple[str, ...]:
        return tuple(self.names())

    def describe(self) -> str:
        *rest, last = self.choices()
        return f"{', '.join(rest)} or {last}" if rest else last

    def parse(self, text: str) -> str:
        if text not in self.choices():
            raise ValueError(text)
        return text

    def refused(self) -> str:
        return "no-such-choice"

    @property
    def metavar(self) -> str:
        return "<" + "|".join(self.choices()) + ">"


class Pair:
    """``A:B``, two numbers each held to its own rule (``--max-kl-quantile 0.99:0.05``)."""

    def __init__(self, first: Number, second: Number, *, words: str, metavar: str) -> None:
        self.first, self.second, self.words, self.metavar = first, second, words, metavar

    def describe(self) -> str:
        return self.words

    def parse(self, text: str) -> tuple[float, float]:
        first, second = text.split(":")
        return self.first.parse(first), self.second.parse(second)

    def refused(self) -> str:
        return f"{self.first.refused()}:1"

    def choices(self) -> tuple[str, ...]:
        return ()


Takes = Union[Number, OneOf, Pair]


class Opt:
    """One option's declaration: names (messages say the first long one), help, panel, what it takes, metavar.

    ``click`` holds what else Typer is told as is (``show_default``,
    ``dir_okay``, ``hidden``). :meth:`typer_option` builds Typer's option.
    """

    def __init__(self, names: tuple[str, ...], help: str, panel: str, takes: Takes | None = None,
                 metavar: str | None = None, click: dict | None = None) -> None:
        self.names, self.help, self.panel, self.takes, self.metavar = names, help, panel, takes, metavar
        self.click = click or {}

    def worded(self, help: str) -> Opt:
        """The same option with ``help`` as its words."""
        return Opt(self.names, help, self.panel, self.takes, self.metavar, self.click)

    @property
    def name(self) -> str:
        return next(name for name in self.names if name.startswith("--"))

    def refusal(self, value: str) -> UsageError:
        return UsageError(f"{self.name} takes {self.takes.describe()}, got {value}")

    def check(self, value: Any) -> Any:
        """The parsed value of ``value`` as typed, or the one-wording refusal; defaults pass as they are."""
        if not isinstance(value, str) or self.takes is None:
            return value
        try:
            return self.takes.parse(value)
        except ValueError:
            raise self.refusal(value) from None

    def typer_option(self):
        extra = dict(self.click)
        metavar = self.metavar
        if self.takes is not None:
            extra["parser"] = self.check
            metavar = metavar or self.takes.metavar
            choices = self.takes.choices()
            if choices:
                extra["autocompletion"] = lambda: list(choices)
        return typer.Option(*self.names, help=self.help, rich_help_panel=self.panel, metavar=metavar, **extra)


def option(*names: str, help: str, panel: str, takes: Takes | None = None, metavar: str | None = None,
           **click) -> Opt:
    """Declare an option: ``Annotated[int, option("--threads", help=..., panel=PERFORMANCE, takes=Number(...))]``."""
    return Opt(names, help, panel, takes, metavar, click)


def worded(alias, help: str):
    """``alias`` with its help said for one command: the same option, rule and wording, described for what it
    does there (``--labels`` gives topk its accuracy, loss its targets)."""
    return Annotated[alias.__origin__, declaration(alias).worded(help)]


def core_choices(name: str) -> Callable[[], tuple[str, ...]]:
    """The core's tuple called ``name`` (:mod:`softmax_cli.choices`), looked up when a command is built."""
    def names() -> tuple[str, ...]:
        from . import choices

        return getattr(choices, name)
    return names


def _output_formats() -> tuple[str, ...]:
    from .render import OutputFormat

    return tuple(fmt.value for fmt in OutputFormat)


def _suffixes() -> str:
    from .formats.registry import SUFFIXES

    return " ".join(SUFFIXES)


FRACTION = Number(low=0, high=1, words="a fraction from 0 to 1 (0.95 for 95%)", metavar="A")

# temperature-sweep's grid without --temperatures or --range (its help says it; operands.parse_temperatures uses it).
DEFAULT_TEMPERATURES = "0.1,0.178,0.316,0.562,1,1.78,3.16,5.62,10"

# -- Input ---------------------------------------------------------------------------------------------------------

InputsArg = Annotated[Optional[list[str]], "INPUTS"]  # the logits' sources; its help names the formats (_inputs)


def _inputs_argument():
    return typer.Argument(
        metavar="INPUTS...",
        help=f"Logits: numbers (3 2 1, 3,2,1, '1 2; 3 4') or one source: {_suffixes()}, "
        "or - for standard input. None: read piped standard input.",
        show_default=False,
    )


AxisOpt = Annotated[int, option("--axis", help="The class axis; every other index is a row.", panel=INPUT,
                                takes=Number(whole=True, metavar="AXIS"))]
KeyOpt = Annotated[Optional[str], option(
    "--key", help="Array to read from an .npz, .safetensors or JSON object, or column of a table "
    "(default: the only one, else 'logits').", panel=INPUT, metavar="NAME", show_default=False)]
VoidAsOpt = Annotated[Optional[str], option(
    "--void-as", help="Read 2-byte void values (how np.save writes ml_dtypes' bfloat16) as this dtype.",
    panel=INPUT, takes=OneOf(lambda: ("bfloat16",)), show_default=False)]
ClassesOpt = Annotated[Optional[str], option(
    "--classes", help="Class names: a,b,c or a file with one name a line (wins over a CSV header).", panel=INPUT,
    metavar="NAMES|FILE", show_default=False)]
HeaderOpt = Annotated[str, option(
    "--header", help="Is a text file's first row column names? auto: when a field is not a number, or it is "
    "0..C-1 over rows not all integers (pandas' header); other distinct integers over rows with decimals are "
    "refused as ambiguous.", panel=INPUT, takes=OneOf(lambda: ("auto", "yes", "no")))]
IndexColOpt = Annotated[Optional[bool], option(
    "--index-col/--no-index-col", help="Is a table's first column row names (CSV, TSV; Parquet, Arrow without "
    "pandas' index)?  [default: under an empty header field (pandas' index), or text under a named one]", panel=INPUT, show_default=False)]
LabelsOpt = Annotated[Optional[str], option(
    "--labels", help="The true classes: class indices, one per row (0,2,1 or a file; from an .npz the array "
    "'labels').", panel=INPUT, metavar="LABELS|FILE", show_default=False)]
LabelsKeyOpt = Annotated[Optional[str], option(
    "--labels-key", help="Column of a CSV/TSV/Parquet/Arrow/JSON table, or array of an .npz/.safetensors file, that "
    "holds the labels; from the logits' own table it is then not a class.", panel=INPUT, metavar="NAME",
    show_default=False)]
AsLogitsOpt = Annotated[bool, option(
    "--as-logits", help="The inputs are logits as given: no refusal of probability-shaped rows or of a table's "
    "column that looks like labels, an id or a flag.", panel=INPUT)]
FromProbsOpt = Annotated[bool, option(
    "--from-probs", help="The inputs are probabilities, not logits: used exactly (log 0 = -inf).", panel=INPUT)]
KeepGoingOpt = Annotated[bool, option(
    "--keep-going", help="In a batch, go on past a bad input; list the failures at the end.", panel=INPUT)]

# -- Computation ---------------------------------------------------------------------------------------------------

TemperatureOpt = Annotated[float, option(
    "--temperature", "-t", help="Divide the logits by T before the softmax.", panel=COMPUTATION,
    takes=Number(above=0, words="a finite number > 0", metavar="T"))]
LogOpt = Annotated[bool, option("--log", help="Log-softmax instead of softmax.", panel=COMPUTATION)]
ExactOpt = Annotated[bool, option(
    "--exact", help="Probabilities within 4 ULP of the exact value in float64 (float32: 1 ULP of the correctly "
    "rounded one) by carrying the rounding of x - max; 2-3x the time.", panel=COMPUTATION)]
MaskedRowsOpt = Annotated[str, option(
    "--masked-rows", help="A row whose logits are all -inf: refuse it, or give zeros, or NaN.", panel=COMPUTATION,
    takes=OneOf(core_choices("MASKED_ROW_POLICIES")))]
IgnoreIndexOpt = Annotated[int, option(
    "--ignore-index", help="Rows labelled with this value are left out, as in torch.", panel=COMPUTATION,
    takes=Number(whole=True, metavar="INDEX"))]
ReductionOpt = Annotated[str, option(
    "--reduction", help="mean (weighted, as torch), sum, or none (one loss per row).", panel=COMPUTATION,
    takes=OneOf(core_choices("REDUCTIONS")))]
LabelSmoothingOpt = Annotated[float, option(
    "--label-smoothing", help="Mix EPS of the uniform distribution into the targets.", panel=COMPUTATION,
    takes=Number(low=0, high=1, words="a fraction from 0 to 1", metavar="EPS"))]
WeightsOpt = Annotated[Optional[str], option(
    "--weights", help="C class weights: numbers (1,2,0.5) or a file.", panel=COMPUTATION, metavar="WEIGHTS|FILE",
    show_default=False)]
EpsOpt = Annotated[Optional[float], option(
    "--eps", help="With --from-probs, clip probabilities below EPS (only on request).", panel=COMPUTATION,
    takes=Number(above=0, high=1 - 2**-53, words="a probability between 0 and 1 (exclusive)", metavar="EPS"),
    show_default=False)]

# -- Output --------------------------------------------------------------------------------------------------------

FormatOpt = Annotated[Optional[str], option(
    "--format", "-f", help="Output format. Default: table on a terminal, csv on a pipe, else from the -o file's "
    "extension.", panel=OUTPUT, takes=OneOf(_output_formats), show_default=False)]
OutputOpt = Annotated[Optional[Path], option(
    "--output", "-o", help="Write to FILE (atomically); its extension gives the format.", panel=OUTPUT,
    metavar="FILE", show_default=False, dir_okay=False)]
ForceOpt = Annotated[bool, option("--force", help="Replace an existing output file.", panel=OUTPUT)]
PrecisionOpt = Annotated[Optional[int], option(
    "--precision", help="Round to N decimals for display (every text format).", panel=OUTPUT,
    takes=Number(whole=True, low=0, high=MAX_PRECISION, metavar="N",
                 words=f"0 to {MAX_PRECISION} decimals (float64 carries {MAX_PRECISION} significant digits)"),
    show_default=False)]
OutDirOpt = Annotated[Optional[Path], option(
    "--out-dir", help="Write one output per input into DIR (created if missing), named after the input; format "
    "from -f, else the input's own.", panel=OUTPUT, metavar="DIR", show_default=False, file_okay=False)]
PerRowOpt = Annotated[bool, option(
    "--per-row", help="Also write the per-row arrays to CSV, TSV and JSON, after the summary (binary formats always "
    "hold them).", panel=OUTPUT)]
ReportOpt = Annotated[Optional[list[str]], option(
    "--report", help="Also report the gates' verdicts for CI (repeatable): github (annotations, and "
    "$GITHUB_STEP_SUMMARY), junit=PATH (JUnit XML), markdown=PATH.", panel=GATES, metavar="FORMAT[=PATH]",
    show_default=False)]

# -- Gates ---------------------------------------------------------------------------------------------------------

MinAccuracyOpt = Annotated[Optional[float], option(
    "--min-accuracy", help="Gate: exit 1 when top-k accuracy < A, a fraction 0..1 (0.95, not 95); needs -k/--top.",
    panel=GATES, takes=FRACTION, show_default=False)]
MaxLossOpt = Annotated[Optional[float], option(
    "--max-loss", help="Gate: exit 1 when the reduced loss exceeds X (>= 0).", panel=GATES,
    takes=Number(low=0, up_to_inf=True, words="a loss >= 0 (a cross-entropy is never below 0)"), show_default=False)]

# -- Performance ---------------------------------------------------------------------------------------------------

ThreadsOpt = Annotated[Optional[int], option(
    "--threads", help="Threads for large arrays (default: the available cores); results are identical for any "
    "count.", panel=PERFORMANCE, takes=Number(whole=True, low=1, metavar="N"), show_default=False)]
SchedulerOpt = Annotated[Optional[str], option(
    "--scheduler", help="Run on a Dask cluster: tcp://HOST:PORT, or local:N for N worker processes here (else "
    "$SOFTMAX_SCHEDULER). Inputs: .npy files, directories of them, Zarr arrays, on storage every worker reaches; "
    "needs the dask extra.", panel=PERFORMANCE, metavar="ADDRESS", show_default=False)]

# -- Options of one command (declared here so that each has one rule and one wording) ------------------------------

TopOpt = Annotated[Optional[int], option(
    "-k", "--top", help="How many classes per row, 1..C.  [default: min(5, C)]", panel=COMPUTATION,
    takes=Number(whole=True, low=1, metavar="K"), show_default=False)]
TopOldOpt = Annotated[Optional[int], option(  # the spelling before --top
    "--k", help="", panel=COMPUTATION, takes=Number(whole=True, low=1, metavar="K"), hidden=True)]
BinsOpt = Annotated[int, option(
    "--bins", help="Equal-width confidence bins of the calibration error.", panel=COMPUTATION,
    takes=Number(whole=True, low=1, high=MAX_BINS, metavar="N"))]
ScaleOpt = Annotated[Optional[float], option(
    "--scale", help="Multiplies q k^T.  [default: 1/sqrt(E)]", panel=COMPUTATION,
    takes=Number(metavar="S"), show_default=False)]
MaskTypeOpt = Annotated[str, option(
    "--mask-type", help="How --mask is read: bool (nonzero attends), additive (added to the scores), or auto: by "
    "its dtype, and 0/1 given as text is refused as ambiguous.", panel=INPUT,
    takes=OneOf(lambda: ("auto", "bool", "additive")))]
CausalAlignOpt = Annotated[str, option(
    "--causal-align", help="Where the causal diagonal starts when L != S; lower-right is the decoding alignment.",
    panel=COMPUTATION, takes=OneOf(core_choices("CAUSAL_ALIGNMENTS")))]
MaxKlOpt = Annotated[Optional[float], option(
    "--max-kl", help="Gate: exit 1 when the mean KL (nats) exceeds X (>= 0).", panel=GATES,
    takes=Number(low=0, words="a KL in nats >= 0 (e.g. 0.01)"), show_default=False)]
MaxKlQuantileOpt = Annotated[Optional[list[str]], option(
    "--max-kl-quantile", help="Gate: exit 1 when the per-row KL's Q-quantile exceeds X, e.g. 0.99:0.05 (Q in "
    "(0, 1), any level; repeatable).", panel=GATES,
    takes=Pair(Number(above=0, high=1 - 2**-53), Number(low=0), words="Q:X with Q in (0, 1) and X >= 0 "
               "(e.g. 0.99:0.05)", metavar="Q:X"), show_default=False)]
MinAgreementOpt = Annotated[Optional[float], option(
    "--min-agreement", help="Gate: exit 1 when top-1 agreement (a fraction, 0..1) is below A.", panel=GATES,
    takes=FRACTION, show_default=False)]
MaxPplRatioOpt = Annotated[Optional[float], option(
    "--max-ppl-ratio", help="Gate: exit 1 when ppl_cand / ppl_ref exceeds R (> 0; needs --labels).", panel=GATES,
    takes=Number(above=0, words="a ratio > 0 (e.g. 1.01)", metavar="R"), show_default=False)]


# The option groups: made on every start-up, and a dataclass's every generated method is compiled then, so only
# what a group needs: its __init__ and immutability (no __repr__, __eq__ or __hash__; issue 25's start-up budget).
group = dataclasses.dataclass(frozen=True, repr=False, eq=False)


@group
class Source:
    """Where the logits are in their source: the array, the class names, the class axis, a table's header and index,
    the dtype of voids."""

    key: KeyOpt = None
    classes: ClassesOpt = None
    axis: AxisOpt = -1
    header: HeaderOpt = "auto"
    index_col: IndexColOpt = None
    void_as: VoidAsOpt = None
    as_logits: AsLogitsOpt = False


@group
class SoftmaxInput(Source):
    """The logits as the row-wise commands take them: their source, and how they enter the softmax."""

    temperature: TemperatureOpt = 1.0
    masked_rows: MaskedRowsOpt = "error"


@group
class LossOptions:
    """The cross-entropy as ``loss`` computes it and ``grad`` differentiates it (torch's options)."""

    labels: worded(LabelsOpt, "The targets: class indices, one per row (0,2,1 or a file; from an .npz the array "
                   "'labels'), or distributions of the logits' shape (one-hot or soft).") = None
    labels_key: LabelsKeyOpt = None
    reduction: ReductionOpt = "mean"
    label_smoothing: LabelSmoothingOpt = 0.0
    weights: WeightsOpt = None
    ignore_index: IgnoreIndexOpt = -100
    from_probs: FromProbsOpt = False
    eps: EpsOpt = None

    def __post_init__(self) -> None:
        if self.eps is not None and not self.from_probs:
            raise UsageError("--eps clips probabilities; it goes with --from-probs")


PaddingMaskOpt = Annotated[Optional[str], option(
    "--mask", help="Which positions count: 1 keeps, 0 drops (a file or numbers shaped like the logits without the "
    "class axis, as Hugging Face's attention_mask). Dropped positions may hold anything.", panel=INPUT,
    metavar="FILE", show_default=False)]
MaskKeyOpt = Annotated[Optional[str], option(
    "--mask-key", help="Array of --mask's .npz, .safetensors or JSON object (default: the only one, else "
    "'attention_mask').", panel=INPUT, metavar="NAME", show_default=False)]
ShiftLabelsOpt = Annotated[bool, option(
    "--shift-labels", help="Next-token scoring, as Hugging Face's causal-LM loss: the logits at position t against "
    "the label (and mask) at t + 1 of the same sequence; the last position is not scored.", panel=COMPUTATION)]
PerSequenceOpt = Annotated[bool, option(
    "--per-sequence", help="Also give the figures of each sequence (one index of the axes before the last two of "
    "(..., seq, vocab) logits), over its scored positions.", panel=OUTPUT)]


@group
class Padding:
    """Which positions of the logits are scored: ``--mask`` (an attention_mask) and ``--mask-key``."""

    mask: PaddingMaskOpt = None
    mask_key: MaskKeyOpt = None

    def __post_init__(self) -> None:
        if self.mask_key is not None and self.mask is None:
            from .errors import UsageError

            raise UsageError("--mask-key picks an array of --mask's file; give --mask FILE too")


@group
class Output:
    """One result written to standard output or to one file (``fmt``: the ``-f`` choice, or None to infer it)."""

    fmt: FormatOpt = None
    output: OutputOpt = None
    force: ForceOpt = False
    precision: PrecisionOpt = None

    def __post_init__(self) -> None:
        if isinstance(self.fmt, str):  # the renderer's own type from here on
            from .render import OutputFormat

            object.__setattr__(self, "fmt", OutputFormat(self.fmt))


@group
class Performance:
    """How the work is shared out; it never changes a result."""

    threads: ThreadsOpt = None

    def apply(self) -> None:
        """Set the thread count for the whole run (the core keeps it for this invocation).

        Without ``--threads`` it is set too, to the available cores: a run in
        process starts from a copy of its caller's context, and a count the
        caller set (``core.set_threads``) must not reach the command.
        """
        from . import core

        core.set_threads(self.threads if self.threads is not None else core.available_cores())


@group
class BatchOutput(Output, Performance):
    """One output per input (:func:`softmax_cli.batch.run`), with ``--out-dir``, ``--keep-going`` and ``--threads``."""

    out_dir: OutDirOpt = None
    keep_going: KeepGoingOpt = False


def _is_group(annotation) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def declaration(annotation) -> Opt | None:
    """The :class:`Opt` in an ``Annotated`` parameter type, if it has one."""
    return next((meta for meta in getattr(annotation, "__metadata__", ()) if isinstance(meta, Opt)), None)


def declared_options(command) -> list[Opt]:
    """Every :class:`Opt` that ``command`` (a plain command function) takes, its groups' included."""
    signature = inspect.signature(command, eval_str=True)
    annotations = []
    for parameter in signature.parameters.values():
        if _is_group(parameter.annotation):
            annotations += typing.get_type_hints(parameter.annotation, include_extras=True).values()
        else:
            annotations.append(parameter.annotation)
    return [opt for opt in map(declaration, annotations) if opt is not None]


def _for_typer(annotation):
    """``annotation`` as Typer reads it: an :class:`Opt` becomes Typer's option, the inputs argument gets its help."""
    opt = declaration(annotation)
    if opt is not None:
        return Annotated[annotation.__origin__, opt.typer_option()]
    if annotation == InputsArg:
        return Annotated[annotation.__origin__, _inputs_argument()]
    return annotation


def shared_options(command):
    """Let ``command`` take option groups and declared options, as Typer reads a command's signature.

    The returned function shows Typer the command's own parameters followed by
    every group's fields, each :class:`Opt` turned into Typer's option, and on
    a call packs those values back into one group instance per group parameter.
    A :class:`Performance` group is applied before the command runs.
    """
    signature = inspect.signature(command, eval_str=True)
    groups = {name: p.annotation for name, p in signature.parameters.items() if _is_group(p.annotation)}
    parameters = [p.replace(annotation=_for_typer(p.annotation))
                  for p in signature.parameters.values() if p.name not in groups]
    for group in groups.values():
        hints = typing.get_type_hints(group, include_extras=True)
        parameters += [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                                         annotation=_for_typer(hints[field.name]))
                       for field in dataclasses.fields(group)]

    @functools.wraps(command)
    def with_groups(**values):
        for name, group in groups.items():
            values[name] = group(**{field.name: values.pop(field.name) for field in dataclasses.fields(group)})
            if isinstance(values[name], Performance):
                values[name].apply()  # the run's thread count: in force before the command starts
        return command(**values)

    with_groups.__signature__ = signature.replace(parameters=parameters)
    with_groups.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_groups
