"""The timer service of an operator: event-time and processing-time timers per key and
namespace, deduplicated, checkpointed with the operator's state (DESIGN.md section 4).

Semantics follow Flink's ``InternalTimerService``:

- a timer is ``(timestamp_ms, key, namespace)`` in one of two domains, event time or
  processing time; registering a timer that exists does nothing (one timer per key, namespace
  and timestamp), deleting one that does not exist does nothing;
- an event-time timer fires when the watermark reaches its timestamp (``timestamp <=
  watermark``), a processing-time timer when the clock does; timers fire in timestamp order, and
  timers with the same timestamp in the order they were registered;
- a timer fires once: it is removed as it fires, before the operator handles it, so the
  operator may register a timer for the same time again (it fires in the same pass when due).

Windows use a namespace per window (``(start, end)``), keyed process functions the empty
namespace ``None``. The key and namespace are any JSON-encodable, hashable values (tuples stand
for JSON arrays).

Persistence: :meth:`TimerService.changes` returns the timers registered or removed since the
last checkpoint as store entries, each changed timer once; a timer registered and removed
between two checkpoints never reaches the store. Store key: the domain (``e`` or ``p``), the
timestamp as 8 big-endian bytes biased by 2**63 (so negative times sort first and a store scan
walks timers in time order), then the JSON array ``[key, namespace]``. Value: ``b"\\x01"``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from kstream.keys import hashable

EVENT_TIME = "e"
PROCESSING_TIME = "p"
#: ``next_event_time`` when no event-time timer is registered: no watermark reaches it.
NEVER = 2**63
_BIAS = 2**63
_PRESENT = b"\x01"

#: ``(timestamp_ms, key, namespace)``.
Timer = tuple[int, Any, Any]


def encode_timer(domain: str, timer: Timer) -> bytes:
    """The store key of ``timer`` in ``domain`` (:data:`EVENT_TIME` or
    :data:`PROCESSING_TIME`); see the module docstring."""
    ts, key, namespace = timer
    return domain.encode() + (ts + _BIAS).to_bytes(8, "big") + orjson.dumps([key, namespace])


def decode_timer(raw: bytes) -> tuple[str, Timer]:
    """Inverse of :func:`encode_timer`: ``(domain, (timestamp_ms, key, namespace))`` with JSON
    arrays back as tuples.

    Raises:
        ValueError: ``raw`` is not a timer's store key.
    """
    domain = raw[:1].decode()
    if domain not in (EVENT_TIME, PROCESSING_TIME) or len(raw) < 10:
        raise ValueError(f"not a timer key: {raw[:16]!r}")
    ts = int.from_bytes(raw[1:9], "big") - _BIAS
    key, namespace = orjson.loads(raw[9:])
    return domain, (ts, hashable(key), hashable(namespace))


class _TimerQueue:
    """The timers of one domain: a bucket per timestamp (registration order kept) and a heap of
    the timestamps. Removal empties a bucket; its heap entry is skipped lazily."""

    def __init__(self) -> None:
        self.buckets: dict[int, dict[tuple[Any, Any], None]] = {}
        self.heap: list[int] = []

    def add(self, ts: int, key: Any, namespace: Any) -> bool:
        bucket = self.buckets.get(ts)
        if bucket is None:
            self.buckets[ts] = {(key, namespace): None}
            heapq.heappush(self.heap, ts)
            return True
        if (key, namespace) in bucket:
            return False
        bucket[(key, namespace)] = None
        return True

    def remove(self, ts: int, key: Any, namespace: Any) -> bool:
        bucket = self.buckets.get(ts)
        if bucket is None or (key, namespace) not in bucket:
            return False
        del bucket[(key, namespace)]
        if not bucket:
            del self.buckets[ts]
        return True

    def next(self) -> int | None:
        heap, buckets = self.heap, self.buckets
        while heap and heap[0] not in buckets:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def pop_due(self, limit: int) -> Iterator[Timer]:
        """Remove and yield every timer with ``timestamp <= limit``, in order; timers added
        while iterating are yielded too when due."""
        while True:
            ts = self.next()
            if ts is None or ts > limit:
                return
            bucket = self.buckets[ts]
            key, namespace = next(iter(bucket))
            del bucket[(key, namespace)]
            if not bucket:
                del self.buckets[ts]
            yield ts, key, namespace

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    def __iter__(self) -> Iterator[Timer]:
        for ts in sorted(self.buckets):
            for key, namespace in self.buckets[ts]:
                yield ts, key, namespace


class TimerService:
    """Event-time and processing-time timers of one operator in one task (see the module
    docstring for the semantics and the store format).

    Attributes:
        next_event_time: the earliest event-time timer (epoch ms), :data:`NEVER` when none.
    """

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._queues = {EVENT_TIME: _TimerQueue(), PROCESSING_TIME: _TimerQueue()}
        self._event = self._queues[EVENT_TIME]
        #: ``(domain, timer) -> registered`` for timers changed since the last checkpoint
        self._changed: dict[tuple[str, Timer], bool] = {}
        #: timers present in the store (RocksDB and changelog)
        self._persisted: set[tuple[str, Timer]] = set()
        self.next_event_time = NEVER

    # -- registration -------------------------------------------------------------------------

    def register_event_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Fire at watermark ``ts`` (epoch ms) for ``key`` and ``namespace``; a duplicate
        registration is ignored."""
        if self._event.add(ts, key, namespace):
            self._changed[(EVENT_TIME, (ts, key, namespace))] = True
            if ts < self.next_event_time:
                self.next_event_time = ts

    def delete_event_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Remove the event-time timer at ``ts`` (epoch ms), if registered."""
        if self._event.remove(ts, key, namespace):
            self._removed(EVENT_TIME, (ts, key, namespace))
            self.next_event_time = self._next_event()

    def register_processing_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Fire when the processing-time clock reaches ``ts`` (epoch ms)."""
        if self._queues[PROCESSING_TIME].add(ts, key, namespace):
            self._changed[(PROCESSING_TIME, (ts, key, namespace))] = True

    def delete_processing_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Remove the processing-time timer at ``ts`` (epoch ms), if registered."""
        if self._queues[PROCESSING_TIME].remove(ts, key, namespace):
            self._removed(PROCESSING_TIME, (ts, key, namespace))

    @property
    def next_processing_time(self) -> int | None:
        """The earliest processing-time timer (epoch ms), None when none."""
        return self._queues[PROCESSING_TIME].next()

    # -- firing -------------------------------------------------------------------------------

    def due_event_time(self, watermark: int) -> Iterator[Timer]:
        """Remove and yield every event-time timer with ``timestamp <= watermark``, in
        timestamp order; a timer registered meanwhile at or before ``watermark`` is yielded in
        the same pass."""
        for timer in self._event.pop_due(watermark):
            self._removed(EVENT_TIME, timer)
            yield timer
        self.next_event_time = self._next_event()

    def due_processing_time(self, now: int) -> Iterator[Timer]:
        """Remove and yield every processing-time timer with ``timestamp <= now``, in order."""
        for timer in self._queues[PROCESSING_TIME].pop_due(now):
            self._removed(PROCESSING_TIME, timer)
            yield timer

    def event_timers(self) -> Iterator[Timer]:
        """Every registered event-time timer, in timestamp order (tools and tests)."""
        return iter(self._event)

    def processing_timers(self) -> Iterator[Timer]:
        """Every registered processing-time timer, in timestamp order (tools and tests)."""
        return iter(self._queues[PROCESSING_TIME])

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    # -- state --------------------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """The timers registered or removed since the last call, each once, as store entries
        ``(key, b"\\x01" or None = deleted)``. Clears the change set."""
        out: list[tuple[bytes, bytes | None]] = []
        persisted = self._persisted
        for entry, registered in self._changed.items():
            if registered:
                persisted.add(entry)
                out.append((encode_timer(*entry), _PRESENT))
            elif entry in persisted:
                persisted.discard(entry)
                out.append((encode_timer(*entry), None))
        self._changed.clear()
        return out

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> int:
        """Replace every timer by the stored ``entries`` (from :meth:`changes`); returns how
        many were restored.

        Raises:
            ValueError: an entry is not a timer.
        """
        self._clear()
        for raw, _value in entries:
            domain, timer = decode_timer(raw)
            self._queues[domain].add(*timer)
            self._persisted.add((domain, timer))
        self.next_event_time = self._next_event()
        return len(self._persisted)

    def _removed(self, domain: str, timer: Timer) -> None:
        entry = (domain, timer)
        if entry in self._persisted:
            self._changed[entry] = False
        else:
            self._changed.pop(entry, None)

    def _next_event(self) -> int:
        ts = self._event.next()
        return NEVER if ts is None else ts
