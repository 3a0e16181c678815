"""ARCHITECTURE.md stays true: its code map names every module of the package."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "softmax_cli"


def code_map_entries() -> list[str]:
    """The backticked paths in the first column of ARCHITECTURE.md's code map."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return [entry for cell in first_cells for entry in re.findall(r"`([^`]+)`", cell)]


def named_by(module: str, entries: list[str]) -> bool:
    # "commands/" covers the package's files; "core/sdpa*.py" its family.
    return any(module.startswith(entry) if entry.endswith("/") else fnmatch.fnmatch(module, entry)
               for entry in entries)


def test_every_module_is_in_the_code_map():
    entries = code_map_entries()
    modules = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                     if path.name != "__init__.py" or path.parent == PACKAGE)
    missing = [module for module in modules if module != "__init__.py" and not named_by(module, entries)]
    assert not missing, f"ARCHITECTURE.md's code map does not name {missing}"


def test_every_code_map_entry_exists():
    entries = code_map_entries()
    modules = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")]
    stale = [entry for entry in entries if not any(named_by(module, [entry]) for module in modules)]
    assert not stale, f"ARCHITECTURE.md names modules that do not exist: {stale}"
