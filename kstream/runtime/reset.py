"""``kstream reset``: Kafka Streams' application reset tool for a kstream job.

A reset makes the next ``kstream run`` reprocess its sources from chosen offsets **without
state**: it commits new source offsets for the job's consumer group and deletes what holds the
job's progress and state, i.e. the internal topics (repartition topics, task and store
changelogs, the control topic and the status topic) and the local state directory
``<state-dir>/<group>``. Output topics (sinks, late data, dead letters) are left as they are;
``kstream run --from-savepoint`` stays the way to reprocess *with* state.

Steps (:func:`plan_reset`, then :func:`execute_reset`):

1. refuse while the group has live members (named) or a process on this machine holds the lock
   of a task directory under ``<state-dir>/<group>``;
2. delete the consumer group (its committed offsets, repartition topics' too); Kafka refuses
   while the group has members: the guard against a job started after the check in step 1;
3. commit the new source offsets under the group id (without joining the group);
4. delete the internal topics that exist, and wait until the broker no longer lists them (a run
   started right after the reset then creates them anew);
5. delete the local state directories.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from kstream.errors import BrokerError, StateError, UsageError
from kstream.graph.plan import Plan, task_changelog_topic
from kstream.io import kafka
from kstream.io.kafka import GroupDeletion, GroupMember
from kstream.runtime.control import control_topic
from kstream.runtime.reset_plan import (
    OffsetChange,
    ResetPlan,
    TopicPartitionKey,
    parse_datetime_ms,
    read_offsets_file,
)
from kstream.runtime.status_record import status_topic
from kstream.state.store import dir_size, is_locked

#: Seconds to wait for the broker to stop listing the deleted topics.
TOPICS_GONE_WAIT_S = 30.0


@dataclass(frozen=True)
class ResetTarget:
    """Where the source offsets go: ``earliest`` (each partition's first offset in the log),
    ``time`` (the first record at or after ``time_ms``, epoch ms; the end of a partition without
    one) or ``file`` (the offsets listed in ``path``, see :mod:`kstream.runtime.reset_plan`)."""

    kind: Literal["earliest", "time", "file"] = "earliest"
    time_ms: int | None = None
    path: Path | None = None

    @classmethod
    def from_options(
        cls, to_earliest: bool, to_datetime: str | None, to_offsets: Path | None
    ) -> ResetTarget:
        """The target of the command's options (none given: ``earliest``).

        Raises:
            UsageError: more than one option is given, or ``to_datetime`` is not ISO 8601.
        """
        if sum((to_earliest, to_datetime is not None, to_offsets is not None)) > 1:
            raise UsageError(
                "--to-earliest, --to-datetime and --to-offsets exclude each other — give one "
                "(none: --to-earliest)"
            )
        if to_datetime is not None:
            return cls("time", time_ms=parse_datetime_ms(to_datetime))
        if to_offsets is not None:
            return cls("file", path=to_offsets)
        return cls()

    def describe(self) -> str:
        """The target for people."""
        if self.kind == "time" and self.time_ms is not None:
            at = datetime.fromtimestamp(self.time_ms / 1000, UTC).isoformat(timespec="milliseconds")
            return f"the first record at or after {at.replace('+00:00', 'Z')}"
        if self.kind == "file":
            return f"the offsets in {self.path}"
        return "earliest (the first offset in each partition's log)"


class ResetBroker(Protocol):
    """What a reset needs from Kafka (:class:`KafkaResetBroker`; tests pass fakes). Offsets are
    next offsets by ``(topic, partition)``; every method raises :class:`BrokerError` when the
    broker is unreachable or refuses."""

    def topics(self) -> dict[str, int]: ...
    def delete_topics(self, names: list[str]) -> None: ...
    def members(self) -> list[GroupMember]: ...
    def delete_group(self) -> GroupDeletion: ...
    def committed(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int | None]: ...
    def offset_ranges(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, tuple[int, int]]: ...
    def offsets_for_time(
        self, partitions: Iterable[TopicPartitionKey], time_ms: int
    ) -> dict[TopicPartitionKey, int]: ...
    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None: ...
    def close(self) -> None: ...


class KafkaResetBroker(kafka.GroupAdmin):
    """:class:`ResetBroker` on Kafka: the group's :class:`~kstream.io.kafka.GroupAdmin` plus
    topic listing and deletion (:class:`~kstream.io.kafka.Admin`)."""

    def __init__(self, bootstrap: str, settings: Mapping[str, Any], group: str) -> None:
        self._topics = kafka.Admin(bootstrap, settings)
        super().__init__(bootstrap, settings, group)

    def topics(self) -> dict[str, int]:
        """Every topic with its partition count."""
        return self._topics.topics()

    def delete_topics(self, names: list[str]) -> None:
        """Ask the broker to delete ``names`` (missing ones are ignored)."""
        self._topics.delete_topics(names)


def connect(plan: Plan, bootstrap: str) -> ResetBroker:
    """The broker of a reset of ``plan``'s job, for its group ``plan.prefix``; close it after.

    Raises:
        BrokerError: the client configuration is invalid.
    """
    return KafkaResetBroker(bootstrap, dict(plan.spec.kafka), plan.prefix)


def source_topics(plan: Plan) -> list[str]:
    """The topics the job reads with its consumer group, in stage order: the source stages'
    source topics. Broadcast tables are read whole without a group: they have no offsets."""
    inputs = (i for stage in plan.stages for i in stage.inputs)
    return list(dict.fromkeys(i.topic for i in inputs if i.source is not None))


def internal_topics(plan: Plan) -> list[str]:
    """Every internal topic of the job, existing or not: per stage, the repartition topics it
    writes, its task changelog and its stores' changelogs; then the control and status
    topics."""
    names: list[str] = []
    for stage in plan.stages:
        names += [topic for topic, _key_by in plan.output_topics(stage)]
        names.append(task_changelog_topic(plan.prefix, stage.id))
        names += [ref.changelog(plan.prefix) for ref in stage.stores]
    names += [control_topic(plan.prefix), status_topic(plan.prefix)]
    return list(dict.fromkeys(names))


def local_state(state_dir: str | Path, group: str) -> tuple[Path, list[Path]]:
    """The job's local state root ``<state_dir>/<group>`` and the directories in it (task
    directories, ``broadcast``, ``.snapshots``), sorted; none when the root does not exist."""
    root = Path(state_dir) / group
    return root, sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def locked(dirs: Sequence[Path]) -> list[Path]:
    """The RocksDB directories under ``dirs`` (each database's parent, e.g. a task directory)
    whose lock a live process on this machine holds."""
    holders = {lock.parent.parent for d in dirs for lock in d.rglob("LOCK")}
    return sorted(h for h in holders if (h / "db" / "LOCK").is_file() and is_locked(h))


def check_no_members(members: Sequence[GroupMember], group: str) -> None:
    """Refuse a reset while consumer group ``group`` has live members.

    Raises:
        UsageError: naming each member (``client.id@host``) and how to stop the job.
    """
    if members:
        raise members_refusal(group, members)


def members_refusal(group: str, members: Sequence[GroupMember]) -> UsageError:
    """The error of a reset refused because ``group`` has live members (named when known)."""
    named = f" ({', '.join(sorted(str(m) for m in members))})" if members else ""
    return UsageError(
        f"consumer group {group} has live members{named}: a reset needs the job stopped — stop "
        "every `kstream run` of it (Ctrl-C, or `kstream savepoint create PIPELINE --stop`), "
        "then reset again; a process that crashed leaves the group after its session timeout"
    )


def check_unlocked(dirs: Sequence[Path], group: str) -> None:
    """Refuse a reset while a process on this machine holds a database under ``dirs``.

    Raises:
        UsageError: naming the locked directories.
    """
    held = locked(dirs)
    if held:
        raise UsageError(
            f"the local state of group {group} is in use by a running process on this machine "
            f"({', '.join(str(p) for p in held)}) — stop the `kstream run` using it (Ctrl-C), "
            "then reset again"
        )


def plan_reset(
    plan: Plan, broker: ResetBroker, target: ResetTarget, state_dir: str | Path
) -> ResetPlan:
    """What a reset of ``plan``'s job (group ``plan.prefix``) to ``target`` would change;
    changes nothing.

    Raises:
        UsageError: the group has live members, local state is locked, or the offsets file or
            a target option is wrong.
        BrokerError: the broker is unreachable, or a source topic does not exist.
    """
    group = plan.prefix
    existing = broker.topics()  # first: an unreachable broker is reported as such
    check_no_members(broker.members(), group)
    root, dirs = local_state(state_dir, group)
    check_unlocked(dirs, group)
    partitions = source_partitions(plan, existing)
    keys = [(topic, p) for topic, count in partitions.items() for p in range(count)]
    ranges = broker.offset_ranges(keys)
    new = _new_offsets(plan, broker, target, partitions, ranges)
    committed = broker.committed(keys)
    changes = tuple(
        OffsetChange(t, p, committed.get((t, p)), new[(t, p)], *ranges.get((t, p), (None, None)))
        for t, p in keys
    )
    topics = tuple(t for t in internal_topics(plan) if t in existing)
    size = sum(dir_size(d) for d in dirs)
    return ResetPlan(
        plan.spec.name, group, target.describe(), changes, topics, root, tuple(dirs), size
    )


def source_partitions(plan: Plan, existing: Mapping[str, int]) -> dict[str, int]:
    """Partition count of each source topic (:func:`source_topics`).

    Raises:
        BrokerError: a source topic does not exist.
    """
    out = {}
    for topic in source_topics(plan):
        if topic not in existing:
            raise BrokerError(
                f"source topic '{topic}' does not exist, so it has no offsets to reset; create "
                f"it, e.g. `kstream produce {topic} FILE --partitions N`"
            )
        out[topic] = existing[topic]
    return out


def _new_offsets(
    plan: Plan,
    broker: ResetBroker,
    target: ResetTarget,
    partitions: dict[str, int],
    ranges: Mapping[TopicPartitionKey, tuple[int, int]],
) -> dict[TopicPartitionKey, int]:
    if target.kind == "file" and target.path is not None:
        broadcast = tuple(s.topic for s in plan.broadcast_tables)
        return read_offsets_file(target.path, partitions, broadcast)
    if target.kind == "time" and target.time_ms is not None:
        keys = [(t, p) for t, count in partitions.items() for p in range(count)]
        return broker.offsets_for_time(keys, target.time_ms)
    return {key: start for key, (start, _end) in ranges.items()}


def execute_reset(
    reset: ResetPlan, broker: ResetBroker, topics_wait_s: float = TOPICS_GONE_WAIT_S
) -> None:
    """Carry out ``reset`` (steps 2 to 5 of the module docstring, after checking step 1 again).

    Raises:
        UsageError: the group has live members (also when Kafka refuses to delete the group
            for them), or local state is locked.
        BrokerError: the broker is unreachable, refuses a step, or still lists a deleted topic
            after ``topics_wait_s`` seconds.
        StateError: a local state directory cannot be deleted.
    """
    check_no_members(broker.members(), reset.group)
    check_unlocked(reset.state_dirs, reset.group)
    if broker.delete_group() is GroupDeletion.NOT_EMPTY:
        raise members_refusal(reset.group, broker.members())
    broker.commit(reset.new_offsets())
    delete_topics(broker, reset.topics, topics_wait_s)
    delete_local_state(reset)


def delete_topics(broker: ResetBroker, names: Sequence[str], wait_s: float) -> None:
    """Delete ``names`` and wait until the broker lists none of them.

    Raises:
        BrokerError: some are still listed after ``wait_s`` seconds.
    """
    if not names:
        return
    broker.delete_topics(list(names))
    deadline = time.monotonic() + wait_s
    while left := sorted(set(names) & set(broker.topics())):
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"the broker still lists {', '.join(left)} {wait_s:g} s after deleting them; "
                "check that it allows deletions (Kafka: delete.topic.enable), then reset again"
            )
        time.sleep(0.2)


def delete_local_state(reset: ResetPlan) -> None:
    """Delete the plan's local state directories, then the job's root if it is left empty.

    Raises:
        UsageError: a process on this machine took a directory's lock since the plan.
        StateError: a directory cannot be deleted.
    """
    check_unlocked(reset.state_dirs, reset.group)
    for path in reset.state_dirs:
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StateError(
                f"cannot delete local state {path}: {exc} — delete it by hand before the next run"
            ) from exc
    if reset.state_root.is_dir() and not any(reset.state_root.iterdir()):
        reset.state_root.rmdir()
