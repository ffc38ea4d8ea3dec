"""The lookup join (Kafka Streams ``KStream-KTable`` join; docs/joins.md, "Lookup join").

The right input is a table: each of its records sets its key's row (a null value, a tombstone,
deletes it). Each left record looks its key's row up when it is processed and is emitted at
once, joined (timestamp: its own) or, with ``how: left``, unmatched (the right side null);
``how: inner`` drops a left record without a row. A table change never emits anything and
never changes what was emitted. The task takes its inputs' records lowest timestamp first, so a
left record meets the rows of the table records before it in time (on a bounded run, the same
on every run)::

    table    --T(k=a, v1)@10----------T(k=a, v2)@30-----------
    left     ------------L(k=a)@20-------------L(k=a)@40------
    output   ------------L+v1@20---------------L+v2@40--------

State: the table's rows in the join's store, one entry per key (``[record key, "table"]``).

With a broadcast table (``table: {broadcast: true}``; Kafka Streams' KStream-GlobalKTable join)
the join has no right input: it evaluates its left key (``on``) on each left record and looks it
up in the process's copy of the whole table (:meth:`LookupJoin.use_table`), which the runtime
loaded to the end of the table's topic before the first record and keeps updating as the table
changes (processing time: unlike a co-partitioned table, not in timestamp order with the left
records). The output keeps the left record's key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.keys import hashable
from kstream.operators.join.buffer import JOIN_CODEC, BufferKey
from kstream.operators.join.output import JoinOutput
from kstream.operators.stateless import key_function
from kstream.pipeline.spec import KeyBySpec, PipelineSpec
from kstream.pipeline.spec_joins import JoinSpec
from kstream.state.cache import KeyValueStore, TableLookup
from kstream.time.timers import TimerService

#: ``(key, value, timestamp_ms)`` to the join's main output.
Emit = Callable[[Any, Any, int], None]
#: The store key's second element of a table row.
ROW = "table"


class LookupJoin:
    """The lookup join of one task (see the module docstring).

    Args:
        op: the join's spec (``how``: inner or left; ``broadcast_table``: reads that table).
        spec: the pipeline (user functions of the left key).
        output: builds the joined values.
        emit: receives the joined records.

    Raises:
        ExpressionError: the left key expression of a broadcast lookup cannot be compiled.
    """

    def __init__(self, op: JoinSpec, spec: PipelineSpec, output: JoinOutput, emit: Emit) -> None:
        self.left_outer = op.how == "left"
        self.output, self.emit = output, emit
        self.bind(KeyValueStore(JOIN_CODEC), TimerService())
        #: the broadcast table (None: the table is the right input)
        self.table: TableLookup | None = None
        self.left_key: Callable[[Any], Any] | None = None
        if op.broadcast_table is not None:
            self.left_key = key_function(KeyBySpec(id=op.id, expr=op.on_left), spec)

    def use_table(self, table: TableLookup) -> None:
        """Look left keys up in the broadcast ``table`` (the join then has no right input)."""
        self.table = table

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None:
        """Keep the table in ``store`` (a lookup join sets no timers)."""
        self.store, self.timers = store, timers

    def advance(self, watermark: int) -> None:
        """Event time plays no part in a lookup join."""

    def on_timer(self, at: int, key: Any, namespace: Any) -> None:
        """A lookup join sets no timers."""

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        """One record of ``side`` at ``ts`` (ms); the watermark plays no part.

        Raises:
            RecordError: the joined value cannot be built (before any state changes), or the
                left key of a broadcast lookup cannot be evaluated.
        """
        if self.table is not None:
            self._look_up(key, value, ts)
            return
        if side == "right":
            if key is None:
                return
            if value is None:
                self.store.delete((key, ROW))
            else:
                self.store.put((key, ROW), value)
            return
        row = None if key is None else self.store.get((key, ROW))
        if row is not None or self.left_outer:
            self.emit(key, self.output.joined(value, row), ts)
        else:
            self.output.joined(value, None)  # a left record that is not an object is bad

    def _look_up(self, key: Any, value: Any, ts: int) -> None:
        """A left record joined with the broadcast table's row of its left key."""
        assert self.table is not None and self.left_key is not None
        lookup = self.left_key(value)
        row = None if lookup is None else self.table.get(hashable(lookup))
        if row is not None or self.left_outer:
            self.emit(key, self.output.joined(value, row), ts)
        else:
            self.output.joined(value, None)

    def rows(self) -> int:
        """Number of table rows held (status, tests)."""
        return len(self.store)
