"""Run the README's quick start as a new user would: every command of its code blocks, in order, in an empty folder.

Usage: python3 .ci/quickstart.py README.md   (with the installed ``softmax`` first on PATH)

The quick start is the README section headed "Quick start"; its `pip install`
line is what CI did already (from the built wheel, not from PyPI). A command
that exits non-zero stops the run with that command's status.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

text = Path(sys.argv[1]).read_text(encoding="utf-8")
section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
if section is None:
    sys.exit("error: README.md has no '## Quick start' section")
lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", section.group(1), flags=re.DOTALL)
         for line in block.splitlines()]
commands = [line[2:] for line in lines if line.startswith("$ ") and "pip install" not in line]
if not commands:
    sys.exit("error: the quick start shows no commands ('$ ' lines)")
with tempfile.TemporaryDirectory() as folder:
    for command in commands:
        print(f"$ {command}", flush=True)
        done = subprocess.run(["bash", "-c", command], cwd=folder, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            sys.exit(done.returncode)
