"""Every option shared by two or more commands, declared once.

Commands write ``axis: AxisOpt = -1``; the help text lives here only.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .render import OutputFormat


class MaskedRows(str, Enum):
    error = "error"
    zero = "zero"
    nan = "nan"


InputsArg = Annotated[
    Optional[list[str]],
    typer.Argument(
        metavar="INPUTS...",
        help="Logits: numbers (3 2 1, 3,2,1, '1 2; 3 4') or one source: .npy .npz .csv .tsv .txt "
        ".json .jsonl, or - for standard input. None: read piped standard input.",
        show_default=False,
    ),
]
AxisOpt = Annotated[int, typer.Option("--axis", help="The class axis; every other index is a row.")]
KeyOpt = Annotated[
    Optional[str],
    typer.Option("--key", help="Array to read from an .npz or a JSON object (default: the only one, else 'logits').",
                 show_default=False),
]
ClassesOpt = Annotated[
    Optional[str],
    typer.Option("--classes", help="Class names: a,b,c or a file with one name a line (wins over a CSV header).",
                 show_default=False),
]
TemperatureOpt = Annotated[
    float, typer.Option("--temperature", "-t", help="Divide the logits by T (finite, > 0) before the softmax.")
]
MaskedRowsOpt = Annotated[
    MaskedRows,
    typer.Option("--masked-rows", help="A row whose logits are all -inf: refuse it, or give zeros, or NaN."),
]
FormatOpt = Annotated[
    Optional[OutputFormat],
    typer.Option("--format", "-f", help="Output format. Default: table on a terminal, csv on a pipe, "
                 "else from the -o file's extension.", show_default=False),
]
OutputOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write to FILE (atomically); its extension gives the format.",
                 show_default=False, dir_okay=False),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
PrecisionOpt = Annotated[
    Optional[int],
    typer.Option("--precision", help="Round to N decimals for display (every text format).", show_default=False),
]
LabelsOpt = Annotated[
    Optional[str],
    typer.Option("--labels", help="Labels: class indices, one per row (0,2,1 or a file; from an .npz the array "
                 "'labels'). loss and grad also take target distributions of the logits' shape.",
                 show_default=False),
]
IgnoreIndexOpt = Annotated[
    int, typer.Option("--ignore-index", help="Rows labelled with this value are left out, as in torch.")
]


class Reduction(str, Enum):
    mean = "mean"
    sum = "sum"
    none = "none"


ReductionOpt = Annotated[
    Reduction, typer.Option("--reduction", help="mean (weighted, as torch), sum, or none (one loss per row).")
]
LabelSmoothingOpt = Annotated[
    float, typer.Option("--label-smoothing", help="Mix eps of the uniform distribution into the targets, 0..1.")
]
WeightsOpt = Annotated[
    Optional[str],
    typer.Option("--weights", help="C class weights: numbers (1,2,0.5) or a file.", show_default=False),
]
FromProbsOpt = Annotated[
    bool, typer.Option("--from-probs", help="The inputs are probabilities, not logits: loss = -sum t log p exactly.")
]
EpsOpt = Annotated[
    Optional[float],
    typer.Option("--eps", help="With --from-probs, clip probabilities below EPS (only on request).",
                 show_default=False),
]
OutDirOpt = Annotated[
    Optional[Path],
    typer.Option("--out-dir", help="Write one output per input into DIR (created if missing), named after the "
                 "input; format from -f, else the input's own.", show_default=False, file_okay=False),
]
KeepGoingOpt = Annotated[
    bool, typer.Option("--keep-going", help="In a batch, go on past a bad input; list the failures at the end.")
]
ThreadsOpt = Annotated[
    Optional[int],
    typer.Option("--threads", help="Threads for large arrays (default: the available cores); results are "
                 "identical for any count.", show_default=False, min=1),
]


class CausalAlign(str, Enum):
    upper_left = "upper-left"
    lower_right = "lower-right"
