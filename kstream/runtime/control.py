"""The control channel of a job: topic ``<group>.control`` (one partition).

``kstream savepoint create`` writes a request, ``{"type": "checkpoint" | "stop", "id",
"created_ms"}``, and every running process of the job answers, once it has done it, with
``{"type": "ack", "id", "tasks": [...], "snapshots": [...]}`` naming the tasks it owns and, per
task with committed state, the snapshot of that state it wrote (``task``, ``path``,
``position``, ``checkpoint_id``; see :meth:`~kstream.state.store.TaskStore.snapshot`).
``checkpoint``: each task checkpoints now. ``stop``: source tasks stop consuming and
checkpoint; downstream tasks drain their repartition input up to the in-band stop markers,
checkpoint, and the processes exit (Flink's stop-with-savepoint). The requester waits until the
acknowledged tasks cover the job, then reads the snapshots (never a database another process is
writing) and deletes them.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kstream.checkpoint.steps import TaskRuntime, TxnState
from kstream.errors import KStreamError
from kstream.graph.plan import Plan, task_id
from kstream.io import kafka
from kstream.runtime.lifecycle import RunOptions
from kstream.state.store import (
    SnapshotRef,
    is_locked,
    snapshot_path,
    snapshots_dir,
    task_dir,
)


@dataclass
class Quiesced:
    """The outcome of :func:`quiesce`: the request id, how many processes acknowledged, and
    the snapshots they wrote (by task id)."""

    request_id: str | None = None
    acks: int = 0
    snapshots: dict[str, SnapshotRef] = field(default_factory=dict)


def acknowledge(
    request_id: str,
    runtimes: list[TaskRuntime],
    options: RunOptions,
    prefix: str,
    settings: dict[str, str],
) -> None:
    """Answer a request for this process's tasks (``runtimes``): each task's committed state
    is first copied by this process, the owner of its database, to a snapshot
    (:meth:`TaskStore.snapshot`); the acknowledgement names each snapshot with the checkpoint
    it holds, which ``savepoint create`` verifies before using it.

    Raises:
        BrokerError: the acknowledgement cannot be produced.
    """
    snapshots = []
    for rt in sorted(runtimes, key=lambda r: r.task.id):
        if rt.state == TxnState.ABORTED or rt.committed_position is None:
            continue  # nothing committed here: the savepoint reads no state of this task
        path = snapshot_path(options.state_dir, prefix, request_id, rt.task.id)
        rt.store.snapshot(path / "db")
        ref = SnapshotRef(rt.task.id, str(path.resolve()), rt.committed_position, rt.checkpoint_id)
        snapshots.append(asdict(ref))
    tasks = sorted(rt.task.id for rt in runtimes)
    kafka.produce_json(
        options.bootstrap,
        settings,
        control_topic(prefix),
        {"type": "ack", "id": request_id, "tasks": tasks, "snapshots": snapshots},
    )


def discard_snapshots(state_dir: str, prefix: str, request_id: str | None) -> None:
    """Delete the snapshots written for ``request_id`` (after the savepoint is written or
    has failed)."""
    if request_id:
        shutil.rmtree(snapshots_dir(state_dir, prefix, request_id), ignore_errors=True)


def discard_acknowledged(done: Quiesced) -> None:
    """Delete the snapshots the acknowledgements of ``done`` name that are on this machine, in
    any state dir (processes of the job run with another ``--state-dir``). Only a directory
    laid out as :func:`~kstream.state.store.snapshots_dir` makes it for this request
    (``.../.snapshots/<request id>``) is removed; snapshots on other machines stay."""
    for ref in done.snapshots.values():
        request_dir = Path(ref.path).parent
        if request_dir.name == done.request_id and request_dir.parent.name == ".snapshots":
            shutil.rmtree(request_dir, ignore_errors=True)


def control_topic(prefix: str) -> str:
    """``<group>.control``."""
    return f"{prefix}.control"


def request(kind: str) -> dict[str, Any]:
    """A new request of ``kind`` (``checkpoint`` or ``stop``)."""
    return {"type": kind, "id": uuid.uuid4().hex[:12], "created_ms": int(time.time() * 1000)}


def all_tasks(plan: Plan, partitions: dict[str, int]) -> set[str]:
    """Every task id (``<stage id>:<partition>``) of the job."""
    return {task_id(s, p) for s in plan.stages for p in range(partitions.get(s.input_topic, 0))}


def running_locally(plan: Plan, state_dir: str, partitions: dict[str, int]) -> bool:
    """True when a process on this machine holds the lock of any of the job's tasks."""
    for stage in plan.stages:
        for p in range(partitions.get(stage.input_topic, 0)):
            if is_locked(task_dir(state_dir, plan.prefix, stage.id, p)):
                return True
    return False


def quiesce(
    plan: Plan,
    bootstrap: str,
    group: str,
    *,
    stop: bool,
    timeout_s: float = 120.0,
    progress: Callable[[str], None] | None = None,
    state_dir: str = ".kstream-state",
) -> Quiesced:
    """Ask the running processes of a job to checkpoint (and, with ``stop``, to stop after
    draining) and wait until every task has acknowledged. Returns the acknowledgements and the
    snapshots they name (nothing when no process of the job runs: none on this machine holds a
    task's lock, and consumer group ``group`` has no member on any machine).

    Raises:
        BrokerError: the broker is unreachable.
        KStreamError: not every task acknowledged within ``timeout_s`` seconds.
    """
    settings = dict(plan.spec.kafka)
    admin = kafka.Admin(bootstrap, settings)
    partitions = admin.topics()
    if not running_locally(plan, state_dir, partitions) and not kafka.group_members(
        bootstrap, settings, group
    ):
        return Quiesced()
    topic = control_topic(plan.prefix)
    admin.ensure_topics([kafka.TopicConfig(topic, 1)])
    wanted = all_tasks(plan, partitions)
    req = request("stop" if stop else "checkpoint")
    reader = kafka.TopicReader(bootstrap, settings, topic)
    try:
        kafka.produce_json(bootstrap, settings, topic, req)
        return _await_acks(reader, req["id"], wanted, timeout_s, progress)
    except BaseException:
        discard_snapshots(state_dir, plan.prefix, req["id"])
        raise
    finally:
        reader.close()


def _snapshots(msg: dict[str, Any]) -> dict[str, SnapshotRef]:
    """The snapshots an acknowledgement names (``dataclasses.asdict`` of each
    :class:`SnapshotRef`, as the runner sends them), by task id."""
    refs = [SnapshotRef(**item) for item in msg.get("snapshots", [])]
    return {ref.task: ref for ref in refs}


def _await_acks(
    reader: kafka.TopicReader,
    request_id: str,
    wanted: set[str],
    timeout_s: float,
    progress: Callable[[str], None] | None,
) -> Quiesced:
    covered: set[str] = set()
    done = Quiesced(request_id)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for msg in reader.poll(0.5):
            if msg.get("type") == "ack" and msg.get("id") == request_id:
                done.acks += 1
                covered.update(msg.get("tasks", []))
                done.snapshots.update(_snapshots(msg))
                if progress:
                    progress(f"{len(covered & wanted)}/{len(wanted)} tasks acknowledged")
        if wanted <= covered:
            return done
    missing = ", ".join(sorted(wanted - covered))
    raise KStreamError(
        f"the job did not acknowledge the request in {timeout_s:.0f} s "
        f"(tasks without acknowledgement: {missing})"
    )
