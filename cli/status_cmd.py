"""``kstream status``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click
import orjson
from kstream_cli.errors import handle_errors
from kstream_cli.options import job_options, output_format, stdout_console
from kstream_cli.run_cmd import resolve_bootstrap
from rich.table import Table

from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.status import task_statuses


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@job_options
@click.option(
    "--output",
    type=click.Choice(["table", "jsonl"]),
    help="table (rich) or jsonl (one JSON object per task: task, topic, partition, committed, "
    "end, lag, checkpoint_id, checkpoint_time_ms, state_bytes, owner). Default: table on a "
    "terminal, else jsonl.",
)
@handle_errors
def status(
    pipeline: Path,
    bootstrap_servers: str | None,
    state_dir: str,
    group: str | None,
    output: str | None,
) -> None:
    """Per task of PIPELINE: committed offset, lag (against the log end offset), last
    checkpoint, state size and owner."""
    spec = load_pipeline(pipeline)
    rows = task_statuses(
        build_plan(spec, group), resolve_bootstrap(bootstrap_servers, spec.kafka), state_dir, group
    )
    if output_format(output) == "jsonl":
        for r in rows:
            click.echo(orjson.dumps(dataclasses.asdict(r)).decode())
        return
    table = Table(title=f"pipeline {spec.name} (group {group or spec.group_id})")
    for column in (
        "task",
        "topic",
        "committed",
        "end",
        "lag",
        "checkpoint",
        "at (UTC)",
        "state",
        "owner",
    ):
        table.add_column(
            column, justify="right" if column in ("committed", "end", "lag") else "left"
        )
    for r in rows:
        when = (
            time.strftime("%H:%M:%S", time.gmtime(r.checkpoint_time_ms / 1000))
            if r.checkpoint_time_ms
            else "-"
        )
        table.add_row(
            r.task,
            r.topic,
            _n(r.committed),
            str(r.end),
            _n(r.lag),
            _n(r.checkpoint_id),
            when,
            f"{r.state_bytes / 1024:.0f} KiB",
            r.owner,
        )
    stdout_console().print(table)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
