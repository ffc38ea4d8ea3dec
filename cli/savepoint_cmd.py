"""``kstream savepoint create|list|inspect|dispose`` (docs/savepoints.md)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import job_options, output_option, stdout_console
from kstream_cli.output import (
    echo_json,
    echo_jsonl,
)
from kstream_cli.run_cmd import resolve_bootstrap
from kstream_cli.savepoint_show import (
    inspect_rows,
    list_row,
    list_table,
    print_inspect,
    size_text,
    task_json,
)
from rich.console import Console

from kstream.errors import BrokerError, SavepointError, UsageError
from kstream.graph.plan import TIMERS_STORE, Plan, build_plan
from kstream.runtime import control
from kstream.runtime.control import Quiesced
from kstream.savepoint import (
    TaskSnapshot,
    behind_committed,
    dispose,
    group_offsets,
    list_savepoints,
    local_checkpoints,
    open_savepoint,
    snapshot_changelogs,
    snapshot_local,
    summarize,
    write_savepoint,
)
from kstream.savepoint.format import NodeInfo, StateEntry
from kstream.sql import load_job
from kstream.state.store import is_locked, task_dir

DEFAULT_ROOT = "savepoints"
#: ``--from`` values: where ``savepoint create`` reads the committed state.
SOURCES = ("auto", "local", "changelog")


@click.group(
    epilog="""\b
Example:
  kstream savepoint create examples/flights-hourly.yaml --dir savepoints/hourly-1
  kstream savepoint list
  kstream savepoint inspect savepoints/hourly-1
  kstream run examples/flights-hourly.yaml --from-savepoint savepoints/hourly-1
  kstream savepoint dispose savepoints/hourly-1
"""
)
def savepoint() -> None:
    """Create, list, inspect and dispose of savepoints (portable snapshots of a job's state)."""


@savepoint.command(
    epilog="""\b
Example:
  kstream savepoint create examples/flights-hourly.yaml
  kstream savepoint create examples/flights-hourly.yaml --stop --dir savepoints/hourly-1
  # the job runs on several machines: read its state from the changelog topics
  kstream savepoint create examples/flights-hourly.yaml --stop --from changelog
"""
)
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@job_options
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help=f"Where to write it [default: {DEFAULT_ROOT}/<pipeline>-<UTC time>].",
)
@click.option(
    "--stop",
    is_flag=True,
    help="Stop the running job after it drained and checkpointed (stop-with-savepoint).",
)
@click.option(
    "--no-quiesce",
    is_flag=True,
    help="Do not contact the running job: snapshot the last committed local state.",
)
@click.option(
    "--from",
    "source",
    type=click.Choice(SOURCES),
    default="auto",
    show_default=True,
    help="Where to read the committed state: local (--state-dir), changelog (the job's "
    "changelog topics and the group's committed offsets: works from any machine), auto (local "
    "when --state-dir holds every task of the job, else changelog).",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for the running job to acknowledge.",
)
@handle_errors
def create(
    pipeline: Path,
    directory: Path | None,
    stop: bool,
    no_quiesce: bool,
    bootstrap_servers: str | None,
    state_dir: str,
    group: str | None,
    source: str,
    timeout_s: float,
) -> None:
    """Take a savepoint of PIPELINE's job: ask its running processes to checkpoint (and, with
    --stop, to stop), then snapshot the committed state from --state-dir or, for a job whose
    processes run on several machines, from its changelog topics (--from)."""
    if stop and no_quiesce:
        raise UsageError("--stop needs to contact the job; it cannot be used with --no-quiesce")
    started = time.monotonic()
    console = Console(stderr=True)
    spec = load_job(pipeline)
    plan = build_plan(spec, group)
    bootstrap = resolve_bootstrap(bootstrap_servers, spec.kafka)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory or Path(DEFAULT_ROOT) / f"{spec.name}-{stamp}"
    if target.exists():
        raise SavepointError(f"{target} already exists; choose another --dir")
    partitions: dict[str, int] | None = None
    done = None
    if not no_quiesce:
        done = _quiesce(plan, bootstrap, stop, timeout_s, state_dir, console)
    if not no_quiesce or source == "changelog":
        partitions = _partition_counts(plan, bootstrap, console)
    try:
        where = _choose_source(source, plan, bootstrap, state_dir, done, partitions, console)
        entries: Mapping[str, Mapping[str, Iterable[StateEntry]]]
        with console.status(f"reading the {where} state") as status:
            if where == "changelog":
                tasks, entries = snapshot_changelogs(
                    spec, bootstrap, group=group, partitions=partitions, progress=status.update
                )
            else:
                snaps = done.snapshots if done is not None else None
                tasks, entries = snapshot_local(spec, state_dir, group=group, snapshots=snaps)
        if not tasks:
            raise SavepointError(_nothing_found(plan, state_dir, where))
        _warn_gaps(plan, tasks, partitions, state_dir, no_quiesce, where, console)
        # local entries are read as they are written (never all in memory): the owners'
        # snapshots stay until then
        with console.status(f"writing {target}") as status:
            manifest = write_savepoint(
                target, spec, tasks, entries, group=group, partitions=partitions,
                progress=status.update,
            )  # fmt: skip
    finally:
        if done is not None:
            control.discard_snapshots(state_dir, plan.prefix, done.request_id)
            control.discard_acknowledged(done)
    total = sum(_records(node, "") for node in manifest.operators.values())
    timers = sum(_records(node, TIMERS_STORE) for node in manifest.operators.values())
    console.print(
        f"read {len(tasks)} tasks, {len(entries)} operators, {total:,} entries, {timers:,} timers"
    )
    elapsed = time.monotonic() - started
    click.echo(
        f"savepoint {target}: {size_text(manifest.total_bytes)}, {len(manifest.operators)} "
        f"operators, {total:,} entries, {timers:,} timers, {len(tasks)} tasks in {elapsed:.1f} s"
    )


