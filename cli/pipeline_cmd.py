"""``kstream validate`` and ``kstream plan``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import BOOTSTRAP_ENVVAR, stdout_console
from kstream_cli.output import echo_json, echo_jsonl, new_table
from kstream_cli.plan_picture import PICTURES, echo_picture, plan_output_option
from kstream_cli.run_cmd import resolve_bootstrap
from rich.table import Table

from kstream.errors import BrokerError
from kstream.graph.plan import Plan, build_plan
from kstream.graph.view import stage_to_dict
from kstream.io.kafka import Admin
from kstream.pipeline.checks import check_imports
from kstream.runtime.status_record import status_topic
from kstream.runtime.topology import wanted_topics
from kstream.sql import load_job


@click.command(
    epilog="""\b
Example:
  kstream validate examples/flights-hourly.yaml
"""
)
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handle_errors
def validate(pipeline: Path) -> None:
    """Check PIPELINE and report every error with file:line, key path and a fix.

    Besides the file itself it imports the modules of ``python:`` references (from the
    pipeline's folder, as ``kstream run`` does) and checks that what they name exists and is
    of the right kind; it calls none of them and needs no broker.
    """
    spec = load_job(pipeline)
    check_imports(spec)
    plan = build_plan(spec)
    click.echo(
        f"ok: {pipeline}: pipeline '{spec.name}', {len(spec.operators)} operators, "
        f"{len(plan.stages)} stage(s), {len(spec.sinks)} sink(s)"
    )


@click.command(
    epilog="""\b
Example:
  kstream plan examples/flights-hourly.yaml
  kstream plan examples/flights-hourly.yaml --output json | jq '.stages[].id'
  kstream plan examples/flights-graph.yaml --output mermaid
  kstream plan examples/flights-graph.yaml --output svg > flights-graph.svg
"""
)
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bootstrap-servers",
    "bootstrap_servers",
    envvar=BOOTSTRAP_ENVVAR,
    metavar="HOST:PORT",
    help="Ask this broker for partition counts (optional).",
)
@plan_output_option
@handle_errors
def plan(pipeline: Path, bootstrap_servers: str | None, output: str) -> None:
    """Show PIPELINE's job graph: stages, tasks, topics read/written/created, state stores.

    json: {"pipeline", "group", "broker_reachable", "stages": [...], "topics": [...]}; jsonl:
    the stages, then the topics, one per line, each with "row": "stage" or "topic". A stage has
    id, index, tasks, inputs [{topic, node, kind}], operators [{id, kind}], key_bys [{id,
    topic}], sinks [{name, topic}], late_topics, writes, stores [{node, store, column_family,
    changelog}], task_changelog; a topic has topic, role (source, broadcast, repartition,
    changelog, sink, late, dead_letter, control, status), partitions, compacted, status (exists,
    missing, will be created; null when the broker is not reachable).

    text, mermaid, dot and svg draw the job graph instead (no broker needed): a cluster per
    stage, the sources, operators and sinks, the edges with their ports, join sides and
    repartition topics, broadcast tables outside the stages (docs/pipeline.md). svg runs
    Graphviz's dot program. Every output goes to stdout.
    """
    spec = load_job(pipeline)
    job = build_plan(spec)
    if output in PICTURES:
        echo_picture(job, output)
        return
    existing = _existing_topics(resolve_bootstrap(bootstrap_servers, spec.kafka))
    doc = plan_document(job, existing)
    unreachable = "broker not reachable: partition counts assumed, 'create' not checked"
    if output != "table":
        if output == "json":
            echo_json(doc)
        else:
            echo_jsonl([{"row": "stage", **s} for s in doc["stages"]])
            echo_jsonl([{"row": "topic", **t} for t in doc["topics"]])
        if existing is None:
            click.echo(unreachable, err=True)
        return
    console = stdout_console()
    console.print(_stages_table(doc))
    console.print(_topics_table(doc))
    if existing is None:
        console.print(f"[dim]{unreachable}[/dim]")


def _existing_topics(bootstrap: str) -> dict[str, int] | None:
    try:
        return Admin(bootstrap, timeout_s=3.0).topics()
    except BrokerError:
        return None


def plan_document(job: Plan, existing: dict[str, int] | None) -> dict[str, Any]:
    """The plan as data (see the ``plan`` help for the keys): partition counts of the topics in
    ``existing`` (None: broker not reachable; source topics then count 1 partition)."""
    sources = {s.topic: (existing or {}).get(s.topic, 1) for s in job.spec.sources}
    wanted = wanted_topics(job, sources)
    counts = {t.name: t.partitions for t in wanted} | sources
    broadcast = {s.topic for s in job.broadcast_tables}
    topics = [
        _topic(t, "broadcast" if t in broadcast else "source", n, False, existing)
        for t, n in sources.items()
    ]
    for topic in wanted:
        role = _role(job, topic.name)
        topics.append(_topic(topic.name, role, topic.partitions, topic.compacted, existing))
    return {
        "pipeline": job.spec.name,
        "group": job.prefix,
        "broker_reachable": existing is not None,
        "stages": [
            {**stage_to_dict(job, s), "tasks": counts.get(s.input_topic)} for s in job.stages
        ],
        "topics": topics,
    }


def _topic(
    name: str, role: str, partitions: int, compacted: bool, existing: dict[str, int] | None
) -> dict[str, Any]:
    if existing is None:
        status = None
    elif name in existing:
        status = "exists"
    else:
        status = "missing" if role in ("source", "broadcast") else "will be created"
    return {
        "topic": name,
        "role": role,
        "partitions": partitions,
        "compacted": compacted,
        "status": status,
    }


def _role(job: Plan, topic: str) -> str:
    if topic == status_topic(job.prefix):
        return "status"
    if topic.endswith(".changelog"):
        return "changelog"
    if topic.endswith(".repartition"):
        return "repartition"
    if topic in job.late_topics():
        return "late"
    if topic in job.spec.dead_letter_topics():
        return "dead_letter"
    if topic == f"{job.prefix}.control":
        return "control"
    return "sink"


#: How the topics table shows each role.
ROLE_TEXT = {
    "source": "source (read)",
    "broadcast": "broadcast table (read whole by every process)",
    "repartition": "repartition (written and read)",
    "changelog": "changelog (compacted)",
    "late": "late data (written)",
    "dead_letter": "dead letter (written)",
    "control": "control (savepoint requests)",
    "status": "status (each process's status, compacted)",
    "sink": "sink (written)",
}


def _stages_table(doc: dict[str, Any]) -> Table:
    table = new_table(
        f"pipeline {doc['pipeline']}: job graph",
        ("stage", "reads", "tasks", "operators", "writes", "state stores"),
    )
    for stage in doc["stages"]:
        ops = " -> ".join(_operator_text(op) for op in stage["operators"]) or "-"
        key_bys = " ".join(f"key_by({k['id']})" for k in stage["key_bys"])
        stores = [f"{ref['column_family']} -> {ref['changelog']}" for ref in stage["stores"]]
        table.add_row(
            stage["id"],
            "\n".join(i["topic"] for i in stage["inputs"]),
            str(stage["tasks"] or "?"),
            ops + (f" -> {key_bys}" if key_bys else ""),
            "\n".join(stage["writes"]),
            "\n".join(stores) or "-",
        )
    return table


def _operator_text(op: dict[str, Any]) -> str:
    """``kind(id)``; a lookup join of a broadcast table: ``join(id <- broadcast planes)``."""
    table = op.get("broadcast_table")
    reads = f" <- broadcast {table}" if table else ""
    return f"{op['kind']}({op['id']}{reads})"


def _topics_table(doc: dict[str, Any]) -> Table:
    table = new_table("topics", ("topic", "role", "partitions", "status"))
    for topic in doc["topics"]:
        status = topic["status"] or "?"
        table.add_row(
            topic["topic"],
            ROLE_TEXT[topic["role"]],
            str(topic["partitions"]),
            "MISSING" if status == "missing" else status,
        )
    return table
