"""The process-function API: what a ``process: {python: module:Class}`` node's class sees
(Flink ``KeyedProcessFunction``; docs/process-functions.md).

A process function is a class whose instances kstream creates once per task (one per partition
of the stage that runs it) with no arguments; subclassing :class:`ProcessFunction` is optional
(any class with a ``process(value, ctx)`` method works)::

    from kstream.api import Context, ProcessFunction

    class CountPerKey(ProcessFunction):
        def open(self, ctx: Context) -> None:
            self.count = ctx.state("count")          # declared in the YAML: {count: value}

        def process(self, value: dict, ctx: Context) -> None:
            n = (self.count.value() or 0) + 1
            self.count.update(n)
            ctx.emit({"key": ctx.key, "count": n})

Everything here is keyed: ``process`` and ``on_timer`` run for one key at a time (``ctx.key``),
and state handles and timers act on that key's state and timers. Times are epoch milliseconds.

State is declared in the pipeline file (``state: {name: value | list | map}``) and obtained
with :meth:`Context.state`; a handle may be taken once in ``open`` and used in every later
call: it always addresses the current key. A state declared with a time-to-live (``{kind:
value, ttl: 12h, time: event | processing}``) expires a key's entry ``ttl`` ms after its last
write (event time: the record's or timer's timestamp, against the watermark; processing time:
the wall clock); an expired entry reads as absent (a map: per map entry). Values kept in state
must be JSON-serialisable (dicts with string keys, lists, strings, numbers, booleans, None):
state is stored as JSON, checkpointed with exactly-once, restored after a crash and written to
savepoints; a value that is not raises :class:`~kstream.errors.RecordError` (stage
``serialize``) at the call that stores it, which the node's error policy handles. A value read
from state is a fresh copy: change it, then store it again (``update``/``put``) to keep the
change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, Literal

__all__ = [
    "EVENT_TIME",
    "PROCESSING_TIME",
    "Context",
    "ListState",
    "MapState",
    "ProcessFunction",
    "TimeDomain",
    "TimerService",
    "ValueState",
]

#: ``ctx.time_domain`` of a timer that fired because the watermark reached it.
EVENT_TIME: Literal["event_time"] = "event_time"
#: ``ctx.time_domain`` of a timer that fired because the processing-time clock reached it.
PROCESSING_TIME: Literal["processing_time"] = "processing_time"
TimeDomain = Literal["event_time", "processing_time"]


class ValueState(ABC):
    """One value per key (Flink ``ValueState``)."""

    @abstractmethod
    def value(self, default: Any = None) -> Any:
        """The current key's value (a copy), ``default`` when none is set."""

    @abstractmethod
    def update(self, value: Any) -> None:
        """Set the current key's value; ``None`` clears it (as Flink).

        Raises:
            RecordError: ``value`` is not JSON-serialisable (stage ``serialize``).
        """

    @abstractmethod
    def clear(self) -> None:
        """Remove the current key's value."""


class ListState(ABC):
    """A list of values per key (Flink ``ListState``), in insertion order."""

    @abstractmethod
    def get(self) -> list[Any]:
        """The current key's values (a copy; empty when none)."""

    @abstractmethod
    def add(self, value: Any) -> None:
        """Append ``value``.

        Raises:
            RecordError: ``value`` is not JSON-serialisable (stage ``serialize``).
        """

    @abstractmethod
    def add_all(self, values: Iterable[Any]) -> None:
        """Append every value of ``values`` (RecordError as :meth:`add`)."""

    @abstractmethod
    def update(self, values: Iterable[Any]) -> None:
        """Replace the list by ``values`` (RecordError as :meth:`add`)."""

    @abstractmethod
    def clear(self) -> None:
        """Remove the current key's list."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of values held for the current key."""


