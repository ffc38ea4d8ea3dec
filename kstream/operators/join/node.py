"""A join as a node of the graph: :class:`JoinNode` runs a join of two inputs behind the operator
interface. Records of the left input arrive on port ``left``, of the right input on ``right``
(the executor wires ``inputs[0]`` and ``inputs[1]``; a lookup join of a broadcast table has no
right input); joined records leave on ``main``, late
records on ``late`` (through ``on_late``).

State: the node's default store holds the join's buffers, table rows or versions
(:data:`~kstream.operators.join.buffer.JOIN_CODEC`: keys are JSON arrays whose first element is
the record key, like a process function's, so savepoints re-shard them by the record key), and
its ``timers`` store its event-time timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from kstream.errors import RecordError
from kstream.graph.plan import TIMERS_STORE, TTL_STORE
from kstream.keys import hashable
from kstream.operators.base import Changes, Operator, OperatorContext, Receiver
from kstream.operators.join.buffer import JOIN_CODEC, BufferKey
from kstream.operators.join.interval import Emit, IntervalJoin
from kstream.operators.join.lookup import LookupJoin
from kstream.operators.join.output import JoinOutput
from kstream.operators.join.session import SessionWindowJoin
from kstream.operators.join.temporal import TemporalJoin
from kstream.operators.join.window import WindowJoin
from kstream.pipeline.spec import PipelineSpec
from kstream.pipeline.spec_joins import JoinSpec
from kstream.state.cache import KeyValueStore
from kstream.time.timers import EVENT_TIME, TimerService
from kstream.time.watermarks import MIN_WATERMARK

#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
LateHandler = Callable[[str, Any, Any, int, int], None]
#: ``(error, key, value)``: an unmatched record released by a timer could not be emitted.
TimerErrorHandler = Callable[[RecordError, Any, Any], None]


class Join(Protocol):
    """What :class:`JoinNode` runs: an interval, window, temporal or lookup join of one
    task."""

    store: KeyValueStore[BufferKey, Any]
    timers: TimerService

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None: ...

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None: ...

    def on_timer(self, at: int, key: Any, namespace: Any) -> None: ...

    def advance(self, watermark: int) -> None: ...


def _build(
    op: JoinSpec, spec: PipelineSpec, output: JoinOutput, emit: Emit, on_late: LateHandler
) -> Join:
    """The join of ``op.type``; a temporal join keeps its table's ``versioned`` history."""
    if op.type == "lookup":
        return LookupJoin(op, spec, output, emit)
    if op.type == "temporal":
        table = next(s.table for s in spec.sources if s.id == op.right_name)
        history = table.versioned_ms if table is not None else None
        return TemporalJoin(op, history or 0, output, emit, on_late)
    if op.type == "window" and op.window is not None and op.window.type == "session":
        return SessionWindowJoin(op, output, emit, on_late)
    if op.type == "window":
        return WindowJoin(op, output, emit, on_late)
    return IntervalJoin(op, output, emit, on_late)


class JoinNode(Operator):
    """A ``join:`` as an operator (interval, window, temporal and lookup joins;
    docs/joins.md).

    Args:
        op: the join's spec.
        on_late: receives the records late for the join.

    Raises:
        ExpressionError: a ``select`` expression cannot be compiled.
    """

    timers: TimerService

    def __init__(self, op: JoinSpec, spec: PipelineSpec, on_late: LateHandler) -> None:
        self.spec = op
        self.output = JoinOutput(op)
        self._watermark = MIN_WATERMARK
        self._on_timer_error: TimerErrorHandler | None = None
        self._out: Receiver = lambda key, value, ts: None
        self.join = _build(op, spec, self.output, self._emit, on_late)
        self.timers = self.join.timers

    @property
    def watermark(self) -> int:
        """The join's watermark (ms): the min over its inputs."""
        return self._watermark

    @watermark.setter
    def watermark(self, watermark: int) -> None:
        self._watermark = watermark
        self.join.advance(watermark)

    def _emit(self, key: Any, value: Any, ts: int) -> None:
        self._out(key, value, ts)

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        self._out = ctx.out.emitter()
        self.timers = TimerService(ctx.timer_backend())
        self.join.bind(ctx.store("", JOIN_CODEC), self.timers)
        if isinstance(self.join, IntervalJoin) and self.join.ttl is not None:
            self.join.clock = ctx.clock
            self.join.ttl.bind(ctx.timer_backend(TTL_STORE))
        if isinstance(self.join, LookupJoin) and self.spec.broadcast_table is not None:
            self.join.use_table(ctx.broadcast_table(self.spec.broadcast_table))

    def guard_timers(self, handler: TimerErrorHandler) -> None:
        """Route a record a timer releases that cannot be emitted to ``handler`` (the node's
        error policy)."""
        self._on_timer_error = handler

    def process(self, port: str, key: Any, value: Any, ts: int) -> None:
        self.receiver(port)(key, value, ts)

    def receiver(self, port: str = "left") -> Receiver:
        """The records of input ``port``: ``left`` (``inputs[0]``) or ``right``."""
        process, side = self.join.process, port

        def receive(key: Any, value: Any, ts: int) -> None:
            if isinstance(key, list | dict):  # an array key (JSON-decoded): a tuple
                key = hashable(key)
            process(side, key, value, ts, self.watermark)

        return receive

    def on_timer(self, timestamp: int, key: Any, namespace: Any, domain: str = EVENT_TIME) -> None:
        if domain != EVENT_TIME:
            return  # joins register event-time timers only
        try:
            self.join.on_timer(timestamp, key, namespace)
        except RecordError as exc:
            if self._on_timer_error is None:
                raise
            self._on_timer_error(exc, key, {"timer": timestamp, "side": namespace})

    def on_watermark(self, watermark: int) -> None:
        """The due cleanup timers fired already (:meth:`on_timer`); later records are late
        against this watermark."""
        self.watermark = max(self.watermark, watermark)

    def on_processing_time(self, now: int) -> None:
        """An interval join with a ``state_ttl``: remove the records expired at ``now``."""
        if isinstance(self.join, IntervalJoin):
            self.join.sweep(now)

    def prepare_checkpoint(self) -> dict[str, Changes]:
        """The buffers (``""``), the ``timers`` store and, under a ``state_ttl``, the ``ttl``
        store (expired records swept first)."""
        join = self.join
        ttl = join.ttl if isinstance(join, IntervalJoin) else None
        if isinstance(join, IntervalJoin) and ttl is not None:
            join.sweep(self.ctx.clock())
        changes = {"": join.store.changes(), TIMERS_STORE: self.timers.changes()}
        if ttl is not None:
            changes[TTL_STORE] = ttl.changes()
        return changes

    def restore(self, stores: Mapping[str, Iterable[tuple[bytes, bytes]]], watermark: int) -> None:
        self.watermark = watermark
        for _ in self.join.store.restore(stores.get("", ())):
            pass  # nothing to rebuild: the buffers are read on demand
        self.timers.restore(stores.get(TIMERS_STORE, ()))
        if isinstance(self.join, IntervalJoin):
            self.join.restore_ttl(stores.get(TTL_STORE, ()), self.ctx.clock())
