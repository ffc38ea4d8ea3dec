"""Writing savepoints: :func:`write_savepoint` writes a job's state (read by
:func:`kstream.savepoint.snapshot.snapshot_local`) atomically in the format of
:mod:`kstream.savepoint.format`.

Atomicity: every file goes into the sibling directory ``.<name>.partial-<pid>``, each fsynced;
``manifest.json`` is written last, the directory is fsynced and renamed to its final name, and the
parent directory is fsynced. A reader (``open_savepoint``, ``list_savepoints``) accepts only a
directory with a manifest whose name is not a partial one, so a writer killed at any point
leaves nothing that passes for a savepoint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from kstream import __version__, faults
from kstream.errors import RecordError, SavepointError
from kstream.graph.plan import Plan, build_plan
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
    NodeInfo,
    SourceInfo,
    StageInfo,
    StateEntry,
    TaskSnapshot,
    file_digest,
    manifest_text,
    partial_path,
    store_file,
)
from kstream.savepoint.snapshot import stores_of

Progress = Callable[[str], None]


def write_savepoint(
    directory: str | Path,
    spec: PipelineSpec,
    tasks: list[TaskSnapshot],
    entries: Mapping[str, Mapping[str, Iterable[StateEntry]]],
    *,
    group: str | None = None,
    partitions: Mapping[str, int] | None = None,
    created_ms: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Write a savepoint of ``spec``'s job to ``directory`` atomically (see the module doc).

    Args:
        tasks: every task's checkpoint metadata (one per stage and partition).
        entries: per stateful node id and store (``""``, ``timers``, ``ttl``), its entries (an
            iterable is consumed once; nodes or stores missing here are saved empty).
        group: the job's group (internal topic names; default: the pipeline's group id).
        partitions: per stage id, the partition count of its input topics (default: one more
            than the highest partition among ``tasks``, at least 1).
        created_ms: creation time in epoch ms (default: now).
        progress: called with a short message after each file.

    Returns:
        The manifest written.

    Raises:
        SavepointError: ``directory`` exists, a task or entry names an unknown stage, node
            or store, a task appears twice, or a file cannot be written.
    """
    target = Path(directory)
    if target.exists():
        raise SavepointError(f"{target} already exists; choose another directory or dispose it")
    plan = build_plan(spec, group)
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


def _check(plan: Plan, tasks: list[TaskSnapshot], entries: Mapping[str, Mapping[str, Any]]) -> None:
    seen: set[str] = set()
    stage_ids = {s.id for s in plan.stages}
    for task in tasks:
        if task.stage not in stage_ids:
            raise SavepointError(f"task {task.task_id}: pipeline has no stage {task.stage!r}")
        if task.task_id in seen:
            raise SavepointError(f"task {task.task_id} appears twice")
        seen.add(task.task_id)
    unknown = sorted(set(entries) - set(plan.spec.stateful_ids()))
    if unknown:
        raise SavepointError(f"state for unknown operator(s) {', '.join(unknown)}")
    for node_id, stores in entries.items():
        known = {ref.store for ref in stores_of(plan, node_id)}
        extra = sorted(set(stores) - known)
        if extra:
            raise SavepointError(f"operator {node_id} has no store(s) {', '.join(extra)}")


def _write_files(
    tmp: Path,
    plan: Plan,
    tasks: list[TaskSnapshot],
    entries: Mapping[str, Mapping[str, Iterable[StateEntry]]],
    partitions: Mapping[str, int] | None,
    created_ms: int | None,
    progress: Progress | None,
) -> Manifest:
    say = progress or (lambda _message: None)
    order = {s.id: s.index for s in plan.stages}
    ordered = sorted(tasks, key=lambda t: (order[t.stage], t.partition))
    task_info = _write(tmp, TASKS_FILE, TASK_SCHEMA, map(_task_record, ordered), "tasks")
    say(f"{TASKS_FILE}: {task_info.records} tasks")
    nodes: dict[str, NodeInfo] = {}
    for stage in plan.stages:
        for node in stage.stateful:
            files: dict[str, FileInfo] = {}
            for ref in stores_of(plan, node.id):
                rows = (entries.get(node.id) or {}).get(ref.store, ())
                records = _entry_records(node.id, stage.id, rows)
                name = store_file(node.id, ref.store)
                files[ref.store] = info = _write(tmp, name, ENTRY_SCHEMA, records, node.id)
                say(f"{info.file}: {info.records:,} entries, {info.bytes:,} bytes")
            nodes[node.id] = NodeInfo(node.id, stage.id, operator_to_dict(node), files)
    manifest = _manifest(plan, ordered, task_info, nodes, partitions, created_ms)
    _write_manifest(tmp, manifest)
    say(f"{MANIFEST}: {len(nodes)} operators, {manifest.total_bytes:,} bytes")
    return manifest


def _task_record(task: TaskSnapshot) -> dict[str, Any]:
    meta = orjson.dumps(task.meta).decode()
    return {
        "stage": task.stage,
        "partition": task.partition,
        "inputs": list(task.inputs),
        "meta": meta,
    }


def _entry_records(
    op_id: str, stage: str, entries: Iterable[StateEntry]
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
    nodes: dict[str, NodeInfo],
    partitions: Mapping[str, int] | None,
    created_ms: int | None,
) -> Manifest:
    spec = plan.spec
    stages = []
    for stage in plan.stages:
        mine = [t for t in tasks if t.stage == stage.id]
        highest = max((t.partition + 1 for t in mine), default=1)
        count = (partitions or {}).get(stage.id) or highest
        keyed = tuple(operator_to_dict(k) for k in stage.keyed_by)
        inputs = tuple(stage.input_topics)
        stages.append(StageInfo(stage.id, stage.index, inputs, count, len(mine), keyed))
    watermarks = {
        t.task_id: int(t.meta["watermark"]) for t in tasks if t.meta.get("watermark") is not None
    }
    total = task_info.bytes + sum(node.bytes for node in nodes.values())
    return Manifest(
        format_version=FORMAT_VERSION,
        pipeline=spec.name,
        group=plan.prefix,
        fingerprint=fingerprint(spec),
        created_ms=int(time.time() * 1000) if created_ms is None else created_ms,
        kstream_version=__version__,
        nodes=nodes,
        tasks=task_info,
        sources=_sources(plan, tasks, stages),
        watermarks=watermarks,
        stages=tuple(stages),
        total_bytes=total,
    )


def _sources(
    plan: Plan, tasks: list[TaskSnapshot], stages: list[StageInfo]
) -> dict[str, SourceInfo]:
    """Each source with its topic's partition count (that of the stage reading it) and the
    next offset of each partition, from the tasks reading it."""
    out = {}
    for source in plan.spec.sources:
        stage = next(s for s in stages if source.topic in s.inputs)
        offsets = {}
        for task in tasks:
            position = task.position(source.topic) if task.stage == stage.id else None
            if position is not None:
                offsets[task.partition] = position
        out[source.id] = SourceInfo(source.id, source.topic, stage.partitions, offsets)
    return out


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