class MapState(ABC):
    """A map per key (Flink ``MapState``). Map keys are strings, integers, floats, booleans or
    None (JSON scalars); values are JSON-serialisable. Iteration follows insertion order."""

    @abstractmethod
    def get(self, key: Any, default: Any = None) -> Any:
        """The value at ``key`` (a copy), ``default`` when absent."""

    @abstractmethod
    def put(self, key: Any, value: Any) -> None:
        """Set the value at ``key``.

        Raises:
            RecordError: ``key`` is not a JSON scalar or ``value`` not JSON-serialisable
                (stage ``serialize``).
        """

    @abstractmethod
    def put_all(self, entries: dict[Any, Any]) -> None:
        """Set every entry of ``entries`` (RecordError as :meth:`put`)."""

    @abstractmethod
    def remove(self, key: Any) -> None:
        """Remove the entry at ``key`` (nothing when absent)."""

    @abstractmethod
    def contains(self, key: Any) -> bool:
        """Whether ``key`` has an entry."""

    @abstractmethod
    def keys(self) -> list[Any]:
        """The map's keys."""

    @abstractmethod
    def values(self) -> list[Any]:
        """The map's values (copies)."""

    @abstractmethod
    def items(self) -> Iterator[tuple[Any, Any]]:
        """``(key, value)`` pairs (values are copies)."""

    @abstractmethod
    def is_empty(self) -> bool:
        """Whether the current key's map has no entry."""

    @abstractmethod
    def clear(self) -> None:
        """Remove the current key's map."""


class TimerService(ABC):
    """Timers of the current key (Flink ``TimerService``). A key has at most one timer per
    timestamp and domain: registering it again does nothing, deleting an absent one does
    nothing. An event-time timer fires when the watermark reaches its timestamp (``timestamp <=
    watermark``; at the end of a bounded input every pending one fires), a processing-time
    timer when the processing-time clock does. Timers are checkpointed and savepointed with
    the state."""

    @abstractmethod
    def current_processing_time(self) -> int:
        """The processing-time clock, epoch ms."""

    @abstractmethod
    def current_watermark(self) -> int:
        """The node's watermark, epoch ms (``-2**63`` before the first)."""

    @abstractmethod
    def register_event_time_timer(self, timestamp: int) -> None:
        """Call ``on_timer(timestamp, ctx)`` when the watermark reaches ``timestamp`` (ms)."""

    @abstractmethod
    def delete_event_time_timer(self, timestamp: int) -> None:
        """Remove the current key's event-time timer at ``timestamp`` (ms), if any."""

    @abstractmethod
    def register_processing_time_timer(self, timestamp: int) -> None:
        """Call ``on_timer(timestamp, ctx)`` when processing time reaches ``timestamp`` (ms)."""

    @abstractmethod
    def delete_processing_time_timer(self, timestamp: int) -> None:
        """Remove the current key's processing-time timer at ``timestamp`` (ms), if any."""


class Context(ABC):
    """What ``open``, ``process`` and ``on_timer`` get.

    Attributes:
        key: the current key (the ``key_by`` key, decoded from JSON; a JSON array is a tuple);
            None in ``open``.
        timestamp: event time of the current record, or the firing timer's timestamp in
            ``on_timer``, epoch ms; None in ``open``.
        time_domain: in ``on_timer``, :data:`EVENT_TIME` or :data:`PROCESSING_TIME`; None
            elsewhere.
    """

    key: Any
    timestamp: int | None
    time_domain: TimeDomain | None

    @property
    @abstractmethod
    def watermark(self) -> int:
        """The node's current watermark, epoch ms (``-2**63`` before the first)."""

    @property
    @abstractmethod
    def timers(self) -> TimerService:
        """The current key's timers."""

    @abstractmethod
    def state(self, name: str) -> Any:
        """The handle of declared state ``name``: a :class:`ValueState`, :class:`ListState` or
        :class:`MapState` as declared (``state: {name: value | list | map}``).

        Raises:
            UsageError: no state ``name`` is declared (the task fails: fix the pipeline).
        """

    @abstractmethod
    def emit(self, value: Any, port: str = "main") -> None:
        """Send ``value`` downstream on ``port`` (``main`` or a port declared in ``ports:``),
        with the current key and :attr:`timestamp`.

        Raises:
            UsageError: ``port`` is not declared (the task fails: fix the pipeline).
        """


class ProcessFunction:
    """An optional base class of process functions: the defaults do nothing."""

    def open(self, ctx: Context) -> None:
        """Called once per task before any record (take state handles here)."""

    def process(self, value: Any, ctx: Context) -> None:
        """Handle one record ``value`` of key ``ctx.key`` at event time ``ctx.timestamp``.

        An exception other than a kstream error goes to the node's error policy
        (``on_error``) as a bad record (stage ``expression``)."""

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        """A timer of key ``ctx.key`` fired at ``timestamp`` (ms; ``ctx.time_domain`` says
        which clock). Emitted records carry ``timestamp``. Errors: as :meth:`process`."""
