"""The job graph: a pipeline's nodes cut into stages, and the names derived from node ids.

The planner cuts the graph at every ``key_by`` (DESIGN.md section 3): a ``key_by`` ends the
stage it reads from, its records go to the repartition topic ``<group>.<key_by id>.repartition``,
and the nodes reading the ``key_by`` form (with everything connected to them) the stage that
reads that topic. A stage is a connected part of the graph between such cuts: it reads one or
more topics (sources, repartition topics), runs its operators, and ends in sinks and ``key_by``
outputs. Every name derived from a stable node id (store, changelog topic, repartition topic)
comes from one function here. A broadcast table (``table: {broadcast: true}``) is in no stage:
every process reads it whole, beside its tasks (:attr:`Plan.broadcast_tables`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kstream.pipeline.spec import (
    JoinSpec,
    KeyBySpec,
    OperatorSpec,
    PipelineSpec,
    PortRef,
    ProcessSpec,
    SinkSpec,
    SourceSpec,
    WindowSpec,
)


def repartition_topic(pipeline: str, operator_id: str) -> str:
    """``<pipeline>.<operator-id>.repartition``."""
    return f"{pipeline}.{operator_id}.repartition"


def changelog_topic(pipeline: str, operator_id: str, store: str = "") -> str:
    """``<pipeline>.<operator-id>.changelog`` for a node's default store, else
    ``<pipeline>.<operator-id>.<store>.changelog`` (compacted, partitioned like the task
    input)."""
    node = f"{operator_id}.{store}" if store else operator_id
    return f"{pipeline}.{node}.changelog"


def task_changelog_topic(pipeline: str, stage_id: str) -> str:
    """``<pipeline>.<stage-id>.task.changelog``: the checkpoint metadata of a stage's tasks
    (position, watermarks, duplicate detection), for every stage, with or without state."""
    return f"{pipeline}.{stage_id}.task.changelog"


def store_name(operator_id: str, store: str = "") -> str:
    """The RocksDB column family of a node's store: ``op.<node-id>`` for its default store
    (``store`` empty), ``op.<node-id>.<store>`` for another (``timers``, ``ttl``)."""
    return f"op.{operator_id}.{store}" if store else f"op.{operator_id}"


@dataclass(frozen=True)
class StoreRef:
    """A state store of a node (DESIGN.md section 5): ``store`` is ``""`` for the node's
    default store, else a name relative to it (``timers``, ``ttl``)."""

    node: str
    store: str = ""

    @property
    def column_family(self) -> str:
        """Its RocksDB column family (:func:`store_name`)."""
        return store_name(self.node, self.store)

    def changelog(self, pipeline: str) -> str:
        """Its changelog topic (:func:`changelog_topic`)."""
        return changelog_topic(pipeline, self.node, self.store)


#: Window types whose operator keeps event-time timers (count windows fire on counts, the
#: global aggregation at the end of input).
TIMED_WINDOW_TYPES = frozenset({"tumbling", "sliding", "cumulate", "session"})
#: The store of a node's timers, next to its default store (``op.<node-id>.timers``).
TIMERS_STORE = "timers"
#: The store of a process function's TTL expiry timers (``op.<node-id>.ttl``;
#: :mod:`kstream.operators.process_ttl`), apart from the user's timers.
TTL_STORE = "ttl"


def transactional_id(pipeline: str, stage_id: str, partition: int) -> str:
    """``kstream.<group>.<stage id>.p<partition>``: deterministic per (group, stage, partition),
    so a restarted or moved task fences its previous incarnation; named after the stage's id,
    never its position."""
    return f"kstream.{pipeline}.{stage_id}.p{partition}"


def task_id(stage: Stage, partition: int) -> str:
    """``<stage id>:<partition>``, e.g. ``flights:3``: the id of a task in logs, ``kstream
    status``, the control channel and the origins of watermark markers and repartition
    sequences. Node ids never contain ``:``: the partition follows the last one."""
    return f"{stage.id}:{partition}"


@dataclass(frozen=True)
class StageInput:
    """A topic a stage reads: a source's topic, or the repartition topic of a ``key_by`` of an
    earlier stage. ``node`` is the source id or the ``key_by`` id."""

    topic: str
    node: str
    source: SourceSpec | None = None
    key_by: KeyBySpec | None = None


@dataclass(frozen=True)
class Stage:
    """One stage (subtopology): the nodes between repartitions.

    Attributes:
        index: position in the stages' topological order (a stage comes after every stage whose
            ``key_by`` it reads); orders stages (savepoints record it), never names a task.
        inputs: the topics it reads, sources first (declaration order), then repartition topics.
        operators: its operators in topological order, without the ``key_by`` nodes ending it.
        key_bys: the ``key_by`` nodes ending it; each writes its repartition topic.
        sinks: the sinks it writes.
        id: the id of its first input node (a source or a ``key_by``); names its task changelog
            and its task ids (:func:`task_id`).
    """

    index: int
    inputs: tuple[StageInput, ...]
    operators: tuple[OperatorSpec, ...]
    key_bys: tuple[KeyBySpec, ...]
    sinks: tuple[SinkSpec, ...]
    id: str = ""

    @property
    def input_topic(self) -> str:
        """The topic of its first input (every input has the same partition count)."""
        return self.inputs[0].topic

    @property
    def input_topics(self) -> list[str]:
        """The topics it reads, in input order."""
        return [i.topic for i in self.inputs]

    @property
    def source(self) -> SourceSpec | None:
        """The source it reads, or None for a stage reading a repartition topic."""
        return next((i.source for i in self.inputs if i.source is not None), None)

    @property
    def is_source(self) -> bool:
        """True for a stage that reads a source topic."""
        return self.source is not None

    @property
    def key_by(self) -> KeyBySpec | None:
        """The ``key_by`` ending it when there is exactly one (else None)."""
        return self.key_bys[0] if len(self.key_bys) == 1 else None

    @property
    def keyed_by(self) -> tuple[KeyBySpec, ...]:
        """The ``key_by`` nodes whose repartition topics it reads (its key)."""
        return tuple(i.key_by for i in self.inputs if i.key_by is not None)

    @property
    def windows(self) -> list[WindowSpec]:
        """Its window operators."""
        return [op for op in self.operators if isinstance(op, WindowSpec)]

    @property
    def processes(self) -> list[ProcessSpec]:
        """Its process functions."""
        return [op for op in self.operators if isinstance(op, ProcessSpec)]

    @property
    def joins(self) -> list[JoinSpec]:
        """Its joins."""
        return [op for op in self.operators if isinstance(op, JoinSpec)]

    @property
    def stateful(self) -> list[WindowSpec | ProcessSpec | JoinSpec]:
        """Its operators that keep state (windows, process functions, joins), in topological
        order."""
        stateful = WindowSpec | ProcessSpec | JoinSpec
        return [op for op in self.operators if isinstance(op, stateful)]

    @property
    def array_keyed(self) -> set[str]:
        """Ids of its nodes whose default store is keyed by JSON arrays whose first element is
        the record key (process functions, joins); a window's keys have a time prefix."""
        return {op.id for op in self.operators if isinstance(op, ProcessSpec | JoinSpec)}

    @property
    def stores(self) -> list[StoreRef]:
        """The state stores of its nodes: each window's store and, for time windows, its
        ``timers`` store; each join's state store and ``timers`` store; each process
        function's state store, ``timers`` store and ``ttl`` store (every process function
        has one, with or without a ttl, so declaring or removing a ttl does not change the
        task's column families); a global window or join with a ``state_ttl``, its ``ttl``
        store too (the expiry index, :mod:`kstream.operators.idle_ttl`)."""
        out: list[StoreRef] = []
        for op in self.stateful:
            out.append(StoreRef(op.id))
            if not isinstance(op, WindowSpec) or op.type in TIMED_WINDOW_TYPES:
                out.append(StoreRef(op.id, TIMERS_STORE))
            if isinstance(op, ProcessSpec) or op.state_ttl_ms is not None:
                out.append(StoreRef(op.id, TTL_STORE))
        return out


