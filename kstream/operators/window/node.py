"""A window as a node of the graph: :class:`WindowNode` runs a
:class:`~kstream.operators.window.base.WindowOperator` (time, count or global windows) behind the
operator interface: records in, results out on ``main``, elements dropped as late handed to
``on_late`` (the executor routes them to the ``late`` port, its counters and ``late_topic``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kstream.errors import ExpressionError
from kstream.expr.compiler import compile_expression
from kstream.expr.udf import load_python_callable
from kstream.graph.plan import TIMED_WINDOW_TYPES, TIMERS_STORE, TTL_STORE
from kstream.keys import hashable
from kstream.operators.aggregations import Aggregator
from kstream.operators.base import Changes, Operator, OperatorContext, Receiver
from kstream.operators.stateless import guarded, search_paths
from kstream.operators.window.base import MAX_WATERMARK, LateRecord, WindowOperator
from kstream.operators.window.count import CountWindowOperator
from kstream.operators.window.global_agg import GlobalOperator
from kstream.operators.window.operator import TimeWindowOperator
from kstream.pipeline.spec import PipelineSpec, WindowSpec
from kstream.time.timers import EVENT_TIME, TimerService
from kstream.time.timestamps import now_ms

#: ``(window, elements dropped as late)``.
LateHandler = Callable[[WindowOperator, list[LateRecord]], None]


def build_window(
    op: WindowSpec, spec: PipelineSpec, clock: Callable[[], int] = now_ms
) -> WindowOperator:
    """The window operator for ``op.type`` with its compiled aggregations; ``clock`` gives
    processing time in epoch ms.

    Raises:
        ExpressionError: an aggregation's expression or user class cannot be compiled/loaded.
    """
    getters: list[Any] = []
    users: list[Any] = []
    for agg in op.aggregations:
        users.append(_user_aggregate(agg.python, spec) if agg.python else None)
        if agg.expr is None:
            getters.append(None)
        else:
            where = f"{op.id}.aggregate.{agg.name}"
            getters.append(guarded(compile_expression(agg.expr, where=where)))
    has_user = any(u is not None for u in users)
    aggregator = Aggregator(op.aggregations, getters, users if has_user else ())
    if op.type in TIMED_WINDOW_TYPES:
        return TimeWindowOperator(op, aggregator, clock)
    kind = CountWindowOperator if op.type == "count" else GlobalOperator
    return kind(op, aggregator, clock)


def _user_aggregate(ref: str, spec: PipelineSpec) -> Any:
    factory = load_python_callable(ref, search_paths=search_paths(spec))
    instance = factory() if isinstance(factory, type) else factory
    for method in ("initialize", "add", "merge", "result"):
        if not callable(getattr(instance, method, None)):
            raise ExpressionError(f"aggregate {ref} has no method {method}()")
    return instance


class WindowNode(Operator):
    """A keyed window (``window:``) as an operator.

    Args:
        op: the window's spec.
        spec: the pipeline (resolves ``python:`` aggregates next to its file).
        clock: processing time in epoch ms (early-firing triggers).
        on_late: receives the elements each record or watermark drops as late.

    Raises:
        ExpressionError: an aggregation cannot be compiled or loaded.
    """

    def __init__(
        self, op: WindowSpec, spec: PipelineSpec, clock: Callable[[], int], on_late: LateHandler
    ) -> None:
        self.spec = op
        self.window = build_window(op, spec, clock)
        #: the window's timer service (None: count windows and the global aggregation)
        self.timers: TimerService | None = self.window.timers
        self.on_late = on_late

    def on_timer(self, timestamp: int, key: Any, namespace: Any, domain: str = EVENT_TIME) -> None:
        """A window's event-time timer (firing, cleanup) or processing-time timer (``trigger:
        {every: ...}``) fired."""
        window = self.window
        fire = window.on_timer if domain == EVENT_TIME else window.on_processing_timer
        out = self._out
        for k, v, t in fire(timestamp, key, namespace):
            out(k, v, t)

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        self.window.bind(ctx)
        self.timers = self.window.timers  # over the node's timers store now
        self._out = ctx.out.emitter()
        self.watermark = -(2**63)

    def process(self, port: str, key: Any, value: Any, ts: int) -> None:
        self.receiver(port)(key, value, ts)

    def receiver(self, port: str = "main") -> Receiver:
        window, out = self.window, self._out

        def receive(key: Any, value: Any, ts: int) -> None:
            if isinstance(key, list | dict):  # an array key (JSON-decoded): a tuple
                key = hashable(key)
            results = window.process(key, value, ts, self.watermark)
            if window.late:
                late, window.late = window.late, []
                self.on_late(window, late)
            for k, v, t in results:
                out(k, v, t)

        return receive

    def on_watermark(self, watermark: int) -> None:
        """Time windows: the runtime fired the due timers already (:meth:`on_timer`). Count
        windows and the global aggregation have no timer service: what is due (the global
        aggregation's end of input) fires here."""
        self.watermark = watermark
        if self.timers is None and self.window.next_timer <= watermark:
            out = self._out
            for k, v, t in self.window.advance(watermark):
                out(k, v, t)

    def end_slice(self, most: int) -> tuple[int, bool]:
        """End of input after the timers fired (:mod:`kstream.runtime.ending`): a window
        without timers (the global aggregation) emits the results of up to ``most`` keys.
        Returns ``(results emitted, whether every key is out)``."""
        self.watermark = MAX_WATERMARK
        if self.timers is not None:
            return 0, True
        records, done = self.window.end_slice(most)
        out = self._out
        for k, v, t in records:
            out(k, v, t)
        return len(records), done

    def on_processing_time(self, now: int) -> None:
        """The early firings due by ``now`` (epoch ms): the global aggregation's ``every``
        trigger (time windows' are timers of :attr:`timers`, fired before this)."""
        out = self._out
        for k, v, t in self.window.on_processing_time(now):
            out(k, v, t)

    def prepare_checkpoint(self) -> dict[str, Changes]:
        """The window store (``""``), for time windows the ``timers`` store, for a global
        window with a ``state_ttl`` the ``ttl`` store (expired keys swept first)."""
        window = self.window
        ttl = window.ttl if isinstance(window, GlobalOperator) else None
        if isinstance(window, GlobalOperator) and ttl is not None:
            window.sweep(self.ctx.clock())
        changes = {"": window.changes()}
        if window.timers is not None:
            changes[TIMERS_STORE] = window.timers.changes()
        if ttl is not None:
            changes[TTL_STORE] = ttl.changes()
        return changes

    def restore(self, stores: Mapping[str, Iterable[tuple[bytes, bytes]]], watermark: int) -> None:
        self.watermark = watermark
        if isinstance(self.window, GlobalOperator):
            self.window.restore_ttl(stores.get(TTL_STORE, ()))
        self.window.restore(stores.get("", ()), watermark, stores.get(TIMERS_STORE, ()))
