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
from dataclasses import replace
from pathlib import Path
from typing import Any

from kstream import faults
from kstream.checkpoint.steps import TaskRuntime, TxnState, run_checkpoint
from kstream.errors import StateError, TransactionError
from kstream.graph.plan import Plan
from kstream.io import kafka
from kstream.pipeline.checks import check_imports
from kstream.pipeline.view import fingerprint
from kstream.runtime.activation import Activator
from kstream.runtime.backlog import BacklogDrain
from kstream.runtime.bounded import BoundedRun
from kstream.runtime.broadcast import BroadcastTables
from kstream.runtime.control import acknowledge, control_topic
from kstream.runtime.group_watch import GroupWatch
from kstream.runtime.lifecycle import ALLOWED_MOVES, RunnerState, RunOptions, Status
from kstream.runtime.membership import GroupMembership
from kstream.runtime.metrics import MetricsExporter
from kstream.runtime.progress import ProgressMeter
from kstream.runtime.restore import check_transaction_timeout
from kstream.runtime.run_status import RunStatus
from kstream.runtime.status_publish import StatusPublisher
from kstream.runtime.task import COUNTERS
from kstream.runtime.topology import TopicLayout, ensure_topics
from kstream.runtime.watermark_watch import WatermarkWatch
from kstream.state.cache import CacheBudget
from kstream.time.timestamps import now_ms

log = logging.getLogger("kstream.runtime.runner")

#: seconds a bounded member with no assigned partitions waits before it exits
EMPTY_MEMBER_GRACE_S = 10.0


