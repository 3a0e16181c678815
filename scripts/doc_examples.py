"""The examples of README.md and docs/*.md: what counts as a command to run, and the real output shown after it.

A page's examples run in order, as a reader types them, in a folder holding a
copy of ``sample_data/``; an example may use a file an earlier one made.

In a fenced block marked ``console``, a line starting with ``$ `` is a
command and the lines up to the next one are its output, as a terminal shows it
(80 columns). Output that says ``error:`` means the command exits 2, and
``gate failed:`` that it exits 1; anything else, 0. In other unmarked (or
``sh``/``bash``) blocks, every line that starts like a command is one (a
trailing ``  # comment`` is dropped) and may exit 0, or 1 with ``gate failed:``.
Blocks marked ``text`` or ``python`` hold no commands (python-api.md's examples
are doctests).

    python scripts/doc_examples.py            # rewrite the output after every `$ ` line
    python scripts/doc_examples.py docs/commands/probs.md

Run from the repository with the ``softmax`` to document first on PATH. A page that
writes the samples itself (``softmax sample-data``) starts from an empty folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a line of a plain code block starts with when it is a command to run (not output).
COMMAND = re.compile(r"^(softmax|cat|python|mkdir|SOFTMAX_\w+=|COLUMNS=\d+ softmax|cp|rm|ls|head)\b")
FENCE = re.compile(r"^```(\w*)\s*$")
# What a terminal escape looks like (colour, bold), removed from the output shown.
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclasses.dataclass
class Example:
    command: str
    line: int  # 0-based line of the command in its page
    expected: set[int]  # the exit statuses the page says it ends with
    shown: tuple[int, int] | None = None  # the lines of its shown output (console blocks), end exclusive


def pages() -> list[Path]:
    """README.md, then every page under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def examples(page: Path) -> list[Example]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    kind = None
    for number, line in enumerate(lines):
        fence = FENCE.match(line.strip())
        if fence:
            kind = None if kind is not None else fence.group(1) or "plain"
            if kind is None and found and found[-1].shown is not None and found[-1].shown[1] == -1:
                found[-1].shown = (found[-1].shown[0], number)
            continue
        if kind == "console" and line.startswith("$ "):
            if found and found[-1].shown is not None and found[-1].shown[1] == -1:
                found[-1].shown = (found[-1].shown[0], number)
            found.append(Example(line[2:].strip(), number, {0}, (number + 1, -1)))
        elif kind in ("plain", "sh", "bash"):
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if COMMAND.match(command):
                found.append(Example(command, number, {0, 1}))
    for example in found:
        if example.shown is not None:
            output = "\n".join(lines[example.shown[0]:example.shown[1]])
            example.expected = {2} if "error:" in output else {1} if "gate failed:" in output else {0}
    # Installing is what the reader did before; the tests run inside an installation already.
    return [e for e in found if "pip install" not in e.command and "pytest" not in e.command]


def scratch_folder(page: Path) -> Path:
    """An empty folder for ``page``'s examples, holding ``sample_data/`` unless the page writes it itself."""
    folder = Path(tempfile.mkdtemp(prefix="softmax-docs-"))
    if not any(e.command.startswith("softmax sample-data") for e in examples(page)):
        shutil.copytree(ROOT / "sample_data", folder / "sample_data")
    return folder


def on_a_terminal(command: str, cwd: Path) -> str:
    """What ``command`` prints on an 80-column terminal (standard output and error, as a reader sees them)."""
    env = {**os.environ, "COLUMNS": "80", "LINES": "40", "NO_COLOR": "1", "TERM": "xterm"}
    done = subprocess.run(["script", "-qec", command, "/dev/null"], cwd=cwd, env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=600, check=False)
    text = ESCAPE.sub("", done.stdout.decode("utf-8", "replace")).replace("\r\n", "\n").replace("\r", "")
    return "\n".join(line.rstrip() for line in text.rstrip("\n").splitlines())


def refresh(page: Path) -> None:
    """Rewrite the output shown after each ``$ `` line of ``page`` with what the command prints now."""
    lines = page.read_text(encoding="utf-8").splitlines()
    folder = scratch_folder(page)
    replacements = []
    try:
        for example in examples(page):
            if example.shown is None:
                subprocess.run(["bash", "-c", example.command], cwd=folder, capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=600, check=False)
            else:
                replacements.append((example.shown, on_a_terminal(example.command, folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for (start, end), output in reversed(replacements):
        lines[start:end] = output.splitlines()
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    for path in [Path(p).resolve() for p in sys.argv[1:]] or pages():
        refresh(path)
        print(path.relative_to(ROOT))
