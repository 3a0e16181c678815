"""The command-line reference (docs/reference.md) and the man page (docs/softmax.1), generated from the app itself.

Every command, every visible option: its panel, its type, its default and its
help, exactly as ``softmax CMD --help`` has them, so the reference cannot
drift from the program. Regenerate both after changing a command or an option::

    python -m softmax_cli.reference          # writes docs/reference.md and docs/softmax.1
    python -m softmax_cli.reference --check  # exit 1 when either is stale

The man page is installed with the package (``share/man/man1``), so ``man
softmax`` finds it in an activated virtual environment.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = Path("docs/reference.md")
MAN_PAGE = Path("docs/softmax.1")
# Click ends an option's help with "[default: X; x>=1; required]"; the default gets its own column.
_EXTRA = re.compile(r"\s*\[([^\[\]]*)\]\s*$")


@dataclasses.dataclass(frozen=True)
class Option:
    names: str  # "-k, --top" or "INPUTS..."
    panel: str
    kind: str  # the metavar help shows, and the choices of a choice
    default: str
    help: str


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str  # the docstring, paragraphs kept
    options: list[Option]


def _split_default(text: str) -> tuple[str, str]:
    """(help without Click's trailing bracket's default, the default) from a help record's text."""
    match = _EXTRA.search(text)
    if not match:
        return text.strip(), ""
    parts = [part.strip() for part in match.group(1).split(";")]
    defaults = [part[len("default:"):].strip() for part in parts if part.startswith("default:")]
    rest = [part for part in parts if not part.startswith("default:")]
    body = text[:match.start()].rstrip() + (f"  [{'; '.join(rest)}]" if rest else "")
    return body.strip(), defaults[0] if defaults else ""


def _option(param, ctx) -> Option | None:
    if getattr(param, "hidden", False):
        return None
    record = param.get_help_record(ctx)
    if param.param_type_name == "argument":
        names, help_text, panel = param.make_metavar(ctx), param.help or "", "Arguments"
    elif record is None:
        return None
    else:
        names, help_text = record
        panel = getattr(param, "rich_help_panel", None) or "Options"
    help_text, default = _split_default(" ".join(help_text.split()))
    choices = getattr(param.type, "choices", None)
    kind = "|".join(map(str, choices)) if choices else "flag" if getattr(param, "is_flag", False) else (
        param.make_metavar(ctx))
    if param.param_type_name == "option":
        # Short spellings first (Click builds the help option's from a set: its order varies by run).
        names = ", ".join(sorted(param.opts, key=lambda o: o.startswith("--")) + list(param.secondary_opts))
    return Option(names, panel, kind, default, help_text)


def commands() -> tuple[str, list[Option], list[Command]]:
    """The app's description, its own options and its commands in help's order, as help shows them."""
    import typer

    from .cli import app
    from .options import PANELS

    group = typer.main.get_command(app)
    root = group.make_context("softmax", [], resilient_parsing=True)
    order = ("Arguments", *PANELS, "Options")
    found = []
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        if command is None or command.hidden:
            continue
        ctx = command.make_context(name, [], parent=root, resilient_parsing=True)
        options = [o for o in (_option(p, ctx) for p in command.get_params(ctx)) if o is not None]
        options.sort(key=lambda o: order.index(o.panel) if o.panel in order else len(order))
        found.append(Command(name, f"softmax {name} {' '.join(command.collect_usage_pieces(ctx))}",
                             (command.help or "").replace("\b\n", "").strip(), options))
    top = [o for o in (_option(p, root) for p in group.get_params(root)) if o is not None]
    return " ".join((group.help or "").split()), top, found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def markdown() -> str:
    description, top, found = commands()
    out = ["# Command reference", "",
           "Generated from the program by `python -m softmax_cli.reference`; do not edit by hand. Every",
           "option as `softmax CMD --help` shows it. The guides in [docs/commands/](index.md#commands)",
           "explain the commands with examples.", "", description, "",
           "Commands: " + ", ".join(f"[{c.name}](#softmax-{c.name})" for c in found) + ".", "",
           "## softmax", "", "Usage: `softmax [OPTIONS] COMMAND [ARGS]...`", "",
           "| option | type | default | help |", "| --- | --- | --- | --- |"]
    out += [f"| `{o.names}` | {_cell(o.kind)} | {_cell(o.default)} | {_cell(o.help)} |" for o in top]
    for command in found:
        out += ["", f"## softmax {command.name}", "", f"Usage: `{command.usage}`", ""]
        out += [_markdown_text(command.help), ""]
        out += ["| option | panel | type | default | help |", "| --- | --- | --- | --- | --- |"]
        out += [f"| `{o.names}` | {o.panel} | {_cell(o.kind)} | {_cell(o.default)} | {_cell(o.help)} |"
                for o in command.options]
    return "\n".join(out) + "\n"


