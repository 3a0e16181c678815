"""Every subcommand has help and a guide with examples in docs/commands/ (as sqlite-utils' test_docs.py does)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import ROOT, run, softmax_command


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


def guide_command_lines(name: str) -> list[str]:
    """Lines inside ``` fenced blocks of the command's guide, docs/commands/NAME.md, a leading "$ " prompt removed."""
    guide = ROOT / "docs" / "commands" / f"{name}.md"
    if not guide.exists():
        pytest.fail(f"{guide.relative_to(ROOT)} does not exist yet; every subcommand needs a guide with examples")
    lines, fenced = [], False
    for line in guide.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            stripped = line.strip()
            lines.append(stripped.removeprefix("$ "))
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
def test_subcommand_has_a_guide_with_an_example(name):
    lines = guide_command_lines(name)
    assert any(line == f"softmax {name}" or line.startswith(f"softmax {name} ") for line in lines), (
        f"docs/commands/{name}.md needs a fenced example line starting with 'softmax {name}'"
    )


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_is_in_the_readme_commands_table(name):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `{name}` |" in readme and f"(docs/commands/{name}.md)" in readme


# ----------------------------------------------------------- names that explain themselves (issue 12)

def test_topk_takes_top_and_keeps_k_as_a_hidden_alias(cli):
    by_top, by_short, by_old = (cli("topk", "1 5 3 4", flag, "2", "-f", "json") for flag in ("--top", "-k", "--k"))
    assert by_top.returncode == 0, by_top.stderr
    assert by_top.stdout == by_short.stdout == by_old.stdout
    assert json.loads(by_top.stdout)["indices"] == [1, 3]
    text = cli("topk", "--help").stdout
    assert "-k, --top" in text and "--k " not in text


def test_attention_return_weights_and_the_hidden_old_spelling(cli):
    operands = ("1 0; 0 1", "1 0; 0 1", "1 2; 3 4")
    new, old = (cli("attention", *operands, flag, "-f", "json") for flag in ("--return-weights", "--weights"))
    assert new.returncode == 0, new.stderr
    assert '"weights"' in new.stdout and new.stdout == old.stdout
    text = cli("attention", "--help").stdout
    assert "--return-weights" in text and " --weights" not in text


def test_top_level_help_gives_whole_summaries_and_typical_pipelines():
    text = run("--help").stdout
    flat = " ".join(text.split())
    for name in SUBCOMMANDS:
        summary = " ".join(run(name, "--help").stdout.split("\n\n")[1].split())
        assert summary in flat, (name, summary)
    assert "cat logits.csv | softmax probs -f json" in text
    assert "--max-loss" in text and "--out-dir" in text  # a CI gate line and a batch line
    for line in text.splitlines():
        if line.strip().startswith(("cat ", "softmax ")):
            assert len(line) <= 80, line  # whole lines, never wrapped mid-command


def test_completion_options_are_offered():
    text = run("--help").stdout
    assert "--install-completion SHELL" in text and "--show-completion SHELL" in text
    script = run("--show-completion", "bash")
    assert script.returncode == 0, script.stderr
    assert "complete -o default -F _softmax_completion softmax" in script.stdout


@pytest.mark.parametrize("shell, line", [("bash", "complete -o default -F _softmax_completion softmax"),
                                         ("zsh", "compdef _softmax_completion softmax"),
                                         ("fish", "complete --command softmax")])
def test_the_completion_script_is_the_named_shells_whatever_runs_the_command(shell, line):
    # Typer guessed the shell from the process tree: under `sh` (a container, a CI step) it said "Shell sh not
    # supported" with exit 1, and under bash it printed bash's script whatever shell was named.
    for parent in ("sh", "bash"):
        shown = subprocess.run([parent, "-c", f'"$0" "$@" --show-completion {shell}; exit $?', *softmax_command()],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert (shown.returncode, shown.stderr) == (0, ""), parent
        assert line in shown.stdout, parent


def test_a_shell_without_completion_is_refused_in_one_line():
    shown = run("--show-completion", "sh")
    assert shown.returncode == 2 and shown.stdout == ""
    assert shown.stderr == "error: --show-completion takes one of bash, zsh, fish, powershell, pwsh, got sh\n"


def test_install_completion_writes_the_named_shells_script(tmp_path):
    installed = run("--install-completion", "bash", env={"HOME": str(tmp_path)})
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "softmax.sh"
    assert str(script) in installed.stdout
    assert "_softmax_completion" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def complete(words: str) -> list[str]:
    """What bash completion offers after ``words`` (Typer's protocol, as its bash script calls it)."""
    completed = run(env={"_SOFTMAX_COMPLETE": "complete_bash", "COMP_WORDS": words,
                         "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.split()


def test_completion_of_subcommands_options_and_choices():
    assert "probs" in complete("softmax pr") and "temperature-sweep" in complete("softmax te")
    assert "--format" in complete("softmax probs --for")
    assert {"table", "csv", "json", "npy"} <= set(complete("softmax probs -f "))
    assert {"mean", "sum", "none"} <= set(complete("softmax loss --reduction "))


def test_completion_of_file_paths(tmp_path):
    (tmp_path / "logits.npy").write_bytes(b"")
    completed = run(env={"_SOFTMAX_COMPLETE": "complete_bash", "COMP_WORDS": f"softmax probs {tmp_path}/lo",
                         "COMP_CWORD": "2"})
    # Typer's bash script completes files itself (complete -o default) when the command offers
    # nothing, or the command offers the path; either way no option or command name is offered.
    assert completed.returncode == 0, completed.stderr
    offered = completed.stdout.split()
    assert offered in ([], [f"{tmp_path}/logits.npy"]), offered
    # zsh: Typer answers "_files" (zsh's own file completion) when the command offers nothing.
    zsh = run(env={"_SOFTMAX_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": f"softmax probs -o {tmp_path}/lo"})
    assert zsh.stdout.strip() == "_files", zsh.stdout
