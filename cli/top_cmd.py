"""``kstream top``: a live view of a running job, from its status topic ``<group>.status``
(docs/metrics.md; the screen is drawn by :mod:`kstream_cli.top_screen`)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import job_options, stdout_console
from kstream_cli.run_cmd import resolve_bootstrap
from kstream_cli.top_screen import now_ms, render_top
from rich.console import Console
from rich.live import Live

from kstream.graph.plan import Plan, build_plan
from kstream.runtime.status_read import StatusFeed, read_statuses
from kstream.sql import load_job


@click.command(
    epilog="""\b
Example:
  kstream top examples/flights-hourly.yaml --group hourly-live --interval 2
  kstream top examples/flights-hourly.yaml --once > frame.txt
"""
)
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@job_options
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between two refreshes of the screen.",
)
@click.option("--once", is_flag=True, help="Print one frame and exit (scripts, tests).")
@handle_errors
def top(
    pipeline: Path,
    bootstrap_servers: str | None,
    state_dir: str,
    group: str | None,
    interval: float,
    once: bool,
) -> None:
    """A live view of the job running PIPELINE, all its processes together, refreshed in place
    until Ctrl-C (exit 0): a header (processes alive, records/s in from the sources and out to
    the sinks), then every node of the job graph (records in, in/s, out/s, watermark and how
    far it is behind now, late records) summed over the live processes, then each process
    (HOST:PID, phase, tasks, in/s, checkpoints, state cache, age of its status record) with its
    tasks (in/s, watermark, lag, state size, last checkpoint).

    It reads the status topic <group>.status, where every process of the job publishes its
    status every few seconds (no consumer-group request). A process whose last record is older
    than three of its intervals died without saying so: it is shown dimmed, "(no record for
    N s)", and left out of the sums. --state-dir is not used.
    """
    del state_dir  # a job option: top reads the broker only
    spec = load_job(pipeline)
    plan = build_plan(spec, group)
    bootstrap = resolve_bootstrap(bootstrap_servers, spec.kafka)
    if once:
        statuses = read_statuses(bootstrap, spec.kafka, plan.prefix)
        stdout_console().print(render_top(plan, statuses, now_ms()))
        return
    follow(Console(), plan, StatusFeed(bootstrap, spec.kafka, plan.prefix), interval)


def follow(console: Console, plan: Plan, feed: StatusFeed, interval_s: float) -> None:
    """Redraw the screen in place every ``interval_s`` seconds from ``feed`` until Ctrl-C
    (returns normally then); the last frame stays on the terminal.

    Raises:
        BrokerError: the broker is unreachable.
    """
    try:
        with Live(console=console, auto_refresh=False, transient=False, screen=False) as live:
            while True:
                live.update(render_top(plan, feed.poll(), now_ms()), refresh=True)
                time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        feed.close()
