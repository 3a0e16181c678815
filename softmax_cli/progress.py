"""A progress bar on standard error, only on a terminal and only for work over about a second."""

from __future__ import annotations

import sys
import time

# Work that finishes sooner shows no bar at all, so quick commands stay quiet.
SHOW_AFTER_SECONDS = 1.0


class Progress:
    """Counts ``unit`` (rows, files) done out of ``total``; draws with Rich once worth it (and ``shown``).

    Rich is imported only when a bar is actually drawn.
    """

    def __init__(self, total: int, unit: str, description: str, shown: bool = True) -> None:
        self.total, self.unit, self.description = total, unit, description
        self.enabled = shown and sys.stderr is not None and sys.stderr.isatty()
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
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as Bar

        # The bar takes what the figures leave, so a narrow terminal shortens the bar, never a number.
        self._bar = Bar(TextColumn("{task.description}"), BarColumn(bar_width=None), *figures(self.unit),
                        console=Console(stderr=True), transient=True, expand=True)
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


def count_text(done: int, total: int, unit: str) -> str:
    """``12,345/1,000,000 rows``: done and total in one unit, with thousands separators."""
    return f"{done:,}/{total:,} {unit}"


def rate_text(speed: float | None, unit: str) -> str:
    """``52,000 rows/s`` in the unit of the count; nothing before there is a rate."""
    return f"{speed:,.0f} {unit}/s" if speed else ""


def eta_text(seconds: float | None) -> str:
    """``eta 0:01:05``; nothing (never a ``-:--:--`` placeholder) before there is an estimate."""
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"eta {hours}:{minutes:02d}:{secs:02d}"


def figures(unit: str) -> list:
    """The bar's text columns: count, rate and time left. Imports Rich, so only call when drawing."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task) -> Text:
            return Text(count_text(int(task.completed), int(task.total or 0), unit), style="green")

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(rate_text(task.finished_speed or task.speed, unit), style="cyan")

    class TimeLeft(ProgressColumn):
        def render(self, task) -> Text:
            return Text(eta_text(None if task.finished else task.time_remaining), style="dim")

    # Figures never wrap or shrink: when the line is short, the bar gives way.
    return [figure(table_column=Column(no_wrap=True)) for figure in (Count, Rate, TimeLeft)]
