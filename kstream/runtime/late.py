"""Records late for a window or a join: counted, told to the test driver's listener, written to
a window's ``late_topic`` and sent to the readers of the node's ``late`` port, each with
``kstream.late.*`` headers saying why (docs/time-and-windows.md, docs/joins.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kstream.errors import RecordError
from kstream.io import codecs
from kstream.operators.base import Output, Receiver
from kstream.operators.window.base import LateRecord, WindowOperator
from kstream.pipeline.spec import JoinSpec, PipelineSpec, PortRef, WindowSpec
from kstream.runtime.node_stats import NodeStats
from kstream.runtime.policy import BadRecordFailure, Policy

if TYPE_CHECKING:
    from kstream.runtime.executor import TaskHooks

#: The readers of a port, looked up when a late record comes (the graph is wired by then).
ReadersOf = Callable[[PortRef], list[Receiver]]


def late_headers(window_id: str, start: int, end: int, watermark: int) -> list[tuple[str, bytes]]:
    """The headers of a late element: the window that dropped it, the window's bounds and the
    watermark then (epoch ms)."""
    return [
        ("kstream.late.operator", window_id.encode()),
        ("kstream.late.window_start", str(start).encode()),
        ("kstream.late.window_end", str(end).encode()),
        ("kstream.late.watermark", str(watermark).encode()),
    ]


def join_late_headers(join_id: str, side: str, watermark: int) -> list[tuple[str, bytes]]:
    """The headers of a record late for join ``join_id``: the join, the side it came in on
    (``left``/``right``) and the join's watermark (ms) when it arrived."""
    return [
        ("kstream.late.join", join_id.encode()),
        ("kstream.late.side", side.encode()),
        ("kstream.late.watermark", str(watermark).encode()),
    ]


def window_late_handler(
    hooks: TaskHooks,
    spec: PipelineSpec,
    op: WindowSpec,
    policy: Policy,
    derived: bool,
    readers_of: ReadersOf,
    stats: NodeStats,
) -> Callable[[WindowOperator, list[LateRecord]], None]:
    """Counts a window's late elements (the task's ``late`` and the node's ``stats.late``),
    tells the listener, writes ``late_topic`` (a failing
    write: ``policy``, ``derived`` when the window is fed by another) and sends them, with
    their headers, to the readers of ``<window>.late``."""
    topic = op.late_topic
    encode_key = codecs.encoder("string")
    encode_value = codecs.late_encoder(spec, op, topic) if topic else None
    ref = PortRef(op.id, "late")

    def on_late(window: WindowOperator, late: list[LateRecord]) -> None:
        hooks.counters["late"] += len(late)
        stats.late += len(late)
        if hooks.late_listener is not None:
            hooks.late_listener(window, late)
        readers = Output({"late": readers_of(ref)}).emitter("late")
        for key, value, ts, start, end, wm in late:
            headers = late_headers(op.id, start, end, wm)
            if topic is not None and encode_value is not None:
                try:
                    hooks.emit(topic, encode_key(key), encode_value(value), ts, headers, None)
                except BadRecordFailure:
                    raise
                except RecordError as exc:
                    hooks.on_bad(exc, policy, derived, key, value)
            _send(hooks, readers, headers, key, value, ts)

    return on_late


def join_late_handler(
    hooks: TaskHooks, op: JoinSpec, readers_of: ReadersOf, stats: NodeStats
) -> Callable[[str, Any, Any, int, int], None]:
    """Counts a join's late records (the task's ``late`` and the node's ``stats.late``) and
    sends them, with their headers, to the readers of
    ``<join>.late``."""
    ref = PortRef(op.id, "late")

    def on_late(side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        hooks.counters["late"] += 1
        stats.late += 1
        readers = Output({"late": readers_of(ref)}).emitter("late")
        _send(hooks, readers, join_late_headers(op.id, side, watermark), key, value, ts)

    return on_late


def _send(
    hooks: TaskHooks,
    readers: Receiver,
    headers: list[tuple[str, bytes]],
    key: Any,
    value: Any,
    ts: int,
) -> None:
    """Send one late record to ``readers`` with ``headers`` as its record context."""
    hooks.record.headers = headers
    try:
        readers(key, value, ts)
    finally:
        hooks.record.headers = None