def _markdown_text(help_text: str) -> str:
    """A docstring's paragraphs as Markdown; an indented example becomes a ``text`` block.

    ``text``: the help's examples name files of their own (logits.csv, runs/), so the
    documentation's example runner (scripts/doc_examples.py) shows them without running them.
    """
    blocks = []
    for paragraph in help_text.split("\n\n"):
        lines = paragraph.splitlines()
        code = [line.strip() for line in lines if line.startswith("  ")]
        prose = " ".join(line.strip() for line in lines if not line.startswith("  "))
        if prose:
            blocks.append(prose)
        if code:
            blocks.append("```text\n" + "\n".join(code) + "\n```")
    return "\n\n".join(blocks)


def _roff(text: str) -> str:
    """Text safe in a man page: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines())


def man_page() -> str:
    from . import __version__

    description, top, found = commands()
    out = [f'.TH SOFTMAX 1 "" "softmax {__version__}" "User Commands"', ".SH NAME",
           "softmax \\- " + _roff(description), ".SH SYNOPSIS",
           "\\fBsoftmax\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...", ".SH OPTIONS"]
    for option in top:
        out += [".TP", f"\\fB{_roff(option.names)}\\fR", _roff(option.help)]
    out.append(".SH COMMANDS")
    for command in found:
        out += [f".SS {_roff('softmax ' + command.name)}", f"\\fB{_roff(command.usage)}\\fR", ".PP"]
        for paragraph in command.help.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith("  ") for line in lines):
                out += [".PP", _roff(" ".join(line.strip() for line in lines if not line.startswith("  "))),
                        ".nf", ".RS 4", *(_roff(line.strip()) for line in lines if line.startswith("  ")),
                        ".RE", ".fi"]
            else:
                out += [_roff(" ".join(line.strip() for line in lines)), ".PP"]
        panel = None
        for option in command.options:
            if option.panel != panel:
                panel = option.panel
                out += [".PP", f"\\fI{_roff(panel)}\\fR"]
            kind = "" if option.kind in ("flag", option.names) else f" \\fI{_roff(option.kind)}\\fR"
            default = f" [default: {_roff(option.default)}]" if option.default else ""
            out += [".TP", f"\\fB{_roff(option.names)}\\fR{kind}", _roff(option.help) + default]
    out += [".SH EXIT STATUS", "0 success; 1 a CI gate failed (the result is printed first); 2 bad usage or bad",
            "input (one \\fBerror:\\fR line on standard error, no partial output file); 128 + N after signal N.",
            ".SH ENVIRONMENT", ".TP", "\\fBSOFTMAX_DEBUG=1\\fR", "show the traceback behind an error",
            ".TP", "\\fBSOFTMAX_SCHEDULER\\fR", "the Dask scheduler address, as \\fB\\-\\-scheduler\\fR",
            ".SH SEE ALSO", "The guides in docs/ of https://pypi.org/project/softmax\\-toolkit/ and its repository;",
            "\\fBsoftmax sample\\-data .\\fR writes the sample files the examples use."]
    return "\n".join(out) + "\n"


def generated() -> dict[Path, str]:
    return {MARKDOWN: markdown(), MAN_PAGE: man_page()}


def main(argv: list[str]) -> int:
    stale = [path for path, text in generated().items()
             if not (ROOT / path).exists() or (ROOT / path).read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python -m softmax_cli.reference", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated().items():
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(text, encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
