"""``kstream run``: run a pipeline as a member of its consumer group."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import DEFAULT_BOOTSTRAP, job_options
from rich.console import Console
from rich.live import Live
from rich.table import Table

from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.lifecycle import RunOptions, Status
from kstream.runtime.runner import Runner


def resolve_bootstrap(option: str | None, kafka: dict[str, str]) -> str:
    """``--bootstrap-servers`` (or its env var), else the pipeline's ``kafka: bootstrap.servers``,
    else the local default."""
    return option or kafka.get("bootstrap.servers") or DEFAULT_BOOTSTRAP


def _status_table(status: Status, previous: tuple[float, int, int]) -> Table:
    seconds = max(status.elapsed_s - previous[0], 1e-9)
    rate_in = (status.records_in - previous[1]) / seconds
    rate_out = (status.records_out - previous[2]) / seconds
    table = Table(title="kstream run", show_header=True)
    for column in ("records in", "in/s", "out", "out/s", "late", "tasks", "checkpoints"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{status.records_in:,}",
        f"{rate_in:,.0f}",
        f"{status.records_out:,}",
        f"{rate_out:,.0f}",
        f"{status.late:,}",
        f"{status.finished}/{status.tasks} done",
        str(status.checkpoints),
    )
    marks = ", ".join(f"{t}={_wm(w)}" for t, w in sorted(status.watermarks.items())[:8])
    table.caption = f"watermarks: {marks or '-'}"
    return table


def _wm(watermark: int) -> str:
    if watermark <= -(2**62):
        return "-inf"
    if watermark >= 2**62:
        return "+inf"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(watermark / 1000))


def _line(status: Status) -> str:
    return (
        f"[{status.elapsed_s:7.1f}s] in={status.records_in} out={status.records_out} "
        f"late={status.late} skipped={status.skipped} dead_letter={status.dead_letter} "
        f"tasks={status.finished}/{status.tasks} checkpoints={status.checkpoints}"
    )


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@job_options
@click.option(
    "--bounded",
    is_flag=True,
    help="Read each input up to its end offsets as of start, fire every window, commit and exit 0.",
)
@click.option(
    "--from-savepoint",
    "from_savepoint",
    type=click.Path(),
    help="Start from this savepoint (into a group without committed offsets).",
)
@click.option(
    "--allow-non-restored-state",
    is_flag=True,
    help="Drop savepoint state of operators the pipeline no longer has.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log task restores and checkpoints.")
@handle_errors
def run(
    pipeline: Path,
    bounded: bool,
    bootstrap_servers: str | None,
    state_dir: str,
    group: str | None,
    from_savepoint: str | None,
    allow_non_restored_state: bool,
    verbose: bool,
) -> None:
    """Run PIPELINE (a YAML file) as one process of its consumer group."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    spec = load_pipeline(pipeline)
    options = RunOptions(
        resolve_bootstrap(bootstrap_servers, spec.kafka),
        state_dir,
        bounded,
        group,
        from_savepoint=from_savepoint,
        allow_non_restored_state=allow_non_restored_state,
    )
    interactive = sys.stderr.isatty()
    console = Console(stderr=True)
    runner = Runner(build_plan(spec, group), options)
    _install_signals(runner)
    if interactive:
        final = _run_live(runner, console)
    else:
        runner.on_status = _plain_status()
        final = runner.run()
    click.echo(
        f"{'finished' if bounded else 'stopped'}: {final.records_in:,} records in, "
        f"{final.records_out:,} out, {final.late:,} late, {final.skipped:,} skipped, "
        f"{final.dead_letter:,} dead-lettered in {final.elapsed_s:.1f} s",
        err=True,
    )


def _plain_status() -> Any:
    last = {"t": 0.0}

    def show(status: Status) -> None:
        if status.elapsed_s - last["t"] >= 5:
            last["t"] = status.elapsed_s
            click.echo(_line(status), err=True)

    return show


def _run_live(runner: Runner, console: Console) -> Status:
    previous = [(0.0, 0, 0)]
    with Live(console=console, refresh_per_second=2, transient=False) as live:

        def show(status: Status) -> None:
            live.update(_status_table(status, previous[0]))
            previous[0] = (status.elapsed_s, status.records_in, status.records_out)

        runner.on_status = show
        return runner.run()


def _install_signals(runner: Runner) -> None:
    def stop(signum: int, frame: Any) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