class Runner(GroupMembership, BoundedRun, BacklogDrain, RunStatus):
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
        #: the process's broadcast tables (None: the job has none, or before the setup)
        self.broadcast: BroadcastTables | None = None
        self.end_offsets: dict[tuple[str, int], int] = {}  # (source topic, partition) -> end
        self._ends_known = False
        self._probe: threading.Thread | None = None
        self.assigned_once = False
        self.stop_requested = False
        self.stop_request: str | None = None
        self._started_ms = now_ms()
        self._control: Any = None
        self.group_watch = GroupWatch()
        self.activator: Activator | None = None
        #: the process's state cache, shared by every task's stores (docs/state.md)
        self.budget = CacheBudget(options.state_cache_bytes or self.spec.state.cache_bytes)
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
        self._assigned: dict[tuple[str, int], set[str]] = {}
        #: checkpoint requests of the control channel to acknowledge once no task is restoring
        self._acks_due: list[str] = []
        #: source partitions paused at ``KSTREAM_HOLD_AT`` (test hook)
        self._held: set[tuple[str, int]] = set()
        self._throttled: set[tuple[str, int]] = set()
        self._quiet: set[tuple[str, int]] | None = None
        self._deferred: list[Any] = []
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.status_publisher: StatusPublisher | None = None
        #: seconds the loop waited in consume calls that returned nothing (the busy ratio)
        self.idle_s = 0.0
        #: node -> (records in, out, late) of the tasks that left this process
        self.node_totals: dict[str, tuple[int, int, int]] = {}
        self._started = time.monotonic()
        self._consumer: Any = None
        self._empty_since: float | None = None
        self._callback_error: Exception | None = None
        #: (source topic, partition) -> the offset its task started at (0: the beginning)
        self.start_positions: dict[tuple[str, int], int] = {}
        self.watch = WatermarkWatch(plan, options.held_watermark_warning_ms)
        self.progress = ProgressMeter()
        self.metrics = (
            MetricsExporter(self.spec.name, plan.prefix)
            if options.metrics_port is not None
            else None
        )

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
        check_imports(self.spec)  # python: references, reported with file:line
        if self.exactly_once:
            check_transaction_timeout(settings, self.spec.checkpoint.interval_ms)
        if self.metrics is not None and self.options.metrics_port is not None:
            self.metrics.start(self.options.metrics_port)
        if self.options.from_savepoint:  # fail fast, before any broker traffic
            from kstream.savepoint import open_savepoint

            open_savepoint(Path(self.options.from_savepoint))
        admin = kafka.Admin(self.options.bootstrap, settings)
        self.layout = ensure_topics(admin, self.plan)
        if self.plan.broadcast_tables:  # loaded before the group: lookups find the whole table
            self.broadcast = BroadcastTables(
                self.plan,
                self.options.bootstrap,
                self.options.state_dir,
                self.budget,
                self.layout.partitions,
            )
            self.broadcast.load()
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
            self.budget,
            keep_alive=self._keep_alive,
            tables=self.broadcast.tables if self.broadcast is not None else None,
        )
        group = self.plan.prefix
        conf = kafka.consumer_config(self.options.bootstrap, group, settings)
        self._consumer_conf = conf
        self._consumer = self._new_consumer()
        if self.options.from_savepoint:
            from kstream.runtime.start_checks import check_savepoint_target

            check_savepoint_target(self._consumer, self.options, self.plan, self.layout)
        if self.options.bounded:
            self._start_probe(settings, self.layout)
        self._control = kafka.TopicReader(
            self.options.bootstrap, settings, control_topic(self.plan.prefix)
        )
        self.status_publisher = StatusPublisher(self.plan, self.options.bootstrap, settings)
        if self.options.siblings is not None:  # --processes: the children join together
            self.options.siblings.rendezvous()
        self._subscribe()

    def _activate(self, stage_id: str, partition: int, lock_wait_s: float = 20.0) -> TaskRuntime:
        assert self.activator is not None
        started = time.monotonic()
        rt, how, offsets = self.activator.activate(self._consumer, stage_id, partition, lock_wait_s)
        committed = offsets[rt.task.stage.input_topic] if len(offsets) == 1 else offsets
        if rt.task.stage.is_source:
            self.start_positions.update(((t, partition), off or 0) for t, off in offsets.items())
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
        if rt.task.ending is not None:
            log.info("task %s resumes its end of input at %s", rt.task.id, rt.task.ending.state())
        self._stop_if_source(rt)
        self._end_if_done(rt)
        return rt

    # -- loop ---------------------------------------------------------------------------------

    def run(self) -> Status:
        """Run until stopped (or, with ``bounded``, until every task finished); returns the
        final status."""
        self._move(RunnerState.RUNNING)
        try:
            self._setup()
            self._loop()
            self._note_finished_group()
            self._move(RunnerState.STOPPING)
            self._checkpoint_all(force=True)
            if self.stop_request:
                self._ack(self.stop_request)
            self.watch.check([rt.task for rt in self.tasks.values()], now_ms())
            final = self.status()  # with the tasks' final positions and watermarks
        except BaseException:
            self.state = RunnerState.FAILED
            self._abort_all()
            raise
        finally:
            self._close()
        self._move(RunnerState.STOPPED)
        return replace(final, phase=self._phase(), elapsed_s=time.monotonic() - self._started)

    def _loop(self) -> None:
        interval = self.spec.checkpoint.interval_ms
        last_tick = last_status = now_ms()
        ending = backlog = False
        broadcast = self.broadcast
        while not self.stop_requested:
            waited = time.monotonic()
            msgs = self._consumer.consume(10_000, 0.0 if ending or backlog else 0.05)
            if not msgs:  # the busy ratio: time in consume calls that found nothing is idle
                self.idle_s += time.monotonic() - waited
            if broadcast is not None:  # table changes first: processing time, as they arrive
                broadcast.poll()
            if self._deferred:  # returned by a keep-alive poll during a restore: first
                msgs, self._deferred = self._deferred + msgs, []
            if self._callback_error is not None:
                raise self._callback_error
            if msgs:
                self._dispatch(msgs)
            backlog = self._drain_backlogs()
            ending = self._end_slices()
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
                self._tick_tasks()
                self.watch.tick([rt.task for rt in self.tasks.values()], now)
                self._poll_control()
                if self.options.bounded:
                    for rt in list(self.tasks.values()):
                        self._end_if_done(rt)
                if self.group_watch.stuck():
                    self._rejoin(f"consumer group join stuck in state {self.group_watch.state!r}")
                if self._migrated:
                    self._check_migrated()
            if self.budget.pressure:  # dirty state fills the cache: flush it now
                self._checkpoint_all(force=True)
            elif any(now - rt.last_checkpoint_ms >= interval for rt in self.tasks.values()):
                self._checkpoint_all(force=False)
            if now - last_status >= self.options.status_interval_ms:
                last_status = now
                self._publish_snapshot(now)
                if self.on_status:
                    self.on_status(self.status())
            if self._run_done():
                return

    def _dispatch(self, msgs: list[Any]) -> None:
        tasks_before = dict(self.tasks)  # a task rewound meanwhile ignores this batch's events
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
            key = self._key(*tp)
            rt = self.tasks.get(key)
            if rt is None or rt.task.finished or rt.task.stopped_by or rt.task.ending:
                continue
            if self.options.bounded and len(rt.task.inputs) > 1 and not rt.extra.get("ends"):
                self._set_ends(rt)  # a bounded merge of several inputs needs their ends first
                if rt.task.finished:
                    continue
            if faults.SOURCE_HOOKS and rt.task.stage.is_source:
                batch = self._source_hooks(tp, rt, batch)
                if not batch:
                    continue
            try:
                rt.task.process(batch)
            except TransactionError as exc:
                self._rewind(key, rt, exc)
                continue
            rt.outputs_since_commit += len(batch)
            self._after_batch(key, rt)
        for event in events:
            self._on_event(event, tasks_before)

    def _tick_tasks(self) -> None:
        """Each task's periodic work (idle timeouts, processing time) and its producer's
        delivery callbacks; a task whose transaction failed meanwhile (fenced) is rewound. A
        marker sent by the tick (a partition going idle) is an output to commit: without it, a
        task that never read a record would never commit its ``idle`` marker."""
        for key, rt in list(self.tasks.items()):
            try:
                marker = rt.task.markers.last
                rt.task.tick()
                if rt.task.markers.last is not marker:
                    rt.outputs_since_commit += 1
                rt.producer.poll()
            except TransactionError as exc:
                self._rewind(key, rt, exc)

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

    def _on_event(self, msg: Any, tasks_before: dict[tuple[str, int], TaskRuntime]) -> None:
        """A consumer event, after the records fetched before it (``tasks_before``: the tasks
        when they were). Partition EOF in a bounded run: the source input was delivered up to
        the EOF offset (:meth:`~kstream.runtime.task.Task.reached_partition_end`), unless its
        task was rewound since or the partition is held (``KSTREAM_HOLD_AT``)."""
        if kafka.is_partition_eof(msg):
            tp = (msg.topic(), msg.partition())
            key = self._key(*tp)
            rt = self.tasks.get(key)
            if rt is not None and not (rt.task.finished or rt.task.stopped_by):
                if (
                    self.options.bounded
                    and tasks_before.get(key) is rt
                    and msg.offset() >= 0
                    and tp not in self._held
                ):
                    rt.task.reached_partition_end(msg.topic(), msg.offset())
                # ending a source input drains the merger: an input paused while it buffered
                # much may be empty now and must be resumed (or the task waits for it forever)
                self._after_batch(key, rt)
            return
        error = kafka.message_error(msg)
        if error is not None:
            log.warning("%s", error)

    def _run_done(self) -> bool:
        """Whether the loop ends: bounded or stopping, every task finished; a bounded child
        of ``--processes`` also waits for its siblings to finish theirs, so none leaves the
        group while the others still read (:mod:`kstream.runtime.siblings`)."""
        if not (self.options.bounded or self.stop_request):
            return False
        finished = self._all_finished()
        siblings = self.options.siblings
        if siblings is None or self.stop_request:
            return finished
        return siblings.all_done(finished)

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
        if task and task.stage.is_source and not (task.finished or task.stopped_by or task.ending):
            task.stop(self.stop_request or "")
            rt.outputs_since_commit += 1

    def _ack(self, request_id: str) -> None:
        """Acknowledge a savepoint request once every task here has checkpointed
        (:func:`kstream.runtime.control.acknowledge`)."""
        acknowledge(
            request_id, list(self.tasks.values()), self.options, self.plan.prefix, self.spec.kafka
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
        key = (rt.task.stage.id, rt.task.partition)
        started = time.monotonic()
        try:
            if run_checkpoint(rt, self._consumer, now_ms() if now is None else now):
                self.checkpoints += 1
                self._rewinds_in_row.pop(key, None)
                if self.metrics is not None:
                    self.metrics.checkpoint_seconds.observe(time.monotonic() - started)
                    self.metrics.checkpoint_bytes.observe(rt.last_checkpoint_bytes)
        except TransactionError as exc:
            self._rewind(key, rt, exc)

    def _abort_all(self) -> None:
        for rt in self.tasks.values():
            rt.producer.abort()

    def _close(self) -> None:
        for rt in list(self.tasks.values()):
            rt.producer.flush_quietly()
            rt.close_state()
        self._accumulate_counters()
        self.tasks.clear()
        if self.broadcast is not None:
            self.broadcast.close()
        if self._control is not None:
            self._control.close()
        if self.status_publisher is not None:
            self.status_publisher.close()
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception as exc:
                log.debug("consumer close: %s", exc)

    def _accumulate_counters(self) -> None:
        for rt in self.tasks.values():
            self._keep_counters(rt)
