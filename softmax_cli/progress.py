"""A progress bar on standard error, only on a terminal and only for work over about a second."""

from __future__ import annotations

import sys
import time

# Work that finishes sooner shows no bar at all, so quick commands stay quiet.
SHOW_AFTER_SECONDS = 1.0


class Progress:
    """Counts ``unit`` (rows, files) done out of ``total``; draws with Rich once worth it.

    Rich is imported only when a bar is actually drawn.
    """

    def __init__(self, total: int, unit: str, description: str) -> None:
        self.total, self.unit, self.description = total, unit, description
        self.enabled = sys.stderr is not None and sys.stderr.isatty()
        self.started = time.monotonic()
        self.done = 0
        self._bar = None
        self._task = None

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if not self.enabled:
            return
        if self._bar is None and time.monotonic() - self.started >= SHOW_AFTER_SECONDS:
            self._start()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, ProgressColumn, TextColumn
        from rich.progress import TimeRemainingColumn
        from rich.text import Text

        unit = self.unit

        class Throughput(ProgressColumn):
            def render(self, task) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:,.0f} {unit}/s" if speed else "", style="cyan")

        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Throughput(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total, completed=self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
