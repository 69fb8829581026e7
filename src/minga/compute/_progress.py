"""The live progress display of a running job and the summary printed when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from minga.compute._driver import JobProgress, JobResult

__all__ = ["ProgressDisplay", "print_summary"]

_REFRESH = 0.125  # seconds between redraws


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else 0.0


def _counter_rows(counters: dict[str, dict[str, int]], limit: int) -> list[tuple[str, str, str]]:
    rows = []
    for group in sorted(counters, key=lambda g: (g == "minga", g)):
        for name, n in sorted(counters[group].items()):
            rows.append((group, name, f"{n:,}"))
    return rows[:limit]


def render(p: JobProgress) -> RenderableType:
    """One frame: tasks done per phase, throughput, and the counters so far."""
    t = p.elapsed
    head = Text.assemble(
        (f"{p.job}", "bold"),
        f" on {p.engine}",
        f" · step {p.step + 1}/{p.steps}",
        f" · {p.phase}",
        f" · {t:,.1f}s",
    )
    bar = Table.grid(padding=(0, 2))
    bar.add_row(
        f"map {p.maps_done}/{p.maps_total}",
        f"reduce {p.reduces_done}/{p.reduces_total}",
        f"read {_mb(p.bytes_done)}" + (f" of {_mb(p.input_bytes)}" if p.input_bytes else ""),
        f"{_rate(p.bytes_done, t) / 1e6:,.1f} MB/s",
        f"{_rate(p.records_done, t):,.0f} records/s",
    )
    if p.failed_attempts or p.speculative:
        bar.add_row(f"failed attempts {p.failed_attempts}", f"backups {p.speculative}", "", "", "")
    parts: list[RenderableType] = [head, bar]
    rows = _counter_rows(p.counters, 8)
    if rows:
        table = Table(show_header=False, box=None, padding=(0, 1))
        for r in rows:
            table.add_row(*r)
        parts.append(table)
    return Group(*parts)


class ProgressDisplay:
    """A context manager that redraws ``progress`` on the terminal while a job runs.

    The redraw happens in the engine's own loop (through ``JobProgress.tick``), never in a
    background thread, so worker processes are never forked while a display lock is held.
    """

    def __init__(self, progress: JobProgress, console: Console | None = None) -> None:
        self.progress = progress
        self.console = console or Console(stderr=True)
        self._live = Live(console=self.console, auto_refresh=False, transient=True)
        self._last = 0.0
        self._chained: Callable[[JobProgress], None] | None = None

    def _tick(self, p: JobProgress) -> None:
        if self._chained is not None:  # whoever listened before the display keeps hearing
            self._chained(p)
        now = time.monotonic()
        if now - self._last >= _REFRESH:
            self._last = now
            self._live.update(render(p), refresh=True)

    def __enter__(self) -> ProgressDisplay:
        self._live.start()
        self._chained = self.progress.on_tick
        self.progress.on_tick = self._tick
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.on_tick = self._chained
        self._live.stop()


def print_summary(result: JobResult, console: Console | None = None) -> None:
    """Print what a finished job did: time, throughput, phases, attempts and counters."""
    console = console or Console()
    rec = result.record
    seconds = result.seconds
    mb = rec.get("input_bytes", 0)
    records = result.counter("minga", "map input records")
    table = Table(
        title=f"{rec['job']} · {rec['engine']} · {rec['status']}", show_header=False, title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row("time", f"{seconds:,.2f}s")
    table.add_row("input", f"{_mb(mb)} · {_rate(mb, seconds) / 1e6:,.1f} MB/s · {records:,} records")
    table.add_row("output", f"{result.output_dir} ({len(result.files)} part files)")
    table.add_row("phases", ", ".join(f"{k} {v:.2f}s" for k, v in rec["phases"].items()))
    att = rec["attempts"]
    table.add_row(
        "attempts", f"{att['started']} started, {att['failed']} failed, {att['speculative']} backups"
    )
    for group, name, n in _counter_rows(result.counters, 30):
        table.add_row(f"{group}", f"{name}: {n}")
    console.print(table)
