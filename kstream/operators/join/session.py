"""The session window join (Flink DataStream ``join(...).window(EventTimeSessionWindows.withGap
(gap))``; outer joins as for tumbling windows; docs/joins.md, "Window join").

Flink runs a window join as a co-group: the records of both sides, keyed, go into one set of
merging windows. A record at ``ts`` opens the session ``[ts, ts + gap)`` of its key, which merges
with every open session of that key it overlaps or touches (``a.start <= b.end and a.end >=
b.start``, Flink's ``TimeWindow.intersects``), whichever side opened them. When the join's
watermark reaches a session's last millisecond (``end - 1``), every left record of the session
is joined with every right record of it, in time order (left outer loop), each result
timestamped ``end - 1``; then the session's records leave the state::

    gap 10 min
    left    --L1 10:00---------------------L2 10:25-----------
    right   -------------R1 10:08-------------------R2 10:50--
    sessions [10:00, 10:35) holds L1, R1, L2;   [10:50, 11:00) holds R2
    output  at 10:34:59.999: L1+R1, L2+R1;  at 10:59:59.999: R2 alone (how: right or full)

- ``how: left`` (``right``, ``full``): the records of that side in a session where the other side
  has none are emitted unmatched (the other side null), at ``end - 1``.
- A record is late when the session it would be in after merging has fired already (``end - 1
  <= watermark``; Flink's ``isWindowLate`` of the merged window): ``late`` port. A record behind
  the watermark that merges into a session still open is not late (as in Flink).
- A record whose key is null matches nothing: an outer side emits it unmatched at once (its own
  session ``[ts, ts + gap)``), an inner side drops it.

State: per key one entry of its open sessions (``[key, "sessions"]``: ``[[start, end], ...]``,
sorted, disjoint and not touching: found by binary search); both sides' records in
:class:`~kstream.operators.join.buffer.JoinBuffer` (time buckets of one gap); an event-time
timer per session at ``end - 1`` (namespace: its start), moved when sessions merge.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from kstream.operators.join.buffer import JOIN_CODEC, BufferKey, JoinBuffer
from kstream.operators.join.output import JoinOutput
from kstream.operators.join.window import emit_unmatched, emit_window
from kstream.pipeline.spec_joins import SIDES, JoinSpec
from kstream.state.cache import KeyValueStore
from kstream.time.timers import TimerService

#: ``(key, value, timestamp_ms)`` to the join's main output.
Emit = Callable[[Any, Any, int], None]
#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
OnLate = Callable[[str, Any, Any, int, int], None]
#: The store key's second element of a key's open sessions.
SESSIONS = "sessions"


class SessionWindowJoin:
    """The session window join of one task (see the module docstring).

    Args:
        op: the join's spec (``window``: session, ``gap_ms``; ``how``).
        output: builds the joined values.
        emit: receives the joined records.
        on_late: receives the late records.
    """

    def __init__(self, op: JoinSpec, output: JoinOutput, emit: Emit, on_late: OnLate) -> None:
        window = op.window
        assert window is not None and window.gap_ms is not None, "a session join has a gap"
        self.gap = window.gap_ms
        self.outer = {"left": op.how in ("left", "full"), "right": op.how in ("right", "full")}
        self.output, self.emit, self.on_late = output, emit, on_late
        self.bind(KeyValueStore(JOIN_CODEC), TimerService())

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None:
        """Keep the sessions and records in ``store``, the session timers in ``timers``."""
        self.store, self.timers = store, timers
        self.buffers = {side: JoinBuffer(store, side, self.gap) for side in SIDES}

    def advance(self, watermark: int) -> None:
        """The watermark moved (after the sessions' timers fired): nothing more to do."""

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        """One record of ``side`` at ``ts`` (ms) under the join's ``watermark`` (ms).

        Raises:
            RecordError: the left record is not an object (before any state changes).
        """
        if side == "left":
            self.output.joined(value, None)  # raises: the left record must be an object
        if key is None:
            if ts + self.gap - 1 <= watermark:
                self.on_late(side, key, value, ts, watermark)
            elif self.outer[side]:
                emit_unmatched(side, key, value, ts + self.gap - 1, self.output, self.emit)
            return
        sessions: list[list[int]] = self.store.get((key, SESSIONS)) or []
        start, end = ts, ts + self.gap
        # sessions are sorted by start and neither overlap nor touch, so their ends are sorted
        # too and the ones [ts, ts + gap) intersects are the run from the first ending at or
        # after ts to the last starting at or before ts + gap
        first = bisect_left(sessions, start, key=_end)
        last = bisect_right(sessions, end, lo=first, key=_start)
        merged = sessions[first:last]
        if merged:
            start, end = min(start, merged[0][0]), max(end, merged[-1][1])
        if end - 1 <= watermark:  # no open session takes it: its own would have fired
            self.on_late(side, key, value, ts, watermark)
            return
        for old_start, old_end in merged:
            self.timers.delete_event_time(old_end - 1, key, old_start)
        sessions[first:last] = [[start, end]]
        self.store.put((key, SESSIONS), sessions)
        self.buffers[side].add(key, value, ts)
        self.timers.register_event_time(end - 1, key, start)

    def on_timer(self, at: int, key: Any, start: Any) -> None:
        """Session ``[start, at + 1)`` of ``key`` fires: its joins, then its records and the
        session leave the state."""
        left, right = self.buffers["left"], self.buffers["right"]
        lefts, rights = left.values(key, start, at), right.values(key, start, at)
        emit_window(key, lefts, rights, at, self.outer, self.output, self.emit)
        for buffer in (left, right):
            for _ in buffer.pop(key, start, at):
                pass
        sessions: list[list[int]] = self.store.get((key, SESSIONS)) or []
        index = bisect_left(sessions, start, key=_start)
        if index < len(sessions) and sessions[index][0] == start:
            del sessions[index]
        if sessions:
            self.store.put((key, SESSIONS), sessions)
        else:
            self.store.delete((key, SESSIONS))


def _start(session: list[int]) -> int:
    return session[0]


def _end(session: list[int]) -> int:
    return session[1]
