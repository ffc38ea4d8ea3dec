"""The event-time temporal join (Flink ``FOR SYSTEM_TIME AS OF`` on a versioned table,
``TemporalRowTimeJoinOperator``; docs/joins.md, "Temporal join").

The right input is a versioned table: each of its records at ``ts`` is the version of its key's
row valid from ``ts`` until the next version (a tombstone: no row from ``ts`` on), kept in a
:class:`~kstream.state.versioned.VersionedStore`. A left record at ``t`` joins the version of
its key valid at ``t``: the one with the largest time ``<= t``. It waits until the join's
watermark (the min of both inputs) reaches ``t``, so every version up to ``t`` has arrived
(timestamp: ``t``; results are final, never retracted)::

    table    --V1@08:00-------------V2@10:00----------------------
    left     ---------L@09:30--L@10:00-----L@09:59(late? no: waits)
    output   when watermark >= 09:30: L@09:30+V1; >= 10:00: L@10:00+V2 ...

- ``how: inner`` drops a left record without a version valid at ``t``; ``how: left`` emits it
  with the right side null.
- A left record arriving with ``t <= watermark`` is joined at once (its versions are in).
- A left record whose time falls behind its key's version history while it waits (the table
  ran more than ``history`` ahead) goes to ``late`` too: never a silently missing version.
- Versions are kept for ``versioned`` (``history_ms``) of event time behind the key's latest
  version (Kafka Streams' history retention, measured per key: see
  :class:`~kstream.state.versioned.VersionedStore`): a version no longer valid at ``latest -
  history`` is dropped (the one valid then stays). A left record with ``t`` before that
  horizon, or a table record older than it, cannot be answered right: ``late`` port.
- A left record whose key is null matches nothing.

State: the left records waiting for the watermark (a
:class:`~kstream.operators.join.buffer.JoinBuffer`, side ``left``, with an event-time timer at
each waiting time) and each key's versions (``[record key, "versions"]``), in the join's store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from kstream.operators.join.buffer import JOIN_CODEC, BufferKey, JoinBuffer
from kstream.operators.join.output import JoinOutput
from kstream.pipeline.spec_joins import JoinSpec
from kstream.state.cache import KeyValueStore
from kstream.state.versioned import VersionedStore, Versions
from kstream.time.timers import TimerService
from kstream.time.watermarks import MIN_WATERMARK

#: ``(key, value, timestamp_ms)`` to the join's main output.
Emit = Callable[[Any, Any, int], None]
#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
OnLate = Callable[[str, Any, Any, int, int], None]
#: The time bucket of the waiting records' indexes (ms).
WAITING_BUCKET_MS = 60_000
#: The store key's second element of a key's versions.
VERSIONS = "versions"


class TemporalJoin:
    """The temporal join of one task (see the module docstring).

    Args:
        op: the join's spec (``how``: inner or left).
        history_ms: the table's ``versioned`` (ms).
        output: builds the joined values.
        emit: receives the joined records.
        on_late: receives the records that cannot be answered.
    """

    def __init__(
        self, op: JoinSpec, history_ms: int, output: JoinOutput, emit: Emit, on_late: OnLate
    ) -> None:
        self.left_outer = op.how == "left"
        self.history_ms = history_ms
        self.output, self.emit, self.on_late = output, emit, on_late
        self.watermark = MIN_WATERMARK
        self.bind(KeyValueStore(JOIN_CODEC), TimerService())

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None:
        """Keep the waiting records and the versions in ``store``, the timers in ``timers``."""
        self.store, self.timers = store, timers
        self.waiting = JoinBuffer(store, "left", WAITING_BUCKET_MS)
        versions = cast(KeyValueStore[tuple[Any, str], Versions], store)
        self.versions = VersionedStore(versions, self.history_ms, per_key=True)

    def advance(self, watermark: int) -> None:
        """The watermark moved (after the waiting records' timers fired)."""
        self.watermark = watermark

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        """One record of ``side`` at ``ts`` (ms) under the join's ``watermark`` (ms).

        Raises:
            RecordError: the joined value cannot be built (before any state changes).
        """
        if side == "right":
            if key is not None and not self.versions.put((key, VERSIONS), value, ts):
                self.on_late(side, key, value, ts, watermark)
            return
        self.output.joined(value, None)  # a left record that is not an object is bad
        if key is None:
            if self.left_outer:
                self.emit(key, self.output.joined(value, None), ts)
        elif ts < self.versions.horizon_of((key, VERSIONS)):
            self.on_late(side, key, value, ts, watermark)
        elif watermark > MIN_WATERMARK and ts <= watermark:
            self._answer(key, value, ts)
        else:
            self.waiting.add(key, value, ts)
            self.timers.register_event_time(ts, key, "left")

    def on_timer(self, at: int, key: Any, namespace: Any = "left") -> None:
        """The watermark reached ``at`` (ms): ``key``'s records waiting at ``at`` are joined."""
        late = at < self.versions.horizon_of((key, VERSIONS))  # the table ran too far ahead
        for _row, value in self.waiting.pop(key, at):
            if late:
                self.on_late("left", key, value, at, self.watermark)
            else:
                self._answer(key, value, at)

    def _answer(self, key: Any, value: Any, ts: int) -> None:
        """Join a left record at ``ts`` with the version valid then and emit it."""
        found = self.versions.get((key, VERSIONS), as_of=ts)
        if found is not None or self.left_outer:
            right = None if found is None else found.value
            self.emit(key, self.output.joined(value, right), ts)