@dataclass(frozen=True)
class Plan:
    """The job graph of a pipeline.

    Attributes:
        prefix: names internal topics, transactional ids and state directories; the consumer
            group id (the pipeline name unless a group is given), so a copy of a job run in
            another group (``--group``) never touches the original's internal topics.
    """

    spec: PipelineSpec
    stages: tuple[Stage, ...]
    prefix: str = ""

    @property
    def source(self) -> SourceSpec:
        """The pipeline's first source."""
        return self.spec.sources[0]

    def output_topic(self, stage: Stage) -> str | None:
        """The repartition topic a stage writes, if it ends with exactly one ``key_by``."""
        key_by = stage.key_by
        return repartition_topic(self.prefix, key_by.id) if key_by is not None else None

    def output_topic_of(self, key_by: KeyBySpec) -> str:
        """The repartition topic a ``key_by`` writes."""
        return repartition_topic(self.prefix, key_by.id)

    def output_topics(self, stage: Stage) -> list[tuple[str, KeyBySpec]]:
        """Every repartition topic a stage writes, with the ``key_by`` writing it."""
        return [(repartition_topic(self.prefix, k.id), k) for k in stage.key_bys]

    @property
    def broadcast_tables(self) -> list[SourceSpec]:
        """The broadcast tables: sources every process reads whole, outside the stages
        (:mod:`kstream.runtime.broadcast`), for the lookup joins naming them."""
        return [s for s in self.spec.sources if is_broadcast(s)]

    def late_topics(self) -> list[str]:
        """Every late-data topic configured on a window."""
        return [w.late_topic for s in self.stages for w in s.windows if w.late_topic]

    def input_topics(self) -> list[str]:
        """Every topic the job consumes (source and repartition topics)."""
        return [i.topic for stage in self.stages for i in stage.inputs]

    def stage_of_topic(self, topic: str) -> Stage:
        """The stage that reads ``topic``."""
        for stage in self.stages:
            if any(i.topic == topic for i in stage.inputs):
                return stage
        raise KeyError(topic)

    def stage_by_id(self, stage_id: str) -> Stage:
        """The stage with id ``stage_id``."""
        return next(s for s in self.stages if s.id == stage_id)

    def upstream_stages(self, stage: Stage) -> list[Stage]:
        """The stages whose ``key_by`` output ``stage`` reads."""
        return [self.stage_of_key_by(k.id) for k in stage.keyed_by]

    def stage_of_key_by(self, key_by_id: str) -> Stage:
        """The stage a ``key_by`` ends."""
        return next(s for s in self.stages if any(k.id == key_by_id for k in s.key_bys))


