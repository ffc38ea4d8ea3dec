"""The operator interface (DESIGN.md section 4; Flink ``StreamOperator``, Kafka Streams
``Processor``).

An operator is pure: it gets its output ports and a processing-time clock from its
:class:`OperatorContext`, receives records on named input ports, and emits through
``ctx.out``; it never imports Kafka, RocksDB or the CLI. A record is ``(key, value,
timestamp_ms)``: the key (any JSON value, None when unkeyed), the value (a dict for structured
formats) and its event time in epoch milliseconds. The runtime's node executor
(:mod:`kstream.runtime.executor`) wires operators into a task's graph and applies the error
policies around every node, so operators simply raise :class:`~kstream.errors.RecordError` for
a record they cannot handle.

Lifecycle: ``open(ctx)`` once; then ``process`` per record and ``on_timer`` / ``on_watermark`` /
``on_processing_time`` as time advances, in any interleaving; ``prepare_checkpoint`` at each
checkpoint; ``restore`` before the first record when the task resumes; ``close`` at the end.

Difference from the design's ``process(port, record, out)``: the output is handed over once, in
``open`` (``ctx.out``), and records arrive through :meth:`Operator.receiver` callables, which
keeps the per-record path to one call per node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kstream.graph.plan import TIMERS_STORE, store_name
from kstream.state.cache import Backend, Codec, KeyValueStore, StoreProvider, TableLookup
from kstream.time.timers import TimerService

K = TypeVar("K")
V = TypeVar("V")

#: Receives one record: ``(key, value, timestamp_ms)``.
Receiver = Callable[[Any, Any, int], None]
#: Changed entries of one store since the last checkpoint: ``(key, value or None = deleted)``.
Changes = list[tuple[bytes, bytes | None]]


def _drop(key: Any, value: Any, ts: int) -> None:
    """A port nobody reads."""


class Output:
    """An operator's output ports: each port name maps to the receivers reading it.

    Args:
        ports: port name -> receivers (a port absent or without receivers drops its records).
    """

    def __init__(self, ports: Mapping[str, list[Receiver]]) -> None:
        self._ports = {name: list(receivers) for name, receivers in ports.items()}

    def emit(self, key: Any, value: Any, ts: int, port: str = "main") -> None:
        """Send one record (event time ``ts`` in epoch ms) to every reader of ``port``."""
        for receiver in self._ports.get(port, ()):
            receiver(key, value, ts)

    def emitter(self, port: str = "main") -> Receiver:
        """The fastest callable sending to ``port``: a no-op without readers, the reader itself
        when there is one, a fan-out otherwise. Bind it in ``open``, not per record."""
        receivers = self._ports.get(port, [])
        if not receivers:
            return _drop
        if len(receivers) == 1:
            return receivers[0]

        def fan_out(key: Any, value: Any, ts: int) -> None:
            for receiver in receivers:
                receiver(key, value, ts)

        return fan_out

    def has_readers(self, port: str) -> bool:
        """Whether anything reads ``port``."""
        return bool(self._ports.get(port))


@dataclass
class OperatorContext:
    """What an operator gets at ``open``.

    Attributes:
        node_id: the node's id (names its stores).
        out: its output ports.
        clock: processing time, epoch ms.
        stores: the task's state stores (default: in memory, for tests and the driver).
    """

    node_id: str
    out: Output
    clock: Callable[[], int]
    stores: StoreProvider = field(default_factory=StoreProvider)

    def store(self, name: str, codec: Codec[K, V]) -> KeyValueStore[K, V]:
        """The node's state store ``name`` (``""``: its default store), column family
        ``op.<node-id>[.<name>]``: RocksDB behind a bounded cache when the task has local
        state (:mod:`kstream.state.cache`), else in memory."""
        return self.stores.store(store_name(self.node_id, name), codec)

    def broadcast_table(self, source_id: str) -> TableLookup:
        """The broadcast table of source ``source_id``: the process's copy of every partition
        of its topic, shared by the tasks (:mod:`kstream.runtime.broadcast`).

        Raises:
            StateError: the process holds no such table.
        """
        return self.stores.table(source_id)

    def timer_backend(self, store: str = TIMERS_STORE) -> Backend | None:
        """The node's timer store ``store`` (``timers``; a process function's TTL timers:
        ``ttl``) as raw committed entries (column family ``op.<node-id>.<store>``) for a
        :class:`~kstream.time.timers.TimerService`; None without local state (every timer in
        memory)."""
        return self.stores.backend(store_name(self.node_id, store))


class Operator:
    """Base class of every operator; the defaults do nothing."""

    #: the operator's timers (:class:`~kstream.time.timers.TimerService`), None without any:
    #: the runtime fires the due ones through :meth:`on_timer`
    timers: TimerService | None = None

    def open(self, ctx: OperatorContext) -> None:
        """Bind the context (called once, before any record)."""
        self.ctx = ctx

    def process(self, port: str, key: Any, value: Any, ts: int) -> None:
        """Handle one record arriving on input ``port`` (``main`` for one-input operators).

        Raises:
            RecordError: the record cannot be handled (the node's error policy decides).
        """
        raise NotImplementedError

    def receiver(self, port: str = "main") -> Receiver:
        """A callable taking the records of input ``port``; operators may return a faster
        closure than this default, which calls :meth:`process`."""
        process = self.process

        def receive(key: Any, value: Any, ts: int) -> None:
            process(port, key, value, ts)

        return receive

    def on_timer(self, timestamp: int, key: Any, namespace: Any, domain: str = "e") -> None:
        """One of :attr:`timers` fired (Flink ``Triggerable.onEventTime`` /
        ``onProcessingTime``): ``domain`` ``"e"`` when the watermark reached ``timestamp``
        (epoch ms), ``"p"`` when the processing-time clock did; called in timestamp order, each
        timer once, event-time ones before :meth:`on_watermark` of the same watermark."""

    def on_watermark(self, watermark: int) -> None:
        """Event time reached ``watermark`` (epoch ms), after the due event-time timers fired
        (:meth:`on_timer`): fire what else is due, emitting through ``ctx.out``. Downstream
        operators see the watermark only after this returns."""

    def on_processing_time(self, now: int) -> None:
        """Processing time reached ``now`` (epoch ms): run processing-time triggers."""

    def prepare_checkpoint(self) -> dict[str, Changes]:
        """Per store, the entries changed since the last call (each key once). Stores are named
        relative to the node: ``""`` is its default store, the runtime names it after the node
        id (``op.<node-id>``)."""
        return {}

    def restore(self, stores: Mapping[str, Iterable[tuple[bytes, bytes]]], watermark: int) -> None:
        """Rebuild state from checkpointed store entries, by store name as in
        :meth:`prepare_checkpoint` (``watermark``: the task's, epoch ms)."""

    def close(self) -> None:
        """Release what ``open`` took."""
