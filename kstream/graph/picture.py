"""The job graph as a picture, format-free: nodes, edges and stage clusters (``kstream plan
--output text|mermaid|dot|svg``; :mod:`kstream.graph.render` writes it out).

What it holds, from a :class:`~kstream.graph.plan.Plan`:

- a node per source, operator (``key_by`` included) and sink, and one per topic written through
  a shorthand (a window's ``late_topic``, a node's ``dead_letter_topic``), each with its
  name (the id ``from:`` refers to; a sink's or side topic's topic) and a short description
  (kind, window type and size, join type and ``how``, branch ports, key expression, ...);
- an edge per input of every operator and sink, with the port when it is not ``main``, the
  side (``left``/``right``) into a join, and for an edge leaving a ``key_by`` (one crossing
  from one stage to the next) the repartition topic; a dashed ``broadcast`` edge from each
  broadcast table to the lookup join reading it;
- a cluster per stage, with the nodes it runs; broadcast tables, and side topics written from
  several stages, are in none.

Node keys are safe as Mermaid and DOT ids (``[A-Za-z0-9_]``, a role prefix, unique), whatever
the node ids (which may hold ``-`` and ``.``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from kstream.graph.plan import Plan, Stage
from kstream.pipeline.durations import format_duration_ms
from kstream.pipeline.spec import (
    BranchSpec,
    JoinSpec,
    KeyBySpec,
    OperatorSpec,
    PortRef,
    ProcessSpec,
    SinkSpec,
    SourceSpec,
    WindowSpec,
)
from kstream.pipeline.spec_joins import SIDES, JoinWindowSpec

__all__ = ["Cluster", "Edge", "Node", "Picture", "job_picture"]

#: What a node is: a source (``table`` when read as a table, ``broadcast`` for a broadcast
#: table), an operator (``key_by`` apart), a sink, or a topic written through a shorthand.
Role = Literal["source", "table", "broadcast", "operator", "key_by", "sink", "late", "dead_letter"]
#: What an edge carries: records within a task, records through a repartition topic (out of a
#: ``key_by``), or a broadcast table read by a lookup join.
EdgeKind = Literal["record", "repartition", "broadcast"]

#: Longest expression or Python reference shown in a node's description (then cut with ``...``).
MAX_EXPR = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
_PREFIX = {
    "source": "src",
    "table": "src",
    "broadcast": "table",
    "operator": "op",
    "key_by": "op",
    "sink": "sink",
    "late": "topic",
    "dead_letter": "topic",
}


@dataclass(frozen=True)
class Node:
    """A node of the picture.

    Attributes:
        key: its id in the picture (``op_all_flights``): safe in Mermaid and DOT, unique.
        name: the node id (sources, operators), or the topic (sinks, side topics; a sink's name
            when it differs from its topic).
        role: see :data:`Role`.
        detail: what it is, e.g. ``window tumbling 1h``, ``join temporal (how: left)``.
        stage: the id of the stage whose cluster holds it; None: outside every stage.
    """

    key: str
    name: str
    role: Role
    detail: str
    stage: str | None


@dataclass(frozen=True)
class Edge:
    """An edge ``tail -> head`` (node keys).

    Attributes:
        kind: see :data:`EdgeKind`.
        port: the tail's output port (``main``, ``late``, ``errors``, a branch name, ...).
        side: ``left`` or ``right`` for an input of a join, else None.
        topic: the repartition topic it stands for (``kind == "repartition"``), else None.
    """

    tail: str
    head: str
    kind: EdgeKind = "record"
    port: str = "main"
    side: str | None = None
    topic: str | None = None

    @property
    def label(self) -> tuple[str, ...]:
        """Its label lines: the join side, the port unless ``main``, ``broadcast``, the
        repartition topic; empty for a plain edge within a task."""
        parts = [self.side] if self.side else []
        if self.port != "main":
            parts.append(self.port)
        if self.kind == "broadcast":
            parts.append("broadcast")
        if self.topic:
            parts.append(self.topic)
        return tuple(parts)


@dataclass(frozen=True)
class Cluster:
    """A stage: ``key`` (``stage_0``, safe as an id), the stage's ``index`` and ``stage`` id,
    and the keys of its ``nodes`` (sources, operators in topological order, ``key_by`` nodes,
    sinks, side topics)."""

    key: str
    index: int
    stage: str
    nodes: tuple[str, ...]

    @property
    def title(self) -> str:
        """``stage 0 (id flights)``."""
        return f"stage {self.index} (id {self.stage})"


@dataclass(frozen=True)
class Picture:
    """The job graph of pipeline ``pipeline`` as ``nodes`` (clusters' nodes first, in cluster
    order, then those outside every stage), ``edges`` (grouped by head, in node order) and
    ``clusters`` (stages in topological order)."""

    pipeline: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...]

    def node(self, key: str) -> Node:
        """The node with key ``key``. Raises KeyError when there is none."""
        for node in self.nodes:
            if node.key == key:
                return node
        raise KeyError(key)

    @property
    def outside(self) -> tuple[Node, ...]:
        """The nodes in no stage: broadcast tables, side topics written from several stages."""
        return tuple(n for n in self.nodes if n.stage is None)

    def incoming(self, key: str) -> list[Edge]:
        """The edges into node ``key``, in input order."""
        return [e for e in self.edges if e.head == key]


class _Keys:
    """Graph names (a source or operator id, ``sink:<name>``, ``late:<topic>``, ...) to unique
    safe node keys: the role prefix, the name with every run of other characters as ``_``, and
    ``_2``, ``_3``... when that is taken (``a-b`` and ``a.b``)."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def add(self, graph_name: str, role: Role, name: str) -> str:
        base = f"{_PREFIX[role]}_{_UNSAFE.sub('_', name).strip('_') or 'node'}"
        taken = set(self.keys.values())
        key, n = base, 1
        while key in taken:
            n += 1
            key = f"{base}_{n}"
        self.keys[graph_name] = key
        return key

    def __getitem__(self, graph_name: str) -> str:
        return self.keys[graph_name]


