"""A keyed process function as a node of the graph (``process: {python: module:Class}``;
Flink ``KeyedProcessFunction``; docs/process-functions.md).

:class:`ProcessNode` instantiates the user's class once per task and calls its ``process(value,
ctx)`` per record and ``on_timer(timestamp, ctx)`` per firing timer, with a
:class:`~kstream.api.Context` giving the key, the time, declared state
(:mod:`kstream.operators.process_state`, kept in the node's default store, bound in
:meth:`ProcessNode.open`), timers and ``emit``. Its timers are a
:class:`~kstream.time.timers.TimerService` (namespace None) over the node's ``timers`` store
next to the state store, checkpointed with it: in memory only the earliest and those
registered since the last checkpoint when the task has local state, all of them without. The
expiry timers of its TTL states are another service, over the node's ``ttl`` store
(:mod:`kstream.operators.process_ttl`): the user's ``on_timer`` never sees them.

Errors: an exception raised by the user's code becomes a
:class:`~kstream.errors.RecordError` (stage ``expression``) that the node's error policy
handles: for a record, the executor's guard; for a timer, the ``on_bad`` handler the executor
installs (:meth:`ProcessNode.guard_timers`). A kstream error other than a RecordError
(undeclared state or port) is a programming error and fails the task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kstream.api import (
    EVENT_TIME,
    PROCESSING_TIME,
    Context,
    ProcessFunction,
    TimeDomain,
    TimerService,
)
from kstream.errors import ExpressionError, KStreamError, RecordError, UsageError
from kstream.expr.udf import load_python_callable
from kstream.graph.plan import TIMERS_STORE, TTL_STORE
from kstream.keys import hashable
from kstream.operators.base import Changes, Operator, OperatorContext, Receiver
from kstream.operators.process_codec import STATE_CODEC
from kstream.operators.process_dedup import Dedup
from kstream.operators.process_state import KeyedStateBackend
from kstream.operators.process_top_n import TopN
from kstream.operators.stateless import search_paths
from kstream.pipeline.spec import PipelineSpec, ProcessSpec
from kstream.time import timers as internal
from kstream.time.valve import MIN_WATERMARK

#: Handles a timer's failure: ``(error, key, timer description)``.
TimerErrorHandler = Callable[[RecordError, Any, Any], None]


def _built_in(op: ProcessSpec) -> ProcessFunction | None:
    """The built-in function of a ``dedup`` or ``top_n`` item, else None."""
    if op.dedup_within_ms is not None:
        return Dedup(op.dedup_within_ms)
    if op.top_n is not None:
        return TopN(op.top_n, op.id, keep_alive=bool(op.ttl))
    return None


def load_process_function(op: ProcessSpec, spec: PipelineSpec) -> Any:
    """A new instance of ``op.python`` (a class, or a factory returning the function).

    Raises:
        ExpressionError: it cannot be imported, or has no ``process`` method.
    """
    factory = load_python_callable(op.python, search_paths=search_paths(spec))
    try:
        fn = factory()
    except Exception as exc:
        raise ExpressionError(
            f"process {op.python}: creating it raised {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(getattr(fn, "process", None)):
        raise ExpressionError(f"process {op.python} has no method process(value, ctx)")
    return fn


class _Timers(TimerService):
    """The user's view of the node's timers, for the current key."""

    def __init__(self, node: ProcessNode) -> None:
        self.node = node

    def current_processing_time(self) -> int:
        return self.node.ctx.clock()

    def current_watermark(self) -> int:
        return self.node.watermark

    def register_event_time_timer(self, timestamp: int) -> None:
        self.node.timers.register_event_time(int(timestamp), self.node.context.key)

    def delete_event_time_timer(self, timestamp: int) -> None:
        self.node.timers.delete_event_time(int(timestamp), self.node.context.key)

    def register_processing_time_timer(self, timestamp: int) -> None:
        self.node.timers.register_processing_time(int(timestamp), self.node.context.key)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        self.node.timers.delete_processing_time(int(timestamp), self.node.context.key)


class _Context(Context):
    """The one context object of a node, re-pointed at each record and timer."""

    def __init__(self, node: ProcessNode) -> None:
        self.node = node
        self.key: Any = None
        self.timestamp: int | None = None
        self.time_domain: TimeDomain | None = None
        self._timers = _Timers(node)

    @property
    def watermark(self) -> int:
        return self.node.watermark

    @property
    def timers(self) -> TimerService:
        return self._timers

    def state(self, name: str) -> Any:
        return self.node.state.handle(name)

    def emit(self, value: Any, port: str = "main") -> None:
        out = self.node.emitters.get(port)
        if out is None:
            ports = ", ".join(self.node.emitters)
            raise UsageError(
                f"process '{self.node.spec.id}' has no port '{port}' (its ports: {ports}); "
                f"declare it: process: {{ports: [{port}]}}"
            )
        out(self.key, value, self.timestamp if self.timestamp is not None else MIN_WATERMARK)


class ProcessNode(Operator):
    """A keyed process function (see the module docstring).

    Args:
        op: the node's spec.
        spec: the pipeline (resolves ``python:`` next to its file).

    Raises:
        ExpressionError: the function cannot be imported or created.
    """

    timers: internal.TimerService

    def __init__(self, op: ProcessSpec, spec: PipelineSpec) -> None:
        self.spec = op
        self.fn = _built_in(op) or load_process_function(op, spec)
        self.state = KeyedStateBackend(op.id, op.state, op.ttl)
        self.state.watermark = lambda: self.watermark
        self._ttl_times = {time for _, _, time in op.ttl}
        self.timers = internal.TimerService()
        self.watermark = MIN_WATERMARK
        self.context = _Context(self)
        self.emitters: dict[str, Receiver] = {}
        self._on_timer_error: TimerErrorHandler | None = None
        self._user_timer = getattr(self.fn, "on_timer", None)

    def open(self, ctx: OperatorContext) -> None:
        super().open(ctx)
        self.state.bind(ctx.store("", STATE_CODEC), ctx.timer_backend(TTL_STORE))
        self.timers = internal.TimerService(ctx.timer_backend())
        self.state.clock = ctx.clock
        self.emitters = {p: ctx.out.emitter(p) for p in ("main", *self.spec.ports)}
        user_open = getattr(self.fn, "open", None)
        if callable(user_open):
            user_open(self.context)

    def guard_timers(self, handler: TimerErrorHandler) -> None:
        """Route a failing ``on_timer`` to ``handler`` (the node's error policy)."""
        self._on_timer_error = handler

    def process(self, port: str, key: Any, value: Any, ts: int) -> None:
        self.receiver(port)(key, value, ts)

    def receiver(self, port: str = "main") -> Receiver:
        ctx, state, user = self.context, self.state, self.fn.process
        what = f"process {self.spec.python}"

        def receive(key: Any, value: Any, ts: int) -> None:
            if isinstance(key, list | dict):  # an array key (JSON-decoded): a tuple
                key = hashable(key)
            ctx.key, ctx.timestamp, ctx.time_domain = key, ts, None
            state.current_key, state.timestamp, state.active = key, ts, True
            try:
                user(value, ctx)
            except KStreamError:
                raise
            except Exception as exc:
                raise _user_error(what, "process", exc) from exc
            finally:
                state.active = False

        return receive

    def on_timer(
        self, timestamp: int, key: Any, namespace: Any, domain: str = internal.EVENT_TIME
    ) -> None:
        """A timer of ``key`` fired: the user's ``on_timer(timestamp, ctx)``."""
        user = self._user_timer
        if user is None:
            return
        ctx, state = self.context, self.state
        key = hashable(key) if isinstance(key, list | dict) else key
        ctx.key, ctx.timestamp = key, timestamp
        ctx.time_domain = EVENT_TIME if domain == internal.EVENT_TIME else PROCESSING_TIME
        state.current_key, state.timestamp, state.active = key, timestamp, True
        try:
            user(timestamp, ctx)
        except KStreamError as exc:
            if not isinstance(exc, RecordError) or self._on_timer_error is None:
                raise
            self._on_timer_error(exc, key, {"timer": timestamp, "domain": ctx.time_domain})
        except Exception as exc:
            error = _user_error(f"process {self.spec.python}", "on_timer", exc)
            if self._on_timer_error is None:
                raise error from exc
            self._on_timer_error(error, key, {"timer": timestamp, "domain": ctx.time_domain})
        finally:
            state.active = False
            ctx.time_domain = None

    def on_watermark(self, watermark: int) -> None:
        """Event time moved: sweep the expired entries of event-time TTL states."""
        self.watermark = max(self.watermark, watermark)
        if "event" in self._ttl_times:
            self.state.sweep("event")

    def on_processing_time(self, now: int) -> None:
        """Processing time moved: sweep the expired entries of processing-time TTL states."""
        if "processing" in self._ttl_times:
            self.state.sweep("processing")

    def prepare_checkpoint(self) -> dict[str, Changes]:
        """The state store (``""``, expired TTL entries swept first), the ``timers`` store
        and the ``ttl`` store (the TTL expiry timers)."""
        for time in self._ttl_times:
            self.state.sweep(time)
        return {
            "": self.state.changes(),
            TIMERS_STORE: self.timers.changes(),
            TTL_STORE: self.state.ttl.changes(),
        }

    def restore(self, stores: Mapping[str, Iterable[tuple[bytes, bytes]]], watermark: int) -> None:
        self.watermark = watermark
        self.state.restore(stores.get("", ()), stores.get(TTL_STORE, ()))
        self.timers.restore(stores.get(TIMERS_STORE, ()))


def _user_error(what: str, method: str, exc: Exception) -> RecordError:
    return RecordError("expression", f"{what}.{method} raised {type(exc).__name__}: {exc}")
