"""The ``softmax`` command line: one short function per subcommand.

Each command loads its inputs, calls :mod:`softmax_cli.core`, and hands a
:class:`~softmax_cli.result.Result` to :mod:`softmax_cli.render`. Errors are
turned into ``error: ...`` and an exit status in one place,
:meth:`SoftmaxCommand.invoke`.
"""

from __future__ import annotations

import os
import re
import sys
import traceback

import typer
from typer.core import TyperCommand

from . import __version__, core, render
from .errors import SoftmaxError
from .inputs import load_logits
from .options import (
    AxisOpt,
    ClassesOpt,
    ForceOpt,
    FormatOpt,
    InputsArg,
    KeyOpt,
    MaskedRows,
    MaskedRowsOpt,
    OutputOpt,
    PrecisionOpt,
    TemperatureOpt,
)
from .result import Result

# A token that starts like a negative number (-1, -.5, -inf, -nan, "-1 2; 3 4")
# is data, never an option, even though it begins with '-'.
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def separate_numbers(args: list[str], value_options: set[str]) -> list[str]:
    """Move positional tokens behind ``--`` so negative numbers are not read as options.

    Click would read ``-inf`` as the short options ``-i -n -f`` and ``-1`` as an
    unknown option. Options keep their order and their values (``--ignore-index
    -100`` stays an option value); positionals keep their order after ``--``.
    """
    options: list[str] = []
    positionals: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            positionals.extend(tokens)
        elif token in value_options:
            options.append(token)
            following = next(tokens, None)
            if following is not None:
                options.append(following)
        elif token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token):
            options.append(token)
        else:
            positionals.append(token)
    return options + (["--", *positionals] if positionals else [])


class SoftmaxCommand(TyperCommand):
    """A command that takes negative numbers as data and reports errors as ``error: ...``."""

    def parse_args(self, ctx, args):
        value_options = {
            name
            for param in self.params
            if param.param_type_name == "option" and not getattr(param, "is_flag", False)
            for name in (*param.opts, *param.secondary_opts)
        }
        return super().parse_args(ctx, separate_numbers(list(args), value_options))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SoftmaxError as error:
            if os.environ.get("SOFTMAX_DEBUG") == "1":
                traceback.print_exc()
            print(f"error: {error}", file=sys.stderr)
            raise typer.Exit(error.exit_code) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, and send what Python
            # still holds to /dev/null so the flush at exit does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None


app = typer.Typer(
    name="softmax",
    help="The softmax function and everything around it: probabilities, losses, gradients, "
    "Jacobians, temperature, top-k and attention, exact and fast.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"softmax {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version),
) -> None:
    """Exit status: 0 success, 1 a gate failed, 2 bad usage or bad input."""


@app.command(cls=SoftmaxCommand)
def probs(
    inputs: InputsArg = None,
    log: bool = typer.Option(False, "--log", help="Log-probabilities (exact log-softmax) instead."),
    temperature: TemperatureOpt = 1.0,
    axis: AxisOpt = -1,
    masked_rows: MaskedRowsOpt = MaskedRows.error,
    key: KeyOpt = None,
    classes: ClassesOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = None,
) -> None:
    """Softmax probabilities (or --log log-probabilities) of the logits.

    Example: softmax probs 3 2 1;  softmax probs logits.csv -f json
    """
    logits = load_logits(inputs, key=key, classes=classes, axis=axis)
    sink = render.open_sink(fmt, output, force, precision, logits.paths)
    function = core.log_softmax if log else core.softmax
    values = function(logits.array, axis=axis, temperature=temperature, masked_rows=masked_rows.value)
    class_last = axis in (-1, values.ndim - 1)
    display = {"entropy": core.entropy(logits.array, axis=axis, temperature=temperature)} if not log else {}
    result = Result(
        {"log_probs" if log else "probs": values},
        classes=logits.classes,
        header=logits.classes if class_last else None,
        layout="distribution" if class_last else "grid",
        display=display if values.ndim == 2 and class_last else {},
    )
    render.write(result, sink)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="softmax")
