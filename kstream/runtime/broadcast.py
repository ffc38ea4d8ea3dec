"""Broadcast tables (``table: {broadcast: true}``; Kafka Streams' ``GlobalKTable``; docs/joins.md,
"Broadcast tables").

Each process reads every partition of a broadcast table's topic with a consumer of its own (no
consumer group) and holds the whole table beside its tasks, in no stage: the lookup joins naming
the table look their left keys up in it wherever the left records are, so neither input is
repartitioned. The runner loads each table to the end of its topic before it joins the group
(:meth:`BroadcastTables.load`), then applies the records arriving later at every turn of its loop
(:meth:`BroadcastTables.poll`): a table change reaches the joins in processing time, as in Kafka
Streams, not in timestamp order with the left records.

State: a table's rows live in RocksDB behind the process's state cache (a table larger than
memory), in a database of the process's own under ``<state-dir>/<group>/broadcast/``, rebuilt
from the topic at every start (Kafka Streams rebuilds a global store so after an unclean stop
under exactly-once); it is in no checkpoint and no savepoint. A directory no live process holds
(left by a killed one) is deleted at start. The driver keeps a table in memory.

A record's row key is the table's ``key`` evaluated on its value; a tombstone (null value)
deletes the row of its Kafka key, decoded with the source's ``key_format`` (with ``key_fields``:
the key fields' values, :mod:`kstream.io.key_fields`, which a value's key fields come from too).
A bad record follows
the source's ``on_error``, ``fail`` or ``skip`` (validation refuses a dead-letter topic: the
table is read outside the job's transactions).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kstream.errors import BrokerError, RecordError
from kstream.graph.plan import Plan
from kstream.io import codecs, kafka
from kstream.io.key_fields import key_reader, tombstone_key
from kstream.keys import hashable
from kstream.operators.join.buffer import JOIN_CODEC, BufferKey
from kstream.operators.join.lookup import ROW
from kstream.operators.stateless import key_function
from kstream.pipeline.spec import KeyBySpec, PipelineSpec, SourceSpec
from kstream.runtime.policy import ErrorRouter, message_origin, source_policy
from kstream.state.cache import CacheBudget, KeyValueStore
from kstream.state.store import RocksTuning, TaskStore, is_locked

log = logging.getLogger("kstream.runtime.broadcast")

#: The column family of a broadcast table's rows.
TABLE_CF = "table"
#: Seconds a load may go without a record while a partition has not reached its end.
LOAD_STALL_S = 30.0


def broadcast_dir(state_dir: str | Path, prefix: str) -> Path:
    """``<state-dir>/<group>/broadcast``: the broadcast tables' databases of every process."""
    return Path(state_dir) / prefix / "broadcast"


class BroadcastTable:
    """One broadcast table of a process (see the module docstring).

    Args:
        source: the table's source (``table.broadcast`` set).
        spec: the pipeline (formats, schema registry, user key functions).
        db: its RocksDB database (None: the rows stay in memory, the driver).
        budget: the process's state cache budget (with ``db``).

    Raises:
        ExpressionError: the table's key expression cannot be compiled.
        SchemaError: a decoder cannot be built.
    """

    def __init__(
        self,
        source: SourceSpec,
        spec: PipelineSpec,
        db: TaskStore | None = None,
        budget: CacheBudget | None = None,
    ) -> None:
        assert source.table is not None
        self.source, self.db = source, db
        backend = db.backend(TABLE_CF) if db is not None else None
        self.store: KeyValueStore[BufferKey, Any] = KeyValueStore(JOIN_CODEC, backend, budget)
        self.decode_key, self.decode_value = codecs.source_decoders(source, spec.schema_registry)
        self.key_of = key_function(KeyBySpec(id=source.id, expr=source.table.key), spec)
        self.read_key, self.tombstone_key = key_reader(source), tombstone_key(source)
        self.policy = source_policy(source)
        self.counters = {"in": 0, "skipped": 0, "dead_letter": 0}
        self.errors = ErrorRouter(_no_dead_letters, self.counters)

    def get(self, key: Any) -> Any | None:
        """The row of ``key`` (a hashable record key), or None."""
        return self.store.get((key, ROW))

    def apply(self, msgs: Sequence[Any]) -> None:
        """Apply records of the table's topic (offset order per partition), then write the
        changed rows to the database.

        Raises:
            BadRecordFailure: a bad record under ``on_error: fail``.
        """
        for msg in msgs:
            try:
                self._apply_one(msg)
            except RecordError as exc:
                origin = message_origin(msg, self.source.topic, msg.partition())
                self.errors.handle(exc, self.policy, origin)
        self.counters["in"] += len(msgs)
        if self.db is not None and self.store.dirty:
            self.db.apply({TABLE_CF: self.store.changes()}, {"broadcast": self.source.id})
            self.store.trim()

    def _apply_one(self, msg: Any) -> None:
        value = self.decode_value(msg.value())
        if value is None:  # a tombstone: the row of its Kafka key (its key fields)
            key = self.decode_key(msg.key())
            if self.tombstone_key is not None:
                key = self.tombstone_key(key)
            if key is not None:
                self.store.delete((hashable(key), ROW))
            return
        if self.read_key is not None:  # the source's key fields, from the key
            value = self.read_key(value, self.decode_key(msg.key()))
        key = self.key_of(value)
        if key is not None:
            self.store.put((hashable(key), ROW), value)

    def close(self) -> None:
        """Release the cache and close the database."""
        self.store.release()
        if self.db is not None:
            self.db.close()