def job_picture(plan: Plan) -> Picture:
    """The picture of ``plan``'s job graph (see the module docstring). Pure: reads the plan and
    its spec only (no broker, no files)."""
    keys = _Keys()
    members: dict[str, list[Node]] = {s.id: _stage_nodes(s, keys) for s in plan.stages}
    outside = [_source_node(t, keys, None) for t in plan.broadcast_tables]
    side_edges: list[Edge] = []
    for role, topic, writers in _side_topics(plan):
        stages = {_stage_id(members, keys[owner]) for owner, _ in writers}
        stage = stages.pop() if len(stages) == 1 else None
        label = "late data" if role == "late" else "dead letters"
        node = Node(keys.add(f"{role}:{topic}", role, topic), topic, role, label, stage)
        (members[stage] if stage is not None else outside).append(node)
        side_edges += [Edge(keys[owner], node.key, port=port) for owner, port in writers]
    clusters = tuple(
        Cluster(f"stage_{s.index}", s.index, s.id, tuple(n.key for n in members[s.id]))
        for s in plan.stages
    )
    nodes = [n for s in plan.stages for n in members[s.id]] + outside
    order = {n.key: i for i, n in enumerate(nodes)}
    edges = sorted([*_input_edges(plan, keys), *side_edges], key=lambda e: order[e.head])
    return Picture(plan.spec.name, tuple(nodes), tuple(edges), clusters)


def _stage_id(members: dict[str, list[Node]], key: str) -> str | None:
    return next((sid for sid, nodes in members.items() if any(n.key == key for n in nodes)), None)


def _stage_nodes(stage: Stage, keys: _Keys) -> list[Node]:
    """A stage's sources, operators (topological order), ``key_by`` nodes and sinks."""
    nodes = [_source_node(i.source, keys, stage.id) for i in stage.inputs if i.source]
    for op in (*stage.operators, *stage.key_bys):
        role: Role = "key_by" if isinstance(op, KeyBySpec) else "operator"
        nodes.append(Node(keys.add(op.id, role, op.id), op.id, role, operator_detail(op), stage.id))
    for sink in stage.sinks:
        detail = "sink" if sink.name == sink.topic else f"sink (topic {sink.topic})"
        key = keys.add(f"sink:{sink.name}", "sink", sink.name)
        nodes.append(Node(key, sink.name, "sink", detail, stage.id))
    return nodes


def _source_node(source: SourceSpec, keys: _Keys, stage: str | None) -> Node:
    """A source: ``source``, ``table`` (its key, versions kept) or ``broadcast table``, and its
    topic when the id is another name."""
    role: Role = "source" if source.table is None else "table"
    head = "source" if source.table is None else "table"
    extras = [f"topic {source.topic}"] if source.topic != source.id else []
    if source.table is not None:
        if source.table.broadcast:
            role, head = "broadcast", "broadcast table"
        extras.append(f"key {_short(source.table.key)}")
        if source.table.versioned_ms is not None:
            extras.append(f"versioned {format_duration_ms(source.table.versioned_ms)}")
    detail = f"{head} ({', '.join(extras)})" if extras else head
    return Node(keys.add(source.id, role, source.id), source.id, role, detail, stage)


