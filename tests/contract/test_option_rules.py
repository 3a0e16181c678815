"""Every option that takes a range or a choice refuses anything else in one wording: ``--X takes WHAT, got V``.

The cases are generated from the declarations (``softmax_cli.options.Opt``) of
every command, so an option added with a rule is checked here without a new
line: each declaration names a value its rule refuses, and the real ``softmax``
must print exactly one ``error:`` line in the one wording and exit 2, before
reading any input.
"""

from __future__ import annotations

import pytest
from conftest import run

from softmax_cli.cli import COMMANDS, command_function
from softmax_cli.options import declared_options

# What each command needs on its command line for an option to be parsed at all (the option comes first).
POSITIONALS = {"compare": ["1 2", "1 3"]}


def _cases():
    for command in COMMANDS:
        for opt in declared_options(command_function(command)):
            if opt.takes is not None:
                yield pytest.param(command, opt, id=f"{command} {opt.name}")


CASES = list(_cases())


def test_the_rules_cover_the_options_that_had_four_wordings():
    covered = {(command, opt.name) for command, opt in (case.values for case in CASES)}
    assert {("probs", "--threads"), ("probs", "--temperature"), ("probs", "--precision"), ("loss", "--max-loss"),
            ("topk", "--min-accuracy"), ("compare", "--max-kl"), ("loss", "--reduction"),
            ("attention", "--masked-rows"), ("attention", "--causal-align")} <= covered


@pytest.mark.parametrize(("command", "opt"), CASES)
def test_a_refused_value_gets_the_one_wording(command, opt):
    refused = opt.takes.refused()
    completed = run(command, f"{opt.names[0]}={refused}" if opt.names[0].startswith("--") else opt.names[0],
                    *([] if opt.names[0].startswith("--") else [refused]), *POSITIONALS.get(command, ["1 2"]))
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr == f"error: {opt.name} takes {opt.takes.describe()}, got {refused}\n"


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--threads", "0", "a whole number >= 1"),
    ("-t", "0", "a finite number > 0"),
    ("--temperature", "inf", "a finite number > 0"),
    ("--precision", "99", "0 to 17 decimals (float64 carries 17 significant digits)"),
    ("--masked-rows", "skip", "error, zero or nan"),
    ("--format", "xml", "table, csv, tsv, json, npy, npz, safetensors, parquet or arrow"),
    ("--axis", "last", "a whole number"),
])
def test_the_wording_names_the_option_and_echoes_the_value(option, value, words):
    completed = run("probs", "3 2 1", option, value)
    long_name = "--temperature" if option == "-t" else option
    assert (completed.returncode, completed.stderr) == (2, f"error: {long_name} takes {words}, got {value}\n")


def test_the_choices_are_the_cores_tuples():
    from softmax_cli import choices

    help_text = run("attention", "--help").stdout
    assert f"<{'|'.join(choices.CAUSAL_ALIGNMENTS)}>" in help_text
    assert f"<{'|'.join(choices.MASKED_ROW_POLICIES)}>" in help_text
    assert f"<{'|'.join(choices.REDUCTIONS)}>" in run("loss", "--help").stdout


def test_a_rule_between_two_options_of_a_group_is_checked_before_any_input_is_read():
    completed = run("loss", "no-such-file.npy", "--labels", "0", "--eps", "0.1")
    assert (completed.returncode, completed.stderr) == (2, "error: --eps clips probabilities; it goes with "
                                                           "--from-probs\n")
