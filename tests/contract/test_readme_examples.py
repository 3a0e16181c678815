"""Every command line in README.md's code blocks runs as written, in order, the way a new user types them.

The examples run in a scratch folder holding a copy of ``sample_data/`` (the
files they name), with the installed ``softmax`` first on PATH; an example
that creates a file (``python -c "... np.save(...)"``) creates it for the
ones after it. A failed CI gate (exit 1 with ``gate failed:``) is what a gate
example shows, so it counts as running.
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
# What a README code block's line starts with when it is a command to run (not output).
COMMAND = re.compile(r"^(softmax|cat|python|mkdir|SOFTMAX_\w+=|cp|rm)\b")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) for line in block.splitlines()]
    commands = [re.sub(r"\s+#\s.*$", "", line).strip() for line in lines]
    # The set-up lines install the project; the test suite runs inside that installation already.
    return [c for c in commands if COMMAND.match(c) and "pip install" not in c and "pytest" not in c]


def test_every_readme_example_runs_in_order(tmp_path):
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "softmax").exists():
        pytest.skip("the softmax console script is not installed next to this Python")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "100"}
    env.pop("SOFTMAX_SCHEDULER", None)
    failures = []
    for command in readme_commands():
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)
        gate = done.returncode == 1 and "gate failed:" in done.stderr
        if done.returncode != 0 and not gate:
            failures.append(f"{command}\n    exit {done.returncode}: {done.stderr.strip()[-300:]}")
    assert not failures, "README examples that do not run:\n" + "\n".join(failures)
