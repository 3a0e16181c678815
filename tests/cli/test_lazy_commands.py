"""A run loads only its own command, and the help none: start-up pays for what the command line asks.

Each case runs in a fresh interpreter (as ``tests/test_entrypoint.py`` does),
so modules imported by other tests cannot hide a regression.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from conftest import modules_imported_by


def _commands_in(modules: set[str]) -> set[str]:
    return {m.rsplit(".", 1)[1] for m in modules if m.startswith("softmax_cli.commands.")}


def test_a_run_imports_its_own_command_module_only():
    modules, stdout = modules_imported_by(["probs", "3", "2", "1", "-f", "csv"])
    assert stdout.startswith("0.66524"), stdout  # the probe really ran the command
    assert _commands_in(modules) == {"probs"}


@pytest.mark.parametrize(("command", "module"), [("compare", "compare"), ("topk", "ranking"), ("loss", "crossentropy")])
def test_each_commands_help_imports_its_module_only(command, module):
    modules, stdout = modules_imported_by([command, "--help"])
    assert stdout.startswith(f"Usage: softmax {command} ")
    assert _commands_in(modules) == {module}


@pytest.mark.parametrize("command", ["probs", "jacobian", "loss", "grad", "topk", "attention", "temperature-sweep"])
def test_a_commands_help_imports_no_numpy_and_no_format_module(command):
    """A help page needs the options and the docstring: the command's body imports what it computes with."""
    modules, stdout = modules_imported_by([command, "--help"])
    assert stdout.startswith(f"Usage: softmax {command} ")
    assert "numpy" not in modules
    assert not [m for m in modules if m.startswith("softmax_cli.formats.") and m != "softmax_cli.formats.registry"]


def test_the_top_level_help_imports_no_command_and_no_numpy():
    modules, stdout = modules_imported_by(["--help"])
    assert "temperature-sweep" in stdout
    assert _commands_in(modules) == set()
    assert "numpy" not in modules


def test_declaring_the_options_imports_no_numpy_and_no_format():
    completed = subprocess.run([sys.executable, "-c", "import sys, softmax_cli.cli, softmax_cli.options; "
                                "print(sorted(m for m in sys.modules if m == 'numpy' or m.startswith("
                                "('softmax_cli.formats', 'softmax_cli.render', 'softmax_cli.commands'))))"],
                               capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip() == "[]", completed.stderr


def test_the_listed_summaries_are_the_commands_own_first_paragraphs():
    from softmax_cli.cli import COMMANDS, command_function

    for name, (_, _, summary) in COMMANDS.items():
        docstring = inspect.getdoc(command_function(name))
        assert summary == " ".join(docstring.split("\n\n")[0].split()), name
