"""The checkpoint commit of one task, as a list of named steps (DESIGN.md section 4).

1. ``flush_outputs``: send a watermark marker if the watermark moved (outputs are produced into
   the open transaction as they are emitted);
2. ``produce_changelog``: each changed state entry, once, to ``<pipeline>.<op>.changelog``, and
   the task metadata to ``<pipeline>.<stage>.task.changelog``;
3. ``send_offsets``: the input position joins the transaction (exactly-once only);
4. ``write_prepared``: the change set and metadata go durably to local disk;
5. ``commit``: the Kafka transaction commits (at-least-once: flush, then commit offsets) — the
   commit is the decision record;
6. ``apply_local``: the same changes and the input position go to RocksDB in one WriteBatch.

A crash between 5 and 6 is repaired on restart: the prepared set is applied iff the group's
committed offset equals its position (:mod:`kstream.runtime.restore`).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kstream import faults
from kstream.checkpoint.meta import META_KEY
from kstream.errors import StateError
from kstream.graph.plan import task_changelog_topic
from kstream.io.kafka import TaskProducer, commit_offsets
from kstream.state.store import Changes, TaskStore

if TYPE_CHECKING:
    from kstream.runtime.task import Task

log = logging.getLogger(__name__)


class TxnState(enum.Enum):
    """Lifecycle of a task's transaction."""

    READY = "ready"
    OPEN = "open"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


_ALLOWED = {
    TxnState.READY: {TxnState.OPEN},
    TxnState.OPEN: {TxnState.PREPARED, TxnState.ABORTED},
    TxnState.PREPARED: {TxnState.COMMITTED, TxnState.ABORTED},
    TxnState.COMMITTED: {TxnState.OPEN},
    TxnState.ABORTED: {TxnState.OPEN},
}


@dataclass
class TaskRuntime:
    """A task with its store, producer and checkpoint bookkeeping (owned by the runner)."""

    task: Task
    store: TaskStore
    producer: TaskProducer
    pipeline: str
    fingerprint: str
    exactly_once: bool
    checkpoint_id: int = 0
    committed_position: int | None = None
    #: the committed position of every input topic (the first one is ``committed_position``)
    committed_positions: dict[str, int | None] = field(default_factory=dict)
    last_checkpoint_ms: int = 0
    #: bytes of state changes (keys and values) the last checkpoint wrote
    last_checkpoint_bytes: int = 0
    state: TxnState = TxnState.READY
    outputs_since_commit: int = 0
    committed_counters: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def move(self, new: TxnState) -> None:
        """Change the transaction state; only the transitions above are legal."""
        if new not in _ALLOWED[self.state]:
            raise StateError(f"task {self.task.id}: transaction {self.state.value} -> {new.value}")
        self.state = new

    def close_state(self) -> None:
        """Give the task's state cache back to the process budget and close its RocksDB."""
        self.task.hooks.stores.release()
        self.store.close()

    def open(self) -> None:
        """Begin the next transaction."""
        self.producer.begin()
        self.move(TxnState.OPEN)


@dataclass
class Checkpoint:
    """One checkpoint in progress."""

    rt: TaskRuntime
    consumer: Any
    changes: Changes = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def flush_outputs(cp: Checkpoint) -> None:
    cp.rt.task.flush_markers()
    cp.changes = cp.rt.task.state_changes()
    task = cp.rt.task
    cp.meta = task.meta()
    cp.meta.update(
        checkpoint_id=cp.rt.checkpoint_id + 1,
        pipeline=cp.rt.pipeline,
        fingerprint=cp.rt.fingerprint,
        time_ms=int(time.time() * 1000),
    )


def produce_changelog(cp: Checkpoint) -> None:
    import orjson

    task, emit = cp.rt.task, cp.rt.producer.emit
    for ref in task.stage.stores:
        topic = ref.changelog(cp.rt.pipeline)
        for key, value in cp.changes.get(ref.column_family, ()):
            emit(topic, key, value, 0, None, task.partition)
    meta_topic = task_changelog_topic(cp.rt.pipeline, task.stage.id)
    emit(meta_topic, META_KEY, orjson.dumps(cp.meta), 0, None, task.partition)


def _offsets(task: Task) -> list[tuple[str, int, int]]:
    return [(t, task.partition, p) for t, p in task.positions.items() if p is not None]


def send_offsets(cp: Checkpoint) -> None:
    task = cp.rt.task
    offsets = _offsets(task)
    if cp.rt.exactly_once and offsets:
        cp.rt.producer.send_offsets(offsets, cp.consumer)


def write_prepared(cp: Checkpoint) -> None:
    cp.rt.store.write_prepared(cp.changes, cp.meta)
    cp.rt.move(TxnState.PREPARED)


def commit(cp: Checkpoint) -> None:
    rt, task = cp.rt, cp.rt.task
    rt.producer.commit()
    offsets = _offsets(task)
    if not rt.exactly_once and offsets:
        commit_offsets(cp.consumer, offsets)
    rt.move(TxnState.COMMITTED)
    log.info(
        "task %s checkpoint %d committed at position %s",
        task.id,
        rt.checkpoint_id + 1,
        task.position if len(task.inputs) == 1 else task.positions,
    )


def apply_local(cp: Checkpoint) -> None:
    rt = cp.rt
    rt.store.apply(cp.changes, cp.meta)
    rt.store.drop_prepared()
    rt.task.hooks.stores.checkpointed()
    rt.checkpoint_id += 1
    rt.committed_position = rt.task.position
    rt.committed_positions = dict(rt.task.positions)
    rt.outputs_since_commit = 0


STEPS: list[Callable[[Checkpoint], None]] = [
    flush_outputs,
    produce_changelog,
    send_offsets,
    write_prepared,
    commit,
    apply_local,
]


def run_checkpoint(rt: TaskRuntime, consumer: Any, now_ms: int) -> bool:
    """Run every step for one task; returns False when there was nothing to checkpoint.

    Raises:
        TransactionError: fenced, aborted or timed-out transaction (the caller rewinds).
        StateError: local state could not be written.
    """
    task = rt.task
    moved = task.positions != rt.committed_positions or rt.outputs_since_commit
    if not moved and not task.executor.has_state_changes:
        rt.last_checkpoint_ms = now_ms
        return False
    cp = Checkpoint(rt, consumer)
    for step in STEPS:
        faults.point(step.__name__)
        step(cp)
    rt.committed_counters = dict(task.counters)
    rt.last_checkpoint_ms = now_ms
    rt.last_checkpoint_bytes = sum(
        len(k) + len(v or b"") for entries in cp.changes.values() for k, v in entries
    )
    rt.open()
    return True
