"""Gate verdicts in the formats CI systems display: ``--report github|junit=PATH|markdown=PATH``.

A command with gates records every result it wrote in a :class:`Ledger`;
when the command ends with its figures written (exit 0, or 1 for a failed
gate) the ledger writes each asked-for report. A report never changes the
exit status, and is not written when the command fails (exit 2): there is no
verdict then.

- ``github``: one workflow command ``::error title=...::MESSAGE`` per failed
  gate on standard error (the Actions runner reads both streams; standard
  output stays data), escaped as the runner unescapes; and, when
  ``$GITHUB_STEP_SUMMARY`` names a file, a Markdown table of every gate
  appended to it (the job's summary page).
- ``junit=PATH``: JUnit XML, one ``<testcase>`` per gate, a ``<failure>`` in
  each failed one (GitLab, Jenkins, Azure Pipelines and CircleCI show it).
- ``markdown=PATH``: the same table as the step summary, under a heading.

Files are written atomically (:func:`softmax_cli.render.atomic_file`) and
checked before any work, as ``-o`` is, against every input and the result's own file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from .errors import GateFailed, InputsFailed, UsageError
from .reporter import reporter
from .result import Gate, Result, as_typed

if TYPE_CHECKING:
    from .render import Inputs

KINDS = ("github", "junit", "markdown")
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Report:
    kind: str
    path: Path | None


def parse(specs: list[str] | None) -> list[Report]:
    """The ``--report`` values, refused before any work when malformed or when two name one file.

    Where the files go is checked once the inputs are known (:meth:`Ledger.check`).
    """
    from .render import destination

    reports = []
    for spec in specs or ():
        kind, _, path = spec.partition("=")
        if kind not in KINDS:
            raise UsageError(f"--report takes github, junit=PATH or markdown=PATH; got {spec!r}")
        if kind == "github" and path:
            raise UsageError("--report github writes annotations to standard error and the table to "
                             f"${STEP_SUMMARY}; it takes no path (for a file: --report markdown=PATH)")
        if kind != "github" and not path:
            raise UsageError(f"--report {kind} needs a file: --report {kind}=PATH, e.g. --report {kind}=gates."
                             f"{_suffix(kind)}")
        report = Report(kind, Path(path) if path else None)
        if report.path is not None and any(other.path is not None and destination(other.path) ==
                                           destination(report.path) for other in reports):
            raise UsageError(f"two reports would write {path!r}")
        reports.append(report)
    return reports


def _suffix(kind: str) -> str:
    return "xml" if kind == "junit" else "md"


@dataclass
class Ledger:
    """Every gate verdict of one command (one entry per input in a batch), and the reports to write from them."""

    command: str
    reports: list[Report]
    force: bool = False
    entries: list[tuple[str | None, Gate]] = field(default_factory=list)

    def check(self, inputs: Sequence[Path] | Inputs, outputs: Iterable[Path | None]) -> None:
        """Refuse, before any work, a report file that is one of the run's ``inputs`` (every file it reads, as ``-o``
        is checked against them) or one of its ``outputs``, or that cannot be written."""
        from .render import Inputs, check_destination, destination

        inputs = Inputs.of(inputs)  # resolved once for every report
        written = {destination(output) for output in outputs if output is not None}
        summary = os.environ.get(STEP_SUMMARY)
        if summary and any(report.kind == "github" for report in self.reports):
            # Appended to, not replaced: only an input or the result must not be it.
            target = destination(Path(summary))
            if target in written or inputs.hold(target):
                raise UsageError(f"${STEP_SUMMARY} ({summary!r}) is an input or the result of this run; --report "
                                 "github appends its table there: point it at a file of its own")
        for report in self.reports:
            if report.path is None:
                continue
            if destination(report.path) in written:
                raise UsageError(f"-o and --report {report.kind} would both write {str(report.path)!r}; give the "
                                 f"report a file of its own, e.g. --report {report.kind}=gates.{_suffix(report.kind)}")
            check_destination(report.path, self.force, inputs)

    def decide(self, result: Result, source: str | None = None) -> None:
        """Record ``result``'s verdicts; a failed gate raises :class:`GateFailed` (exit 1) naming each one."""
        self.entries += [(source, gate) for gate in result.gates]
        failed = result.failed_gates()
        if failed:
            raise GateFailed("; ".join(gate.message for gate in failed))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind, error, trace) -> bool:
        # Under --keep-going the inputs that did not fail have verdicts, which CI must see whatever the others did.
        if self.reports and self.entries and (error is None or isinstance(error, (GateFailed, InputsFailed))):
            self.write()
        return False

    def write(self) -> None:
        for report in self.reports:
            if report.kind == "github":
                github(self.command, self.entries)
            elif report.kind == "junit":
                _atomic(report.path, self.force, junit(self.command, self.entries))
            else:
                _atomic(report.path, self.force, f"## softmax {self.command}\n\n{markdown_table(self.entries)}")


