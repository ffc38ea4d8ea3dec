"""The interval join (Flink DataStream ``IntervalJoinOperator``; outer joins as Flink SQL's
time-interval join; docs/joins.md, "Interval join").

A left record at ``l`` and a right record at ``r`` of the same key join when
``l + lower <= r <= l + upper`` (ms, both bounds inclusive). The output timestamp is the later
of the two::

    left      ----L(10:00)--------------------------------
    right     -------------R(09:40)-----R(10:20)-----R(10:40)
    between: [-30m, 30m]   L joins R(09:40) and R(10:20), not R(10:40)

- Each record is buffered in its side's state (its key's entry) and joined with the other
  side's buffered records in range, in time order, when it arrives.
- A record with ``ts < watermark`` (the join's watermark, the min of both inputs) is late: it
  goes to the ``late`` port and joins nothing (Flink ``isLate``).
- A left record can match no more once the watermark reaches ``l + upper`` (``l`` when
  ``upper <= 0``), a right one at ``r - lower`` (``r`` when ``lower >= 0``): an event-time
  timer there removes it from the buffer, first emitting it unmatched (the other side null,
  timestamp its own) when its side is outer (``how: left | right | full``) and it never
  joined. At the end of input every buffered record is so released.
- A record whose key is null matches nothing (SQL: null = null is not true): an outer side
  emits it unmatched at once, an inner side drops it.

State: per key and side a :class:`~kstream.operators.join.buffer.JoinBuffer` (an index of the
buffered records' times and one entry per record; arrival order within a timestamp); timers:
namespace ``"left"``/``"right"`` at the cleanup time.

``state_ttl`` (inner joins; the state TTL of Flink SQL's regular join, which kstream's SQL
compiles to an interval join of unbounded width, ``JoinRecordStateView`` under
``table.exec.state.ttl``): a record is stamped with the processing time it is buffered at and
expires ``state_ttl`` ms later: from then on it matches nothing (Flink's
``NeverReturnExpired``) and the processing-time sweep removes it from the buffer
(:mod:`kstream.operators.idle_ttl`; namespace ``[side, ts, n]`` in the node's ``ttl`` store).
A buffered record is never rewritten, so its life is counted from its arrival.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kstream.keys import hashable
from kstream.operators.idle_ttl import IdleTtl
from kstream.operators.join.buffer import JOIN_CODEC, BufferKey, Found, JoinBuffer, Row
from kstream.operators.join.output import JoinOutput
from kstream.pipeline.spec_joins import JoinSpec
from kstream.state.cache import KeyValueStore
from kstream.time.timers import TimerService
from kstream.time.watermarks import MIN_WATERMARK

#: ``(key, value, timestamp_ms)`` to the join's main output.
Emit = Callable[[Any, Any, int], None]
#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
OnLate = Callable[[str, Any, Any, int, int], None]
OTHER = {"left": "right", "right": "left"}


class IntervalJoin:
    """The interval join of one task (see the module docstring).

    Args:
        op: the join's spec (``lower_ms``, ``upper_ms``, ``how``).
        output: builds the joined values.
        emit: receives the joined records.
        on_late: receives the late records.
    """

    def __init__(self, op: JoinSpec, output: JoinOutput, emit: Emit, on_late: OnLate) -> None:
        self.lower, self.upper = op.lower_ms, op.upper_ms
        self.outer = {"left": op.how in ("left", "full"), "right": op.how in ("right", "full")}
        self.output, self.emit, self.on_late = output, emit, on_late
        #: the expiry index under ``state_ttl`` (None without); ``clock``: processing time, ms
        self.ttl = IdleTtl(op.state_ttl_ms) if op.state_ttl_ms else None
        self.clock: Callable[[], int] = lambda: 0
        self.bind(KeyValueStore(JOIN_CODEC), TimerService())

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None:
        """Keep the buffers in ``store`` and the cleanup timers in ``timers``."""
        self.store, self.timers = store, timers
        width = self.upper - self.lower  # a lookup spans one or two buckets
        self.buffers = {side: JoinBuffer(store, side, width) for side in OTHER}

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        """One record of ``side`` at ``ts`` (ms) under the join's ``watermark`` (ms).

        Raises:
            RecordError: the joined value cannot be built (before any state changes).
        """
        if watermark > MIN_WATERMARK and ts < watermark:
            self.on_late(side, key, value, ts, watermark)
            return
        if side == "left" and not isinstance(value, dict):
            self.output.joined(value, None)  # raises: the left record must be an object
        if key is None:
            if self.outer[side]:
                self._unmatched(side, key, value, ts)
            return
        other = self.buffers[OTHER[side]]
        if side == "left":
            lo, hi = ts + self.lower, ts + self.upper
        else:
            lo, hi = ts - self.upper, ts - self.lower
        found = other.between(key, lo, hi)
        now = self.clock() if self.ttl is not None else None
        if now is not None:
            found = self._live(found, now)
        joins = [
            self._joined(side, value, ts, row[0], other.value(key, row))
            for _, _, rows in found
            for row in rows
        ]
        n = self.buffers[side].add(key, value, ts, joined=bool(found), stamp=now)
        if self.ttl is not None and now is not None:
            self.ttl.touch(key, (side, ts, n), None, now)
        if self.outer[other.side]:
            other.mark_joined(key, found)
        self.timers.register_event_time(self._cleanup(side, ts), key, side)
        for joined, at in joins:
            self.emit(key, joined, at)

    def _live(self, found: Found, now: int) -> Found:
        """``found`` without the records expired at ``now`` (``state_ttl``)."""
        assert self.ttl is not None
        expired, out = self.ttl.expired, []
        for bucket, index, rows in found:
            live = [row for row in rows if not expired(_stamp(row), now)]
            if live:
                out.append((bucket, index, live))
        return out

    def sweep(self, now: int) -> int:
        """Remove the records expired at ``now`` (processing time, ms; ``state_ttl``) from
        the buffers; returns how many."""
        if self.ttl is None:
            return 0
        ttl, removed = self.ttl, 0

        def expire(expiry: int, key: Any, namespace: Any) -> None:
            nonlocal removed
            side, ts, n = namespace
            key, buffer = hashable(key), self.buffers[side]
            row = buffer.row(key, ts, n)
            if row is not None and ttl.is_due(_stamp(row), expiry):
                buffer.remove(key, ts, n)
                removed += 1

        ttl.sweep(now, expire)
        return removed

    def _joined(self, side: str, value: Any, ts: int, other_ts: int, other: Any) -> tuple[Any, int]:
        """The joined value of a ``side`` record at ``ts`` with a buffered record of the other
        side, and its timestamp (the later of the two)."""
        left, right = (value, other) if side == "left" else (other, value)
        return self.output.joined(left, right), max(ts, other_ts)

    def _cleanup(self, side: str, ts: int) -> int:
        """When a ``side`` record at ``ts`` can match nothing more (Flink's cleanup time)."""
        if side == "left":
            return ts + self.upper if self.upper > 0 else ts
        return ts - self.lower if self.lower < 0 else ts

    def advance(self, watermark: int) -> None:
        """The watermark moved (after the cleanup timers fired): nothing more to do."""

    def on_timer(self, at: int, key: Any, side: str) -> None:
        """The cleanup timer of ``side`` at ``at`` (ms) for ``key``: its records whose cleanup
        time is ``at`` leave the buffer; unmatched ones of an outer side are emitted."""
        if side == "left":
            ts = at - self.upper if self.upper > 0 else at
        else:
            ts = at + self.lower if self.lower < 0 else at
        for row, value in self.buffers[side].pop(key, ts):
            if self.ttl is not None:
                self.ttl.forget(key, (side, row[0], row[1]), _stamp(row))
            if self.outer[side] and not row[2]:
                self._unmatched(side, key, value, ts)

    def _unmatched(self, side: str, key: Any, value: Any, ts: int) -> None:
        """Emit a record of an outer side without a match (the other side null)."""
        left, right = (value, None) if side == "left" else (None, value)
        self.emit(key, self.output.joined(left, right), ts)

    def restore_ttl(self, entries: Iterable[tuple[bytes, bytes]], now: int) -> None:
        """Start the expiry index from the ``ttl`` store's ``entries``, after the buffers'
        restore; when it was built under another ttl (or none), re-index every buffered
        record, one without a stamp stamped at ``now`` (ms)."""
        if self.ttl is None or self.ttl.restore(entries):
            return
        for skey, index in self.store.items():
            if len(skey) != 3:
                continue  # a record, not an index
            key, side, _bucket = skey
            for row in index[1]:
                if len(row) < 4:
                    row.append(now)
                self.ttl.index(key, (side, row[0], row[1]), row[3])
            self.store.put(skey, index)

    def buffered(self) -> int:
        """Number of store entries held (indexes and records; status, tests)."""
        return len(self.store)


def _stamp(row: Row) -> int | None:
    """The processing time (ms) a buffered record's index ``row`` was stamped at, if any."""
    return int(row[3]) if len(row) > 3 else None
