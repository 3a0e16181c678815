"""Start-up stays light: a plain CSV run imports neither Rich nor anything heavy.

As Typer's own ``tests/test_rich_import.py`` does, this runs in a fresh
subprocess, so modules imported by other tests cannot hide a regression.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import modules_imported_by, softmax_command

# Top-level packages (and rich.table) that `softmax probs 3 2 1 -f csv` must not import; dask and
# distributed only with --scheduler.
FORBIDDEN = ("rich", "rich.table", "scipy", "torch", "pydantic", "click", "matplotlib", "pandas", "jax", "dask",
             "distributed", "zarr")



def _environment():
    return {k: v for k, v in os.environ.items() if k not in ("SOFTMAX_DEBUG", "PYTHONPROFILEIMPORTTIME", "SOFTMAX_SCHEDULER")}


def _forbidden_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN)


def test_csv_run_imports_nothing_heavy():
    modules, stdout = modules_imported_by(["probs", "3", "2", "1", "-f", "csv"])
    assert stdout.startswith("0.66524"), stdout  # the probe really ran the command
    assert _forbidden_in(modules) == []
    # Without --scheduler the distributed engine's modules stay unloaded too, not only Dask.
    assert not [m for m in modules if m.startswith("softmax_cli.cluster")]


def _format_modules_in(modules: set[str]) -> set[str]:
    return {m.rsplit(".", 1)[1] for m in modules if m.startswith("softmax_cli.formats.")} - {"base", "registry"}


def test_a_plain_run_imports_no_module_of_what_it_does_not_ask_for():
    """Labels, gates, reports, masks, tables and plots each come with the option that asks for them."""
    modules, stdout = modules_imported_by(["probs", "3", "2", "1", "-f", "csv"])
    assert stdout.startswith("0.66524"), stdout
    unasked = {"labelsource", "reports", "positions", "tables", "tablecells", "rankedtable", "comparetable", "plots",
               "reference"}
    assert sorted(m for m in modules if m.split(".")[-1] in unasked and m.startswith("softmax_cli.")) == []


@pytest.mark.parametrize(("fmt", "module"), [("csv", "text"), ("tsv", "text"), ("json", "jsonfmt"), ("npy", "npy")])
def test_a_run_imports_only_the_format_module_it_writes(fmt, module):
    """The registry imports a format's module when a file of it is read or written, no other."""
    modules, stdout = modules_imported_by(["probs", "3", "2", "1", "-f", fmt])
    assert stdout  # the probe really ran the command
    assert _format_modules_in(modules) == {module}


@pytest.mark.parametrize("fmt", ["json", "npy"])
def test_other_machine_formats_import_nothing_heavy(fmt):
    modules, _ = modules_imported_by(["probs", "3", "2", "1", "-f", fmt])
    assert _forbidden_in(modules) == []


def test_table_is_the_only_path_that_imports_rich():
    # The positive control: the probe does see Rich when a table is drawn.
    modules, stdout = modules_imported_by(["probs", "3", "2", "1", "-f", "table"])
    assert "rich.table" in modules
    assert "0.6652" in stdout
    assert not {"scipy", "torch", "pydantic"} & {m.split(".")[0] for m in modules}


def test_installed_script_imports_nothing_heavy():
    """The same through the console script itself, with CPython's import-time log."""
    environment = {**_environment(), "PYTHONPROFILEIMPORTTIME": "1"}
    completed = subprocess.run([*softmax_command(), "probs", "3", "2", "1", "-f", "csv"], capture_output=True,
                               text=True, env=environment, stdin=subprocess.DEVNULL, timeout=60)
    assert completed.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "softmax_cli.cli" in imported  # the log is real and covers our package
    assert _forbidden_in(imported) == []
