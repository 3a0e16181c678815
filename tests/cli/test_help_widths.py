"""Help reads at 60, 80 and 120 columns: no line wider than the terminal, no word or option split, examples that run.

Checked through the real entry point with the terminal's width in ``COLUMNS``,
as a shell sets it. A word split across lines (``torc`` / ``h.nn``, ``--m`` /
``ax-kl``) shows as a word that differs between widths; an example continued
at a space ends its line with the shell's ``\\``, so it runs as copied.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter

import pytest
from conftest import ROOT, run, softmax_command

WIDTHS = (60, 80, 120)
WIDE = 400  # wider than any help line: nothing wraps


def help_at(columns: int, *command: str) -> str:
    done = run(*command, "--help", env={"COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    return done.stdout


COMMANDS = re.findall(r"^  ([a-z][a-z-]+)\s", help_at(WIDE).split("Commands:", 1)[1], flags=re.MULTILINE)
PAGES = [(), *((name,) for name in COMMANDS)]


def words(text: str) -> Counter:
    """The words of a help text, whatever the wrapping: a shell continuation is no word."""
    return Counter(word for word in text.split() if word != "\\")


def examples(text: str) -> list[str]:
    """The commands under "Example:"/"Examples:"/"Typical pipelines:", continuation lines joined, comments dropped."""
    found = []
    for block in re.findall(r"^ *(?:Examples?|Typical pipelines):\n((?: {4,}.*\n?)+)", text, flags=re.MULTILINE):
        joined = re.sub(r" \\\n\s+", " ", block)
        commands = (re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines())
        found += [command for command in commands if command and not command.startswith("#")]
    return found


def test_there_are_commands_to_check():
    assert "probs" in COMMANDS and "compare" in COMMANDS and "sample-data" in COMMANDS


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: " ".join(p) or "softmax")
def test_no_line_is_wider_than_the_terminal(page, columns):
    wide = [line for line in help_at(columns, *page).splitlines() if len(line) > columns]
    assert not wide, f"{len(wide)} lines wider than {columns} columns: {wide[:3]}"


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: " ".join(p) or "softmax")
def test_no_word_or_option_is_split_across_lines(page, columns):
    narrow, wide = words(help_at(columns, *page)), words(help_at(WIDE, *page))
    assert narrow == wide, f"split or changed at {columns} columns: {sorted((narrow - wide).elements())[:8]}"


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: " ".join(p) or "softmax")
def test_examples_wrap_at_spaces_into_the_same_commands(page, columns):
    shown = examples(help_at(columns, *page))
    assert shown, "every help page shows an example"
    assert shown == examples(help_at(WIDE, *page))


def test_the_compare_example_continued_at_60_columns_runs_as_copied(tmp_path):
    block = re.search(r"Example:\n((?: {4,}.*\n?)+)", help_at(60, "compare")).group(1)
    assert block.count("\\\n") >= 1, "at 60 columns the compare example is continued on a second line"
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    script = block.replace("softmax ", " ".join(softmax_command()) + " ", 1)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kl_mean,")  # csv on a pipe: the summary as one line of named figures
