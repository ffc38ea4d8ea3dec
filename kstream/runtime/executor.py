"""The node executor: a stage's graph of operators wired inside one task.

Built once per task from its :class:`~kstream.graph.plan.Stage`: each operator becomes an
:class:`~kstream.operators.base.Operator` whose output ports feed the receivers of the nodes that
read them (``from:``); sinks and ``key_by`` outputs are the terminals, writing through the task's
``emit``. The executor applies every node's error policy around it (DESIGN.md section 4), routes
a window's late elements to its ``late`` port (counted always, written to ``late_topic`` when
set, and to every node reading ``<window>.late``), and moves time through the nodes in
topological order, so what a window fires meets the downstream nodes before they see the new
watermark, as in Flink.

Records are pushed depth first: a record's whole effect (every port, every sink) happens before
the next record is taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kstream.errors import RecordError
from kstream.graph.plan import Plan, Stage, StageInput, repartition_topic, store_name
from kstream.io import codecs, key_fields
from kstream.operators.base import Changes, Operator, OperatorContext, Output, Receiver
from kstream.operators.join.node import JoinNode
from kstream.operators.process import ProcessNode
from kstream.operators.stateless import build_stateless, key_function
from kstream.operators.window.base import LateRecord, WindowOperator
from kstream.operators.window.node import WindowNode
from kstream.pipeline.dataflow import upstream_source
from kstream.pipeline.spec import (
    JoinSpec,
    KeyBySpec,
    PortRef,
    ProcessSpec,
    SinkSpec,
    WindowSpec,
)
from kstream.pipeline.spec_joins import SIDES
from kstream.runtime.ending import EndOfInput
from kstream.runtime.late import join_late_handler, window_late_handler
from kstream.runtime.node_stats import NodeStats, counted, sink_node_id
from kstream.runtime.node_watermarks import NodeWatermarks
from kstream.runtime.policy import BadRecordFailure, OnBad, Policy, resolve
from kstream.runtime.terminals import SinkWriter, repartition_writer, sink_writer
from kstream.state.cache import StoreProvider
from kstream.time.timers import PROCESSING_TIME

#: ``(topic, key, value, timestamp_ms, headers, partition)``: the task's output.
Emit = Callable[
    [str, bytes | None, bytes | None, int, list[tuple[str, bytes]] | None, int | None], None
]


@dataclass
class RecordContext:
    """What travels with the record in flight besides key, value and time: its headers (the
    ``kstream.late.*`` headers of a late element; None otherwise), written by sinks."""

    headers: list[tuple[str, bytes]] | None = None


@dataclass
class TaskHooks:
    """What the executor needs from its task.

    Attributes:
        task_id: ``<stage id>:<partition>``; prefixes repartition sequence numbers.
        emit: the task's output (see :data:`Emit`).
        counters: the task's counters (``out``, ``forwarded``, ``late`` are kept here).
        on_bad: applies a policy to a failed record (raises under ``fail``).
        next_seq: the ``kstream.seq`` header value of the next repartition record.
        clock: processing time, epoch ms.
        late_listener: also told of every late element (the test driver).
        stores: the task's state stores (RocksDB behind the process's cache, or in memory).
    """

    task_id: str
    emit: Emit
    counters: dict[str, int]
    on_bad: OnBad
    next_seq: Callable[[], bytes]
    clock: Callable[[], int]
    late_listener: Callable[[WindowOperator, list[LateRecord]], None] | None = None
    record: RecordContext = field(default_factory=RecordContext)
    stores: StoreProvider = field(default_factory=StoreProvider)


class NodeExecutor:
    """The operators of ``stage`` in one task, wired and guarded.

    Args:
        plan: the job graph.
        stage: the stage the task runs.
        hooks: the task's side (outputs, counters, error handling, clock).

    Raises:
        ExpressionError: an expression or user function cannot be compiled or loaded.
        SchemaError, BrokerError: a sink's or late topic's encoder cannot be built.
    """

    def __init__(self, plan: Plan, stage: Stage, hooks: TaskHooks) -> None:
        self.plan, self.stage, self.hooks = plan, stage, hooks
        spec = plan.spec
        self._ops = {op.id: op for op in stage.operators}
        #: node id -> its counters in this task (inputs, operators, key_bys, sinks)
        self.node_stats = {
            node: NodeStats()
            for node in (
                *(i.node for i in stage.inputs),
                *self._ops,
                *(k.id for k in stage.key_bys),
                *(sink_node_id(s) for s in stage.sinks),
            )
        }
        self._derived = self._derived_nodes()
        self.nodes: dict[str, Operator] = {}
        for op in stage.operators:
            if isinstance(op, WindowSpec):
                node: Operator = WindowNode(op, spec, hooks.clock, self._late_handler(op))
            elif isinstance(op, ProcessSpec):
                node = ProcessNode(op, spec)
            elif isinstance(op, JoinSpec):
                node = JoinNode(op, spec, self._join_late_handler(op))
            else:
                node = build_stateless(op, spec)
            self.nodes[op.id] = node
        self.windows = [n.window for n in self.nodes.values() if isinstance(n, WindowNode)]
        #: ids of the nodes that can have late records (windows and joins)
        self.late_nodes = [o.id for o in stage.operators if isinstance(o, WindowSpec | JoinSpec)]
        self._timed_ids = [(i, n) for i, n in self.nodes.items() if isinstance(n, TIMED_NODES)]
        self._timed = [n for _, n in self._timed_ids]
        #: per-node watermarks when the task reads several topics (one input: the task's)
        self.node_watermarks = NodeWatermarks(self._feeds()) if len(stage.inputs) > 1 else None
        self._readers: dict[PortRef, list[Receiver]] = {}
        self._wire_terminals()
        for op in reversed(stage.operators):
            self._open(op.id)
        self.entries = {i.node: self._entry(i) for i in stage.inputs}

    # -- wiring ---------------------------------------------------------------------------

    def _derived_nodes(self) -> set[str]:
        """Ids of the nodes fed (directly or not) by a window of this stage: their records are
        window results, not records as read."""
        derived: set[str] = set()
        for op in self.stage.operators:  # topological order: producers first
            if self._fed_by_window(op.inputs, derived):
                derived.add(op.id)
        return derived

    def _fed_by_window(self, inputs: Iterable[PortRef], derived: set[str]) -> bool:
        """Whether a window or a process function (whose outputs are not records as read)
        feeds ``inputs``, directly or through ``derived`` nodes."""
        ops = self._ops
        return any(
            ref.node in derived
            or isinstance(ops.get(ref.node), WindowSpec | ProcessSpec | JoinSpec)
            for ref in inputs
        )

    def _is_derived(self, inputs: Iterable[PortRef]) -> bool:
        return self._fed_by_window(inputs, self._derived)

    def _read(self, refs: Iterable[PortRef], receiver: Receiver, reader: str | None) -> None:
        """``receiver`` (node ``reader``'s input; None: a receiver counting its own records)
        reads ``refs``, counted on each edge (:func:`~kstream.runtime.node_stats.counted`)."""
        stats = None if reader is None else self.node_stats[reader]
        for ref in refs:
            readers = self._readers.setdefault(ref, [])
            upstream = None if readers else self.node_stats.get(ref.node)
            readers.append(counted(receiver, stats, upstream))

    def _policy(self, owner: Any, name: str, node_id: str) -> Policy:
        return resolve(owner, name, upstream_source(self.plan.spec, node_id))

    def _guard(self, receiver: Receiver, policy: Policy, derived: bool) -> Receiver:
        on_bad = self.hooks.on_bad

        def guarded(key: Any, value: Any, ts: int) -> None:
            try:
                receiver(key, value, ts)
            except BadRecordFailure:
                raise
            except RecordError as exc:
                on_bad(exc, policy, derived, key, value)

        return guarded

    def _open(self, node_id: str) -> None:
        """Open an operator (its readers all exist by now) and register its guarded input."""
        op = next(o for o in self.stage.operators if o.id == node_id)
        node = self.nodes[node_id]
        ports = {ref.port: readers for ref, readers in self._readers.items() if ref.node == node_id}
        node.open(OperatorContext(node_id, Output(ports), self.hooks.clock, self.hooks.stores))
        policy = self._policy(op, node_id, node_id)
        derived = self._is_derived(op.inputs)
        if isinstance(op, JoinSpec):  # inputs[0] is the left side, inputs[1] the right (if any)
            for side, ref in zip(SIDES, op.inputs, strict=False):
                self._read((ref,), self._guard(node.receiver(side), policy, derived), node_id)
        else:
            self._read(op.inputs, self._guard(node.receiver(), policy, derived), node_id)
        if isinstance(node, ProcessNode | JoinNode):  # a failing on_timer: a derived bad record
            on_bad = self.hooks.on_bad
            node.guard_timers(lambda exc, key, value: on_bad(exc, policy, True, key, value))

    def _entry(self, stage_input: StageInput) -> Receiver:
        """Where the task pushes the records of ``stage_input``: a source counts them in; a
        ``key_by`` counted its records in where it wrote them (the upstream stage)."""
        emitter = Output({"main": self._readers.get(PortRef(stage_input.node), [])}).emitter()
        if stage_input.source is None:
            return emitter
        return counted(emitter, self.node_stats[stage_input.node], None)

    def _wire_terminals(self) -> None:
        groups: dict[tuple[PortRef, ...], list[SinkSpec]] = {}
        for sink in self.stage.sinks:
            groups.setdefault(sink.inputs, []).append(sink)
        for inputs, sinks in groups.items():
            self._read(inputs, self._sink_group(sinks, self._is_derived(inputs)), None)
        for key_by in self.stage.key_bys:
            self._read(key_by.inputs, self._repartition(key_by), key_by.id)

    def _sink_group(self, sinks: list[SinkSpec], derived: bool) -> Receiver:
        """Writes to every sink reading the same inputs (:func:`~kstream.runtime.terminals.
        sink_writer`)."""
        writers = [
            SinkWriter(
                s.topic,
                *codecs.sink_encoders(s, self.plan.spec),
                self._policy(s, sink_node_id(s), s.inputs[0].node),
                self.node_stats[sink_node_id(s)],
                key_fields.sink_projection(s),
            )
            for s in sinks
        ]
        return sink_writer(self.hooks, writers, derived)

    def _repartition(self, key_by: KeyBySpec) -> Receiver:
        """Writes each record, re-keyed, to the ``key_by``'s repartition topic
        (:func:`~kstream.runtime.terminals.repartition_writer`)."""
        return repartition_writer(
            self.hooks,
            key_by,
            key_function(key_by, self.plan.spec),
            repartition_topic(self.plan.prefix, key_by.id),
            self._policy(key_by, key_by.id, key_by.id),
            self._is_derived(key_by.inputs),
        )

    # -- late elements ----------------------------------------------------------------------

    def _late_handler(self, op: WindowSpec) -> Callable[[WindowOperator, list[LateRecord]], None]:
        """A window's late elements to its ``late`` port and ``late_topic``
        (:func:`~kstream.runtime.late.window_late_handler`)."""
        policy = self._policy(op, op.id, op.id)
        derived = op.id in self._derived  # fed by an earlier window
        return window_late_handler(
            self.hooks,
            self.plan.spec,
            op,
            policy,
            derived,
            self._readers_of,
            self.node_stats[op.id],
        )

    def _join_late_handler(self, op: JoinSpec) -> Callable[[str, Any, Any, int, int], None]:
        """A join's late records to its ``late`` port (:func:`~kstream.runtime.late.
        join_late_handler`)."""
        return join_late_handler(self.hooks, op, self._readers_of, self.node_stats[op.id])

    def _readers_of(self, ref: PortRef) -> list[Receiver]:
        return self._readers.get(ref, [])

    # -- time and state ---------------------------------------------------------------------

    def _feeds(self) -> dict[str, frozenset[int]]:
        """Node id -> indexes of the stage inputs feeding it (through any path in the stage)."""
        index = {i.node: n for n, i in enumerate(self.stage.inputs)}
        feeds: dict[str, frozenset[int]] = {}
        for op in self.stage.operators:  # topological order: producers first
            found: set[int] = set()
            for ref in op.inputs:
                if ref.node in index:
                    found.add(index[ref.node])
                else:
                    found |= feeds.get(ref.node, frozenset())
            feeds[op.id] = frozenset(found)
        return feeds

    def input_watermark(self, index: int, watermark: int) -> None:
        """Several inputs: input ``index``'s watermark rose to ``watermark`` (epoch ms); each
        node whose own watermark rose sees it, in topological order."""
        assert self.node_watermarks is not None
        self.node_watermarks.input_watermark(index, watermark)
        self._refresh()

    def input_status(self, index: int, active: bool) -> None:
        """Several inputs: input ``index`` went idle or became active."""
        assert self.node_watermarks is not None
        self.node_watermarks.input_status(index, active)
        self._refresh()

    def input_finish(self, index: int, refresh: bool = True) -> None:
        """Several inputs: input ``index`` has ended. ``refresh`` False: the nodes do not see
        their new watermarks now (the last input ended: :meth:`end_of_input` brings them all
        to +infinity in slices)."""
        assert self.node_watermarks is not None
        self.node_watermarks.finish(index)
        if refresh:
            self._refresh()

    def _refresh(self) -> None:
        assert self.node_watermarks is not None
        of = self.node_watermarks.watermark
        for node_id, node in self._timed_ids:
            watermark = of(node_id)
            if watermark > node.watermark:
                _advance_node(node, watermark)

    def on_watermark(self, watermark: int) -> None:
        """Event time reached ``watermark`` (epoch ms): each node in topological order, its due
        event-time timers (``on_timer``) first, then ``on_watermark`` (Flink: the timer service
        advances before the operator's ``processWatermark``)."""
        for node in self._timed:
            _advance_node(node, watermark)

    def end_of_input(self, state: Mapping[str, Any] | None = None) -> EndOfInput:
        """Every input ended: the timed nodes' way to watermark +infinity, in slices (resumed
        from a checkpoint's ``state``, :meth:`EndOfInput.state`).

        Raises:
            ValueError: ``state`` names a node this stage does not have.
        """
        return EndOfInput(self._timed_ids, state)

    def on_processing_time(self, now: int) -> None:
        """Processing time reached ``now`` (epoch ms): each node's due processing-time timers
        (``on_timer``), then its processing-time triggers."""
        for node in self._timed:
            timers = node.timers
            due = None if timers is None else timers.next_processing_time
            if timers is not None and due is not None and due <= now:
                timers.advance_processing_time(now, partial(node.on_timer, domain=PROCESSING_TIME))
            node.on_processing_time(now)

    @property
    def has_state_changes(self) -> bool:
        """Whether any node's state changed since the last :meth:`state_changes`."""
        return self.hooks.stores.dirty

    def state_changes(self) -> dict[str, Changes]:
        """Per store name (``op.<node-id>``), each key changed since the last call."""
        changes: dict[str, Changes] = {}
        for node_id, node in self.nodes.items():
            for name, entries in node.prepare_checkpoint().items():
                changes[store_name(node_id, name)] = entries
        return changes

    def node_watermarks_ms(self, task_watermark: int) -> dict[str, int]:
        """Each node's watermark (epoch ms): a timed node's own, a node of a task reading
        several topics its inputs' valve, any other node the task's ``task_watermark``."""
        valve = self.node_watermarks
        marks = dict.fromkeys(self.node_stats, task_watermark)
        if valve is not None:
            for node_id in self._ops:
                marks[node_id] = valve.watermark(node_id)
        for node_id, node in self._timed_ids:
            marks[node_id] = node.watermark
        return marks

    def timers_fired(self) -> dict[str, int]:
        """Timers fired so far by each node with a timer service (both domains)."""
        return {i: n.timers.fired for i, n in self._timed_ids if n.timers is not None}

    def late_action(self, node_id: str) -> str:
        """Where window or join ``node_id``'s late records go: ``dropped``, ``side_output`` (its
        ``late`` port is read), ``late_topic`` or ``late_topic_and_side_output``."""
        op = self._ops.get(node_id)
        topic = isinstance(op, WindowSpec) and op.late_topic is not None
        read = bool(self._readers.get(PortRef(node_id, "late")))
        if topic:
            return "late_topic_and_side_output" if read else "late_topic"
        return "side_output" if read else "dropped"

    def timed_watermarks(self) -> dict[str, int]:
        """Each timed node's watermark (epoch ms): with several inputs a node's own can be
        ahead of the task's (its inputs' valve)."""
        return {node_id: node.watermark for node_id, node in self._timed_ids}

    def restore_timed_watermarks(self, watermarks: Mapping[str, int]) -> None:
        """After :meth:`restore`: each timed node's checkpointed watermark, so nodes that
        advanced already (a global aggregation whose inputs ended) do not fire again."""
        for node_id, node in self._timed_ids:
            saved = watermarks.get(node_id)
            if saved is not None and saved > node.watermark:
                node.watermark = saved

    def restore(self, stores: Mapping[str, Iterable[tuple[bytes, bytes]]], watermark: int) -> None:
        """Rebuild every node's state from checkpointed entries by store name."""
        for node_id, node in self.nodes.items():
            prefix = store_name(node_id)
            own = {
                name[len(prefix) + 1 :] if name != prefix else "": entries
                for name, entries in stores.items()
                if name == prefix or name.startswith(prefix + ".")
            }
            node.restore(own, watermark)


#: The node kinds with event time of their own (timers, a watermark).
TIMED_NODES = (WindowNode, ProcessNode, JoinNode)


def _advance_node(node: WindowNode | ProcessNode | JoinNode, watermark: int) -> None:
    """A node's event time reached ``watermark`` (ms): its due event-time timers fire, then its
    ``on_watermark``. A process function sees the new watermark in its timers already (Flink:
    the timer service's watermark moves before the timers fire)."""
    if isinstance(node, ProcessNode):
        node.watermark = max(node.watermark, watermark)
    timers = node.timers
    if timers is not None and timers.next_event_time <= watermark:
        timers.advance_event_time(watermark, node.on_timer)
    node.on_watermark(watermark)
