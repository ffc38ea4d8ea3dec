"""``kstream run``: run a pipeline as a member of its consumer group."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import DEFAULT_BOOTSTRAP, job_options
from kstream_cli.run_processes import (
    process_count,
    run_processes,
    siblings,
    status_file,
    write_status,
)
from kstream_cli.run_screen import live_screen, plain_status
from rich.console import Console

from kstream.graph.plan import build_plan
from kstream.pipeline.durations import parse_size_bytes
from kstream.runtime.lifecycle import RunOptions, Status
from kstream.runtime.runner import Runner
from kstream.sql import load_job


def resolve_bootstrap(option: str | None, kafka: dict[str, str]) -> str:
    """``--bootstrap-servers`` (or its env var), else the pipeline's ``kafka: bootstrap.servers``,
    else the local default."""
    return option or kafka.get("bootstrap.servers") or DEFAULT_BOOTSTRAP


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
@click.option(
    "--force",
    is_flag=True,
    help="With --from-savepoint: restore into a group that already has committed offsets "
    "(its tasks with committed progress keep their checkpoints).",
)
@click.option(
    "--held-watermark-warning",
    "held_warning_s",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Warn once an input has held a stage's watermark back this long (processing time) "
    "while the others advanced.",
)
@click.option(
    "--state-cache",
    "state_cache",
    callback=lambda ctx, param, value: parse_size(value, "--state-cache"),
    metavar="SIZE",
    help="The process's state cache (64MB, 1GB, ...), overriding the pipeline's state: {cache}; "
    "see docs/state.md.",
)
@click.option(
    "--metrics-port",
    "metrics_port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics (docs/metrics.md); "
    "overrides the pipeline's metrics: {port}.",
)
@click.option(
    "--processes",
    metavar="N|auto",
    help="Run N members of the group in child processes (auto: one per core) under a "
    "supervisor that forwards Ctrl-C, restarts a child that died and sums the counts; with "
    "--metrics-port PORT, child n serves PORT+n and PORT all of them (docs/cli.md).",
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
    force: bool,
    held_warning_s: float,
    state_cache: int | None,
    metrics_port: int | None,
    processes: str | None,
    verbose: bool,
) -> None:
    """Run PIPELINE (a YAML file, or a Flink SQL script: docs/sql.md) as one process of its group.

    On a terminal a live screen shows progress: lag behind the end offsets of the sources
    (part done and ETA with --bounded), rates, late, skipped and dead-lettered records,
    checkpoints and each stage's watermark, with the input holding it back. Otherwise a status
    line goes to stderr every 5 s. Ctrl-C checkpoints and stops.

    \b
    Examples:
      kstream run examples/flights-hourly.yaml --bounded
      kstream run examples/flights-hourly.yaml
      kstream run examples/flights-hourly.sql --bounded
      kstream run examples/flights-hourly.yaml --group hourly-v2 --state-dir /tmp/k2
      kstream run examples/flights-hourly.yaml --from-savepoint savepoints/sp1 --group hourly-v2
      kstream run examples/flights-dedup.yaml --state-cache 256MB
      kstream run examples/flights-hourly.yaml --metrics-port 9108
      kstream run examples/flights-hourly.yaml --processes 2 --metrics-port 9108
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    spec = load_job(pipeline)
    if metrics_port is None:
        metrics_port = spec.metrics_port  # metrics: {port} in the pipeline file
    count = process_count(processes) if processes is not None else None
    if count is not None:
        child_options = {
            "--bounded": bounded,
            "--bootstrap-servers": bootstrap_servers,
            "--state-dir": state_dir,
            "--group": group,
            "--from-savepoint": from_savepoint,
            "--allow-non-restored-state": allow_non_restored_state,
            "--force": force,
            "--held-watermark-warning": held_warning_s,
            "--state-cache": state_cache,
            "--verbose": verbose,
        }
        sys.exit(run_processes(pipeline, count, child_options, metrics_port, bounded))
    options = RunOptions(
        resolve_bootstrap(bootstrap_servers, spec.kafka),
        state_dir,
        bounded,
        group,
        from_savepoint=from_savepoint,
        allow_non_restored_state=allow_non_restored_state,
        force=force,
        held_watermark_warning_ms=int(held_warning_s * 1000),
        state_cache_bytes=state_cache,
        metrics_port=metrics_port,
        siblings=siblings(),
    )
    runner = Runner(build_plan(spec, group), options)
    _install_signals(runner)
    child_file = status_file()
    if child_file is not None:  # a child of --processes: the supervisor shows the status
        runner.on_status = functools.partial(write_status, child_file)
        final = runner.run()
        write_status(child_file, final)
    elif sys.stderr.isatty():
        final = run_live(runner, Console(stderr=True), spec.name)
    else:
        runner.on_status = plain_status(functools.partial(click.echo, err=True))
        final = runner.run()
    # stopped: a later Ctrl-C (or a supervisor's repeated stop) must not kill the exit, where
    # Python puts back the default handler of the signals it handled
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    click.echo(
        f"{'finished' if bounded else 'stopped'}: {final.records_in:,} records in, "
        f"{final.records_out:,} out, {final.late:,} late, {final.skipped:,} skipped, "
        f"{final.dead_letter:,} dead-lettered in {final.elapsed_s:.1f} s",
        err=True,
    )


def parse_size(value: str | None, option: str) -> int | None:
    """A size option (``64MB``, ``512KiB``, bytes) in bytes, with pydantic's ``ByteSize``."""
    if value is None:
        return None
    try:
        size = parse_size_bytes(value)
    except ValueError:
        size = 0
    if size <= 0:
        raise click.BadParameter(
            f"{value!r} is not a size; write e.g. 64MB or 1GB", param_hint=option
        )
    return size


def run_live(runner: Runner, console: Console, pipeline: str) -> Status:
    """Run with the live screen on ``console``; its last frame shows the final status."""
    with live_screen(console, pipeline) as screen:
        runner.on_status = screen.show
        final = runner.run()
        screen.final(final)
    return final


def _install_signals(runner: Runner) -> None:
    def stop(signum: int, frame: Any) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
