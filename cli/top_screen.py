"""The screen of ``kstream top`` (docs/metrics.md, "kstream top"): pure rendering of a job's
status records (:mod:`kstream.runtime.status_record`) into rich renderables, so it can be
tested without a broker or a terminal.

A frame is a header line, a NODES table with every node of the job graph (in the order of
``kstream plan --output text``: stage by stage, sources, operators, ``key_by`` nodes, sinks;
then broadcast tables) summed over the live processes, and a PROCESSES table with a row per
process followed by a table of each process's tasks. A process whose latest record is stale
(older than :data:`~kstream.runtime.status_record.STALE_INTERVALS` of its intervals: it died
without its tombstone) is shown dimmed, as ``(no record for N s)``, and left out of the sums.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from kstream_cli.output import utc_time, watermark_text
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kstream.graph.picture import job_picture
from kstream.graph.plan import Plan
from kstream.runtime.status_read import job_nodes, process_name
from kstream.runtime.status_record import NodeRow, ProcessStatus, TaskRow, status_topic

#: A watermark at or beyond this magnitude is -inf / +inf: no lag shown.
_NO_TIME = 2**62
#: How a stale process's rows look.
STALE_STYLE = "dim"


@dataclass(frozen=True)
class GraphNode:
    """A node of the job graph as ``top`` lists it.

    Attributes:
        id: the node's id in status records (:class:`~kstream.runtime.status_record.NodeRow`):
            a source's or operator's id, ``sink:<name>`` for a sink.
        name: what the table shows (a sink: its name, as ``kstream plan`` shows it).
        kind: ``source``, ``table``, ``key_by``, ``sink`` or the operator's kind (``filter``,
            ``window``, ``join``, ``branch``, ``dedup``, ...).
    """

    id: str
    name: str
    kind: str


def graph_nodes(plan: Plan) -> list[GraphNode]:
    """Every source, operator (``key_by`` included) and sink of ``plan``'s job graph, in the
    order of :func:`~kstream.graph.picture.job_picture` (side topics written through a
    shorthand, ``late_topic`` and ``dead_letter_topic``, are not nodes of their own)."""
    out = []
    for node in job_picture(plan).nodes:
        if node.role in ("late", "dead_letter"):
            continue
        if node.role == "sink":
            out.append(GraphNode(f"sink:{node.name}", node.name, "sink"))
        elif node.role in ("source", "table", "key_by"):
            out.append(GraphNode(node.name, node.name, node.role))
        elif node.role == "broadcast":
            out.append(GraphNode(node.name, node.name, "table"))
        else:
            out.append(GraphNode(node.name, node.name, node.detail.split()[0]))
    return out


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


def ago(ms: int) -> str:
    """A duration in milliseconds, humanized to its two largest units: ``0s``, ``42s``,
    ``5m 07s``, ``3h 05m``, ``12d 4h``, ``11y 3d`` (years of 365 days); a negative one as
    ``ahead 5s``."""
    if ms < 0:
        return f"ahead {ago(-ms)}"
    seconds = ms // 1000
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    years, dys = divmod(days, 365)
    if years:
        return f"{years}y {dys}d"
    if days:
        return f"{days}d {hrs}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def watermark_lag(watermark_ms: int | None, now: int) -> str:
    """``now - watermark`` humanized (:func:`ago`); ``-`` when unknown, -inf or +inf."""
    if watermark_ms is None or abs(watermark_ms) >= _NO_TIME:
        return "-"
    return ago(now - watermark_ms)


def size_text(size: int) -> str:
    """Bytes as ``0 B``, ``512 B``, ``12.3 KiB``, ``4.0 MiB``, ``1.2 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def header(plan: Plan, statuses: Sequence[ProcessStatus], now: int) -> Text:
    """``kstream top PIPELINE · group G · N processes alive (M stale) · in X/s · out Y/s ·
    YYYY-MM-DD HH:MM:SS UTC``: rates over the live processes (in: read by the sources and
    tables, out: written by the sinks; without node rows, the sums over the tasks)."""
    live = [s for s in statuses if not s.is_stale(now)]
    rows = job_nodes(live, now)
    if rows:
        kinds = {g.id: g.kind for g in graph_nodes(plan)}
        rate_in = sum(r.in_per_s for r in rows.values() if kinds.get(r.node) in ("source", "table"))
        rate_out = sum(r.out_per_s for r in rows.values() if kinds.get(r.node) == "sink")
    else:
        rate_in = sum(t.in_per_s for s in live for t in s.tasks)
        rate_out = sum(t.out_per_s for s in live for t in s.tasks)
    alive = f"{len(live)} process{'es' if len(live) != 1 else ''} alive"
    if len(statuses) > len(live):
        alive += f" ({len(statuses) - len(live)} stale)"
    return Text.assemble(
        ("kstream top ", "bold"), (plan.spec.name, "bold cyan"), f" · group {plan.prefix}",
        f" · {alive} · in {_rate(rate_in)}/s · out {_rate(rate_out)}/s",
        f" · {utc_time(now)} UTC",
    )  # fmt: skip


