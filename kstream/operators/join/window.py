"""The window join (Flink DataStream ``join(...).where(...).equalTo(...).window(...)``; outer
joins as Flink SQL's window join; docs/joins.md, "Window join").

Records of both sides with the same key in the same tumbling or sliding window join: when the
join's watermark reaches the window's last millisecond (``end - 1``), every left record of the
window is joined with every right record of it, in time order (left outer loop), each result
timestamped ``end - 1``::

    window [10:00, 11:00)
    left    ----L1 10:05------L2 10:40----------
    right   ---------R1 10:20-------------------
    output  at 10:59:59.999: L1+R1, L2+R1

- With ``how: left`` (``right``, ``full``) the records of that side in a window where the other
  side has none are emitted unmatched (the other side null), at ``end - 1``.
- A sliding window's record belongs to ``size / slide`` windows and joins in each.
- A record whose every window has fired (``end - 1 <= watermark``) is late: ``late`` port; one
  late for some of its windows only joins in the others.
- A record whose key is null matches nothing: an outer side emits it unmatched in each of its
  windows, an inner side drops it.

State: per key and side a :class:`~kstream.operators.join.buffer.JoinBuffer` (time buckets of
one slide), an event-time timer per (key, window) at ``end - 1``; after a window fires, the
records no later window holds (those of its first slide) leave the buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.operators.join.buffer import JOIN_CODEC, BufferKey, JoinBuffer
from kstream.operators.join.output import JoinOutput
from kstream.operators.window.assign import sliding_windows
from kstream.pipeline.spec_joins import SIDES, JoinSpec
from kstream.state.cache import KeyValueStore
from kstream.time.timers import TimerService

#: ``(key, value, timestamp_ms)`` to the join's main output.
Emit = Callable[[Any, Any, int], None]
#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
OnLate = Callable[[str, Any, Any, int, int], None]


class WindowJoin:
    """The window join of one task (see the module docstring).

    Args:
        op: the join's spec (``window``: tumbling or sliding; ``how``).
        output: builds the joined values.
        emit: receives the joined records.
        on_late: receives the late records.
    """

    def __init__(self, op: JoinSpec, output: JoinOutput, emit: Emit, on_late: OnLate) -> None:
        window = op.window
        assert window is not None and window.size_ms is not None, "a window join has a window"
        self.size = window.size_ms
        self.slide = window.slide_ms if window.type == "sliding" and window.slide_ms else self.size
        self.offset = window.offset_ms
        self.outer = {"left": op.how in ("left", "full"), "right": op.how in ("right", "full")}
        self.output, self.emit, self.on_late = output, emit, on_late
        self.bind(KeyValueStore(JOIN_CODEC), TimerService())

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None:
        """Keep the records in ``store`` and the window timers in ``timers``."""
        self.store, self.timers = store, timers
        self.buffers = {side: JoinBuffer(store, side, self.slide) for side in SIDES}

    def advance(self, watermark: int) -> None:
        """The watermark moved (after the windows' timers fired): nothing more to do."""

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        """One record of ``side`` at ``ts`` (ms) under the join's ``watermark`` (ms).

        Raises:
            RecordError: the left record is not an object (before any state changes).
        """
        if side == "left":
            self.output.joined(value, None)  # raises: the left record must be an object
        windows = sliding_windows(ts, self.size, self.slide, self.offset)
        open_windows = [w for w in windows if w[1] - 1 > watermark]
        if not open_windows:
            self.on_late(side, key, value, ts, watermark)
            return
        if key is None:
            if self.outer[side]:
                for _, end in reversed(open_windows):
                    emit_unmatched(side, key, value, end - 1, self.output, self.emit)
            return
        self.buffers[side].add(key, value, ts)
        for start, end in open_windows:
            self.timers.register_event_time(end - 1, key, start)

    def on_timer(self, at: int, key: Any, start: Any) -> None:
        """Window ``[start, at + 1)`` of ``key`` fires: its joins, then the records no later
        window holds leave the buffers."""
        left, right = self.buffers["left"], self.buffers["right"]
        lefts, rights = left.values(key, start, at), right.values(key, start, at)
        emit_window(key, lefts, rights, at, self.outer, self.output, self.emit)
        done = start + self.slide - 1  # the next window starts one slide later
        for buffer in (left, right):
            for _ in buffer.pop(key, start, done):
                pass


def emit_window(
    key: Any,
    lefts: list[Any],
    rights: list[Any],
    at: int,
    outer: dict[str, bool],
    output: JoinOutput,
    emit: Emit,
) -> None:
    """A fired window's results at ``at`` (ms): every left record with every right record (left
    outer loop); when one side is empty, the other side's records unmatched if that side is
    ``outer``.

    Raises:
        RecordError: a joined value cannot be built.
    """
    if lefts and rights:
        for lvalue in lefts:
            for rvalue in rights:
                emit(key, output.joined(lvalue, rvalue), at)
    elif lefts and outer["left"]:
        for lvalue in lefts:
            emit_unmatched("left", key, lvalue, at, output, emit)
    elif rights and outer["right"]:
        for rvalue in rights:
            emit_unmatched("right", key, rvalue, at, output, emit)


def emit_unmatched(
    side: str, key: Any, value: Any, at: int, output: JoinOutput, emit: Emit
) -> None:
    """Emit a record of an outer ``side`` without a match (the other side null) at ``at``."""
    left, right = (value, None) if side == "left" else (None, value)
    emit(key, output.joined(left, right), at)
