"""A run loads only its own command, and the help none: start-up pays for what the command line asks.

Each case runs in a fresh interpreter (as ``tests/test_entrypoint.py`` does),
so modules imported by other tests cannot hide a regression.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, sys
sys.argv = ["softmax", *json.loads(sys.argv[1])]
from softmax_cli.cli import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(args: list[str]) -> tuple[set[str], str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("SOFTMAX_DEBUG", "SOFTMAX_SCHEDULER")}
    completed = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                               env=environment, stdin=subprocess.DEVNULL, timeout=120)
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, completed.stderr
    return set(report["modules"]), completed.stdout


def _commands_in(modules: set[str]) -> set[str]:
    return {m.rsplit(".", 1)[1] for m in modules if m.startswith("softmax_cli.commands.")}


def test_a_run_imports_its_own_command_module_only():
    modules, stdout = _modules_after(["probs", "3", "2", "1", "-f", "csv"])
    assert stdout.startswith("0.66524"), stdout  # the probe really ran the command
    assert _commands_in(modules) == {"probs"}


@pytest.mark.parametrize(("command", "module"), [("compare", "compare"), ("topk", "ranking"), ("loss", "crossentropy")])
def test_each_commands_help_imports_its_module_only(command, module):
    modules, stdout = _modules_after([command, "--help"])
    assert stdout.startswith(f"Usage: softmax {command} ")
    assert _commands_in(modules) == {module}


def test_the_top_level_help_imports_no_command_and_no_numpy():
    modules, stdout = _modules_after(["--help"])
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
