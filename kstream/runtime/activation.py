"""Activating a task on partition assignment: state recovery, savepoint seeding, producer.

Used by the runner's rebalance callback; see :mod:`kstream.runtime.restore` for the recovery
decision and :mod:`kstream.savepoint.reshard` for savepoint seeding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any, TypeVar

from kstream import faults
from kstream.checkpoint.meta import initial_meta
from kstream.checkpoint.steps import TaskRuntime
from kstream.graph.plan import Plan, Stage, task_id, transactional_id
from kstream.io import kafka
from kstream.runtime.restore import open_store, recover, store_entries
from kstream.runtime.task import Task
from kstream.runtime.topology import TopicLayout
from kstream.state.cache import CacheBudget, StoreProvider, TableLookup
from kstream.state.store import RocksTuning, TaskStore
from kstream.time.timestamps import now_ms

#: Timers or keys per slice of a task's end of input (:mod:`kstream.runtime.ending`): about
#: 0.1 s of work, so the consumer polls well within ``max.poll.interval.ms`` and checkpoints
#: split a large end of input into several transactions.
END_SLICE = 5_000
#: Entries per RocksDB write batch when a task is seeded from a savepoint.
SEED_BATCH = 10_000
#: Entries between two keep-alive polls while a restored task scans its state.
KEEP_ALIVE_EVERY = 20_000
T = TypeVar("T")

log = logging.getLogger("kstream.runtime.runner")

Meta = dict[str, Any] | None


class Activator:
    """Builds a :class:`TaskRuntime` for an assigned topic-partition.

    Args:
        plan: the job graph; ``bootstrap``: Kafka; ``state_dir``: local state root.
        layout: partition counts of the job's topics.
        fingerprint: the pipeline fingerprint (local state of another pipeline is not used).
        exactly_once: transactional producers (True) or idempotent ones.
        seed: a :class:`~kstream.savepoint.reshard.SavepointSeed` when starting from a savepoint.
        budget: the process's state cache (shared by every task's stores).
        keep_alive: keeps the member in its group during a long restore.
        tables: the process's broadcast tables by source id, for its lookup joins.
    """

    def __init__(
        self,
        plan: Plan,
        bootstrap: str,
        state_dir: str,
        layout: TopicLayout,
        fingerprint: str,
        exactly_once: bool,
        seed: Any = None,
        budget: CacheBudget | None = None,
        keep_alive: Callable[[], None] | None = None,
        tables: Mapping[str, TableLookup] | None = None,
    ) -> None:
        self.plan, self.bootstrap, self.state_dir = plan, bootstrap, state_dir
        self.tables = tables or {}
        self.layout, self.fingerprint = layout, fingerprint
        self.exactly_once, self.seed = exactly_once, seed
        self.budget = budget or CacheBudget(plan.spec.state.cache_bytes)
        self.keep_alive = keep_alive or (lambda: None)
        state = plan.spec.state
        self.tuning = RocksTuning(state.block_cache_bytes, state.write_buffer_bytes)

    def activate(
        self, consumer: Any, stage_id: str, partition: int, lock_wait_s: float = 20.0
    ) -> tuple[TaskRuntime, str, dict[str, int | None]]:
        """Open, recover and build the task ``(stage_id, partition)``; returns ``(runtime, how,
        committed offsets by input topic)``.

        Args:
            lock_wait_s: seconds to wait while another local process holds the task's lock.

        Raises:
            StateLockedError: the state is still locked by another process.
            StateError: the state is unreadable.
            BrokerError / TransactionError: Kafka is unreachable or fencing failed.
        """
        stage = self.plan.stage_by_id(stage_id)
        store = open_store(
            self.state_dir, self.plan.prefix, stage, partition, lock_wait_s, self.tuning
        )
        try:
            rt, how, committed = self._recover(consumer, store, stage, partition)
        except BaseException:
            store.close()  # the next attempt in this process must be able to open it again
            raise
        return rt, how, committed

    def _recover(
        self, consumer: Any, store: TaskStore, stage: Stage, partition: int
    ) -> tuple[TaskRuntime, str, dict[str, int | None]]:
        """The steps of :meth:`activate` after the store is open: fence, read the committed
        offset, recover the state, build the task."""
        # init_transactions first (Kafka Streams' order): it fences the previous owner and aborts
        # its open transaction, whose pending offset commit would otherwise keep the committed
        # offset unstable (UNSTABLE_OFFSET_COMMIT) until the transaction timed out (~60 s)
        producer = self._producer(stage, partition)
        # a stalled broker is waited for (it may be restarting), not a reason to fail the run
        committed = {
            topic: kafka.committed_offsets(consumer, topic, [partition], retry_for_s=60.0)[
                partition
            ]
            for topic in stage.input_topics
        }
        meta, how = recover(
            store,
            committed,
            self.fingerprint,
            self._read_changelogs,
            self.plan.prefix,
            stage,
            partition,
        )
        if self.seed is not None:
            meta, how = self._seed_task(store, stage, partition, meta, how)
        task = self._task(
            stage, partition, producer.emit, StoreProvider(store.backend, self.budget, self.tables)
        )
        entries = store_entries(store, stage)
        task.restore(meta, {cf: self._alive(rows) for cf, rows in entries.items()})
        task.set_positions(committed)
        rt = TaskRuntime(
            task,
            store,
            producer,
            self.plan.prefix,
            self.fingerprint,
            self.exactly_once,
            checkpoint_id=int((meta or {}).get("checkpoint_id", 0)),
            committed_position=task.position,
            committed_positions=dict(task.positions),
            last_checkpoint_ms=now_ms(),
        )
        return rt, how, committed

    def _read_changelogs(
        self,
        changelogs: list[str],
        part: int,
        on_records: kafka.OnRecords,
    ) -> None:
        keep_alive = self.keep_alive

        def batch(topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
            on_records(topic, records)
            keep_alive()

        kafka.stream_partitions_to_end(
            self.bootstrap, self.plan.spec.kafka, changelogs, part, batch
        )

    def _alive(self, entries: Iterator[T]) -> Iterator[T]:
        """``entries``, keeping the member in its group every :data:`KEEP_ALIVE_EVERY`."""
        keep_alive = self.keep_alive
        for n, entry in enumerate(entries, 1):
            if n % KEEP_ALIVE_EVERY == 0:
                keep_alive()
            yield entry

    def _producer(self, stage: Stage, partition: int) -> kafka.TaskProducer:
        txn_id = (
            transactional_id(self.plan.prefix, stage.id, partition) if self.exactly_once else None
        )
        conf = kafka.producer_config(self.bootstrap, self.plan.spec.kafka)
        producer = kafka.TaskProducer(conf, txn_id)
        producer.init()
        return producer

    def _task(self, stage: Stage, partition: int, emit: Any, stores: StoreProvider) -> Task:
        task = Task(
            self.plan,
            stage,
            partition,
            emit,
            out_partitions=self.layout.partitions,
            upstream_tasks=self.layout.upstream_tasks_by_topic(stage),
            stores=stores,
        )
        task.end_slice = faults.END_SLICE or END_SLICE
        return task

    def _seed_task(
        self, store: TaskStore, stage: Stage, partition: int, meta: Meta, how: str
    ) -> tuple[Meta, str]:
        """First start of a task restored from a savepoint: its state comes from there."""
        if how != "fresh":
            # The group already committed progress for this task (a restarted restore, or a
            # group that was not new): its own checkpoint is newer than the savepoint.
            log.warning(
                "task %s has committed progress in group %s; the savepoint is not applied to it",
                task_id(stage, partition),
                self.plan.prefix,
            )
            return meta, how
        seeded, stores = self.seed.seed(stage.id, partition)
        if seeded is None and not stores:
            return None, "fresh"
        seeded = dict(seeded or initial_meta())
        seeded.update(fingerprint=self.fingerprint, pipeline=self.plan.prefix, checkpoint_id=0)
        store.clear()
        for column_family, entries in stores.items():  # batch by batch, the metadata last
            while batch := list(islice(entries, SEED_BATCH)):
                store.write_entries(column_family, batch)
                self.keep_alive()
        store.apply({}, seeded)
        return seeded, "savepoint"
