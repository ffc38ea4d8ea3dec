"""``kstream status``: per task, the committed offsets, lag, last checkpoint, state size and owner.

Committed offsets and end offsets come from the broker; the last checkpoint (id, time) and the
state size from the local state directory (read-only, without taking the RocksDB lock); the owner
from the consumer group's description and, on this machine, from the RocksDB lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kstream.errors import StateError
from kstream.graph.plan import Plan, task_id
from kstream.io import kafka
from kstream.state.store import dir_size, is_locked, read_meta, task_dir


@dataclass(frozen=True)
class TaskStatus:
    """One task's status; offsets are next-offset positions, times epoch ms."""

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
                    path = task_dir(state_dir, plan.prefix, stage.id, p)
                    owner = owners.get((topic, p))
                    out.append(
                        _one(task_id(stage, p), topic, p, committed[p], ends[p], path, owner)
                    )
    finally:
        consumer.close()
    return out


def _one(
    task: str, topic: str, p: int, committed: int | None, end: int, path: Path, member: str | None
) -> TaskStatus:
    try:
        meta = read_meta(path)
    except StateError:
        meta = None
    local = "locked here" if is_locked(path) else ""
    owner = ", ".join(x for x in (member or "", local) if x) or "-"
    lag = None if committed is None else max(end - committed, 0)
    return TaskStatus(
        task,
        topic,
        p,
        committed,
        end,
        lag,
        meta.get("checkpoint_id") if meta else None,
        meta.get("time_ms") if meta else None,
        dir_size(path) if path.exists() else 0,
        owner,
    )
