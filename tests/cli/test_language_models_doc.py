"""Every command line in docs/language-models.md runs as written, in order, from a copy of sample_data/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"^(softmax|cat|python)\b")


def test_every_example_runs_in_order(tmp_path):
    text = (ROOT / "docs" / "language-models.md").read_text(encoding="utf-8")
    commands = [line.strip() for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)
                for line in block.splitlines() if COMMAND.match(line.strip())]
    assert len(commands) >= 8
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "softmax").exists():
        pytest.skip("the softmax console script is not installed next to this Python")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "80"}
    failures = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)
        gate = done.returncode == 1 and "gate failed:" in done.stderr
        if done.returncode != 0 and not gate:
            failures.append(f"{command}\n    exit {done.returncode}: {done.stderr.strip()[-300:]}")
    assert not failures, "examples that do not run:\n" + "\n".join(failures)
    # The summary leads as "# name: value" lines; then one line per sequence.
    sequences = [line for line in (tmp_path / "lm_sequences.csv").read_text().splitlines() if not line.startswith("#")]
    assert sequences[0].startswith("seq_n_scored,") and [line.split(",")[0] for line in sequences[1:5]] == \
        ["175", "149", "119", "89"]
