"""Every subcommand has help and an example in the README (as sqlite-utils' test_docs.py does)."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, run


def subcommands() -> list[str]:
    """The subcommand names listed under "Commands:" by ``softmax --help``."""
    completed = run("--help")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().rstrip(":") == "Commands") + 1
    names = []
    for line in lines[start:]:
        if not line.strip():
            break
        match = re.match(r"^\s{2}([a-z][a-z0-9-]*)(\s|$)", line)
        if match:
            names.append(match.group(1))
    return names


SUBCOMMANDS = subcommands()


def readme_command_lines() -> list[str]:
    """Lines inside ``` fenced blocks of README.md, a leading "$ " prompt removed."""
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.fail("README.md does not exist yet; every subcommand needs an example there")
    lines, fenced = [], False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            stripped = line.strip()
            lines.append(stripped[2:] if stripped.startswith("$ ") else stripped)
    return lines


def test_help_lists_subcommands():
    assert "probs" in SUBCOMMANDS


def test_version_option_is_documented_in_help():
    assert "--version" in run("--help").stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_has_help(name):
    completed = run(name, "--help")
    assert completed.returncode == 0, completed.stderr
    assert f"softmax {name}" in completed.stdout
    assert "--help" in completed.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_short_help_through_clirunner(cli, name):
    result = cli(name, "-h")
    assert result.returncode == 0, result.stderr
    assert f"softmax {name}" in result.stdout and "--help" in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_has_a_readme_example(name):
    lines = readme_command_lines()
    assert any(line == f"softmax {name}" or line.startswith(f"softmax {name} ") for line in lines), (
        f"README.md needs a fenced example line starting with 'softmax {name}'"
    )
