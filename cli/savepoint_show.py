"""What ``kstream savepoint inspect`` and ``list`` print: the table view and the jsonl rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kstream_cli.output import new_table, time_fields, utc_time, watermark_text
from rich.console import Console
from rich.table import Table

from kstream.savepoint import Savepoint, SavepointSummary, TaskSnapshot


def list_row(s: SavepointSummary) -> dict[str, Any]:
    """A savepoint found by ``list`` as its jsonl object (see the command's help)."""
    return {
        "path": str(s.path),
        "pipeline": s.pipeline,
        **time_fields("created", s.created_ms),
        "bytes": s.bytes,
        "operators": list(s.operators),
        "fingerprint": s.fingerprint,
    }


def list_table(root: Path, found: list[SavepointSummary]) -> Table:
    """The savepoints found by ``list`` under ``root`` as a table."""
    table = new_table(
        f"savepoints under {root}",
        ("path", "pipeline", "created (UTC)", "size", "operators"),
        right=("size",),
    )
    for s in found:
        table.add_row(
            str(s.path),
            s.pipeline,
            utc_time(s.created_ms),
            size_text(s.bytes),
            ", ".join(s.operators) or "-",
        )
    return table


def print_inspect(
    console: Console,
    directory: Path,
    sp: Savepoint,
    summaries: list[Any],
    tasks: list[TaskSnapshot],
) -> None:
    """The manifest's header lines, the sources' next offsets, the operators and tasks tables."""
    m = sp.manifest
    console.print(
        f"savepoint    {directory}\n"
        f"pipeline     {m.pipeline} (group {m.group})\n"
        f"created      {utc_time(m.created_ms)} UTC by kstream {m.kstream_version} "
        f"(format {m.format_version})\n"
        f"fingerprint  {m.fingerprint}\n"
        f"size         {size_text(m.total_bytes)} in {len(m.files())} data files",
        highlight=False,
    )
    for source in m.sources.values():
        offsets = " ".join(f"{p}={o}" for p, o in sorted(source.offsets.items())) or "-"
        console.print(
            f"source       {source.id}: {source.topic} ({source.partitions} partitions), next "
            f"offsets {offsets}",
            highlight=False,
        )
    console.print(_operators_table(summaries))
    console.print(_tasks_table(tasks))


def inspect_rows(
    directory: Path, sp: Savepoint, summaries: list[Any], tasks: list[TaskSnapshot]
) -> Iterator[dict[str, Any]]:
    """``inspect``'s jsonl lines (see its help)."""
    m = sp.manifest
    yield {
        "row": "savepoint",
        "path": str(directory),
        "pipeline": m.pipeline,
        "group": m.group,
        **time_fields("created", m.created_ms),
        "kstream_version": m.kstream_version,
        "format_version": m.format_version,
        "fingerprint": m.fingerprint,
        "bytes": m.total_bytes,
        "data_files": len(m.files()),
    }
    for source in m.sources.values():
        yield {
            "row": "source",
            "id": source.id,
            "topic": source.topic,
            "partitions": source.partitions,
            "offsets": {str(p): o for p, o in sorted(source.offsets.items())},
        }
    for s in summaries:
        yield {"row": "operator", **s.__dict__}
    for t in tasks:
        yield {"row": "task", **task_json(t)}


def task_json(t: TaskSnapshot) -> dict[str, Any]:
    watermark = t.meta.get("watermark")
    return {
        "task": t.task_id,
        "stage": t.stage,
        "partition": t.partition,
        "inputs": [{"topic": topic, "position": t.position(topic)} for topic in t.inputs],
        **time_fields("watermark", None if watermark is None else int(watermark)),
        "finished": bool(t.meta.get("finished")),
    }


def _operators_table(summaries: list[Any]) -> Table:
    table = new_table(
        "operators",
        ("operator", "type", "stage", "entries", "windows", "keys", "timers", "bytes"),
        right=("entries", "windows", "keys", "timers", "bytes"),
    )
    for s in summaries:
        table.add_row(
            s.id,
            s.type,
            str(s.stage),
            f"{s.entries:,}",
            f"{s.windows:,}",
            f"{s.keys:,}",
            f"{s.timers:,}",
            f"{s.bytes:,}",
        )
    return table


def _tasks_table(tasks: list[TaskSnapshot]) -> Table:
    table = new_table(
        "tasks", ("task", "input topics", "positions", "watermark", "finished"), ("positions",)
    )
    for t in tasks:
        positions = [t.position(topic) for topic in t.inputs]
        table.add_row(
            t.task_id,
            "\n".join(t.inputs),
            "\n".join("-" if p is None else str(p) for p in positions),
            watermark_text(t.meta.get("watermark")),
            "yes" if t.meta.get("finished") else "no",
        )
    return table


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:,.1f} {unit}"
