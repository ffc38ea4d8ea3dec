"""``kstream status``: per task, the committed offsets, lag, last checkpoint, state size and owner.

Committed offsets and end offsets come from the broker; the last checkpoint (id, time) and the
state size from the local state directory (read-only, without taking the RocksDB lock); each
task's checkpointed watermark, and what holds it back (:mod:`kstream.runtime.holds`), from its
checkpoint metadata. The owner comes from the job's status topic (``<group>.status``,
:mod:`kstream.runtime.status_read`): the ``<host>:<pid>`` of the process whose fresh record lists
the task, with the task's live watermark and input rate; for the tasks no fresh record lists
(the job is not running, or ran without a status topic), from the consumer group's description
(the slow part, skipped when the status records account for every task). On this machine,
``locked here`` is added when a process holds the task's RocksDB lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kstream.errors import StateError
from kstream.graph.plan import Plan, task_id
from kstream.io import kafka
from kstream.runtime.holds import WatermarkHold, watermark_holds
from kstream.runtime.status_read import live_tasks, read_statuses
from kstream.runtime.status_record import TaskRow, status_topic
from kstream.state.store import dir_size, is_locked, read_meta, task_dir


@dataclass(frozen=True)
class TaskStatus:
    """One task's status (a row per input topic of the task); offsets are next-offset positions,
    times epoch ms.

    ``lag`` is ``end - committed``, None when nothing is committed or when ``committed`` is past
    ``end`` (then ``end_note`` says why). ``watermark_ms`` is the task's checkpointed watermark
    (None: no checkpoint here; ``-2**63``: none yet). ``held_back_by`` and ``hint`` name what keeps
    that watermark at -infinity (:class:`~kstream.runtime.holds.WatermarkHold`), else None.
    With a fresh status record listing the task, ``owner`` is that process's ``<host>:<pid>``,
    ``watermark_ms`` its live watermark (when it has one) and ``in_per_s`` the records per second
    it read over its last status interval (None: no fresh record lists the task).
    """

    task: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int | None
    checkpoint_id: int | None
    checkpoint_time_ms: int | None
    state_bytes: int
    owner: str
    watermark_ms: int | None = None
    end_note: str | None = None
    held_back_by: str | None = None
    hint: str | None = None
    in_per_s: float | None = None


#: Why a committed offset can be past the end offset the broker reports (``end_note``).
COMMITTED_PAST_END = (
    "committed is past the end offset the broker reported, so the lag is unknown: Tansu reports "
    "the base offset of a partition's last record batch as its end, and a task that read the "
    "whole batch commits past it; on Kafka, the topic was deleted and re-created, or its log "
    "truncated (unclean leader election), after the commit"
)


@dataclass(frozen=True)
class LocalTask:
    """What this machine's state directory holds of a task: its checkpoint metadata (None: no
    checkpoint), its files' size in bytes and whether a process here holds its lock."""

    meta: dict[str, Any] | None = None
    state_bytes: int = 0
    locked: bool = False


def read_local(path: Path) -> LocalTask:
    """The :class:`LocalTask` of the task directory ``path`` (read-only, no lock taken)."""
    try:
        meta = read_meta(path)
    except StateError:
        meta = None
    size = dir_size(path) if path.exists() else 0
    return LocalTask(meta, size, is_locked(path))


def task_statuses(
    plan: Plan,
    bootstrap: str,
    state_dir: str,
    group: str | None = None,
    now_ms: int | None = None,
) -> list[TaskStatus]:
    """The status of every task of the job (see the module docstring); ``now_ms`` (epoch ms,
    default: now) decides which status records are fresh.

    Raises:
        BrokerError: the broker is unreachable.
    """
    settings = dict(plan.spec.kafka)
    group_id = group or plan.prefix
    topics = kafka.Admin(bootstrap, settings).topics()
    counts = {stage.id: topics.get(stage.input_topic, 0) for stage in plan.stages}
    local = {
        task_id(stage, p): read_local(task_dir(state_dir, plan.prefix, stage.id, p))
        for stage in plan.stages
        for p in range(counts[stage.id])
    }
    holds = watermark_holds(plan, {t: x.meta for t, x in local.items()}, counts)
    live = _live(bootstrap, settings, group_id, topics, now_ms)
    # the group's description (up to 2 s) only for the tasks no fresh status record lists
    members = {} if set(local) <= set(live) else kafka.group_members(bootstrap, settings, group_id)
    consumer = _offsets_consumer(bootstrap, group_id, settings)
    out: list[TaskStatus] = []
    try:
        for stage in plan.stages:  # a task reading several topics: a row per topic
            for topic in stage.input_topics:
                parts = list(range(topics.get(topic, 0)))
                offsets = _offsets(consumer, topic, parts)
                for p in parts:
                    task = task_id(stage, p)
                    here, member = local.get(task, LocalTask()), members.get((topic, p))
                    found = (here, member, holds.get(task), live.get(task))
                    out.append(status_row(task, topic, p, offsets[p], *found))
    finally:
        consumer.close()
    return out


