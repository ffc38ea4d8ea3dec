"""``kstream reset``: reprocess a pipeline's sources without state (Kafka Streams' application
reset tool; docs/savepoints.md#reprocessing)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import job_options, stdout_console
from kstream_cli.output import new_table
from kstream_cli.run_cmd import resolve_bootstrap
from rich.console import Console
from rich.table import Table

from kstream.graph.plan import build_plan
from kstream.runtime import reset as job_reset
from kstream.runtime.reset_plan import ResetPlan
from kstream.sql import load_job

#: Marks a new offset outside its partition's log (explained under the table).
OUTSIDE_MARK = "*"


@click.command(
    epilog="""\b
Example:
  kstream reset examples/flights-hourly.yaml --dry-run
  kstream reset examples/flights-hourly.yaml --yes
  kstream reset examples/flights-hourly.yaml --to-datetime 2013-06-01T00:00:00Z
  kstream reset examples/flights-hourly.yaml --to-offsets offsets.csv --group hourly-v2
"""
)
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@job_options
@click.option(
    "--to-earliest",
    is_flag=True,
    help="Each source partition from its first offset in the log (the default).",
)
@click.option(
    "--to-datetime",
    metavar="ISO",
    help="Each source partition from its first record at or after this ISO 8601 time "
    "(2013-06-01T00:00:00Z; without a UTC offset the time is UTC); a partition without one "
    "from its end.",
)
@click.option(
    "--to-offsets",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The offsets in FILE: topic,partition,offset lines (kafka-consumer-groups' CSV), one "
    "for every partition of every source topic; blank lines and # comments allowed.",
)
@click.option("--dry-run", is_flag=True, help="Print what the reset would do; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def reset(
    pipeline: Path,
    bootstrap_servers: str | None,
    state_dir: str,
    group: str | None,
    to_earliest: bool,
    to_datetime: str | None,
    to_offsets: Path | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Reset PIPELINE to reprocess its sources without state: commit new source offsets for its
    consumer group, delete its internal topics (repartition topics, changelogs, the control and
    status topics) and its local state under --state-dir. Output topics are kept.

    Refused while the group has live members or a process here holds the local state: stop
    every `kstream run` of the pipeline first. Prints the plan, then asks for confirmation
    unless --yes. To reprocess with state, run with --from-savepoint instead.
    """
    target = job_reset.ResetTarget.from_options(to_earliest, to_datetime, to_offsets)
    spec = load_job(pipeline)
    plan = build_plan(spec, group)
    broker = job_reset.connect(plan, resolve_bootstrap(bootstrap_servers, spec.kafka))
    try:
        reset_plan = job_reset.plan_reset(plan, broker, target, state_dir)
        show_plan(stdout_console(), reset_plan)
        if dry_run:
            click.echo("dry run: nothing was changed", err=True)
            return
        if not yes and not _confirmed(reset_plan):
            click.echo("reset cancelled: nothing was changed", err=True)
            sys.exit(1)
        job_reset.execute_reset(reset_plan, broker)
    finally:
        broker.close()
    click.echo(done_line(reset_plan, pipeline, group), err=True)


def show_plan(console: Console, rp: ResetPlan) -> None:
    """Print the plan: the source offsets (committed -> new), the internal topics and the
    local state directories to delete."""
    console.print(
        f"reset of pipeline {rp.pipeline} (group {rp.group}) to {rp.target}",
        highlight=False,
        markup=False,
    )
    console.print(offsets_table(rp))
    if any(c.outside_log for c in rp.offsets):
        console.print(
            f"{OUTSIDE_MARK} outside the partition's log [start, end]: a run starts that "
            "partition from its earliest offset (auto.offset.reset)",
            highlight=False,
            markup=False,
        )
    if rp.topics:
        topics = new_table(f"internal topics to delete ({len(rp.topics)})", ["topic"])
        for topic in rp.topics:
            topics.add_row(topic)
        console.print(topics)
    else:
        console.print("internal topics to delete: none exist", highlight=False)
    if rp.state_dirs:
        title = f"local state to delete ({rp.state_bytes / 1024:,.0f} KiB)"
        dirs = new_table(title, ["directory"])
        for path in rp.state_dirs:
            dirs.add_row(str(path))
        console.print(dirs)
    else:
        console.print(f"local state to delete: none under {rp.state_root}", highlight=False)


def offsets_table(rp: ResetPlan) -> Table:
    """The source partitions' offsets: committed now, new, and the partition's log range."""
    table = new_table(
        f"source offsets to commit ({len(rp.offsets)})",
        ("topic", "partition", "committed", "new", "start", "end"),
        right=("partition", "committed", "new", "start", "end"),
    )
    for c in rp.offsets:
        table.add_row(
            c.topic,
            str(c.partition),
            _n(c.committed),
            f"{c.new}{OUTSIDE_MARK}" if c.outside_log else str(c.new),
            _n(c.start),
            _n(c.end),
        )
    return table


def done_line(rp: ResetPlan, pipeline: Path, group: str | None = None) -> str:
    """The line printed after a reset: what changed and how to reprocess."""
    run = f"kstream run {pipeline}" + (f" --group {group}" if group else "")
    return (
        f"reset group {rp.group}: committed {len(rp.offsets)} source offsets, deleted "
        f"{len(rp.topics)} internal topics and {len(rp.state_dirs)} local state directories; "
        f"reprocess with `{run}`"
    )


def _confirmed(rp: ResetPlan) -> bool:
    question = (
        f"Reset group {rp.group}: commit {len(rp.offsets)} source offsets, delete "
        f"{len(rp.topics)} internal topics and {len(rp.state_dirs)} local state directories?"
    )
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input (no terminal) or Ctrl-C at the prompt
        return False


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