def operator_detail(op: OperatorSpec) -> str:
    """What an operator is, for its node: its kind and what tells it apart, e.g. ``window
    tumbling 1h``, ``window sliding 1h every 5m``, ``join temporal (how: left)``, ``join window
    tumbling 1h (how: inner)``, ``join interval -1h..1h (how: inner)``, ``branch
    (delayed, on-time)`` (its ports), ``key_by carrier``, ``dedup within 1d``, ``process
    mod:Class``; ``filter``, ``map``, ``flat_map`` and ``union`` alone."""
    if isinstance(op, WindowSpec):
        return f"window {window_text(op)}"
    if isinstance(op, JoinSpec):
        if op.window is not None:
            return f"join window {window_text(op.window)} (how: {op.how})"
        if op.type == "interval":
            bounds = f"{_duration(op.lower_ms)}..{_duration(op.upper_ms)}"
            return f"join interval {bounds} (how: {op.how})"
        return f"join {op.type} (how: {op.how})"
    if isinstance(op, BranchSpec):
        return f"branch ({', '.join(op.ports)})"
    if isinstance(op, KeyBySpec):
        if op.keep_key:
            return "key_by (record key)"
        return f"key_by {_short(op.expr or op.python or '')}".rstrip()
    if isinstance(op, ProcessSpec):
        if op.dedup_within_ms is not None:
            return f"dedup within {format_duration_ms(op.dedup_within_ms)}"
        if op.top_n is not None:
            return f"top_n {op.top_n.n}"
        return f"process {_short(op.python)}".rstrip()
    return op.kind


def window_text(window: WindowSpec | JoinWindowSpec) -> str:
    """``tumbling 1h``, ``sliding 1h every 5m``, ``session gap 30m``, ``count 100`` (``every
    10`` when sliding), ``global``: a window's or a window join's."""
    if window.type == "tumbling":
        return f"tumbling {_duration(window.size_ms)}"
    if window.type == "sliding":
        return f"sliding {_duration(window.size_ms)} every {_duration(window.slide_ms)}"
    if window.type == "session":
        return f"session gap {_duration(window.gap_ms)}"
    if isinstance(window, WindowSpec) and window.type == "cumulate":
        return f"cumulate {_duration(window.size_ms)} by {_duration(window.step_ms)}"
    if isinstance(window, WindowSpec) and window.type == "count":
        slide = window.count_slide
        every = f" every {slide}" if slide is not None and slide != window.count_size else ""
        return f"count {window.count_size}{every}"
    return window.type


def _duration(ms: int | None) -> str:
    if ms is None:
        return "?"
    return "0" if ms == 0 else format_duration_ms(ms)


def _short(text: str) -> str:
    """``text`` on one line, cut to :data:`MAX_EXPR` characters (``...`` at the end)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_EXPR else flat[: MAX_EXPR - 3] + "..."


def _input_edges(plan: Plan, keys: _Keys) -> list[Edge]:
    """An edge per input of every operator and sink; a broadcast edge per broadcast read."""
    key_bys = {op.id: op for op in plan.spec.operators if isinstance(op, KeyBySpec)}
    heads: list[tuple[str, OperatorSpec | SinkSpec]] = [(op.id, op) for op in plan.spec.operators]
    heads += [(f"sink:{s.name}", s) for s in plan.spec.sinks]
    edges = []
    for head, node in heads:
        sides = SIDES if isinstance(node, JoinSpec) else (None,) * len(node.inputs)
        for side, ref in zip(sides, node.inputs, strict=False):
            edges.append(_edge(plan, keys, ref, head, side, key_bys.get(ref.node)))
        if isinstance(node, JoinSpec) and node.broadcast_table is not None:
            tail = keys[node.broadcast_table]
            edges.append(Edge(tail, keys[head], "broadcast", side=SIDES[len(node.inputs)]))
    return edges


def _edge(
    plan: Plan, keys: _Keys, ref: PortRef, head: str, side: str | None, key_by: KeyBySpec | None
) -> Edge:
    if key_by is None:
        return Edge(keys[ref.node], keys[head], port=ref.port, side=side)
    topic = plan.output_topic_of(key_by)
    return Edge(keys[ref.node], keys[head], "repartition", ref.port, side, topic)


def _side_topics(plan: Plan) -> list[tuple[Role, str, list[tuple[str, str]]]]:
    """``(role, topic, [(writer graph name, port)])`` of every topic written through a
    shorthand: windows' ``late_topic`` (port ``late``), ``dead_letter_topic`` of sources,
    operators and sinks (port ``errors``)."""
    found: dict[tuple[Role, str], list[tuple[str, str]]] = {}
    for op in plan.spec.operators:
        if isinstance(op, WindowSpec) and op.late_topic:
            found.setdefault(("late", op.late_topic), []).append((op.id, "late"))
    owners: Iterable[tuple[str, str | None]] = [
        *((s.id, s.dead_letter_topic) for s in plan.spec.sources),
        *((op.id, op.dead_letter_topic) for op in plan.spec.operators),
        *((f"sink:{s.name}", s.dead_letter_topic) for s in plan.spec.sinks),
    ]
    for owner, topic in owners:
        if topic:
            found.setdefault(("dead_letter", topic), []).append((owner, "errors"))
    return [(role, topic, writers) for (role, topic), writers in found.items()]
