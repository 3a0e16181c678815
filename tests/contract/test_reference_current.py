"""docs/reference.md and the man page docs/softmax.1 are what the program generates from its own commands and options."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import ROOT, run

from softmax_cli import reference

REGENERATE = "python -m softmax_cli.reference"


@pytest.mark.parametrize("path", [reference.MARKDOWN, reference.MAN_PAGE], ids=str)
def test_the_generated_file_is_current(path):
    current = (ROOT / path).read_text(encoding="utf-8") if (ROOT / path).exists() else ""
    assert current == reference.generated()[path], f"{path} is stale: run `{REGENERATE}` and commit it"


def test_every_command_and_every_visible_option_of_help_is_in_the_reference():
    text = (ROOT / reference.MARKDOWN).read_text(encoding="utf-8")
    listed = run("--help").stdout
    names = re.findall(r"^  ([a-z][a-z-]+)\s", listed[listed.index("Commands"):], flags=re.MULTILINE)
    assert names and all(f"## softmax {name}\n" in text for name in names)
    for name in names:
        section = text.split(f"## softmax {name}\n", 1)[1].split("\n## ", 1)[0]
        help_text = run(name, "--help", env={"COLUMNS": "200"}).stdout
        for option in set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)):
            assert f"`{option}" in section or f", {option}" in section, (name, option)


def test_the_man_page_renders_without_warnings():
    man = shutil.which("man")
    if man is None:
        pytest.skip("no man(1) here")
    done = subprocess.run([man, "--warnings", "-l", str(ROOT / reference.MAN_PAGE)], capture_output=True, text=True,
                          env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "softmax sample-data" in done.stdout and "--max-kl" in done.stdout.replace("‐", "-")


def test_the_check_mode_says_how_to_regenerate(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    assert reference.main(["--check"]) == 1
    assert reference.main([]) == 0
    assert reference.main(["--check"]) == 0
