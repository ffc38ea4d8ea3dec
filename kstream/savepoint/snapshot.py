"""Reading a job's committed local state for a savepoint: :func:`snapshot_local` collects every
task's checkpoint metadata and every state store's entries (windows, timers) from the task
directories under a state directory, or from the snapshots the running owners wrote for a
savepoint request (:mod:`kstream.runtime.control`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kstream.errors import SavepointError
from kstream.graph.plan import TIMERS_STORE, TTL_STORE, Plan, Stage, StoreRef, build_plan
from kstream.pipeline.spec import PipelineSpec
from kstream.pipeline.view import fingerprint
from kstream.savepoint.format import KEY_PREFIX, TASK_ROUTING, StateEntry, TaskSnapshot
from kstream.state.store import SnapshotRef, iter_store, read_meta

_TASK_DIR = re.compile(r"^(.+)\.p(\d+)$")
_LEGACY_TASK_DIR = re.compile(r"^(\d+)-(\d+)$")


def snapshot_local(
    spec: PipelineSpec,
    state_dir: str | Path,
    *,
    group: str | None = None,
    snapshots: Mapping[str, SnapshotRef] | None = None,
) -> tuple[list[TaskSnapshot], dict[str, dict[str, StoreEntries]]]:
    """The last committed checkpoint of every task of the job found under ``state_dir``
    (``<state_dir>/<group>/<stage id>.p<partition>``, or as older versions named them
    ``<stage index>-<partition>``), read without taking the RocksDB locks.

    A task with an entry in ``snapshots`` (written by the running process that owns it, for a
    savepoint request) is read from that snapshot instead of its live database, and the
    snapshot must hold exactly the checkpoint the owner acknowledged.

    Args:
        group: the job's group (names its state directory; default: the pipeline's group id).
        snapshots: task id (``<stage id>:<partition>``) -> the owner's snapshot of its state.

    Returns:
        The tasks (sorted by stage order, partition; tasks without a checkpoint are left out)
        and, per stateful node id and store (``""``, ``timers``, ``ttl``), its entries
        (every store of every stateful node of the pipeline is present), read from each
        task's RocksDB as they are iterated: the directories (and snapshots) must stay until
        then, and a task that checkpoints meanwhile makes the iteration fail with StateError.

    Raises:
        SavepointError: a task directory or snapshot belongs to a stage the pipeline does not
            have, a task's state was written by another version of the pipeline
            (fingerprint), or a snapshot does not hold the checkpoint its owner acknowledged.
        StateError: a task's RocksDB cannot be read.
    """
    plan = build_plan(spec, group)
    expected = fingerprint(spec)
    tasks: list[TaskSnapshot] = []
    entries: dict[str, dict[str, StoreEntries]] = {
        w: {ref.store: StoreEntries() for ref in stores_of(plan, w)} for w in spec.stateful_ids()
    }
    dirs = {(st.id, p): path for st, p, path in _task_dirs(Path(state_dir) / plan.prefix, plan)}
    taken: dict[tuple[str, int], SnapshotRef] = {}
    for snap in (snapshots or {}).values():
        stage_text, _, p = snap.task.rpartition(":")
        task = (_stage_of(plan, stage_text, snap.path).id, int(p))
        taken[task] = snap
        dirs[task] = Path(snap.path)
    order = {s.id: s.index for s in plan.stages}
    for (stage_id, partition), path in sorted(dirs.items(), key=lambda d: (order[d[0][0]], d[0])):
        meta = read_meta(path)
        ref = taken.get((stage_id, partition))
        if ref is not None:
            _check_snapshot(ref, meta)
        if meta is None:
            continue
        if meta.get("fingerprint") not in (None, expected):
            raise SavepointError(
                f"{path}: the state was written by another version of pipeline {spec.name} "
                "(fingerprint differs); run the current pipeline once before taking a savepoint"
            )
        stage = plan.stage_by_id(stage_id)
        tasks.append(TaskSnapshot(stage.id, partition, tuple(stage.input_topics), meta))
        array_keyed = stage.array_keyed
        for store in stage.stores:
            route = routing_of(store.store, array=store.node in array_keyed)
            part = _TaskPart(stage.id, partition, path, store.column_family, meta, route)
            entries[store.node][store.store].parts.append(part)
    return tasks, entries


@dataclass(frozen=True)
class _TaskPart:
    """One task's share of a store: where to read it and how to route its keys."""

    stage: str
    partition: int
    path: Path
    column_family: str
    meta: dict[str, Any]
    route: Callable[[bytes], bytes]