def _quiesce(
    plan: Plan, bootstrap: str, stop: bool, timeout_s: float, state_dir: str, console: Console
) -> Quiesced:
    """Ask the running job to checkpoint (or stop) and wait for it (``kstream.runtime.control``);
    the acknowledgements name the snapshots of the tasks' committed state to read."""
    what = "stop" if stop else "checkpoint"
    with console.status(f"asking job {plan.prefix} to {what}") as status:
        done = control.quiesce(
            plan,
            bootstrap,
            plan.prefix,
            stop=stop,
            timeout_s=timeout_s,
            progress=status.update,
            state_dir=state_dir,
        )
    if done.acks:
        console.print(f"{done.acks} running process(es) acknowledged the {what}")
    else:
        console.print("no running process of the job: using its last committed state")
    return done


def _choose_source(
    source: str,
    plan: Plan,
    bootstrap: str,
    state_dir: str,
    done: Quiesced | None,
    partitions: dict[str, int] | None,
    console: Console,
) -> str:
    """``local`` or ``changelog``: ``source`` unless it is ``auto``, which takes the local state
    when ``state_dir`` holds every task of the job (the acknowledged snapshots all under it;
    with no process running, a directory for every task, none checkpointed behind the group's
    committed offsets), and prints which and why."""
    if source != "auto":
        if source == "changelog":
            console.print("reading the state from the changelog topics (--from changelog)")
        return source
    here = f"the local state dir {state_dir}"
    if done is None or partitions is None:
        why = "--no-quiesce" if done is None else "the partition counts are unknown"
        console.print(f"reading the state from {here} ({why})")
        return "local"
    reason = _not_held(plan, bootstrap, state_dir, done, partitions)
    if reason is None:
        console.print(f"reading the state from {here}: it holds every task of the job")
        return "local"
    console.print(f"reading the state from the changelog topics: {reason}")
    return "changelog"


def _not_held(
    plan: Plan, bootstrap: str, state_dir: str, done: Quiesced, partitions: dict[str, int]
) -> str | None:
    """Why ``state_dir`` does not hold the job's committed state (None: it does)."""
    here = f"the local state dir {state_dir}"
    if done.acks:
        root = Path(state_dir).resolve()
        away = [t for t, ref in done.snapshots.items() if not Path(ref.path).is_relative_to(root)]
        total, missing = len(done.snapshots), len(away)
    else:
        local = local_checkpoints(plan.spec, state_dir, group=plan.prefix)
        wanted = {(s.id, p) for s in plan.stages for p in range(partitions.get(s.id, 0))}
        total, missing = len(wanted), len(wanted - set(local))
        if not missing:
            found = [t for t in local.values() if t is not None]
            stale = behind_committed(found, group_offsets(plan, bootstrap, partitions))
            if stale:
                return (
                    f"the checkpoint of task(s) {', '.join(stale)} in {here} is behind the "
                    "group's committed offsets (they ran elsewhere since)"
                )
    if not missing:
        return None
    return (
        f"{missing} of {total} tasks of the job are not in {here} (they run or ran on other "
        "machines or state dirs)"
    )


def _records(node: NodeInfo, store: str) -> int:
    """Entries a savepoint holds of ``node``'s store ``store`` (0: none)."""
    info = node.stores.get(store)
    return info.records if info is not None else 0


def _nothing_found(plan: Plan, state_dir: str, where: str) -> str:
    """The error text of a savepoint that would hold no task."""
    if where == "changelog":
        return (
            f"no committed checkpoint of job {plan.prefix} in its changelog topics; run the "
            "pipeline (at least one checkpoint) or pass the right --group"
        )
    return (
        f"no committed state of job {plan.prefix} under {Path(state_dir) / plan.prefix}; "
        "run the pipeline (at least one checkpoint) or pass the right --state-dir/--group"
    )