def _atomic(path: Path, force: bool, text: str) -> None:
    from .render import atomic_file

    atomic_file(path, force, lambda stream, _: stream.write(text.encode()))


def _case_name(source: str | None, gate: Gate) -> str:
    return f"{gate.option} {gate.given}" + (f" ({source})" if source else "")


# ---------------------------------------------------------------- GitHub Actions

def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it (actions/toolkit ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``title=``), escaped as the runner unescapes it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(command: str, source: str | None, gate: Gate) -> str:
    title = f"softmax {command}: {_case_name(source, gate)}"
    return f"::error title={escape_property(title)}::{escape_data(gate.message)}"


def github(command: str, entries: list[tuple[str | None, Gate]]) -> None:
    """Annotations for the failed gates; the table of every gate appended to ``$GITHUB_STEP_SUMMARY``."""
    for source, gate in entries:
        if not gate.passed:
            reporter().annotation(annotation(command, source, gate))
    summary = os.environ.get(STEP_SUMMARY)
    if summary:
        from .errors import OutputError

        try:
            with open(summary, "a", encoding="utf-8") as file:  # appended: other steps write there too
                file.write(f"### softmax {command}\n\n{markdown_table(entries)}\n")
        except OSError as error:
            raise OutputError(f"cannot append to ${STEP_SUMMARY}: {error.strerror or error}", where=summary) \
                from None


# ---------------------------------------------------------------- Markdown

def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(entries: list[tuple[str | None, Gate]]) -> str:
    """One row per gate: the input, the gate, what passing means, the measured value, the verdict."""
    sources = any(source for source, _ in entries)
    head = (["input"] if sources else []) + ["gate", "passes when", "measured", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for source, gate in entries:
        cells = ([source or ""] if sources else []) + [
            f"`{gate.option} {gate.given}`", f"{gate.figure} {gate.comparison} {as_typed(gate.threshold)}",
            gate.shown, "✅ passed" if gate.passed else "❌ failed"]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- JUnit XML

def junit(command: str, entries: list[tuple[str | None, Gate]]) -> str:
    """A ``<testsuites>`` document with one ``<testsuite>``: a ``<testcase>`` per gate, ``<failure>`` when failed."""
    import socket
    from datetime import datetime, timezone
    from xml.etree import ElementTree

    failures = sum(not gate.passed for _, gate in entries)
    counts = {"tests": str(len(entries)), "failures": str(failures), "errors": "0", "time": "0"}
    root = ElementTree.Element("testsuites", {"name": "softmax", **counts})
    suite = ElementTree.SubElement(root, "testsuite", {
        "name": f"softmax {command}", **counts, "skipped": "0",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "hostname": socket.gethostname()})
    for source, gate in entries:
        case = ElementTree.SubElement(suite, "testcase", {"name": _case_name(source, gate),
                                                         "classname": f"softmax.{command}", "time": "0"})
        if not gate.passed:
            failure = ElementTree.SubElement(case, "failure", {"message": gate.message, "type": "GateFailed"})
            failure.text = (f"{gate.figure} = {gate.shown}; passes when {gate.figure} "
                            f"{gate.comparison} {as_typed(gate.threshold)}")
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
