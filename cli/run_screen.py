"""The live screen of ``kstream run`` on a terminal, and its plain-text twin (a status line) when
stderr is not a terminal.

The screen shows what the runner is doing (joining the consumer group, restoring, running), the
elapsed time, records in and out with their rates, the lag behind the end offsets of the source
partitions (with the part done and an ETA in bounded runs), late, skipped and dead-lettered
records, tasks, checkpoints, and one watermark per stage (UTC) with the input holding it back
and the held-back warning (docs/time-and-windows.md). While it is shown, log records print
above it (:class:`LiveScreen`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from kstream.runtime.lifecycle import JOINING, Status
from kstream.time.timestamps import format_watermark


def duration(seconds: float) -> str:
    """``H:MM:SS`` (hours only when needed: ``M:SS``)."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rates(status: Status, previous: Status | None) -> tuple[float, float]:
    """Records in and out per second since ``previous`` (None: over the whole run)."""
    base_t, base_in, base_out = (
        (previous.elapsed_s, previous.records_in, previous.records_out) if previous else (0, 0, 0)
    )
    seconds = status.elapsed_s - base_t
    if seconds <= 0:
        return 0.0, 0.0
    return (status.records_in - base_in) / seconds, (status.records_out - base_out) / seconds


def progress_text(status: Status) -> str:
    """``12,345 records behind · 42.0 % done · ETA 0:41`` (what is known of it)."""
    if status.lag is None:
        return "unknown yet (no end offsets)"
    parts = [f"{status.lag:,} records behind"]
    if status.done is not None:
        parts.append(f"{status.done * 100:.1f} % done")
        if status.done < 1:
            parts.append(f"ETA {duration(status.eta_s)}" if status.eta_s is not None else "ETA -")
    return " · ".join(parts)


def _watermarks(status: Status) -> Table:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("stage")
    table.add_column("watermark (UTC)")
    table.add_column("held back by")
    for stage in status.stages:
        table.add_row(stage.stage, format_watermark(stage.watermark), stage.holder or "-")
    return table


def render(status: Status, pipeline: str, previous: Status | None = None) -> RenderableType:
    """The screen for ``status`` (rates since ``previous``; None: over the whole run)."""
    head = Text.assemble(
        ("kstream run ", "bold"), (pipeline, "bold cyan"), f" · {status.phase}",
        f" · {duration(status.elapsed_s)}",
    )  # fmt: skip
    if status.phase == JOINING:
        return Group(head, Text(f"{JOINING} ...", style="yellow"))
    rate_in, rate_out = rates(status, previous)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "records", f"in {status.records_in:,} ({rate_in:,.0f}/s) · out {status.records_out:,} "
        f"({rate_out:,.0f}/s)",
    )  # fmt: skip
    grid.add_row("lag", progress_text(status))
    grid.add_row(
        "dropped", f"late {status.late:,} · skipped {status.skipped:,} · "
        f"dead-lettered {status.dead_letter:,}",
    )  # fmt: skip
    tasks = f"{status.finished}/{status.tasks} done · checkpoints {status.checkpoints}"
    grid.add_row("tasks", tasks)
    parts: list[RenderableType] = [head, grid]
    if status.stages:
        parts.append(_watermarks(status))
    for stage in status.stages:
        if stage.warning:
            parts.append(Text(f"warning: {stage.warning}", style="yellow"))
    return Group(*parts)


def plain_line(status: Status) -> str:
    """One status line (stderr not a terminal)."""
    line = (
        f"[{status.elapsed_s:7.1f}s] {status.phase}: in={status.records_in} "
        f"out={status.records_out} late={status.late} skipped={status.skipped} "
        f"dead_letter={status.dead_letter} tasks={status.finished}/{status.tasks} "
        f"checkpoints={status.checkpoints}"
    )
    if status.lag is not None:
        line += f" lag={status.lag}"
    if status.done is not None:
        line += f" done={status.done * 100:.1f}%"
        if status.eta_s is not None and status.done < 1:
            line += f" eta={duration(status.eta_s)}"
    return line


def plain_status(echo: Callable[[str], None], every_s: float = 5.0) -> Callable[[Status], None]:
    """An ``on_status`` printing :func:`plain_line` at most every ``every_s`` seconds."""
    last = {"t": -every_s}

    def show(status: Status) -> None:
        if status.elapsed_s - last["t"] >= every_s:
            last["t"] = status.elapsed_s
            echo(plain_line(status))

    return show


class LiveScreen:
    """The live screen: :meth:`show` is the runner's ``on_status``, :meth:`final` draws the
    last frame."""

    def __init__(self, live: Live, pipeline: str) -> None:
        self.live, self.pipeline = live, pipeline
        self.previous: Status | None = None

    def show(self, status: Status) -> None:
        self.live.update(render(status, self.pipeline, self.previous))
        self.previous = status

    def final(self, status: Status) -> None:
        """The final numbers (rates over the whole run), drawn before the screen is left."""
        self.live.update(render(status, self.pipeline), refresh=True)


@contextmanager
def live_screen(console: Console, pipeline: str) -> Iterator[LiveScreen]:
    """Show the live screen on ``console`` while the block runs; log records print above it
    through a :class:`rich.logging.RichHandler` on the same console (the root logger's other
    handlers are set aside meanwhile)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        handler = RichHandler(console=live.console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.handlers = [handler]
        try:
            screen = LiveScreen(live, pipeline)
            screen.show(Status(0.0, 0, 0, 0, 0, 0, 0, 0, phase=JOINING))
            yield screen
        finally:
            root.handlers = saved
