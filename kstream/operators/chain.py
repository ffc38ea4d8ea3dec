"""The operator chain of one task: stateless steps, windows, and a terminal.

A chain is a list of segments; each segment is a run of stateless steps (``value -> value`` or
``None`` to drop) followed by at most one window operator or one ``flat_map`` (``value -> list of
values``). What a window or a ``flat_map`` emits continues in the next segment. Records that
leave the last segment go to the terminal (sinks, or the ``key_by`` that feeds the next
stage). Built once per task from the spec; the same code runs in ``kstream run`` and in
:mod:`kstream.testing`.

Time reaches the windows in two ways: :meth:`Chain.advance` (the task's event-time watermark)
and :meth:`Chain.on_time` (processing time, for ``trigger: {every: ...}``). In both, what a
window emits meets the downstream segments before they see the new time, as in Flink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kstream.errors import ExpressionError, RecordError
from kstream.expr.compiler import compile_expression
from kstream.expr.expression import Expression, explain_failure
from kstream.expr.udf import load_python_callable
from kstream.operators.aggregations import Aggregator
from kstream.operators.window.count import CountWindowOperator, GlobalOperator
from kstream.operators.window.operator import LateRecord, TimeWindowOperator, WindowOperator
from kstream.pipeline.spec import (
    FilterSpec,
    FlatMapSpec,
    KeyBySpec,
    MapSpec,
    OperatorSpec,
    PipelineSpec,
    WindowSpec,
)
from kstream.time.timestamps import now_ms

Step = Callable[[Any], Any]
#: A ``flat_map``: ``value -> values`` (a list, or an empty tuple to emit nothing).
Expand = Callable[[Any], list[Any] | tuple[()]]
Terminal = Callable[[Any, Any, int], None]
LateHandler = Callable[[WindowOperator, list[LateRecord]], None]


def _search_paths(spec: PipelineSpec) -> list[str]:
    return [str(Path(spec.path).resolve().parent)] if spec.path != "<string>" else ["."]


def _guarded(expr: Expression) -> Callable[[Any], Any]:
    fn = expr.fn

    def evaluate(value: Any) -> Any:
        try:
            return fn(value)
        except Exception as exc:
            raise RecordError("expression", str(explain_failure(expr, value, exc))) from exc

    return evaluate


def _user(ref: str, spec: PipelineSpec, what: str) -> Callable[[Any], Any]:
    fn = load_python_callable(ref, search_paths=_search_paths(spec))

    def call(value: Any) -> Any:
        try:
            return fn(value)
        except Exception as exc:
            raise RecordError(
                "expression", f"{what} {ref} raised {type(exc).__name__}: {exc}"
            ) from exc

    return call


def filter_step(op: FilterSpec, spec: PipelineSpec) -> Step:
    """``value -> value`` when the predicate holds, else ``None``."""
    if op.python:
        test = _user(op.python, spec, "filter")
    else:
        test = _guarded(compile_expression(op.expr or "", where=f"{op.id}.filter"))

    def step(value: Any) -> Any:
        return value if test(value) else None

    return step


def map_step(op: MapSpec, spec: PipelineSpec) -> Step:
    """Projection (``select``) then computed ``fields``; or a user function."""
    if op.python:
        return _user(op.python, spec, "map")
    select = op.select
    computed = [
        (name, _guarded(compile_expression(text, where=f"{op.id}.map.fields.{name}")))
        for name, text in op.fields
    ]

    def step(value: Any) -> Any:
        out = {k: value[k] for k in select if k in value} if select is not None else dict(value)
        for name, evaluate in computed:
            out[name] = evaluate(value)
        return out

    return step


def flat_map_step(op: FlatMapSpec, spec: PipelineSpec) -> Expand:
    """``value -> [value, ...]``: the records a ``flat_map`` emits for one input (docs/pipeline.md).

    Every output is a new dict (``explode``: a shallow copy of the input with ``op.as_field``
    set to one element; ``python``: what the function returned). The function's result is read
    completely here, so a generator that raises fails this record and nothing of it is emitted.

    Raises (per record):
        RecordError: stage ``expression``: the expression or function failed, ``explode`` gave a
            value that is neither a list nor null, or the function returned something other
            than an iterable of dicts.

    Raises:
        ExpressionError: the expression cannot be compiled or the function cannot be loaded.
    """
    if op.python:
        return _user_expand(op.python, spec)
    where = f"{op.id}.flat_map.explode"
    evaluate = _guarded(compile_expression(op.explode or "", where=where))
    name, keep_empty = op.as_field or "", op.keep_empty
    prefix = f"{where}: expression {op.explode!r}"

    def explode(value: Any) -> list[Any] | tuple[()]:
        items = evaluate(value)
        if type(items) is not list and items is not None and type(items) is not tuple:
            raise RecordError("expression", f"{prefix} gave {_shown(items)}, expected a list")
        if not items:
            return [{**value, name: None}] if keep_empty else ()
        return [{**value, name: item} for item in items]

    return explode


def _user_expand(ref: str, spec: PipelineSpec) -> Expand:
    fn = load_python_callable(ref, search_paths=_search_paths(spec))

    def expand(value: Any) -> list[Any] | tuple[()]:
        try:
            result = fn(value)
        except Exception as exc:
            raise _raised(ref, exc) from exc
        if type(result) is not list:
            result = _materialize(result, ref)
        for record in result:
            if not isinstance(record, dict):
                why = f"flat_map {ref} returned {_shown(record)} as a record, expected a dict"
                raise RecordError("expression", why)
        return result

    return expand


def _materialize(result: Any, ref: str) -> list[Any]:
    """A ``python`` flat_map's result that is not a list, as a list (a generator runs here)."""
    if isinstance(result, str | bytes | dict) or not hasattr(result, "__iter__"):
        why = (
            f"flat_map {ref} returned {_shown(result)}, expected an iterable of records (dicts); "
            "return [] to emit nothing"
        )
        raise RecordError("expression", why)
    try:
        return list(result)
    except Exception as exc:
        raise _raised(ref, exc) from exc