def _partition_counts(plan: Plan, bootstrap: str, console: Console) -> dict[str, int] | None:
    from kstream.io import kafka

    try:
        topics = kafka.Admin(bootstrap, plan.spec.kafka, timeout_s=10.0).topics()
    except BrokerError as exc:
        console.print(f"[yellow]partition counts unknown ({exc}); derived from the state[/]")
        return None
    return {s.id: topics[s.input_topic] for s in plan.stages if s.input_topic in topics}


def _warn_gaps(
    plan: Plan,
    tasks: list[TaskSnapshot],
    partitions: dict[str, int] | None,
    state_dir: str,
    no_quiesce: bool,
    where: str,
    console: Console,
) -> None:
    """Warn about tasks without a checkpoint (in the local state or the changelog topics,
    ``where``), and about a job running here (--no-quiesce)."""
    have = {(t.stage, t.partition) for t in tasks}
    what = "local state" if where == "local" else "checkpoint in the changelog topics"
    for stage in plan.stages:
        highest = max((p for s, p in have if s == stage.id), default=-1) + 1
        count = (partitions or {}).get(stage.id) or highest
        missing = [f"{stage.id}:{p}" for p in range(count) if (stage.id, p) not in have]
        if missing:
            console.print(
                f"[yellow]no {what} for task(s) {', '.join(missing)}: on "
                "restore they start at the beginning of their partitions[/]"
            )
    if where != "local":
        return
    running = [
        t.task_id
        for t in tasks
        if is_locked(task_dir(state_dir, plan.prefix, t.stage, t.partition))
    ]
    if running and no_quiesce:
        console.print(
            f"[yellow]tasks {', '.join(running)} are running on this machine: each is "
            "saved at its last checkpoint[/]"
        )


@savepoint.command(
    "list",
    epilog="""\b
Example:
  kstream savepoint list
  kstream savepoint list --output jsonl | jq -r 'select(.pipeline == "flights-hourly").path'
""",
)
@click.argument("root", default=DEFAULT_ROOT, type=click.Path(path_type=Path))
@output_option("savepoint")
@handle_errors
def list_cmd(root: Path, output: str) -> None:
    """List the complete savepoints under ROOT (one or two levels deep), oldest first.

    jsonl keys: path, pipeline, created_ms, created_utc, bytes, operators (list of ids),
    fingerprint. With none found, jsonl prints nothing (the table: a line saying so, and
    jsonl that line on stderr).
    """
    found = list_savepoints(root)
    if output == "jsonl":
        echo_jsonl(list_row(s) for s in found)
    if not found:
        click.echo(f"no savepoints under {root}", err=output == "jsonl")
    if output == "table" and found:
        stdout_console().print(list_table(root, found))


@savepoint.command(
    epilog="""\b
Example:
  kstream savepoint inspect savepoints/hourly-1
  kstream savepoint inspect savepoints/hourly-1 --output json | jq '.manifest.sources'
"""
)
@click.argument("directory", type=click.Path(path_type=Path))
@output_option("savepoint, source, operator or task", document="the manifest, operators and tasks")
@click.option("--json", "as_json", is_flag=True, help="Same as --output json.")
@handle_errors
def inspect(directory: Path, output: str, as_json: bool) -> None:
    """Show a savepoint's manifest and what each operator holds (verifies every checksum).

    jsonl: one line with "row": "savepoint" (path, pipeline, group, created_ms, created_utc,
    kstream_version, format_version, fingerprint, bytes, data_files), one per source ("row":
    "source": id, topic, partitions, offsets {partition: next offset}), per operator
    ("operator": id, type, stage, entries, windows, keys, timers, bytes) and per task ("task":
    task, stage, partition, inputs [{topic, position}], watermark_ms, watermark_utc, finished).
    json: {"path", "manifest", "operators", "tasks"}.
    """
    sp = open_savepoint(directory)
    m = sp.manifest
    summaries = [
        summarize(
            op.definition, op.stage, op.bytes, sp.entries(op.id), sp.entries(op.id, TIMERS_STORE)
        )
        for op in m.nodes.values()
    ]
    tasks = sp.tasks()
    if as_json or output == "json":
        body = {
            "path": str(directory),
            "manifest": m.to_dict(),
            "operators": [s.__dict__ for s in summaries],
            "tasks": [task_json(t) for t in tasks],
        }
        echo_json(body)
        return
    if output == "jsonl":
        echo_jsonl(inspect_rows(directory, sp, summaries, tasks))
        return
    print_inspect(stdout_console(), directory, sp, summaries, tasks)


@savepoint.command(
    "dispose",
    epilog="""\b
Example:
  kstream savepoint dispose savepoints/hourly-1
""",
)
@click.argument("directory", type=click.Path(path_type=Path))
@handle_errors
def dispose_cmd(directory: Path) -> None:
    """Delete the savepoint in DIRECTORY (refused for anything that is not a savepoint; an
    interrupted write's .<name>.partial-<pid> directory is removed once its writer is gone)."""
    freed = dispose(directory)
    click.echo(f"disposed {directory} ({size_text(freed)})")
