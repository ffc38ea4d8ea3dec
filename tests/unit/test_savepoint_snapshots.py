"""Savepoints read the snapshot an owner process wrote of each task's committed state (a RocksDB
checkpoint), never a database another process may be writing, and only when the snapshot holds
the checkpoint the owner acknowledged (issue 11: a stop-with-savepoint once saved a task at
position 28,491 with 0 window entries while its database held 1,537)."""

from __future__ import annotations

from pathlib import Path

import pytest
import savepoint_kit as kit

from kstream.errors import SavepointError, StateError
from kstream.graph.plan import build_plan
from kstream.savepoint import snapshot_local
from kstream.state.store import SnapshotRef, TaskStore, snapshot_path, task_dir

REQUEST = "req123"


def _snapshot_all(state_dir: Path) -> dict[str, SnapshotRef]:
    """What a running process does on a savepoint request: snapshot each task it owns."""
    plan = build_plan(kit.spec())
    refs = {}
    for stage in plan.stages:
        for partition in range(2):
            path = task_dir(state_dir, plan.prefix, stage.id, partition)
            if not path.exists():
                continue
            store = TaskStore(path, [ref.column_family for ref in stage.stores])
            try:
                meta = store.meta()
                assert meta is not None
                task_id = f"{stage.id}:{partition}"
                snap = snapshot_path(state_dir, plan.prefix, REQUEST, task_id)
                store.snapshot(snap / "db")
            finally:
                store.close()
            refs[task_id] = SnapshotRef(
                task_id, str(snap), int(meta["position"]), int(meta["checkpoint_id"])
            )
    return refs


def test_snapshot_holds_the_same_state_as_the_live_database(tmp_path: Path) -> None:
    written = kit.write_state(kit.run(), tmp_path / "live")
    refs = _snapshot_all(tmp_path / "live")
    assert refs and written > 0
    live_tasks, lazy = snapshot_local(kit.spec(), tmp_path / "live")
    live_entries = {node: {s: list(rows) for s, rows in st.items()} for node, st in lazy.items()}
    # the live databases change after the snapshot (the job goes on): the snapshot does not
    kit.write_state(kit.run(records=300), tmp_path / "live", checkpoint_id=2)
    assert snapshot_local(kit.spec(), tmp_path / "live")[1] != live_entries
    tasks, entries = snapshot_local(kit.spec(), tmp_path / "live", snapshots=refs)
    assert [t.meta for t in tasks] == [t.meta for t in live_tasks]
    assert entries == live_entries
    assert sum(len(rows) for stores in entries.values() for rows in stores.values()) == written
    with pytest.raises(StateError, match="changed while it was read"):
        list(lazy[next(iter(lazy))][""])  # read lazily: the live database moved on


def test_snapshot_of_another_checkpoint_is_refused(tmp_path: Path) -> None:
    kit.write_state(kit.run(), tmp_path)
    refs = _snapshot_all(tmp_path)
    task_id, ref = sorted(refs.items())[0]
    refs[task_id] = SnapshotRef(ref.task, ref.path, ref.position, ref.checkpoint_id + 1)
    with pytest.raises(SavepointError, match=rf"task {task_id}: its snapshot .* acknowledged"):
        snapshot_local(kit.spec(), tmp_path, snapshots=refs)


def test_missing_snapshot_is_refused(tmp_path: Path) -> None:
    kit.write_state(kit.run(), tmp_path)
    refs = _snapshot_all(tmp_path)
    task_id, ref = sorted(refs.items())[0]
    refs[task_id] = SnapshotRef(ref.task, str(tmp_path / "gone"), ref.position, ref.checkpoint_id)
    with pytest.raises(SavepointError, match="holds checkpoint None at position None"):
        snapshot_local(kit.spec(), tmp_path, snapshots=refs)
