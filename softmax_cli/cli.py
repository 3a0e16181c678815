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

from .app import SoftmaxCommand, SoftmaxGroup, app, run

# name -> (module of softmax_cli.commands, function), in the order help lists them.
COMMANDS = {
    "probs": ("probs", "probs"),
    "loss": ("crossentropy", "loss"),
    "grad": ("crossentropy", "grad"),
    "jacobian": ("probs", "jacobian"),
    "temperature-sweep": ("calibration", "temperature_sweep"),
    "topk": ("ranking", "topk"),
    "attention": ("attention", "attention"),
    "compare": ("compare", "compare"),
}


def command_function(name: str):
    """The plain function behind command ``name`` (its module imported now)."""
    module, function = COMMANDS[name]
    return getattr(import_module(f"{__package__}.commands.{module}"), function)


def build(name: str):
    """Command ``name`` as Click runs it: its options declared for Typer (``options.shared_options``)."""
    from .options import shared_options

    single = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)
    single.command(name=name, cls=SoftmaxCommand)(shared_options(command_function(name)))
    return typer.main.get_command(single)


SoftmaxGroup.lazy_commands = {name: functools.partial(build, name) for name in COMMANDS}


def main() -> None:
    """Console-script entry point."""
    run(app)