def _raised(ref: str, exc: Exception) -> RecordError:
    return RecordError("expression", f"flat_map {ref} raised {type(exc).__name__}: {exc}")


def _shown(value: Any) -> str:
    """A value for messages: ``null``, or its type and a short repr (``str 'x'``)."""
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def key_function(op: KeyBySpec, spec: PipelineSpec) -> Callable[[Any], Any]:
    """``value -> new key`` for a ``key_by``."""
    if op.python:
        return _user(op.python, spec, "key_by")
    return _guarded(compile_expression(op.expr or "", where=f"{op.id}.key_by"))


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
            getters.append(_guarded(compile_expression(agg.expr, where=where)))
    has_user = any(u is not None for u in users)
    aggregator = Aggregator(op.aggregations, getters, users if has_user else ())
    kind = {"count": CountWindowOperator, "global": GlobalOperator}.get(op.type, TimeWindowOperator)
    return kind(op, aggregator, clock)


def _user_aggregate(ref: str, spec: PipelineSpec) -> Any:
    factory = load_python_callable(ref, search_paths=_search_paths(spec))
    instance = factory() if isinstance(factory, type) else factory
    for method in ("initialize", "add", "merge", "result"):
        if not callable(getattr(instance, method, None)):
            raise ExpressionError(f"aggregate {ref} has no method {method}()")
    return instance


@dataclass
class Segment:
    """Stateless steps, then an optional window or ``flat_map`` (``expand``), never both."""

    steps: list[Step] = field(default_factory=list)
    window: WindowOperator | None = None
    expand: Expand | None = None


class Chain:
    """Runs records and watermarks through a task's operators.

    Args:
        segments: built by :func:`build_chain`.
        terminal: receives every record leaving the chain as ``(key, value, timestamp_ms)``.
        on_late: receives each window's dropped elements.
    """

    def __init__(self, segments: list[Segment], terminal: Terminal, on_late: LateHandler) -> None:
        self.segments = segments
        self.terminal = terminal
        self.on_late = on_late
        self.windows = [s.window for s in segments if s.window is not None]
        self.watermark = -(2**63)

    def push(self, key: Any, value: Any, ts: int, start: int = 0) -> None:
        """Run one record from segment ``start`` on, against the current watermark."""
        segments = self.segments
        for index in range(start, len(segments)):
            segment = segments[index]
            for step in segment.steps:
                value = step(value)
                if value is None:
                    return
            window = segment.window
            if window is None:
                expand = segment.expand
                if expand is None:
                    break
                for item in expand(value):
                    self.push(key, item, ts, index + 1)
                return
            results = window.process(key, value, ts, self.watermark)
            if window.late:
                self._drain_late(window)
            for k, v, t in results:
                self.push(k, v, t, index + 1)
            return
        self.terminal(key, value, ts)

    def advance(self, watermark: int) -> None:
        """Move the watermark to ``watermark``: each window fires in chain order, and its results
        meet the downstream windows before they see the new watermark (as in Flink)."""
        if watermark <= self.watermark:
            return
        for index, segment in enumerate(self.segments):
            window = segment.window
            if window is not None and window.next_timer <= watermark:
                for k, v, t in window.advance(watermark):
                    self.push(k, v, t, index + 1)
        self.watermark = watermark

    def on_time(self, now: int) -> None:
        """Processing time is ``now`` (epoch ms): run the windows' processing-time triggers in
        chain order, each window's results flowing downstream."""
        for index, segment in enumerate(self.segments):
            window = segment.window
            if window is not None and window.next_early is not None and window.next_early <= now:
                for k, v, t in window.on_processing_time(now):
                    self.push(k, v, t, index + 1)

    def _drain_late(self, window: WindowOperator) -> None:
        late = window.late
        window.late = []
        self.on_late(window, late)


def build_segments(
    operators: tuple[OperatorSpec, ...], spec: PipelineSpec, clock: Callable[[], int] = now_ms
) -> list[Segment]:
    """Segments for a stage's operators (the stage's ``key_by`` excluded); ``clock`` is the
    task's processing-time clock (epoch ms)."""
    segments = [Segment()]
    for op in operators:
        if isinstance(op, FilterSpec):
            segments[-1].steps.append(filter_step(op, spec))
        elif isinstance(op, MapSpec):
            segments[-1].steps.append(map_step(op, spec))
        elif isinstance(op, FlatMapSpec):
            segments[-1].expand = flat_map_step(op, spec)
            segments.append(Segment())
        elif isinstance(op, WindowSpec):
            segments[-1].window = build_window(op, spec, clock)
            segments.append(Segment())
        else:
            raise ExpressionError(f"operator {op.id} cannot run inside a stage")
    return segments
