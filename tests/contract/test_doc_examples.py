"""Every example of README.md and docs/*.md runs as written, in order, the way a reader types them.

Each page runs in its own scratch folder holding a copy of ``sample_data/`` (or
an empty one, when the page writes the samples itself with ``softmax
sample-data``), with the installed ``softmax`` first on PATH; an example that
creates a file creates it for the ones after it. What counts as an example, and
the exit status a page says it ends with, are ``scripts/doc_examples.py``'s
rules (which also refreshes the output shown after each ``$`` line).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import doc_examples  # a script of the repository (scripts/), not a package

PAGES = doc_examples.pages()


def test_the_readme_and_the_command_guides_have_examples():
    counted = {page.relative_to(ROOT).as_posix(): len(doc_examples.examples(page)) for page in PAGES}
    assert counted["README.md"] >= 5
    assert all(n > 0 for name, n in counted.items() if name.startswith("docs/commands/")), counted


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory) -> Path:
    """A folder holding ``softmax`` and ``python`` for this interpreter: the console script as pip writes it.

    The ``__main__`` guard matters: ``--scheduler local:N`` starts Dask's workers by spawning, which
    re-runs the main script in each of them.
    """
    shim = tmp_path_factory.mktemp("bin")
    (shim / "softmax").write_text(f"#!{sys.executable}\nimport sys\nfrom softmax_cli.__main__ import main\n"
                                  "if __name__ == '__main__':\n    sys.exit(main())\n")
    (shim / "softmax").chmod(0o755)
    (shim / "python").symlink_to(sys.executable)
    return shim


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_example_of_the_page_runs_in_order(page, bin_dir):
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "100"}
    env.pop("SOFTMAX_SCHEDULER", None)
    folder = doc_examples.scratch_folder(page)
    failures = []
    try:
        for example in doc_examples.examples(page):
            done = subprocess.run(["bash", "-c", example.command], cwd=folder, env=env, capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL, timeout=300, check=False)
            gate = done.returncode == 1 and "gate failed:" in done.stderr
            status_ok = done.returncode in example.expected and (done.returncode != 1 or gate)
            if not status_ok:
                failures.append(f"line {example.line + 1}: {example.command}\n    exit {done.returncode} "
                                f"(the page says {sorted(example.expected)}): {done.stderr.strip()[-300:]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert not failures, f"examples of {page.name} that do not run as the page says:\n" + "\n".join(failures)
