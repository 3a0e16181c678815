"""docs/mistakes.md runs as written: every ``$`` line in order, in a folder holding a copy of sample_data/.

Each command's output lines must be the ones the page shows (as a set: a
``warning:`` on standard error and a piped ``tail`` interleave as they
please), and a line showing an ``error:`` must come from a command that exits 2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "mistakes.md"


def examples() -> list[tuple[str, list[str]]]:
    """``(command, shown output lines)`` for every ``$`` line of the page's console blocks, in order."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found:
                found[-1][1].append(line)
    return found


def test_every_example_on_the_mistakes_page_runs_as_shown(tmp_path):
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    environment = {k: v for k, v in os.environ.items() if k != "SOFTMAX_DEBUG"}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["PYTHONPATH"] = str(ROOT)
    if not (Path(sys.executable).parent / "softmax").exists():
        pytest.skip("the softmax console script is not installed next to this Python")
    for command, shown in examples():
        completed = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=environment, capture_output=True,
                                   check=False, text=True, timeout=120)
        lines = (completed.stdout + completed.stderr).splitlines()
        assert sorted(lines) == sorted(shown), (command, completed.stdout, completed.stderr)
        expected_status = 2 if any(line.startswith("error: ") for line in shown) else 0
        assert completed.returncode == expected_status, (command, completed.stderr)
