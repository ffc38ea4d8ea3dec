"""A join as a node of the graph: :class:`JoinNode` runs a join of two inputs behind the operator
interface. Records of the left input arrive on port ``left``, of the right input on ``right``
(the executor wires ``inputs[0]`` and ``inputs[1]``); joined records leave on ``main``, late
records on ``late`` (through ``on_late``).

State: the node's default store holds the join's buffers
(:data:`~kstream.operators.join.buffer.JOIN_CODEC`: keys are JSON arrays whose first element is
the record key, like a process function's, so savepoints re-shard them by the record key), and
its ``timers`` store the cleanup timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kstream.errors import RecordError
from kstream.graph.plan import TIMERS_STORE
from kstream.keys import hashable
from kstream.operators.base import Changes, Operator, OperatorContext, Receiver
from kstream.operators.join.buffer import JOIN_CODEC
from kstream.operators.join.interval import IntervalJoin
from kstream.operators.join.output import JoinOutput
from kstream.pipeline.spec_joins import JoinSpec
from kstream.time.timers import EVENT_TIME, TimerService
from kstream.time.watermarks import MIN_WATERMARK

#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
LateHandler = Callable[[str, Any, Any, int, int], None]
#: ``(error, key, value)``: an unmatched record released by a timer could not be emitted.
TimerErrorHandler = Callable[[RecordError, Any, Any], None]


class JoinNode(Operator):
    """A ``join:`` as an operator (interval joins; docs/joins.md).

    Args:
        op: the join's spec.
        on_late: receives the records late for the join.

    Raises:
        ExpressionError: a ``select`` expression cannot be compiled.
    """

    timers: TimerService

    def __init__(self, op: JoinSpec, on_late: LateHandler) -> None:
        self.spec = op
        self.output = JoinOutput(op)
        self.watermark = MIN_WATERMARK
        self._on_late = on_late
        self._on_timer_error: TimerErrorHandler | None = None
        self._out: Receiver = lambda key, value, ts: None
        self.join = IntervalJoin(op, self.output, self._emit, on_late)
        self.timers = self.join.timers

    def _emit(self, key: Any, value: Any, ts: int) -> None:
        self._out(key, value, ts)

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        self._out = ctx.out.emitter()
        self.timers = TimerService(ctx.timer_backend())
        self.join.bind(ctx.store("", JOIN_CODEC), self.timers)

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

    def prepare_checkpoint(self) -> dict[str, Changes]:
        """The buffers (``""``) and the ``timers`` store."""
        return {"": self.join.store.changes(), TIMERS_STORE: self.timers.changes()}

    def restore(self, stores: Mapping[str, Iterable[tuple[bytes, bytes]]], watermark: int) -> None:
        self.watermark = watermark
        for _ in self.join.store.restore(stores.get("", ())):
            pass  # nothing to rebuild: the buffers are read on demand
        self.timers.restore(stores.get(TIMERS_STORE, ()))