def _offsets(consumer: Any, topic: str, parts: list[int]) -> dict[int, tuple[int | None, int]]:
    """Partition -> ``(committed, end)`` of ``topic`` (no request without partitions)."""
    if not parts:
        return {}
    committed = kafka.committed_offsets(consumer, topic, parts)
    ends = kafka.end_offsets(consumer, topic, parts)
    return {p: (committed[p], ends[p]) for p in parts}


def _live(
    bootstrap: str,
    settings: dict[str, Any],
    group_id: str,
    topics: dict[str, int],
    now_ms: int | None,
) -> dict[str, tuple[str, TaskRow]]:
    """:func:`~kstream.runtime.status_read.live_tasks` of the group's status topic (empty when
    the topic is not among ``topics``)."""
    if status_topic(group_id) not in topics:
        return {}
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return live_tasks(read_statuses(bootstrap, settings, group_id), now)


def _offsets_consumer(bootstrap: str, group_id: str, settings: dict[str, Any]) -> Any:
    """A consumer of the group reading committed and end offsets."""
    conf = kafka.consumer_config(bootstrap, group_id, settings)
    # lag against the log end offset, as kafka-consumer-groups reports it: a read_committed end
    # stops at open transactions (and reads 0 for transactional topics on Tansu)
    conf["isolation.level"] = "read_uncommitted"
    return kafka.new_consumer(conf)


def status_row(
    task: str,
    topic: str,
    partition: int,
    offsets: tuple[int | None, int],
    local: LocalTask,
    member: str | None = None,
    hold: WatermarkHold | None = None,
    live: tuple[str, TaskRow] | None = None,
) -> TaskStatus:
    """A task's row from its ``(committed, end)`` offsets, its local state, the group member
    holding its partition, what holds its watermark back and ``live``: ``(<host>:<pid>, row)``
    of the fresh status record listing the task (see :func:`_known`)."""
    committed, end = offsets
    known = _known(local, member, live)
    past_end = committed is not None and committed > end
    owner = ", ".join(x for x in (known["owner"] or "", "locked here" if local.locked else "") if x)
    return TaskStatus(
        task,
        topic,
        partition,
        committed,
        end,
        None if committed is None or past_end else end - committed,
        known["checkpoint_id"],
        known["checkpoint_time_ms"],
        known["state_bytes"],
        owner or "-",
        known["watermark_ms"],
        COMMITTED_PAST_END if past_end else None,
        hold.held_back_by if hold else None,
        hold.hint if hold else None,
        known["in_per_s"],
    )


def _known(
    local: LocalTask, member: str | None, live: tuple[str, TaskRow] | None
) -> dict[str, Any]:
    """A row's owner, checkpoint, state size, watermark and rate: from the local state and the
    group member, then from the live record where it tells more (its owner; its watermark
    when it has one; its checkpoint when newer than the local one; its state size when there is
    none here; its rate)."""
    meta = local.meta or {}
    watermark = meta.get("watermark")
    known: dict[str, Any] = {
        "owner": member,
        "checkpoint_id": meta.get("checkpoint_id"),
        "checkpoint_time_ms": meta.get("time_ms"),
        "state_bytes": local.state_bytes,
        "watermark_ms": None if watermark is None else int(watermark),
        "in_per_s": None,
    }
    if live is None:
        return known
    owner, row = live
    known.update(
        owner=owner, in_per_s=row.in_per_s, state_bytes=local.state_bytes or row.state_bytes
    )
    if row.watermark_ms is not None:
        known["watermark_ms"] = row.watermark_ms
    if row.checkpoint_id is not None and (known["checkpoint_id"] or 0) < row.checkpoint_id:
        known.update(checkpoint_id=row.checkpoint_id, checkpoint_time_ms=row.checkpoint_ms)
    return known