def _no_dead_letters(*_args: Any) -> None:
    raise RecordError("produce", "a broadcast table has no dead-letter topic")


class BroadcastTables:
    """The broadcast tables of one process, each read by a
    :class:`~kstream.io.kafka.PartitionsReader` of its topic.

    Args:
        plan: the job graph (:attr:`~kstream.graph.plan.Plan.broadcast_tables`).
        bootstrap: the brokers.
        state_dir: where the tables' databases go (under ``<group>/broadcast``).
        budget: the process's state cache budget.
        partitions: partition count per topic (the job's topic layout).
    """

    def __init__(
        self,
        plan: Plan,
        bootstrap: str,
        state_dir: str | Path,
        budget: CacheBudget,
        partitions: Mapping[str, int],
    ) -> None:
        self.plan, self.bootstrap = plan, bootstrap
        self.tables: dict[str, BroadcastTable] = {}
        self._readers: dict[str, kafka.PartitionsReader] = {}
        sources = plan.broadcast_tables
        state = plan.spec.state
        tuning = RocksTuning(state.block_cache_bytes, state.write_buffer_bytes)
        root = broadcast_dir(state_dir, plan.prefix)
        _remove_abandoned(root)
        root.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=f"p{os.getpid()}.", dir=root))
        for source in sources:
            db = TaskStore(self._dir / source.id, [TABLE_CF], tuning)
            self.tables[source.id] = BroadcastTable(source, plan.spec, db, budget)
            count = partitions.get(source.topic, 1)
            self._readers[source.id] = kafka.PartitionsReader(
                bootstrap, plan.spec.kafka, source.topic, count
            )
        self._pending = {(s.id, p) for s in sources for p in range(partitions.get(s.topic, 1))}

    def load(self, keep_alive: Callable[[], None] = lambda: None) -> None:
        """Read every table to the end of each partition of its topic (the end the broker
        reports when the load reaches it).

        Raises:
            BrokerError: a fetch fails, or :data:`LOAD_STALL_S` pass without a record while a
                partition has not reached its end.
            BadRecordFailure: a bad record under ``on_error: fail``.
        """
        started = time.monotonic()
        stalled_at = started + LOAD_STALL_S
        while self._pending and time.monotonic() < stalled_at:
            if self._read(0.1):
                stalled_at = time.monotonic() + LOAD_STALL_S
            keep_alive()
        if self._pending:
            left = ", ".join(f"{t}[{p}]" for t, p in sorted(self._pending))
            raise BrokerError(
                f"broadcast table {left} did not reach its end ({LOAD_STALL_S:.0f} s without "
                "a record)"
            )
        for source_id, table in self.tables.items():
            log.info(
                "broadcast table %s loaded: %d records in %.3f s",
                source_id,
                table.counters["in"],
                time.monotonic() - started,
            )

    def poll(self) -> int:
        """Apply the records that arrived since the last call (never waits); returns their
        number.

        Raises:
            BadRecordFailure: a bad record under ``on_error: fail``.
        """
        return self._read(0.0)

    def _read(self, timeout_s: float) -> int:
        applied = 0
        for source_id, reader in self._readers.items():
            records = []
            for msg in reader.consume(10_000, timeout_s / len(self._readers)):
                if kafka.is_partition_eof(msg):
                    self._pending.discard((source_id, msg.partition()))
                elif msg.error() is not None:
                    log.warning("broadcast table %s: %s", source_id, kafka.message_error(msg))
                else:
                    records.append(msg)
            if records:
                self.tables[source_id].apply(records)
                applied += len(records)
        return applied

    def close(self) -> None:
        """Close the readers and databases and delete the process's directory."""
        for reader in self._readers.values():
            reader.close()
        for table in self.tables.values():
            table.close()
        self._readers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)


def _remove_abandoned(root: Path) -> None:
    """Delete the directories under ``root`` (``p<pid>.<random>``) of processes no longer alive
    (killed before they could delete their own) whose databases nobody holds."""
    if not root.is_dir():
        return
    for process_dir in root.iterdir():
        pid = process_dir.name.split(".", 1)[0].removeprefix("p")
        if pid.isdigit() and _alive(int(pid)):
            continue
        tables = [t for t in process_dir.iterdir() if t.is_dir()] if process_dir.is_dir() else []
        if not any(is_locked(t) for t in tables):
            shutil.rmtree(process_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