def nodes_table(plan: Plan, statuses: Sequence[ProcessStatus], now: int) -> Table:
    """NODES: a row per node of the job graph (:func:`graph_nodes`, then any node only the
    records name), summed over the live processes (:func:`~kstream.runtime.status_read.
    job_nodes`); ``-`` where no live process reports the node."""
    rows = job_nodes(statuses, now)
    table = _table("NODES", "node", "kind", "records in", "in/s", "out/s", "watermark (UTC)")
    table.add_column("watermark lag", justify="right")
    table.add_column("late", justify="right")
    known = graph_nodes(plan)
    extra = [GraphNode(n, n, rows[n].kind) for n in rows if n not in {g.id for g in known}]
    for node in [*known, *extra]:
        row = rows.get(node.id)
        if row is None:
            table.add_row(node.name, node.kind, "-", "-", "-", "-", "-", "-")
            continue
        table.add_row(node.name, node.kind, *_node_cells(row, now))
    return table


def _node_cells(row: NodeRow, now: int) -> tuple[str, ...]:
    return (
        f"{row.records_in:,}",
        _rate(row.in_per_s),
        _rate(row.out_per_s),
        watermark_text(row.watermark_ms),
        watermark_lag(row.watermark_ms, now),
        f"{row.late:,}",
    )


def _table(title: str, *columns: str) -> Table:
    """A table titled ``title`` whose numeric columns are right-justified and cells fold."""
    table = Table(title=title, title_justify="left", title_style="bold")
    left = {"node", "kind", "process", "phase", "task", "watermark (UTC)"}
    for name in columns:
        table.add_column(name, justify="left" if name in left else "right", overflow="fold")
    return table


def record_age(status: ProcessStatus, now: int) -> str:
    """How old the record is: ``3s``; a stale one ``(no record for 42s)``."""
    age = ago(now - status.time_ms)
    return f"(no record for {age})" if status.is_stale(now) else age


def processes_table(statuses: Sequence[ProcessStatus], now: int) -> Table:
    """PROCESSES: a row per process (stale ones dimmed): ``host:pid``, phase, tasks, in/s over
    its tasks, checkpoints (and failures), state cache, its record's age."""
    table = _table("PROCESSES", "process", "phase", "tasks", "in/s", "checkpoints", "cache")
    table.add_column("record age", justify="right")
    for status in statuses:
        checkpoints = f"{status.checkpoints:,}"
        if status.checkpoint_failures:
            checkpoints += f" ({status.checkpoint_failures} failed)"
        table.add_row(
            process_name(status),
            status.phase,
            str(len(status.tasks)),
            _rate(sum(t.in_per_s for t in status.tasks)),
            checkpoints,
            size_text(status.cache_bytes),
            record_age(status, now),
            style=STALE_STYLE if status.is_stale(now) else None,
        )
    return table


def tasks_table(status: ProcessStatus, now: int) -> Table:
    """The tasks of one process (titled ``host:pid tasks``): task, in/s, watermark, its lag
    behind now, lag (records), state size, last checkpoint (``#id, age``)."""
    title = f"{process_name(status)} tasks"
    if status.is_stale(now):
        title += f" {record_age(status, now)}"
    table = _table(title, "task", "in/s", "watermark (UTC)", "watermark lag", "lag", "state")
    table.add_column("last checkpoint", justify="right")
    if status.is_stale(now):
        table.style = table.title_style = STALE_STYLE
    for row in status.tasks:
        table.add_row(*_task_cells(row, now))
    return table


def _task_cells(row: TaskRow, now: int) -> tuple[str, ...]:
    checkpoint = "-"
    if row.checkpoint_id is not None:
        when = f", {ago(now - row.checkpoint_ms)} ago" if row.checkpoint_ms is not None else ""
        checkpoint = f"#{row.checkpoint_id}{when}"
    return (
        row.task,
        _rate(row.in_per_s),
        watermark_text(row.watermark_ms),
        watermark_lag(row.watermark_ms, now),
        "-" if row.lag is None else f"{row.lag:,}",
        size_text(row.state_bytes),
        checkpoint,
    )


def render_top(plan: Plan, statuses: Sequence[ProcessStatus], now: int) -> RenderableType:
    """One frame of ``kstream top`` for ``plan`` from the latest status record of each process
    (:func:`~kstream.runtime.status_read.read_statuses`) at ``now`` (epoch ms)."""
    parts: list[RenderableType] = [header(plan, statuses, now), nodes_table(plan, statuses, now)]
    if not statuses:
        parts.append(
            Text(
                f"no status records in {status_topic(plan.prefix)} yet: is the job running "
                f"(kstream run, group {plan.prefix})?",
                style="yellow",
            )
        )
        return Group(*parts)
    parts.append(processes_table(statuses, now))
    parts += [tasks_table(s, now) for s in statuses if s.tasks]
    return Group(*parts)
