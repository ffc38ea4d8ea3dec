"""``kstream validate`` and ``kstream plan``."""

from __future__ import annotations

from pathlib import Path

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import BOOTSTRAP_ENVVAR
from kstream_cli.run_cmd import resolve_bootstrap
from rich.console import Console
from rich.table import Table

from kstream.errors import BrokerError
from kstream.graph.plan import Plan, build_plan
from kstream.io.kafka import Admin
from kstream.pipeline.checks import check_imports
from kstream.pipeline.load import load_pipeline
from kstream.pipeline.view import operator_kind
from kstream.runtime.topology import wanted_topics


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handle_errors
def validate(pipeline: Path) -> None:
    """Check PIPELINE and report every error with file:line, key path and a fix.

    Besides the file itself it imports the modules of ``python:`` references (from the
    pipeline's folder, as ``kstream run`` does) and checks that what they name exists and is
    of the right kind; it calls none of them and needs no broker.
    """
    spec = load_pipeline(pipeline)
    check_imports(spec)
    plan = build_plan(spec)
    click.echo(
        f"ok: {pipeline}: pipeline '{spec.name}', {len(spec.operators)} operators, "
        f"{len(plan.stages)} stage(s), {len(spec.sinks)} sink(s)"
    )


@click.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bootstrap-servers",
    "bootstrap_servers",
    envvar=BOOTSTRAP_ENVVAR,
    metavar="HOST:PORT",
    help="Ask this broker for partition counts (optional).",
)
@handle_errors
def plan(pipeline: Path, bootstrap_servers: str | None) -> None:
    """Show PIPELINE's job graph: stages, tasks, topics read/written/created, state stores."""
    spec = load_pipeline(pipeline)
    job = build_plan(spec)
    existing = _existing_topics(resolve_bootstrap(bootstrap_servers, spec.kafka))
    console = Console()
    console.print(_stages_table(job, existing))
    console.print(_topics_table(job, existing))
    if existing is None:
        console.print(
            "[dim]broker not reachable: partition counts assumed, 'create' not checked[/dim]"
        )


def _existing_topics(bootstrap: str) -> dict[str, int] | None:
    try:
        return Admin(bootstrap, timeout_s=3.0).topics()
    except BrokerError:
        return None


def _source_partitions(job: Plan, existing: dict[str, int] | None) -> dict[str, int]:
    """Partition count per source topic (1 when unknown)."""
    return {s.topic: (existing or {}).get(s.topic, 1) for s in job.spec.sources}


def _stages_table(job: Plan, existing: dict[str, int] | None) -> Table:
    sources = _source_partitions(job, existing)
    counts = {t.name: t.partitions for t in wanted_topics(job, sources)} | sources
    table = Table(title=f"pipeline {job.spec.name}: job graph")
    for column in ("stage", "reads", "tasks", "operators", "writes", "state stores"):
        table.add_column(column)
    for stage in job.stages:
        ops = " -> ".join(f"{operator_kind(op)}({op.id})" for op in stage.operators) or "-"
        key_bys = " ".join(f"key_by({k.id})" for k in stage.key_bys)
        writes = [topic for topic, _ in job.output_topics(stage)]
        writes += [s.topic for s in stage.sinks]
        writes += [w.late_topic for w in stage.windows if w.late_topic]
        stores = [f"{ref.column_family} -> {ref.changelog(job.prefix)}" for ref in stage.stores]
        table.add_row(
            stage.id,
            "\n".join(stage.input_topics),
            str(counts.get(stage.input_topic, "?")),
            ops + (f" -> {key_bys}" if key_bys else ""),
            "\n".join(writes),
            "\n".join(stores) or "-",
        )
    return table


def _topics_table(job: Plan, existing: dict[str, int] | None) -> Table:
    table = Table(title="topics")
    for column in ("topic", "role", "partitions", "status"):
        table.add_column(column)
    sources = _source_partitions(job, existing)
    for source, count in sources.items():
        status = "?" if existing is None else ("exists" if source in existing else "MISSING")
        table.add_row(source, "source (read)", str(count), status)
    for topic in wanted_topics(job, sources):
        role = "changelog (compacted)" if topic.compacted else _role(job, topic.name)
        if existing is None:
            state = "?"
        else:
            state = "exists" if topic.name in existing else "will be created"
        table.add_row(topic.name, role, str(topic.partitions), state)
    return table


def _role(job: Plan, topic: str) -> str:
    if topic.endswith(".repartition"):
        return "repartition (written and read)"
    if topic in job.late_topics():
        return "late data (written)"
    if topic in job.spec.dead_letter_topics():
        return "dead letter (written)"
    if topic == f"{job.prefix}.control":
        return "control (savepoint requests)"
    return "sink (written)"
