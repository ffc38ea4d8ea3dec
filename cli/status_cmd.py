"""``kstream status``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import job_options, output_option, stdout_console
from kstream_cli.output import echo_jsonl, iso_utc, new_table, utc_time, watermark_text
from kstream_cli.run_cmd import resolve_bootstrap
from rich.table import Table

from kstream.graph.plan import build_plan
from kstream.runtime.status import TaskStatus, task_statuses
from kstream.sql import load_job

#: Marks the end offset of a row whose committed offset is past it (explained under the table).
PAST_END_MARK = "*"


@click.command(
    epilog="""\b
Example:
  kstream status examples/flights-hourly.yaml
  kstream status examples/flights-hourly.yaml --output jsonl | jq 'select(.lag > 0)'
"""
)
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@job_options
@output_option("task and input topic")
@handle_errors
def status(
    pipeline: Path,
    bootstrap_servers: str | None,
    state_dir: str,
    group: str | None,
    output: str,
) -> None:
    """Per task of PIPELINE: committed offset, lag (against the log end offset), watermark,
    last checkpoint, state size, owner and input rate; then a hint for each task whose
    watermark a source partition without records (or an upstream task stuck behind one) holds
    at -inf.

    The owner is HOST:PID of the process whose status record (topic <group>.status, published
    every few seconds by each process of the job) lists the task, and that record gives the
    task's live watermark and in/s; tasks no fresh record lists (a job not running, or one
    started by an older kstream) take their owner from the consumer group's description, as
    client.id@host. ", locked here" is added when a process on this machine holds the task's
    state; "-": nobody runs it.

    jsonl keys: task, topic, partition, committed, end, lag (null when nothing is committed or
    when committed is past end: end_note says why), checkpoint_id, checkpoint_time_ms,
    checkpoint_time_utc, state_bytes, owner, watermark_ms, watermark_utc, end_note,
    held_back_by, hint, in_per_s (records/s read over the owner's last status interval; null
    without a status record).
    """
    spec = load_job(pipeline)
    rows = task_statuses(
        build_plan(spec, group), resolve_bootstrap(bootstrap_servers, spec.kafka), state_dir, group
    )
    if output == "jsonl":
        echo_jsonl(status_json(r) for r in rows)
        return
    console = stdout_console()
    console.print(status_table(f"pipeline {spec.name} (group {group or spec.group_id})", rows))
    for line in status_notes(rows):
        console.print(line, highlight=False, markup=False)


def status_json(row: TaskStatus) -> dict[str, Any]:
    """A row as its jsonl object (see the command's help for the keys)."""
    body: dict[str, Any] = {}
    for name, value in dataclasses.asdict(row).items():
        body[name] = value
        if name.endswith("_ms"):  # each time also as ISO-8601 UTC text, right after it
            body[name.removesuffix("_ms") + "_utc"] = iso_utc(value)
    return body


def status_table(title: str, rows: list[TaskStatus]) -> Table:
    """The rows as a table: times ``YYYY-MM-DD HH:MM:SS`` UTC; an end offset below the
    committed one is marked ``*`` and its lag shown as ``?``."""
    table = new_table(
        title,
        (
            "task",
            "topic",
            "committed",
            "end",
            "lag",
            "in/s",
            "watermark (UTC)",
            "checkpoint",
            "at (UTC)",
            "state",
            "owner",
        ),
        right=("committed", "end", "lag", "in/s", "checkpoint", "state"),
    )
    for r in rows:
        past_end = r.end_note is not None
        table.add_row(
            r.task,
            r.topic,
            _n(r.committed),
            f"{r.end}{PAST_END_MARK}" if past_end else str(r.end),
            "?" if past_end else _n(r.lag),
            "-" if r.in_per_s is None else f"{r.in_per_s:,.0f}",
            watermark_text(r.watermark_ms),
            _n(r.checkpoint_id),
            utc_time(r.checkpoint_time_ms) if r.checkpoint_time_ms else "-",
            f"{r.state_bytes / 1024:,.0f} KiB",
            r.owner,
        )
    return table


def status_notes(rows: list[TaskStatus]) -> list[str]:
    """The lines under the table: the ``*`` footnote (once) and each held task's hint (once)."""
    notes = []
    past_end = next((r.end_note for r in rows if r.end_note), None)
    if past_end:
        notes.append(f"{PAST_END_MARK} {past_end}")
    notes += list(dict.fromkeys(r.hint for r in rows if r.hint))
    return notes


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
