"""Reading a job's committed state for a savepoint from Kafka, wherever its processes run:
:func:`snapshot_changelogs` assembles every task's last checkpoint from its changelog topics and
checks it against the consumer group's committed offsets. Any machine that reaches the broker
can read it; no state directory is needed.

Every checkpoint writes the task metadata under :data:`~kstream.state.store.META_KEY` to the
stage's task changelog (``<group>.<stage id>.task.changelog``) and each changed state entry to
its store's changelog (``<group>.<node id>[.<store>].changelog``), in the same transaction as the
input offsets. The topics are compacted and partitioned like the task: the latest value of each
key is the committed one, a ``None`` value (tombstone) a deletion. Before the task changelog
existed the metadata travelled in the first store's changelog; it is still read from there.

So once the job is quiesced (or stopped) every task's checkpoint position equals the group's
committed offsets. A task whose checkpoint is elsewhere belongs to a job still running without
a quiesce, and is refused rather than saved out of step with the offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from kstream.errors import SavepointError
from kstream.graph.plan import Plan, Stage, build_plan, task_changelog_topic, task_id
from kstream.io import kafka
from kstream.pipeline.spec import PipelineSpec
from kstream.pipeline.view import fingerprint
from kstream.savepoint.format import StateEntry, TaskSnapshot
from kstream.savepoint.snapshot import routing_of, stores_of
from kstream.state.store import META_KEY

#: ``topic -> [(key, value or None), ...]`` in offset order: what a changelog read returns.
ChangelogRecords = Mapping[str, Sequence[tuple[bytes, bytes | None]]]
#: ``(topics, partition) -> {topic: [(key, value or None), ...]}``: each topic's partition
#: read from its beginning to its end, committed records only, in offset order.
ChangelogReader = Callable[[list[str], int], ChangelogRecords]
#: ``(topic, partition) -> the group's committed next offset`` (None: nothing committed).
Offsets = Mapping[tuple[str, int], int | None]
#: Called with a line of text (``reading the changelogs of task flights:0``) before each task.
Progress = Callable[[str], None]

Snapshot = tuple[list[TaskSnapshot], dict[str, dict[str, list[StateEntry]]]]


def snapshot_changelogs(
    spec: PipelineSpec,
    bootstrap: str,
    *,
    group: str | None = None,
    partitions: Mapping[str, int] | None = None,
    progress: Progress | None = None,
) -> Snapshot:
    """The last committed checkpoint of every task of the job, read from its changelog topics
    (``isolation.level=read_committed``) and checked against the group's committed offsets.

    Args:
        group: the job's group (its consumer group and internal topic prefix; default: the
            pipeline's group id).
        partitions: stage id -> its partition count (default: its input topic's, asked of the
            broker).
        progress: called with a line of text before each task is read.

    Returns:
        The same shape as :func:`~kstream.savepoint.snapshot.snapshot_local`: the tasks with a
        checkpoint (stage order, partition) and, per stateful node id and store, its entries.

    Raises:
        SavepointError: a task's checkpoint was written by another version of the pipeline, or
            is not at the group's committed offsets (the job is running without a quiesce).
        BrokerError: the broker is unreachable or a changelog cannot be read to its end.
    """
    plan = build_plan(spec, group)
    settings = dict(spec.kafka)
    if partitions is None:
        topics = kafka.Admin(bootstrap, settings).topics()
        partitions = {s.id: topics.get(s.input_topic, 0) for s in plan.stages}
    committed = group_offsets(plan, bootstrap, partitions)

    def read(topics: list[str], partition: int) -> ChangelogRecords:
        return kafka.read_partitions_to_end(bootstrap, settings, topics, partition)

    return assemble(plan, partitions, read, committed, progress)


def group_offsets(plan: Plan, bootstrap: str, partitions: Mapping[str, int]) -> Offsets:
    """The job's consumer group's committed next offset of every input topic-partition of
    every stage, by ``(topic, partition)`` (None: nothing committed; ``partitions``: stage id
    -> partition count).

    Raises:
        BrokerError: the broker did not answer.
    """
    settings = dict(plan.spec.kafka)
    consumer = kafka.new_consumer(kafka.consumer_config(bootstrap, plan.prefix, settings))
    out: dict[tuple[str, int], int | None] = {}
    try:
        for stage in plan.stages:
            parts = list(range(partitions.get(stage.id, 0)))
            for topic in stage.input_topics if parts else ():
                found = kafka.committed_offsets(consumer, topic, parts, retry_for_s=30.0)
                out.update(((topic, p), off) for p, off in found.items())
    finally:
        consumer.close()
    return out


def behind_committed(tasks: list[TaskSnapshot], committed: Offsets) -> list[str]:
    """The ids of the ``tasks`` whose checkpoint is behind the group's committed offsets in
    some input: the task ran elsewhere after this checkpoint (a stale copy). A checkpoint
    ahead of them is not stale: its offset commit was lost (restore trusts it too)."""
    return [
        t.task_id
        for t in tasks
        if any(
            (c := committed.get((topic, t.partition))) is not None
            and ((p := t.position(topic)) is None or p < c)
            for topic in t.inputs
        )
    ]


def assemble(
    plan: Plan,
    partitions: Mapping[str, int],
    read: ChangelogReader,
    committed: Offsets,
    progress: Progress | None = None,
) -> Snapshot:
    """:func:`snapshot_changelogs` given its changelog reader and the group's committed offsets
    (:func:`group_offsets`): every task ``<stage>:<p>`` for ``p`` below ``partitions[stage
    id]`` (a stage left out has none), its changelogs read in one call.

    Raises:
        SavepointError: as :func:`snapshot_changelogs`.
    """
    spec = plan.spec
    expected = fingerprint(spec)
    tasks: list[TaskSnapshot] = []
    entries: dict[str, dict[str, list[StateEntry]]] = {
        w: {ref.store: [] for ref in stores_of(plan, w)} for w in spec.stateful_ids()
    }
    for stage in plan.stages:
        array_keyed = stage.array_keyed
        for p in range(partitions.get(stage.id, 0)):
            if progress is not None:
                progress(f"reading the changelogs of task {task_id(stage, p)}")
            logs = read(changelog_topics(plan.prefix, stage), p)
            meta, stores = changelog_checkpoint(logs, plan.prefix, stage)
            offsets = {t: committed.get((t, p)) for t in stage.input_topics}
            task = _checked(plan, stage, p, meta, offsets, expected)
            if task is None:
                continue
            tasks.append(task)
            for ref in stage.stores:
                route = routing_of(ref.store, array=ref.node in array_keyed)
                entries[ref.node][ref.store].extend(
                    StateEntry(stage.id, p, k, v, route(k)) for k, v in stores[ref.column_family]
                )
    return tasks, entries


def _checked(
    plan: Plan,
    stage: Stage,
    partition: int,
    meta: dict[str, Any] | None,
    committed: dict[str, int | None],
    expected: str,
) -> TaskSnapshot | None:
    """The task's snapshot, None when it has no checkpoint and no committed offset.

    Raises:
        SavepointError: another pipeline version's checkpoint, committed offsets without a
            checkpoint, or a checkpoint not at the committed offsets.
    """
    task = task_id(stage, partition)
    where = f"{task_changelog_topic(plan.prefix, stage.id)}[{partition}]"
    if meta is None:
        if all(c is None for c in committed.values()):
            return None
        raise SavepointError(
            f"task {task}: group {plan.prefix} has committed offsets "
            f"{_positions(committed)} but {where} holds no checkpoint of it (were its "
            "changelog topics deleted?); no savepoint was written"
        )
    if meta.get("fingerprint") not in (None, expected):
        raise SavepointError(
            f"task {task}: its checkpoint in {where} was written by another version of "
            f"pipeline {plan.spec.name} (fingerprint differs); run the current pipeline once "
            "before taking a savepoint"
        )
    snap = TaskSnapshot(stage.id, partition, tuple(stage.input_topics), meta)
    positions = {t: snap.position(t) for t in snap.inputs}
    if positions != committed:
        raise SavepointError(
            f"task {task}: its checkpoint in {where} is at position {_positions(positions)}, "
            f"but group {plan.prefix} committed {_positions(committed)}: the job is still "
            "running and was not quiesced (take the savepoint without --no-quiesce, or stop "
            "the job first); no savepoint was written"
        )
    return snap


def _positions(by_topic: Mapping[str, int | None]) -> str:
    """``76`` for one input, ``a 76, b none`` for several (``none``: nothing read/committed)."""
    text = {t: "none" if p is None else str(p) for t, p in by_topic.items()}
    if len(text) == 1:
        return next(iter(text.values()))
    return ", ".join(f"{t} {p}" for t, p in text.items())


def changelog_topics(pipeline: str, stage: Stage) -> list[str]:
    """The changelogs of a task of ``stage``: its task changelog first, then each store's, in
    ``stage.stores`` order (``pipeline``: the group prefix of the internal topic names)."""
    return [
        task_changelog_topic(pipeline, stage.id),
        *(r.changelog(pipeline) for r in stage.stores),
    ]


def changelog_checkpoint(
    logs: ChangelogRecords, pipeline: str, stage: Stage
) -> tuple[dict[str, Any] | None, dict[str, list[tuple[bytes, bytes]]]]:
    """The checkpoint a task's changelogs hold (``logs``: the records of
    :func:`changelog_topics`, one partition; a missing topic counts as empty).

    Returns:
        ``(meta, entries)``: the task metadata (None when no checkpoint wrote it; from the
        task changelog, else from the first store changelog holding it) and, per store column
        family of ``stage``, its live entries (latest value per key, deleted keys left out)
        sorted by key, as RocksDB orders them.

    Raises:
        orjson.JSONDecodeError: the metadata record is not JSON.
    """
    # dict() of records in offset order keeps the latest value of each key (None: deleted)
    raw = dict(logs.get(task_changelog_topic(pipeline, stage.id), ())).get(META_KEY)
    entries: dict[str, list[tuple[bytes, bytes]]] = {}
    for ref in stage.stores:
        values = dict(logs.get(ref.changelog(pipeline), ()))
        legacy = values.pop(META_KEY, None)  # written before the task changelog existed
        raw = raw or legacy
        entries[ref.column_family] = sorted((k, v) for k, v in values.items() if v is not None)
    return (orjson.loads(raw) if raw else None), entries
