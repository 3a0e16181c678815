"""The ``softmax`` command line: the subcommands, in the order help lists them, each loaded when asked for.

Each command lives in :mod:`softmax_cli.commands` (one module per family) and
takes its options as declared in :mod:`softmax_cli.options`; the app, its
parsing and its one place for errors are :mod:`softmax_cli.app`. A command's
module is imported, and its Click command built, only when that command runs
or a help page lists it.
"""

from __future__ import annotations

import functools
from importlib import import_module

import typer

from .app import SoftmaxCommand, SoftmaxGroup, app, run, with_quiet

# name -> (module of softmax_cli.commands, function, summary), in the order help lists them. The summary is
# the function's docstring's first paragraph (tests/cli/test_lazy_commands.py holds them equal): `softmax --help`
# lists the commands without importing them.
COMMANDS = {
    "probs": ("probs", "probs", "Softmax probabilities (or --log log-probabilities) of the logits."),
    "loss": ("crossentropy", "loss", "Cross-entropy of logits against --labels, as torch.nn.functional.cross_entropy."),
    "grad": ("crossentropy", "grad", "Gradient of the loss that `softmax loss` computes (same options) with respect "
             "to the logits."),
    "jacobian": ("probs", "jacobian", "Per-row Jacobian of softmax, diag(s) - s s^T, of shape (..., C, C)."),
    "temperature-sweep": ("calibration", "temperature_sweep", "Probabilities, entropy and confidence across "
                          "temperatures; with labels NLL, accuracy and ECE."),
    "topk": ("ranking", "topk", "The k most probable classes per row, highest first, ties to the lower index "
             "(--ties high: the higher)."),
    "attention": ("attention", "attention", "Scaled dot-product attention, as "
                  "torch.nn.functional.scaled_dot_product_attention."),
    "compare": ("compare", "compare", "How far apart two models' output distributions are: KL, JS, TV, top-1 "
                "agreement, perplexities."),
    "sample-data": ("sampledata", "sample_data", "Write the sample files that every example uses into "
                    "DIR/sample_data/, and list them."),
}


def command_function(name: str):
    """The plain function behind command ``name`` (its module imported now)."""
    module, function, _ = COMMANDS[name]
    return getattr(import_module(f"{__package__}.commands.{module}"), function)


def build(name: str):
    """Command ``name`` as Click runs it: its options declared for Typer (``options.shared_options``)."""
    from .options import shared_options

    single = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)
    single.command(name=name, cls=SoftmaxCommand)(with_quiet(shared_options(command_function(name))))
    return typer.main.get_command(single)


SoftmaxGroup.lazy_commands = {name: (summary, functools.partial(build, name))
                               for name, (_, _, summary) in COMMANDS.items()}


def main() -> None:
    """Console-script entry point."""
    run(app)
