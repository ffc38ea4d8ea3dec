"""The runner's part in its consumer group: taking and releasing partitions, restoring tasks
(the "restoring" state, worked off by the main loop), rewinding a task after a failed
transaction, dropping a task a newer owner fenced, and rejoining the group.

:class:`GroupMembership` is a mixin of :class:`~kstream.runtime.runner.Runner`: it works on the
runner's tasks and consumer (the attributes declared below) and calls back the runner's
:meth:`_activate` (open, recover and build one task).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kstream.checkpoint.steps import TaskRuntime, TxnState, run_checkpoint
from kstream.errors import BrokerError, StateLockedError, TaskMigratedError, TransactionError
from kstream.graph.plan import Plan, task_id
from kstream.io import kafka
from kstream.runtime.group_watch import GroupWatch
from kstream.time.timestamps import now_ms

log = logging.getLogger("kstream.runtime.runner")

#: seconds a task fenced by a newer owner may stay assigned here before the member rejoins
MIGRATED_REJOIN_S = 15.0
#: seconds a pending task (state locked, or its producer's init_transactions failed or timed
#: out) is retried before the run fails
PENDING_MAX_S = 300.0
#: seconds between two activation attempts of a pending task
PENDING_RETRY_S = 1.0
#: transaction failures of one task in a row (each rewinds it) before the run fails; a
#: successful checkpoint of the task starts the count again
MAX_REWINDS = 20


def _discard(rt: TaskRuntime) -> None:
    """Drop a task's uncommitted work: abort its transaction, close its store, and mark it
    aborted, so a stale reference to it can no longer checkpoint."""
    rt.producer.abort()
    rt.close_state()
    rt.state = TxnState.ABORTED


class GroupMembership:
    """Consumer group callbacks and task restore/rewind/release for the runner (a mixin)."""

    plan: Plan
    #: by task key ``(stage id, partition)``
    tasks: dict[tuple[str, int], TaskRuntime]
    totals: dict[str, int]
    node_totals: dict[str, tuple[int, int, int]]
    group_watch: GroupWatch
    assigned_once: bool
    rewinds: int
    _consumer: Any
    _consumer_conf: dict[str, Any]
    _pending: dict[tuple[str, int], tuple[float, float]]
    #: the input topics of each pending or running task assigned to this member so far
    _assigned: dict[tuple[str, int], set[str]]
    _migrated: dict[tuple[str, int], float]
    _held: set[tuple[str, int]]
    #: input partitions paused for a full buffer (:mod:`kstream.runtime.backlog`)
    _throttled: set[tuple[str, int]]
    #: running tasks paused while a restore keeps the member alive (None: no restore running)
    _quiet: set[tuple[str, int]] | None
    #: records a keep-alive poll returned, dispatched by the loop next
    _deferred: list[Any]
    _rewinds_in_row: dict[tuple[str, int], int]
    _empty_since: float | None
    _callback_error: Exception | None

    def _activate(self, stage_id: str, partition: int, lock_wait_s: float = 20.0) -> TaskRuntime:
        """Open, recover and build one task (the runner's)."""
        raise NotImplementedError

    def _key(self, topic: str, partition: int) -> tuple[str, int]:
        """The task reading ``topic`` partition ``partition``: ``(stage id, partition)``."""
        stage_ids: dict[str, str] = self.__dict__.setdefault("_stage_ids", {})
        stage_id = stage_ids.get(topic)
        if stage_id is None:
            stage_id = stage_ids[topic] = self.plan.stage_of_topic(topic).id
        return stage_id, partition

    def _input_tps(self, key: tuple[str, int]) -> list[tuple[str, int]]:
        """The topic-partitions task ``key`` reads."""
        return [(topic, key[1]) for topic in self.plan.stage_by_id(key[0]).input_topics]

    def _new_consumer(self) -> Any:
        conf = dict(self._consumer_conf)
        conf["statistics.interval.ms"] = 2_000
        conf["stats_cb"] = self.group_watch.on_stats
        return kafka.new_consumer(conf)

    def _subscribe(self) -> None:
        self._consumer.subscribe(
            self.plan.input_topics(), on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def _rejoin(self, reason: str) -> None:
        """Leave and rejoin the group with a new consumer: a member stuck outside a steady group
        state (seen on Tansu after several members died at once), or fenced tasks whose
        partitions were not revoked."""
        log.warning("%s; rejoining the consumer group", reason)
        self._pending.clear()
        self._assigned.clear()
        for key, rt in list(self.tasks.items()):
            self.tasks.pop(key)
            self._release(rt, self._consumer)
        try:
            self._consumer.close()
        except Exception as exc:
            log.debug("consumer close: %s", exc)
        self.group_watch.reset()
        self._consumer = self._new_consumer()
        self._subscribe()

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Take the assigned partitions paused: each becomes a task in the "restoring" state,
        restored by the main loop (:meth:`_restore_pending`), never inside this callback, so
        a slow restore (changelog read, lock wait, fencing) neither stalls the rebalance nor
        blocks the tasks already running."""
        try:
            for tp in partitions:
                key = self._key(tp.topic, tp.partition)
                self._assigned.setdefault(key, set()).add(tp.topic)
                self._pending[key] = (time.monotonic(), 0.0)
            consumer.assign(partitions)
            kafka.pause(consumer, [(tp.topic, tp.partition) for tp in partitions])
            self.assigned_once = True
            self._empty_since = None if partitions else time.monotonic()
        except Exception as exc:  # surfaced by the main loop; rdkafka swallows callback errors
            self._callback_error = exc
            self._pending.clear()
            self._assigned.clear()
            consumer.assign([])

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            key = self._key(tp.topic, tp.partition)
            self._assigned.get(key, set()).discard(tp.topic)
            if not self._assigned.get(key):
                self._assigned.pop(key, None)
            self._migrated.pop(key, None)
            self._pending.pop(key, None)
            rt = self.tasks.pop(key, None)  # a task losing any of its inputs is released
            if rt is not None:
                self._release(rt, consumer)
            if key in self._assigned:  # inputs still assigned here wait to be restored again
                self._pending[key] = (time.monotonic(), 0.0)
        self._empty_since = None  # until the next assignment

    def _release(self, rt: TaskRuntime, consumer: Any) -> None:
        try:
            if rt.state == TxnState.OPEN:
                run_checkpoint(rt, consumer, now_ms())
        except Exception as exc:  # the next owner restores from the last checkpoint
            log.warning("task %s: checkpoint on release failed: %s", rt.task.id, exc)
            rt.producer.abort()
            rt.state = TxnState.ABORTED
        finally:
            rt.producer.flush_quietly()
            rt.close_state()
            self._keep_counters(rt)

    def _rewind(self, key: tuple[str, int], rt: TaskRuntime, exc: Exception) -> None:
        """A fenced, aborted or timed-out transaction: drop the task's uncommitted work and hand
        the task back to the "restoring" state: the main loop re-creates its producer (fencing
        any zombie) and resumes it from its last checkpoint.

        Raises:
            TransactionError: the task failed more than :data:`MAX_REWINDS` times in a row.
        """
        if self.tasks.get(key) is not rt:
            return  # a stale runtime: its task was rewound or released already
        if isinstance(exc, TaskMigratedError):
            self._drop_migrated(key, rt, exc)
            return
        log.warning("task %s: %s; rewinding to checkpoint %s", rt.task.id, exc, rt.checkpoint_id)
        self.rewinds += 1
        in_row = self._rewinds_in_row[key] = self._rewinds_in_row.get(key, 0) + 1
        _discard(rt)
        self._keep_counters(rt)
        if in_row > MAX_REWINDS:
            del self.tasks[key]
            raise TransactionError(
                f"task {rt.task.id}: {in_row} transaction failures in a row, the last: {exc}"
            )
        # back to "restoring": the main loop restores it from its last checkpoint and seeks its
        # partitions there (a lock still held, or a producer not yet fenced in, is retried
        # without blocking the other tasks)
        del self.tasks[key]
        tps = self._input_tps(key)
        kafka.pause(self._consumer, tps)
        self._throttled.difference_update(tps)  # the restore resumes them
        self._pending[key] = (time.monotonic(), 0.0)

    def _drop_migrated(self, key: tuple[str, int], rt: TaskRuntime, exc: Exception) -> None:
        """A newer owner fenced the task (this member was a zombie): drop it without touching
        its transactional id again, which would fence the new owner in turn. The group's
        revocation follows; if the partition is still assigned here after
        :data:`MIGRATED_REJOIN_S`, the member rejoins the group."""
        log.warning("task %s: fenced by a newer owner (%s); dropped here", rt.task.id, exc)
        _discard(rt)
        del self.tasks[key]
        self._keep_counters(rt)
        self._migrated[key] = time.monotonic()

    def _defer(self, key: tuple[str, int], exc: Exception) -> None:
        """Keep an assigned task waiting for its restore: its state is locked by a previous
        owner on this machine (maybe frozen), or its producer could not be fenced in yet."""
        now = time.monotonic()
        since, last = self._pending.get(key, (now, 0.0))
        task = task_id(self.plan.stage_by_id(key[0]), key[1])
        if not isinstance(exc, StateLockedError):
            log.warning("task %s activation failed, retrying: %s", task, exc)
        elif last == 0.0:  # logged once, not at every attempt
            log.info("task %s waits for its local state: %s", task, exc)
        self._pending[key] = (since, now)

    def _restore_pending(self) -> None:
        """Restore one task waiting for it (the one waiting longest since its last attempt;
        one per call, so the loop goes on consuming for the running tasks between two
        restores), then seek its partition to the restored position and resume it. A task
        whose state is locked by a previous local owner, or whose producer could not be fenced
        in yet, is tried again every :data:`PENDING_RETRY_S`.

        Raises:
            StateLockedError, TransactionError: a task waited longer than
                :data:`PENDING_MAX_S`.
            StateError, BrokerError: its state is unreadable or Kafka unreachable.
        """
        now = time.monotonic()
        due = [
            (last, key)
            for key, (_, last) in self._pending.items()
            if now - last >= PENDING_RETRY_S and self._complete(key)
        ]
        if not due:
            return
        _last, key = min(due)
        since = self._pending[key][0]
        try:
            rt = self._activate(*key, lock_wait_s=0.0)
        except (StateLockedError, TransactionError) as exc:
            if time.monotonic() - since > PENDING_MAX_S:
                raise
            self._defer(key, exc)
            return
        finally:
            self._end_quiet()
        if self._pending.get(key, (None,))[0] != since:
            # revoked while it restored (the group was served meanwhile, see _keep_alive):
            # a new assignment, if any, restores it again
            log.info("task %s: revoked while it was restored", rt.task.id)
            _discard(rt)
            return
        try:
            for topic, position in rt.task.positions.items():
                kafka.seek(self._consumer, topic, key[1], position)
        except BrokerError as exc:
            # librdkafka refuses the seek (Local: Erroneous state) while a rebalance stops the
            # partition's fetcher: drop this restore; the revocation that follows forgets the
            # task, and a partition still assigned here is restored again after the retry delay
            log.info("task %s: %s; restored again after the rebalance", rt.task.id, exc)
            _discard(rt)
            self._pending[key] = (since, time.monotonic())
            return
        del self._pending[key]
        self.tasks[key] = rt
        tps = self._input_tps(key)
        kafka.resume(self._consumer, tps)
        self._throttled.difference_update(tps)

    def _keep_alive(self) -> None:
        """Called while a task restores (between changelog batches, during the scan of its
        entries): the main loop is not polling meanwhile, so this polls the group consumer with
        every running task's partitions paused — no records, but the member stays in its group
        (``max.poll.interval.ms``) and rebalances are served. Records returned anyway (fetched
        before the pause) are kept for the loop (:attr:`_deferred`)."""
        if self._quiet is None:
            self._quiet = set(self.tasks)
            for key in self._quiet:
                kafka.pause(self._consumer, self._input_tps(key))
        self._deferred.extend(self._consumer.consume(1_000, 0))

    def _end_quiet(self) -> None:
        """After a restore: resume the running tasks :meth:`_keep_alive` paused (those still
        here and not held by a test hook)."""
        quiet, self._quiet = self._quiet, None
        for key in quiet or ():
            if key in self.tasks:
                tps = [
                    tp
                    for tp in self._input_tps(key)
                    if tp not in self._held and tp not in self._throttled
                ]
                kafka.resume(self._consumer, tps)

    def _complete(self, key: tuple[str, int]) -> bool:
        """Whether every input topic-partition of task ``key`` is assigned here (co-partitioned
        topics are assigned together by the range assignor)."""
        return self._assigned.get(key, set()) >= set(self.plan.stage_by_id(key[0]).input_topics)

    def _check_migrated(self) -> None:
        """Rejoin when a dropped task's partition was not revoked in time (a false alarm)."""
        now = time.monotonic()
        if any(now - since > MIGRATED_REJOIN_S for since in self._migrated.values()):
            fenced = sorted(self._migrated)
            self._migrated.clear()
            self._rejoin(f"fenced tasks {fenced} still assigned here")

    def _keep_counters(self, rt: TaskRuntime) -> None:
        """Add a task's counters to the run's totals (the task is leaving this process).

        A task whose transaction was aborted contributes only the counters of its last
        committed checkpoint: the records after it are read again by the task's next
        incarnation (here after a rewind, or in the next owner), so the final totals count
        every record once, as its committed outputs do."""
        aborted = rt.state == TxnState.ABORTED
        counters = rt.committed_counters if aborted else rt.task.counters
        for key, value in counters.items():
            self.totals[key] += value
        for node, stats in rt.task.executor.node_stats.items():  # per node: as counted
            n_in, n_out, late = self.node_totals.get(node, (0, 0, 0))
            self.node_totals[node] = (
                n_in + stats.records_in,
                n_out + stats.records_out,
                late + stats.late,
            )
