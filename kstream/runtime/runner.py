"""The runner: one process of a pipeline's consumer group.

It subscribes to every input topic of the job (the source and the repartition topics), turns each
assigned topic-partition into a task (:mod:`kstream.runtime.restore`), feeds tasks batches of
records, checkpoints them every interval (:mod:`kstream.checkpoint.steps`) and, with ``bounded``,
ends each source task at the end offsets captured at start, then exits once all its tasks are
finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kstream import faults
from kstream.checkpoint.steps import TaskRuntime, TxnState, run_checkpoint
from kstream.errors import StateError, StateLockedError, TaskMigratedError, TransactionError
from kstream.graph.plan import Plan
from kstream.io import kafka
from kstream.pipeline.view import fingerprint
from kstream.runtime.activation import Activator
from kstream.runtime.control import control_topic
from kstream.runtime.group_watch import GroupWatch
from kstream.runtime.lifecycle import ALLOWED_MOVES, RunnerState, RunOptions, Status
from kstream.runtime.restore import check_transaction_timeout
from kstream.runtime.topology import TopicLayout, ensure_topics
from kstream.state.store import snapshot_path
from kstream.time.timestamps import now_ms

log = logging.getLogger("kstream.runtime.runner")

#: seconds a task fenced by a newer owner may stay assigned here before the member rejoins
MIGRATED_REJOIN_S = 15.0
#: seconds a pending task (state locked, or its producer's init_transactions failed or timed
#: out) is retried before the run fails
PENDING_MAX_S = 300.0
#: seconds between two activation attempts of a pending task
PENDING_RETRY_S = 1.0
#: seconds a bounded member with no assigned partitions waits before it exits
EMPTY_MEMBER_GRACE_S = 10.0
#: transaction failures of one task in a row (each rewinds it) before the run fails; a
#: successful checkpoint of the task starts the count again
MAX_REWINDS = 20


def _discard(rt: TaskRuntime) -> None:
    """Drop a task's uncommitted work: abort its transaction, close its store, and mark it
    aborted, so a stale reference to it can no longer checkpoint."""
    rt.producer.abort()
    rt.store.close()
    rt.state = TxnState.ABORTED


class Runner:
    """Runs one process of a pipeline.

    Args:
        plan: the job graph.
        options: see :class:`RunOptions`.
        on_status: called about every ``status_interval_ms`` with a :class:`Status`.

    Raises (from :meth:`run`): BrokerError (unreachable broker, missing source topic),
    RecordError (a bad record under ``on_error: fail``), StateError, TransactionError.
    """

    def __init__(
        self, plan: Plan, options: RunOptions, on_status: Callable[[Status], None] | None = None
    ) -> None:
        self.plan, self.options, self.on_status = plan, options, on_status
        self.spec = plan.spec
        self.state = RunnerState.CREATED
        self.exactly_once = self.spec.checkpoint.guarantee == "exactly_once"
        self.fingerprint = fingerprint(self.spec)
        self.tasks: dict[tuple[str, int], TaskRuntime] = {}
        self.layout: TopicLayout | None = None
        self.end_offsets: dict[int, int] = {}
        self._ends_known = False
        self._probe: threading.Thread | None = None
        self.assigned_once = False
        self.stop_requested = False
        self.stop_request: str | None = None
        self._started_ms = now_ms()
        self._control: Any = None
        self.group_watch = GroupWatch()
        self.activator: Activator | None = None
        self.checkpoints = 0
        self.rewinds = 0
        #: rewinds of each task since its last successful checkpoint
        self._rewinds_in_row: dict[tuple[str, int], int] = {}
        #: tasks dropped because a newer owner fenced them -> when (monotonic s)
        self._migrated: dict[tuple[str, int], float] = {}
        #: assigned tasks not restored yet ("restoring": restored one at a time by the main
        #: loop; waiting while another local process holds their state, or fencing failed)
        #: -> (since, last attempt; 0.0 before the first) in monotonic s
        self._pending: dict[tuple[str, int], tuple[float, float]] = {}
        #: checkpoint requests of the control channel to acknowledge once no task is restoring
        self._acks_due: list[str] = []
        #: source partitions paused at ``KSTREAM_HOLD_AT`` (test hook)
        self._held: set[tuple[str, int]] = set()
        self.totals = {
            "in": 0,
            "forwarded": 0,
            "out": 0,
            "late": 0,
            "skipped": 0,
            "dead_letter": 0,
            "duplicates": 0,
        }
        self._started = time.monotonic()
        self._consumer: Any = None
        self._empty_since: float | None = None
        self._callback_error: Exception | None = None

    def _move(self, new: RunnerState) -> None:
        if new not in ALLOWED_MOVES[self.state]:
            raise StateError(f"runner cannot go from {self.state.value} to {new.value}")
        self.state = new

    def request_stop(self) -> None:
        """Ask the loop to checkpoint and stop (signal handlers call this)."""
        self.stop_requested = True

    # -- setup --------------------------------------------------------------------------------

    def _setup(self) -> None:
        settings = dict(self.spec.kafka)
        if self.exactly_once:
            check_transaction_timeout(settings, self.spec.checkpoint.interval_ms)
        if self.options.from_savepoint:  # fail fast, before any broker traffic
            from kstream.savepoint import open_savepoint

            open_savepoint(Path(self.options.from_savepoint))
        admin = kafka.Admin(self.options.bootstrap, settings)
        self.layout = ensure_topics(admin, self.plan)
        seed = None
        if self.options.from_savepoint:
            from kstream.savepoint.reshard import SavepointSeed

            seed = SavepointSeed(
                Path(self.options.from_savepoint),
                self.plan,
                self.layout.partitions,
                self.options.allow_non_restored_state,
            )
        self.activator = Activator(
            self.plan,
            self.options.bootstrap,
            self.options.state_dir,
            self.layout,
            self.fingerprint,
            self.exactly_once,
            seed,
        )
        group = self.plan.prefix
        conf = kafka.consumer_config(self.options.bootstrap, group, settings)
        self._consumer_conf = conf
        self._consumer = self._new_consumer()
        if self.options.bounded:
            source = self.plan.source.topic
            parts = list(range(self.layout.partitions[source]))
            # probed while the consumer joins the group (the join takes seconds)
            self._probe = threading.Thread(
                target=self._probe_ends, args=(settings, source, parts), daemon=True
            )
            self._probe.start()
        self._control = kafka.TopicReader(
            self.options.bootstrap, settings, control_topic(self.plan.prefix)
        )
        self._subscribe()

    def _probe_ends(self, settings: dict[str, Any], source: str, parts: list[int]) -> None:
        try:
            ends = kafka.probe_end_offsets(self.options.bootstrap, settings, source, parts)
        except Exception as exc:  # surfaced by the main loop
            self._callback_error = exc
            return
        self.end_offsets = ends
        self._ends_known = True

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
        for tp, rt in list(self.tasks.items()):
            self.tasks.pop(tp)
            self._release(rt, self._consumer)
        try:
            self._consumer.close()
        except Exception as exc:
            log.debug("consumer close: %s", exc)
        self.group_watch.reset()
        self._consumer = self._new_consumer()
        self._subscribe()

    # -- rebalance ----------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Take the assigned partitions paused: each becomes a task in the "restoring" state,
        restored by the main loop (:meth:`_restore_pending`), never inside this callback, so
        a slow restore (changelog read, lock wait, fencing) neither stalls the rebalance nor
        blocks the tasks already running."""
        try:
            for tp in partitions:
                self._pending[(tp.topic, tp.partition)] = (time.monotonic(), 0.0)
            consumer.assign(partitions)
            kafka.pause(consumer, [(tp.topic, tp.partition) for tp in partitions])
            self.assigned_once = True
            self._empty_since = None if partitions else time.monotonic()
        except Exception as exc:  # surfaced by the main loop; rdkafka swallows callback errors
            self._callback_error = exc
            self._pending.clear()
            consumer.assign([])

    def _activate(self, topic: str, partition: int, lock_wait_s: float = 20.0) -> TaskRuntime:
        assert self.activator is not None
        started = time.monotonic()
        rt, how, committed = self.activator.activate(self._consumer, topic, partition, lock_wait_s)
        if rt.task.stopped_by and rt.task.stopped_by != self.stop_request:
            rt.task.resume_after_stop()
        rt.open()
        # logged before a stop or end of input checkpoints the task: tools read the log in order
        log.info(
            "task %s restored (%s) at position %s in %.3f s",
            rt.task.id,
            how,
            committed,
            time.monotonic() - started,
        )
        self._stop_if_source(rt)
        self._end_if_done(rt)
        return rt

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            self._migrated.pop((tp.topic, tp.partition), None)
            self._pending.pop((tp.topic, tp.partition), None)
            rt = self.tasks.pop((tp.topic, tp.partition), None)
            if rt is not None:
                self._release(rt, consumer)
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
            rt.store.close()
            self._keep_counters(rt)

    # -- loop ---------------------------------------------------------------------------------

    def run(self) -> Status:
        """Run until stopped (or, with ``bounded``, until every task finished); returns the
        final status."""
        self._move(RunnerState.RUNNING)
        try:
            self._setup()
            self._loop()
            self._move(RunnerState.STOPPING)
            self._checkpoint_all(force=True)
            if self.stop_request:
                self._ack(self.stop_request)
        except BaseException:
            self.state = RunnerState.FAILED
            self._abort_all()
            raise
        finally:
            self._close()
        self._move(RunnerState.STOPPED)
        return self.status()

    def _loop(self) -> None:
        interval = self.spec.checkpoint.interval_ms
        last_tick = last_status = now_ms()
        while not self.stop_requested:
            msgs = self._consumer.consume(10_000, 0.05)
            if self._callback_error is not None:
                raise self._callback_error
            if msgs:
                self._dispatch(msgs)
            if self._pending:
                self._restore_pending()
            elif self._acks_due:  # every assigned task restored: all of them checkpoint
                self._checkpoint_all(force=True)
                for request_id in self._acks_due:
                    self._ack(request_id)
                self._acks_due.clear()
            now = now_ms()
            if now - last_tick >= 100:
                last_tick = now
                for rt in list(self.tasks.values()):
                    rt.task.tick()
                    rt.producer.poll()
                self._poll_control()
                if self.options.bounded:
                    for rt in list(self.tasks.values()):
                        self._end_if_done(rt)
                if self.group_watch.stuck():
                    self._rejoin(f"consumer group join stuck in state {self.group_watch.state!r}")
                if self._migrated:
                    self._check_migrated()
            if any(now - rt.last_checkpoint_ms >= interval for rt in self.tasks.values()):
                self._checkpoint_all(force=False)
            if self.on_status and now - last_status >= self.options.status_interval_ms:
                last_status = now
                self.on_status(self.status())
            if (self.options.bounded or self.stop_request) and self._all_finished():
                return

    def _dispatch(self, msgs: list[Any]) -> None:
        batches: dict[tuple[str, int], list[Any]] = {}
        events: list[Any] = []
        for m in msgs:
            if m.error() is not None:
                events.append(m)  # handled after the records that preceded them
                continue
            tp = (m.topic(), m.partition())
            batch = batches.get(tp)
            if batch is None:
                batches[tp] = [m]
            else:
                batch.append(m)
        for tp, batch in batches.items():
            rt = self.tasks.get(tp)
            if rt is None or rt.task.finished or rt.task.stopped_by:
                continue
            if rt.task.stage.is_source:
                batch = self._source_hooks(tp, rt, batch)
                if not batch:
                    continue
            try:
                rt.task.process(batch)
            except TransactionError as exc:
                self._rewind(tp, rt, exc)
                continue
            rt.outputs_since_commit += len(batch)
            self._end_if_done(rt)
            if self.tasks.get(tp) is not rt:
                continue  # rewound while ending: the fresh task resumes from its checkpoint
            if rt.task.finished or rt.task.stopped_by:
                # commit a finished task's last outputs now: under read_committed, downstream
                # tasks see them only then (no waiting for the checkpoint interval)
                self._checkpoint_task(rt)
        for event in events:
            self._on_event(event)

    def _source_hooks(self, tp: tuple[str, int], rt: TaskRuntime, batch: list[Any]) -> list[Any]:
        """Test-only hooks of :mod:`kstream.faults` on a batch of source records: a kill at an
        offset, and holding the partition at ``KSTREAM_HOLD_AT`` (records from there on are
        left unprocessed; the task's position stays at the hold offset)."""
        faults.source_batch(batch[0].offset(), batch[-1].offset())
        hold = faults.HOLD_AT
        if hold is None or batch[-1].offset() < hold:
            return batch
        kafka.pause(self._consumer, [tp])
        if tp not in self._held:
            self._held.add(tp)
            log.info("task %s held at offset %d (KSTREAM_HOLD_AT)", rt.task.id, hold)
        return [m for m in batch if m.offset() < hold]

    def _end_if_done(self, rt: TaskRuntime) -> None:
        """Bounded: a source task ends once its position reaches the end offset found at start."""
        task = rt.task
        if (
            self.options.bounded
            and task.stage.is_source
            and not task.finished
            and not task.stopped_by
            and self._ends_known
            and (task.position or 0) >= self.end_offsets.get(task.partition, 0)
        ):
            task.end_of_input()
            rt.outputs_since_commit += 1
            self._checkpoint_task(rt)

    def _rewind(self, tp: tuple[str, int], rt: TaskRuntime, exc: Exception) -> None:
        """A fenced, aborted or timed-out transaction: drop the task's uncommitted work, re-create
        its producer (fencing any zombie) and resume from its last checkpoint.

        Raises:
            TransactionError: the task failed more than :data:`MAX_REWINDS` times in a row.
        """
        if self.tasks.get(tp) is not rt:
            return  # a stale runtime: its task was rewound or released already
        if isinstance(exc, TaskMigratedError):
            self._drop_migrated(tp, rt, exc)
            return
        log.warning("task %s: %s; rewinding to checkpoint %s", rt.task.id, exc, rt.checkpoint_id)
        self.rewinds += 1
        in_row = self._rewinds_in_row[tp] = self._rewinds_in_row.get(tp, 0) + 1
        _discard(rt)
        self._keep_counters(rt)
        if in_row > MAX_REWINDS:
            del self.tasks[tp]
            raise TransactionError(
                f"task {rt.task.id}: {in_row} transaction failures in a row, the last: {exc}"
            )
        fresh = self._activate(*tp)
        self.tasks[tp] = fresh
        kafka.seek(self._consumer, tp[0], tp[1], fresh.task.position)

    def _drop_migrated(self, tp: tuple[str, int], rt: TaskRuntime, exc: Exception) -> None:
        """A newer owner fenced the task (this member was a zombie): drop it without touching
        its transactional id again, which would fence the new owner in turn. The group's
        revocation follows; if the partition is still assigned here after
        :data:`MIGRATED_REJOIN_S`, the member rejoins the group."""
        log.warning("task %s: fenced by a newer owner (%s); dropped here", rt.task.id, exc)
        _discard(rt)
        del self.tasks[tp]
        self._keep_counters(rt)
        self._migrated[tp] = time.monotonic()

    def _defer(self, key: tuple[str, int], exc: Exception) -> None:
        """Keep an assigned task waiting for its restore: its state is locked by a previous
        owner on this machine (maybe frozen), or its producer could not be fenced in yet."""
        now = time.monotonic()
        since, last = self._pending.get(key, (now, 0.0))
        stage = self.plan.stage_of_topic(key[0]).index
        if not isinstance(exc, StateLockedError):
            log.warning("task %s:%s activation failed, retrying: %s", stage, key[1], exc)
        elif last == 0.0:  # logged once, not at every attempt
            log.info("task %s:%s waits for its local state: %s", stage, key[1], exc)
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
        due = [(last, key) for key, (_since, last) in self._pending.items()]
        due = [item for item in due if now - item[0] >= PENDING_RETRY_S]
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
        del self._pending[key]
        self.tasks[key] = rt
        kafka.seek(self._consumer, key[0], key[1], rt.task.position)
        kafka.resume(self._consumer, [key])

    def _check_migrated(self) -> None:
        """Rejoin when a dropped task's partition was not revoked in time (a false alarm)."""
        now = time.monotonic()
        if any(now - since > MIGRATED_REJOIN_S for since in self._migrated.values()):
            fenced = sorted(self._migrated)
            self._migrated.clear()
            self._rejoin(f"fenced tasks {fenced} still assigned here")

    def _on_event(self, msg: Any) -> None:
        if kafka.is_partition_eof(msg):
            rt = self.tasks.get((msg.topic(), msg.partition()))
            if rt is not None:
                self._end_if_done(rt)
            return
        error = kafka.message_error(msg)
        if error is not None:
            log.warning("%s", error)

    def _all_finished(self) -> bool:
        if not self.assigned_once or self._migrated or self._pending:
            return False
        if not self.tasks:
            # A member assigned nothing by a completed rebalance (more processes than
            # partitions) leaves after a grace period instead of waiting for a job it takes no
            # part in. A member whose partitions were revoked (e.g. evicted after the broker
            # stalled longer than session.timeout.ms) waits for its next assignment instead.
            return (
                self._empty_since is not None
                and time.monotonic() - self._empty_since > EMPTY_MEMBER_GRACE_S
            )
        return all(rt.task.finished or rt.task.stopped_by for rt in self.tasks.values())

    # -- control channel ----------------------------------------------------------------------

    def _poll_control(self) -> None:
        for msg in self._control.poll():
            if msg.get("created_ms", 0) < self._started_ms or msg.get("type") == "ack":
                continue
            if msg.get("type") == "checkpoint":
                self._acks_due.append(msg["id"])
            elif msg.get("type") == "stop" and self.stop_request is None:
                log.info("stop-with-savepoint %s requested", msg["id"])
                self.stop_request = msg["id"]
                for rt in self.tasks.values():
                    self._stop_if_source(rt)

    def _stop_if_source(self, rt: TaskRuntime) -> None:
        task = self.stop_request and rt.task
        if task and task.stage.is_source and not task.finished and not task.stopped_by:
            task.stop(self.stop_request or "")
            rt.outputs_since_commit += 1

    def _ack(self, request_id: str) -> None:
        """Acknowledge a savepoint request once every task here has checkpointed: each task's
        committed state is first copied by this process, the owner of its database, to a
        snapshot (:meth:`TaskStore.snapshot`); the acknowledgement names each snapshot with the
        checkpoint it holds, which ``savepoint create`` verifies before using it."""
        snapshots = []
        for rt in sorted(self.tasks.values(), key=lambda r: r.task.id):
            if rt.state == TxnState.ABORTED or rt.committed_position is None:
                continue  # nothing committed here: the savepoint reads no state of this task
            path = snapshot_path(self.options.state_dir, self.plan.prefix, request_id, rt.task.id)
            rt.store.snapshot(path / "db")
            snapshots.append(
                {
                    "task": rt.task.id,
                    "path": str(path.resolve()),
                    "position": rt.committed_position,
                    "checkpoint_id": rt.checkpoint_id,
                }
            )
        tasks = sorted(rt.task.id for rt in self.tasks.values())
        kafka.produce_json(
            self.options.bootstrap,
            self.spec.kafka,
            control_topic(self.plan.prefix),
            {"type": "ack", "id": request_id, "tasks": tasks, "snapshots": snapshots},
        )

    def _checkpoint_all(self, force: bool) -> None:
        now = now_ms()
        interval = self.spec.checkpoint.interval_ms
        for rt in list(self.tasks.values()):
            if force or now - rt.last_checkpoint_ms >= interval:
                self._checkpoint_task(rt, now)

    def _checkpoint_task(self, rt: TaskRuntime, now: int | None = None) -> None:
        if rt.state != TxnState.OPEN:
            return
        tp = (rt.task.stage.input_topic, rt.task.partition)
        try:
            if run_checkpoint(rt, self._consumer, now_ms() if now is None else now):
                self.checkpoints += 1
                self._rewinds_in_row.pop(tp, None)
        except TransactionError as exc:
            self._rewind(tp, rt, exc)

    def _abort_all(self) -> None:
        for rt in self.tasks.values():
            rt.producer.abort()

    def _close(self) -> None:
        for rt in list(self.tasks.values()):
            rt.producer.flush_quietly()
            rt.store.close()
        self._accumulate_counters()
        self.tasks.clear()
        if self._control is not None:
            self._control.close()
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception as exc:
                log.debug("consumer close: %s", exc)

    def _accumulate_counters(self) -> None:
        for rt in self.tasks.values():
            self._keep_counters(rt)

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

    def status(self) -> Status:
        """The current :class:`Status` (counters of live tasks plus those released)."""
        sums = dict(self.totals)
        for rt in self.tasks.values():
            for key, value in rt.task.counters.items():
                sums[key] += value
        watermarks = {rt.task.id: rt.task.watermark for rt in self.tasks.values()}
        finished = sum(1 for rt in self.tasks.values() if rt.task.finished)
        return Status(
            time.monotonic() - self._started,
            sums["in"],
            sums["out"],
            sums["late"],
            sums["skipped"],
            sums["dead_letter"],
            len(self.tasks),
            finished,
            watermarks,
            0,
            self.checkpoints,
        )
