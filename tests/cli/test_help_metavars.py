"""Every placeholder in ``--help`` says what it stands for, and a shared option's help says what it does there.

Click's type names (``<int range>``, ``<str>``, ``<float>``, ``<file>``) tell a
user the parser's type, not what to type; Typer's braces around required
arguments (``{REFERENCE}``) read as a set. Each command's help is read through
the real ``softmax`` entry point.
"""

from __future__ import annotations

import re

import pytest
from conftest import run

COMMANDS = ["probs", "loss", "grad", "jacobian", "temperature-sweep", "topk", "attention", "compare"]
TYPE_NAMES = re.compile(r"<(int|integer|float|str|text|file|directory|path|int range|float range)>|\[x[<>]=", re.I)


def _placeholders(help_text: str) -> list[str]:
    """Each option line's metavar: ``--threads N`` gives N (flags give none); examples above the panels are not options."""
    found = []
    lines = help_text.splitlines()
    first_panel = next(i for i, line in enumerate(lines) if line == "Arguments:" or line.endswith(":")
                       and not line.startswith((" ", "Usage")))
    for line in lines[first_panel:]:
        match = re.match(r"^\s+(?:-\w, )?--[\w-]+(?: / --[\w-]+)? (\S+)(?:\s{2,}|$)", line)
        if match:
            found.append(match.group(1))
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_no_placeholder_is_a_parser_type(command):
    help_text = run(command, "--help").stdout
    assert not TYPE_NAMES.search(help_text), TYPE_NAMES.search(help_text).group(0)
    for placeholder in _placeholders(help_text):
        assert placeholder.isupper() or placeholder.startswith("<") and placeholder.endswith(">"), placeholder


def test_compare_usage_names_its_two_arguments_plainly():
    usage = run("compare", "--help").stdout.splitlines()[0]
    assert usage == "Usage: softmax compare [OPTIONS] REFERENCE CANDIDATE"


@pytest.mark.parametrize(("option", "metavar"), [("--threads", "N"), ("--precision", "N"), ("--output", "FILE"),
                                                 ("--out-dir", "DIR"), ("--temperature", "T"), ("--key", "NAME")])
def test_shared_placeholders(option, metavar):
    assert re.search(rf"{option} {re.escape(metavar)}\s", run("probs", "--help").stdout)


@pytest.mark.parametrize(("command", "says"), [("topk", "top-k accuracy"), ("compare", "perplexities"),
                                               ("temperature-sweep", "ECE"), ("loss", "distributions")])
def test_labels_help_is_about_the_command_it_is_in(command, says):
    text = " ".join(run(command, "--help").stdout.split())
    labels_help = re.search(r"--labels LABELS\|FILE (.*?)(?= --)", text).group(1)
    assert says in labels_help
    assert "loss and grad" not in labels_help