@dataclass(eq=False)
class StoreEntries:
    """The entries of one store over every task of a snapshot, as :class:`StateEntry`, read
    lazily from each task's RocksDB in turn (one database open at a time, nothing kept):
    iterable any number of times; ``len`` and ``==`` are full reads (tools and tests).

    Raises (while iterating):
        StateError: a task's state cannot be read or changed since the snapshot.
    """

    parts: list[_TaskPart] = field(default_factory=list)

    def __iter__(self) -> Iterator[StateEntry]:
        for part in self.parts:
            stage, partition, route = part.stage, part.partition, part.route
            for key, value in iter_store(part.path, part.column_family, part.meta):
                yield StateEntry(stage, partition, key, value, route(key))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other: object) -> bool:
        """Equal to another store's entries or a list of them holding the same, in order."""
        if isinstance(other, StoreEntries | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def local_checkpoints(
    spec: PipelineSpec, state_dir: str | Path, *, group: str | None = None
) -> dict[tuple[str, int], TaskSnapshot | None]:
    """Every task directory of the job under ``state_dir`` (as :func:`snapshot_local` finds
    them) by ``(stage id, partition)``, with its last checkpoint's metadata (None: none yet);
    the stores are not read.

    Raises:
        SavepointError: a directory names a stage the pipeline does not have.
        StateError: a task's RocksDB cannot be read.
    """
    plan = build_plan(spec, group)
    out: dict[tuple[str, int], TaskSnapshot | None] = {}
    for stage, partition, path in _task_dirs(Path(state_dir) / plan.prefix, plan):
        meta = read_meta(path)
        inputs = tuple(stage.input_topics)
        out[(stage.id, partition)] = (
            None if meta is None else TaskSnapshot(stage.id, partition, inputs, meta)
        )
    return out


def stores_of(plan: Plan, node_id: str) -> list[StoreRef]:
    """The state stores of node ``node_id``."""
    return [ref for stage in plan.stages for ref in stage.stores if ref.node == node_id]


def routing_of(store: str, *, array: bool = False) -> Callable[[bytes], bytes]:
    """How to get the JSON of the record key from a store key of ``store``: a window key
    after its 16-byte time prefix; a timer key's ``[key, namespace]`` JSON, first element (a
    ``ttl`` store's entry that is not a timer, its declarations: empty, an entry of its task,
    :mod:`kstream.savepoint.reshard`); the JSON array key of a process function's state
    (``[key, state name]``) or a join's buffers (``[key, side]``) (``array``), first
    element."""
    if store == TIMERS_STORE:
        return _timer_routing
    if store == TTL_STORE:
        return lambda key: _timer_routing(key) if key[:1] in _TIMER_DOMAINS else TASK_ROUTING
    if array:
        return lambda key: orjson.dumps(orjson.loads(key)[0])
    return lambda key: key[KEY_PREFIX:]


#: The first byte of a timer's store key (event time, processing time).
_TIMER_DOMAINS = (b"e", b"p")


def _timer_routing(key: bytes) -> bytes:
    return orjson.dumps(orjson.loads(key[9:])[0])


def _stage_of(plan: Plan, text: str, where: str) -> Stage:
    """The stage a task id's stage part names: a stage id, or (older versions) a position.

    Raises:
        SavepointError: the pipeline has no such stage.
    """
    stage = {s.id: s for s in plan.stages}.get(text)
    if stage is not None:
        return stage
    if text.isdigit() and int(text) < len(plan.stages):
        return plan.stages[int(text)]
    raise SavepointError(
        f"{where}: the pipeline has no stage {text!r}; this state belongs to another version of "
        "the pipeline"
    )


def _check_snapshot(ref: SnapshotRef, meta: dict[str, Any] | None) -> None:
    """The snapshot must hold the checkpoint its owner acknowledged (same input position and
    checkpoint id): anything else is not the committed state and must not become a savepoint.

    Raises:
        SavepointError: it does not.
    """
    got = (None, None) if meta is None else (meta.get("position"), meta.get("checkpoint_id"))
    if got != (ref.position, ref.checkpoint_id):
        raise SavepointError(
            f"task {ref.task}: its snapshot {ref.path} holds checkpoint {got[1]} at position "
            f"{got[0]}, but its owner acknowledged checkpoint {ref.checkpoint_id} at position "
            f"{ref.position}; no savepoint was written, take it again"
        )


def _task_dirs(root: Path, plan: Plan) -> list[tuple[Stage, int, Path]]:
    """``(stage, partition, path)`` of every task directory under ``root``:
    ``<stage id>.p<partition>``, or ``<stage index>-<partition>`` as older versions named them
    (when both exist, the stage-id one).

    Raises:
        SavepointError: a directory names a stage the pipeline does not have.
    """
    if not root.is_dir():
        return []
    found: dict[tuple[str, int], tuple[Stage, int, Path]] = {}
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        legacy = _LEGACY_TASK_DIR.match(child.name)
        match = legacy or _TASK_DIR.match(child.name)
        if match is None:
            continue
        stage = _stage_of(plan, match.group(1), str(child))
        partition = int(match.group(2))
        if legacy is None or (stage.id, partition) not in found:
            found[(stage.id, partition)] = (stage, partition, child)
    return list(found.values())
