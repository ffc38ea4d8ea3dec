"""``kstream status``: per task, the committed offsets, lag, last checkpoint, state size and owner.

Committed offsets and end offsets come from the broker; the last checkpoint (id, time) and the
state size from the local state directory (read-only, without taking the RocksDB lock); the owner
from the consumer group's description and, on this machine, from the RocksDB lock; each task's
checkpointed watermark, and what holds it back (:mod:`kstream.runtime.holds`), from its checkpoint
metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kstream.errors import StateError
from kstream.graph.plan import Plan, task_id
from kstream.io import kafka
from kstream.runtime.holds import WatermarkHold, watermark_holds
from kstream.state.store import dir_size, is_locked, read_meta, task_dir


@dataclass(frozen=True)
class TaskStatus:
    """One task's status (a row per input topic of the task); offsets are next-offset positions,
    times epoch ms.

    ``lag`` is ``end - committed``, None when nothing is committed or when ``committed`` is past
    ``end`` (then ``end_note`` says why). ``watermark_ms`` is the task's checkpointed watermark
    (None: no checkpoint here; ``-2**63``: none yet). ``held_back_by`` and ``hint`` name what keeps
    that watermark at -infinity (:class:`~kstream.runtime.holds.WatermarkHold`), else None.
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
    plan: Plan, bootstrap: str, state_dir: str, group: str | None = None
) -> list[TaskStatus]:
    """The status of every task of the job.

    Raises:
        BrokerError: the broker is unreachable.
    """
    spec = plan.spec
    settings = dict(spec.kafka)
    group_id = group or plan.prefix
    admin = kafka.Admin(bootstrap, settings)
    topics = admin.topics()
    counts = {stage.id: topics.get(stage.input_topic, 0) for stage in plan.stages}
    local = {
        task_id(stage, p): read_local(task_dir(state_dir, plan.prefix, stage.id, p))
        for stage in plan.stages
        for p in range(counts[stage.id])
    }
    holds = watermark_holds(plan, {t: x.meta for t, x in local.items()}, counts)
    conf = kafka.consumer_config(bootstrap, group_id, settings)
    # lag against the log end offset, as kafka-consumer-groups reports it: a read_committed end
    # stops at open transactions (and reads 0 for transactional topics on Tansu)
    conf["isolation.level"] = "read_uncommitted"
    consumer = kafka.new_consumer(conf)
    owners = kafka.group_members(bootstrap, settings, group_id)
    out: list[TaskStatus] = []
    try:
        for stage in plan.stages:  # a task reading several topics: a row per topic
            for topic in stage.input_topics:
                parts = list(range(topics.get(topic, 0)))
                if not parts:
                    continue
                committed = kafka.committed_offsets(consumer, topic, parts)
                ends = kafka.end_offsets(consumer, topic, parts)
                for p in parts:
                    task = task_id(stage, p)
                    offsets = (committed[p], ends[p])
                    here, member = local.get(task, LocalTask()), owners.get((topic, p))
                    out.append(status_row(task, topic, p, offsets, here, member, holds.get(task)))
    finally:
        consumer.close()
    return out


def status_row(
    task: str,
    topic: str,
    partition: int,
    offsets: tuple[int | None, int],
    local: LocalTask,
    member: str | None = None,
    hold: WatermarkHold | None = None,
) -> TaskStatus:
    """A task's row from its ``(committed, end)`` offsets, its local state, the group member
    holding its partition and what holds its watermark back."""
    committed, end = offsets
    meta = local.meta or {}
    watermark = meta.get("watermark")
    past_end = committed is not None and committed > end
    owner = ", ".join(x for x in (member or "", "locked here" if local.locked else "") if x)
    return TaskStatus(
        task,
        topic,
        partition,
        committed,
        end,
        None if committed is None or past_end else end - committed,
        meta.get("checkpoint_id"),
        meta.get("time_ms"),
        local.state_bytes,
        owner or "-",
        None if watermark is None else int(watermark),
        COMMITTED_PAST_END if past_end else None,
        hold.held_back_by if hold else None,
        hold.hint if hold else None,
    )
