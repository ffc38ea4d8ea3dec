"""Writing savepoints: :func:`snapshot_local` reads a job's committed local state,
:func:`write_savepoint` writes it atomically in the format of :mod:`kstream.savepoint.format`.

Atomicity: every file goes into the sibling directory ``.<name>.partial-<pid>``, each fsynced;
``manifest.json`` is written last, the directory is fsynced and renamed to its final name, and the
parent directory is fsynced. A reader (``open_savepoint``, ``list_savepoints``) accepts only a
directory with a manifest whose name is not a partial one, so a writer killed at any point
leaves nothing that passes for a savepoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from kstream import __version__, faults
from kstream.errors import RecordError, SavepointError
from kstream.graph.plan import Plan, build_plan, store_name
from kstream.io.avro import ContainerError, write_container
from kstream.pipeline.spec import PipelineSpec
from kstream.pipeline.view import fingerprint, operator_to_dict
from kstream.savepoint.format import (
    ENTRY_SCHEMA,
    FORMAT_VERSION,
    MANIFEST,
    TASK_SCHEMA,
    TASKS_FILE,
    FileInfo,
    Manifest,
    OperatorInfo,
    SourceInfo,
    StageInfo,
    StateEntry,
    TaskSnapshot,
    file_digest,
    manifest_text,
    operator_file,
    partial_path,
)
from kstream.state.store import SnapshotRef, read_task_state

Progress = Callable[[str], None]
_TASK_DIR = re.compile(r"^(.+)\.p(\d+)$")
_LEGACY_TASK_DIR = re.compile(r"^(\d+)-(\d+)$")


def snapshot_local(
    spec: PipelineSpec,
    state_dir: str | Path,
    *,
    group: str | None = None,
    snapshots: Mapping[str, SnapshotRef] | None = None,
) -> tuple[list[TaskSnapshot], dict[str, list[StateEntry]]]:
    """The last committed checkpoint of every task of the job found under ``state_dir``
    (``<state_dir>/<group>/<stage id>.p<partition>``, or as older versions named them
    ``<stage index>-<partition>``), read without taking the RocksDB locks.

    A task with an entry in ``snapshots`` (written by the running process that owns it, for a
    savepoint request) is read from that snapshot instead of its live database, and the
    snapshot must hold exactly the checkpoint the owner acknowledged.

    Args:
        group: the job's group (names its state directory; default: the pipeline's group id).
        snapshots: task id (``stage:partition``) -> the owner's snapshot of its state.

    Returns:
        The tasks (sorted by stage, partition; tasks without a checkpoint are left out) and,
        per stateful operator id, its entries (every operator of the pipeline is present).

    Raises:
        SavepointError: a task directory belongs to a stage the pipeline does not have, a
            task's state was written by another version of the pipeline (fingerprint), or a
            snapshot does not hold the checkpoint its owner acknowledged.
        StateError: a task's RocksDB cannot be read.
    """
    plan = build_plan(spec, group)
    expected = fingerprint(spec)
    tasks: list[TaskSnapshot] = []
    entries: dict[str, list[StateEntry]] = {w: [] for w in spec.stateful_ids()}
    taken = dict(snapshots or {})
    dirs = {(st, p): path for st, p, path in _task_dirs(Path(state_dir) / plan.prefix, plan)}
    for snap in taken.values():
        st, _, p = snap.task.partition(":")
        dirs[(int(st), int(p))] = Path(snap.path)
    for (stage_index, partition), path in sorted(dirs.items()):
        if stage_index >= len(plan.stages):
            raise SavepointError(
                f"{path}: the pipeline has no stage {stage_index}; this state belongs to "
                "another version of the pipeline"
            )
        meta, stores = read_task_state(path)
        ref = taken.get(f"{stage_index}:{partition}")
        if ref is not None:
            _check_snapshot(ref, meta)
        if meta is None:
            continue
        if meta.get("fingerprint") not in (None, expected):
            raise SavepointError(
                f"{path}: the state was written by another version of pipeline {spec.name} "
                "(fingerprint differs); run the current pipeline once before taking a savepoint"
            )
        stage = plan.stages[stage_index]
        tasks.append(TaskSnapshot(stage_index, partition, stage.input_topic, meta))
        for window in stage.windows:
            rows = stores.get(store_name(window.id), [])
            entries[window.id].extend(StateEntry(stage_index, partition, k, v) for k, v in rows)
    return tasks, entries


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


def _task_dirs(root: Path, plan: Plan) -> list[tuple[int, int, Path]]:
    """``(stage index, partition, path)`` of every task directory under ``root``, sorted:
    ``<stage id>.p<partition>``, or ``<stage index>-<partition>`` as older versions named them
    (when both exist, the stage-id one).

    Raises:
        SavepointError: a directory names a stage the pipeline does not have.
    """
    if not root.is_dir():
        return []
    index = {s.id: s.index for s in plan.stages}
    found: dict[tuple[int, int], Path] = {}
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        legacy = _LEGACY_TASK_DIR.match(child.name)
        if legacy:
            found.setdefault((int(legacy.group(1)), int(legacy.group(2))), child)
            continue
        match = _TASK_DIR.match(child.name)
        if match is None:
            continue
        if match.group(1) not in index:
            raise SavepointError(
                f"{child}: the pipeline has no stage {match.group(1)!r}; this state belongs to "
                "another version of the pipeline"
            )
        found[(index[match.group(1)], int(match.group(2)))] = child
    return sorted((st, p, path) for (st, p), path in found.items())


def write_savepoint(
    directory: str | Path,
    spec: PipelineSpec,
    tasks: list[TaskSnapshot],
    entries: Mapping[str, Iterable[StateEntry]],
    *,
    group: str | None = None,
    partitions: Mapping[int, int] | None = None,
    created_ms: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Write a savepoint of ``spec``'s job to ``directory`` atomically (see the module doc).

    Args:
        tasks: every task's checkpoint metadata (one per stage and partition).
        entries: per stateful operator id, its state entries (an iterable is consumed once;
            operators missing here are saved empty).
        group: the job's group (internal topic names; default: the pipeline's group id).
        partitions: per stage index, the partition count of its input topic (default: one
            more than the highest partition among ``tasks``, at least 1).
        created_ms: creation time in epoch ms (default: now).
        progress: called with a short message after each file.

    Returns:
        The manifest written.

    Raises:
        SavepointError: ``directory`` exists, a task or entry names an unknown stage or
            operator, a task appears twice, a file cannot be written, or the pipeline has
            several sources or tasks reading several topics (format version 2, not written
            yet).
    """
    target = Path(directory)
    if target.exists():
        raise SavepointError(f"{target} already exists; choose another directory or dispose it")
    plan = build_plan(spec, group)
    check_supported(plan)
    _check(plan, tasks, entries)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(target, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        manifest = _write_files(tmp, plan, tasks, entries, partitions, created_ms, progress)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def check_supported(plan: Plan) -> None:
    """Refuse a pipeline that format version 1 cannot hold: several sources, or tasks that read
    several topics.

    Raises:
        SavepointError: with the sources or stages that are too many.
    """
    several = [s.id for s in plan.spec.sources] if len(plan.spec.sources) > 1 else []
    several += [s.id for s in plan.stages if len(s.inputs) > 1 and s.id not in several]
    if several:
        raise SavepointError(
            "savepoint format version 1 holds one source and one input topic per task; this "
            f"pipeline has several ({', '.join(several)}): savepoints of such pipelines come "
            "with format version 2"
        )


def _check(plan: Plan, tasks: list[TaskSnapshot], entries: Mapping[str, Any]) -> None:
    seen: set[str] = set()
    for task in tasks:
        if not 0 <= task.stage < len(plan.stages):
            raise SavepointError(f"task {task.task_id}: pipeline has no stage {task.stage}")
        if task.task_id in seen:
            raise SavepointError(f"task {task.task_id} appears twice")
        seen.add(task.task_id)
    unknown = sorted(set(entries) - set(plan.spec.stateful_ids()))
    if unknown:
        raise SavepointError(f"state for unknown operator(s) {', '.join(unknown)}")


def _write_files(
    tmp: Path,
    plan: Plan,
    tasks: list[TaskSnapshot],
    entries: Mapping[str, Iterable[StateEntry]],
    partitions: Mapping[int, int] | None,
    created_ms: int | None,
    progress: Progress | None,
) -> Manifest:
    say = progress or (lambda _message: None)
    ordered = sorted(tasks, key=lambda t: (t.stage, t.partition))
    task_info = _write(tmp, TASKS_FILE, TASK_SCHEMA, map(_task_record, ordered), "tasks")
    say(f"{TASKS_FILE}: {task_info.records} tasks")
    operators: dict[str, OperatorInfo] = {}
    for stage in plan.stages:
        for window in stage.windows:
            records = _entry_records(window.id, stage.index, entries.get(window.id, ()))
            info = _write(tmp, operator_file(window.id), ENTRY_SCHEMA, records, window.id)
            operators[window.id] = OperatorInfo(
                window.id,
                stage.index,
                operator_to_dict(window),
                info.file,
                info.records,
                info.bytes,
                info.sha256,
            )
            say(f"{info.file}: {info.records:,} entries, {info.bytes:,} bytes")
    manifest = _manifest(plan, ordered, task_info, operators, partitions, created_ms)
    _write_manifest(tmp, manifest)
    say(f"{MANIFEST}: {len(operators)} operators, {manifest.total_bytes:,} bytes")
    return manifest


def _task_record(task: TaskSnapshot) -> dict[str, Any]:
    meta = orjson.dumps(task.meta).decode()
    return {
        "stage": task.stage,
        "partition": task.partition,
        "input_topic": task.input_topic,
        "meta": meta,
    }


def _entry_records(
    op_id: str, stage: int, entries: Iterable[StateEntry]
) -> Iterator[dict[str, Any]]:
    for entry in entries:
        if entry.stage != stage:
            raise SavepointError(
                f"operator {op_id} runs in stage {stage}, got an entry of task "
                f"{entry.stage}:{entry.partition}"
            )
        yield {
            "stage": entry.stage,
            "partition": entry.partition,
            "routing": entry.routing,
            "key": entry.key,
            "value": entry.value,
        }


def _write(
    tmp: Path, name: str, schema: dict[str, Any], records: Iterable[dict[str, Any]], what: str
) -> FileInfo:
    """Write one Avro container file, fsynced; then reach fault point ``savepoint_write``."""
    path = tmp / name
    metadata = {
        "kstream.savepoint.format": str(FORMAT_VERSION),
        "kstream.savepoint.of": what,
    }
    try:
        count = write_container(path, schema, records, metadata=metadata)
        digest, size = file_digest(path)
    except (ContainerError, RecordError, OSError) as exc:
        raise SavepointError(f"cannot write savepoint file {name}: {exc}") from exc
    faults.point("savepoint_write")
    return FileInfo(name, count, size, digest)


def _manifest(
    plan: Plan,
    tasks: list[TaskSnapshot],
    task_info: FileInfo,
    operators: dict[str, OperatorInfo],
    partitions: Mapping[int, int] | None,
    created_ms: int | None,
) -> Manifest:
    spec = plan.spec
    stages = []
    for stage in plan.stages:
        mine = [t for t in tasks if t.stage == stage.index]
        highest = max((t.partition + 1 for t in mine), default=1)
        count = (partitions or {}).get(stage.index) or highest
        keyed_by = plan.stages[stage.index - 1].key_by if stage.index else None
        keyed = operator_to_dict(keyed_by) if keyed_by is not None else None
        stages.append(StageInfo(stage.index, stage.input_topic, count, len(mine), keyed))
    offsets = {
        t.partition: int(t.meta["position"])
        for t in tasks
        if t.stage == 0 and t.meta.get("position") is not None
    }
    watermarks = {
        t.task_id: int(t.meta["watermark"]) for t in tasks if t.meta.get("watermark") is not None
    }
    total = task_info.bytes + sum(op.bytes for op in operators.values())
    return Manifest(
        format_version=FORMAT_VERSION,
        pipeline=spec.name,
        group=plan.prefix,
        fingerprint=fingerprint(spec),
        created_ms=int(time.time() * 1000) if created_ms is None else created_ms,
        kstream_version=__version__,
        operators=operators,
        tasks=task_info,
        source=SourceInfo(plan.source.topic, stages[0].partitions, offsets),
        watermarks=watermarks,
        stages=tuple(stages),
        total_bytes=total,
    )


def _write_manifest(tmp: Path, manifest: Manifest) -> None:
    with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(manifest_text(manifest))
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    faults.point("savepoint_write")


def _publish(tmp: Path, target: Path) -> None:
    """Rename the complete temporary directory to ``target`` and make the rename durable."""
    if target.exists():  # created meanwhile: rename would replace an empty directory
        raise SavepointError(f"{target} already exists; choose another directory or dispose it")
    try:
        os.rename(tmp, target)
    except OSError as exc:
        raise SavepointError(f"cannot rename {tmp} to {target}: {exc.strerror or exc}") from exc
    _fsync_dir(target.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)