def is_broadcast(source: SourceSpec) -> bool:
    """Whether ``source`` is a broadcast table (in no stage)."""
    return source.table is not None and source.table.broadcast


class _Components:
    """Union-find over node ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def build_plan(spec: PipelineSpec, group: str | None = None) -> Plan:
    """Cut ``spec``'s graph into stages at every ``key_by``; internal names use ``group``
    (default: the pipeline's group id, i.e. its name). ``spec`` must be wired
    (:func:`kstream.pipeline.dataflow.wire`, done by the loader)."""
    prefix = group or spec.group_id
    key_bys = {op.id: op for op in spec.operators if isinstance(op, KeyBySpec)}
    parts = _Components()
    for source in spec.sources:
        if not is_broadcast(source):
            parts.find(source.id)
    consumers: list[tuple[str, Iterable[PortRef]]] = [(op.id, op.inputs) for op in spec.operators]
    consumers += [(f"sink:{s.name}", s.inputs) for s in spec.sinks]
    for node, inputs in consumers:
        parts.find(node)
        for ref in inputs:
            # a key_by's readers meet at its repartition topic, not at the key_by
            parts.join(node, f"repartition:{ref.node}" if ref.node in key_bys else ref.node)
    stages = [
        _stage(spec, prefix, parts, root, key_bys)
        for root in dict.fromkeys(parts.find(n) for n, _ in _entry_points(spec, key_bys))
    ]
    ordered = _topological(stages)
    return Plan(spec, tuple(_renumber(ordered)), prefix)


def _entry_points(
    spec: PipelineSpec, key_bys: dict[str, KeyBySpec]
) -> list[tuple[str, StageInput | None]]:
    """Sources, then repartition topics that are read, in declaration order."""
    read = {ref.node for op in (*spec.operators, *spec.sinks) for ref in op.inputs}
    points: list[tuple[str, StageInput | None]] = [
        (s.id, None) for s in spec.sources if not is_broadcast(s)
    ]
    points += [(f"repartition:{k}", None) for k in key_bys if k in read]
    return points


def _stage(
    spec: PipelineSpec, prefix: str, parts: _Components, root: str, key_bys: dict[str, KeyBySpec]
) -> Stage:
    def member(node: str) -> bool:
        return parts.find(node) == root

    inputs = [
        StageInput(s.topic, s.id, source=s)
        for s in spec.sources
        if not is_broadcast(s) and member(s.id)
    ]
    inputs += [
        StageInput(repartition_topic(prefix, k), k, key_by=op)
        for k, op in key_bys.items()
        if parts.parent.get(f"repartition:{k}") is not None and member(f"repartition:{k}")
    ]
    ops = [op for op in spec.operators if member(op.id)]
    return Stage(
        index=0,
        inputs=tuple(inputs),
        operators=tuple(_sorted(op for op in ops if not isinstance(op, KeyBySpec))),
        key_bys=tuple(op for op in ops if isinstance(op, KeyBySpec)),
        sinks=tuple(s for s in spec.sinks if member(f"sink:{s.name}")),
        id=inputs[0].node,
    )


def _sorted(ops: Iterable[OperatorSpec]) -> list[OperatorSpec]:
    """Operators in topological order (declaration order among independent ones)."""
    pending = list(ops)
    ids = {op.id for op in pending}
    done: set[str] = set()
    ordered: list[OperatorSpec] = []
    while pending:
        ready = next(
            op for op in pending if all(r.node in done or r.node not in ids for r in op.inputs)
        )
        ordered.append(ready)
        done.add(ready.id)
        pending.remove(ready)
    return ordered


def _topological(stages: list[Stage]) -> list[Stage]:
    """Stages ordered so that a stage follows every stage whose ``key_by`` it reads."""
    ordered: list[Stage] = []
    pending = list(stages)
    written = {k.id: s.id for s in stages for k in s.key_bys}
    placed: set[str] = set()
    while pending:
        ready = next(s for s in pending if all(written[k.id] in placed for k in s.keyed_by))
        ordered.append(ready)
        placed.add(ready.id)
        pending.remove(ready)
    return ordered


def _renumber(stages: list[Stage]) -> list[Stage]:
    return [Stage(i, s.inputs, s.operators, s.key_bys, s.sinks, s.id) for i, s in enumerate(stages)]
