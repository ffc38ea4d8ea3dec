"""The timer service of an operator: event-time and processing-time timers per key and
namespace, deduplicated, checkpointed with the operator's state (DESIGN.md section 4).

Semantics follow Flink's ``InternalTimerService``:

- a timer is ``(timestamp_ms, key, namespace)`` in one of two domains, event time or
  processing time; registering a timer that exists does nothing (one timer per key, namespace
  and timestamp), deleting one that does not exist does nothing;
- an event-time timer fires when the watermark reaches its timestamp (``timestamp <=
  watermark``), a processing-time timer when the clock does; timers fire in timestamp order;
  within a timestamp, in memory in the order they were registered, over a store (below) in
  the store's key order for the timers read from it (key and namespace JSON bytes, as Flink's
  RocksDB timer service), registration order for the others;
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

Memory: without a backend (the broker-free driver, unit tests) every timer is in memory (about
150 bytes each). With one (the node's ``timers`` column family, committed state only) each
domain keeps in memory the earliest timers, read from the store ``head`` at a time, plus
those registered since the last checkpoint (:mod:`kstream.time.stored_timers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from kstream.time.stored_timers import HEAD_TIMERS, StoredTimerQueue
from kstream.time.timer_queue import (
    EVENT_TIME,
    NEVER,
    PROCESSING_TIME,
    OnTimer,
    Timer,
    TimerQueue,
    decode_timer,
    encode_timer,
)

if TYPE_CHECKING:  # the state layer sits above time: its protocol only, for the types
    from kstream.state.cache import Backend

__all__ = [
    "EVENT_TIME",
    "HEAD_TIMERS",
    "NEVER",
    "PROCESSING_TIME",
    "OnTimer",
    "Timer",
    "TimerService",
    "decode_timer",
    "encode_timer",
]

_EVENT, _PROCESSING = EVENT_TIME.encode(), PROCESSING_TIME.encode()


class TimerService:
    """Event-time and processing-time timers of one operator in one task (see the module
    docstring for the semantics and the store format).

    Args:
        backend: the node's ``timers`` store (committed state; None: every timer in memory).
        head: with a backend, timers read from it at a time per domain (the memory bound;
            None: :data:`HEAD_TIMERS`).

    Attributes:
        next_event_time: the earliest event-time timer (epoch ms), :data:`NEVER` when none.
    """

    def __init__(self, backend: Backend | None = None, head: int | None = None) -> None:
        self.backend = backend
        self.head = HEAD_TIMERS if head is None else head
        self._clear()

    def _clear(self) -> None:
        """No timer in memory; with a backend, each domain's head read from it."""
        self._event = self._queue(_EVENT)
        self._processing = self._queue(_PROCESSING)
        self.next_event_time = self._next_event()
        #: timers fired so far, both domains (metrics: ``kstream_node_timers_fired_total``)
        self.fired = 0

    def _queue(self, domain: bytes) -> TimerQueue:
        if self.backend is None:
            return TimerQueue()
        return StoredTimerQueue(domain, self.backend, self.head)

    # -- registration -------------------------------------------------------------------------

    def register_event_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Fire at watermark ``ts`` (epoch ms) for ``key`` and ``namespace``; a duplicate
        registration is ignored."""
        if self._event.add((ts, key, namespace)) and ts < self.next_event_time:
            self.next_event_time = ts

    def has_event_time(self, ts: int, key: Any, namespace: Any = None) -> bool:
        """Whether the event-time timer at ``ts`` (epoch ms) for ``key`` and ``namespace`` is
        registered (operators use it as an index of what exists): a dict lookup, or with a
        backend for a timer beyond the head a RocksDB point read (bloom filter first)."""
        return self._event.contains((ts, key, namespace))

    def delete_event_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Remove the event-time timer at ``ts`` (epoch ms), if registered."""
        if self._event.remove((ts, key, namespace)):
            self.next_event_time = self._next_event()

    def register_processing_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Fire when the processing-time clock reaches ``ts`` (epoch ms)."""
        self._processing.add((ts, key, namespace))

    def delete_processing_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Remove the processing-time timer at ``ts`` (epoch ms), if registered."""
        self._processing.remove((ts, key, namespace))

    @property
    def next_processing_time(self) -> int | None:
        """The earliest processing-time timer (epoch ms), None when none."""
        return self._processing.next()

    # -- firing -------------------------------------------------------------------------------

    def advance_event_time(self, watermark: int, on_timer: OnTimer, most: int | None = None) -> int:
        """The watermark reached ``watermark`` (epoch ms): remove every event-time timer with
        ``timestamp <= watermark`` and call ``on_timer(timestamp, key, namespace)`` for each,
        in timestamp order (then as the module docstring says; Flink
        ``InternalTimerServiceImpl.advanceWatermark``). A timer registered by ``on_timer`` at
        or before ``watermark`` fires in the same pass; one deleted by it does not. ``most``
        bounds the timers fired by this call (the end of input fires in slices: the rest stay
        due, ``next_event_time <= watermark``). Returns how many fired."""
        fired = self._event.fire_due(watermark, on_timer, most)
        self.next_event_time = self._next_event()
        self.fired += fired
        return fired

    def advance_processing_time(self, now: int, on_timer: OnTimer) -> int:
        """The processing-time clock reached ``now`` (epoch ms): as
        :meth:`advance_event_time` for the processing-time timers."""
        fired = self._processing.fire_due(now, on_timer)
        self.fired += fired
        return fired

    def event_timers(self) -> Iterator[Timer]:
        """Every registered event-time timer, in timestamp order (tools and tests)."""
        return iter(self._event)

    def processing_timers(self) -> Iterator[Timer]:
        """Every registered processing-time timer, in timestamp order (tools and tests)."""
        return iter(self._processing)

    def __len__(self) -> int:
        """Every timer (with a backend: a scan of the store beyond the heads)."""
        return len(self._event) + len(self._processing)

    def in_memory(self) -> int:
        """Timers held in memory (without a backend: every timer)."""
        return self._event.in_memory() + self._processing.in_memory()

    # -- state --------------------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """The timers registered or removed since the last call, each once, as store entries
        ``(key, b"\\x01" or None = deleted)``. Clears the change set."""
        return [*self._event.changes(_EVENT), *self._processing.changes(_PROCESSING)]

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> int:
        """Replace every timer by the stored ``entries`` (from :meth:`changes`); returns how
        many were restored. With a backend (which holds them) ``entries`` is not read: each
        domain's head is read from the backend again, and the count is the heads' (nonzero
        exactly when the store holds a timer).

        Raises:
            ValueError: an entry is not a timer.
        """
        self._clear()
        if self.backend is not None:
            return self.in_memory()
        queues = {EVENT_TIME: self._event, PROCESSING_TIME: self._processing}
        for raw, _value in entries:
            domain, timer = decode_timer(raw)
            queues[domain].load(timer)
        self.next_event_time = self._next_event()
        return len(self)

    def _next_event(self) -> int:
        ts = self._event.next()
        return NEVER if ts is None else ts
