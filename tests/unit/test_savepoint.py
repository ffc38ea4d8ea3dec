"""Savepoint format: snapshot of local RocksDB state, atomic write, verified open, list, dispose."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import savepoint_kit as kit

from kstream.errors import SavepointError
from kstream.pipeline.view import fingerprint, operator_to_dict
from kstream.savepoint import (
    ENTRY_SCHEMA,
    FORMAT_VERSION,
    MANIFEST,
    TASK_SCHEMA,
    StateEntry,
    TaskSnapshot,
    dispose,
    list_savepoints,
    load_manifest,
    open_savepoint,
    snapshot_local,
    write_savepoint,
)
from kstream.state.store import read_task_state, task_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, kit.PipelineDriver]:
    """A state directory holding one checkpoint of the test pipeline (4 tasks)."""
    root = tmp_path_factory.mktemp("state")
    driver = kit.run()
    kit.write_state(driver, root)
    return root, driver


@pytest.fixture
def saved(tmp_path: Path, state: tuple[Path, kit.PipelineDriver]) -> Path:
    tasks, entries = snapshot_local(kit.spec(), state[0])
    directory = tmp_path / "sps" / "one"
    write_savepoint(directory, kit.spec(), tasks, entries)
    return directory


def test_schemas_in_code_match_the_avsc_files() -> None:
    for name, schema in (("savepoint_task", TASK_SCHEMA), ("savepoint_entry", ENTRY_SCHEMA)):
        assert json.loads((REPO / "schemas" / f"{name}.avsc").read_text()) == schema


def test_snapshot_local_reads_every_task_and_operator(
    state: tuple[Path, kit.PipelineDriver],
) -> None:
    root, _driver = state
    tasks, entries = snapshot_local(kit.spec(), root)
    assert [t.task_id for t in tasks] == ["sp-events:0", "sp-events:1", "by-key:0", "by-key:1"]
    assert tasks[2].inputs == ("sp-test.by-key.repartition",)
    assert set(entries) == {"pairs", "per-minute", "totals"}
    assert set(entries["per-minute"]) == {"", "timers"} and set(entries["pairs"]) == {""}
    for p in (0, 1):
        stores = read_task_state(task_dir(root, "sp-test", "by-key", p))[1]
        for store, name in (("", "op.per-minute"), ("timers", "op.per-minute.timers")):
            saved = [(e.key, e.value) for e in entries["per-minute"][store] if e.partition == p]
            assert saved == stores[name]
    assert len(entries["per-minute"]["timers"]) == len(entries["per-minute"][""]) > 0
    assert {e.stage for e in entries["pairs"][""]} == {"sp-events"}
    assert all(e.routing == e.key[16:] for e in entries["totals"][""])
    # a timer routes by its record key, as the window it belongs to
    windows = {e.routing for e in entries["per-minute"][""]}
    assert {e.routing for e in entries["per-minute"]["timers"]} <= windows


def test_snapshot_local_without_state_is_empty(tmp_path: Path) -> None:
    tasks, entries = snapshot_local(kit.spec(), tmp_path)
    assert tasks == []
    assert entries == {"pairs": {"": []}, "per-minute": {"": [], "timers": []}, "totals": {"": []}}


def test_snapshot_local_refuses_state_of_another_pipeline_version(
    tmp_path: Path, state: tuple[Path, kit.PipelineDriver]
) -> None:
    other = kit.spec()
    driver = kit.run(20)
    kit.write_state(driver, tmp_path)
    changed = kit.load_pipeline_text(kit.PIPELINE.replace("size: 1m", "size: 2m"))
    with pytest.raises(SavepointError, match="another version of pipeline sp-test"):
        snapshot_local(changed, tmp_path)
    assert snapshot_local(other, tmp_path)[0]


def test_round_trip(saved: Path, state: tuple[Path, kit.PipelineDriver]) -> None:
    root, driver = state
    tasks, entries = snapshot_local(kit.spec(), root)
    sp = open_savepoint(saved)
    m = sp.manifest
    assert (m.format_version, m.pipeline, m.group) == (FORMAT_VERSION, "sp-test", "sp-test")
    assert m.fingerprint == fingerprint(kit.spec())
    assert sp.operator_ids == ["pairs", "per-minute", "totals"]
    assert sp.tasks() == tasks
    for op_id, stores in entries.items():
        for store, rows in stores.items():
            assert list(sp.entries(op_id, store)) == rows
        assert m.nodes[op_id].entries == len(stores[""])
    assert m.nodes["per-minute"].stores["timers"].records == len(entries["per-minute"]["timers"])
    positions = {t.partition: t.meta["position"] for t in tasks if t.stage == "sp-events"}
    assert list(m.sources) == ["sp-events"]
    assert m.source.topic == "sp-events" and m.source.offsets == positions
    assert m.source.partitions == 2
    assert m.watermarks == {t.task_id: t.meta["watermark"] for t in tasks}
    assert [(s.id, s.index, s.partitions, s.tasks) for s in m.stages] == [
        ("sp-events", 0, 2, 2),
        ("by-key", 1, 2, 2),
    ]
    assert m.stages[0].keyed_by == () and m.stages[1].keyed_by[0]["expr"] == "key"
    window = driver.plan.stages[1].windows[0]
    assert m.nodes["per-minute"].definition == operator_to_dict(window)
    assert m.nodes["per-minute"].stage == "by-key"
    files = sorted(p.name for p in saved.iterdir())
    assert files == [
        MANIFEST,
        "node-pairs.avro",
        "node-per-minute.avro",
        "node-totals.avro",
        "tasks.avro",
        "timers-per-minute.avro",
    ]
    assert m.total_bytes == sum((saved / f).stat().st_size for f in files if f != MANIFEST)


def test_manifest_round_trips_through_json(saved: Path) -> None:
    m = load_manifest(saved)
    assert type(m).from_dict(json.loads(json.dumps(m.to_dict())), "x") == m


def test_write_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "sp").mkdir()
    with pytest.raises(SavepointError, match="already exists"):
        write_savepoint(tmp_path / "sp", kit.spec(), [], {})


def test_write_refuses_unknown_operators_and_stages(tmp_path: Path) -> None:
    with pytest.raises(SavepointError, match="unknown operator"):
        write_savepoint(tmp_path / "a", kit.spec(), [], {"nope": {"": []}})
    with pytest.raises(SavepointError, match="no stage 'five'"):
        write_savepoint(tmp_path / "b", kit.spec(), [TaskSnapshot("five", 0, ("t",), {})], {})
    wrong_stage = {"pairs": {"": [StateEntry("by-key", 0, b"\0" * 16 + b'"k"', b"{}", b'"k"')]}}
    with pytest.raises(SavepointError, match="runs in stage sp-events"):
        write_savepoint(tmp_path / "c", kit.spec(), [], wrong_stage)
    with pytest.raises(SavepointError, match="operator pairs has no store"):
        write_savepoint(tmp_path / "d", kit.spec(), [], {"pairs": {"timers": []}})
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even the partial directory


def test_explicit_partition_counts_and_creation_time(tmp_path: Path) -> None:
    task = TaskSnapshot("sp-events", 1, ("sp-events",), {"position": 7, "watermark": 5})
    counts = {"sp-events": 4, "by-key": 3}
    m = write_savepoint(tmp_path / "sp", kit.spec(), [task], {}, partitions=counts, created_ms=1234)
    assert (m.source.partitions, m.source.offsets, m.created_ms) == (4, {1: 7}, 1234)
    assert [s.partitions for s in m.stages] == [4, 3]
    assert m.operators["totals"].entries == 0


def test_open_detects_a_changed_file(saved: Path) -> None:
    path = saved / "node-per-minute.avro"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(SavepointError, match=r"node-per-minute.avro is corrupt \(its SHA-256"):
        open_savepoint(saved)
    open_savepoint(saved, verify=False)  # sizes still match


def test_open_detects_truncated_and_missing_files(saved: Path) -> None:
    tasks = saved / "tasks.avro"
    original = tasks.read_bytes()
    tasks.write_bytes(original[:-10])
    with pytest.raises(SavepointError, match=r"tasks.avro is corrupt \(its size"):
        open_savepoint(saved, verify=False)
    tasks.write_bytes(original)
    open_savepoint(saved)
    (saved / "node-totals.avro").unlink()
    with pytest.raises(SavepointError, match=r"node-totals\.avro is missing"):
        open_savepoint(saved)
    assert list_savepoints(saved.parent) == []


def test_open_refuses_a_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(SavepointError, match=r"is not a savepoint: it has no manifest\.json"):
        open_savepoint(tmp_path)
    with pytest.raises(SavepointError, match="is not a directory"):
        open_savepoint(tmp_path / "missing")


def test_open_refuses_a_partial_directory(saved: Path) -> None:
    partial = saved.parent / f".{saved.name}.partial-4242"
    saved.rename(partial)
    with pytest.raises(SavepointError, match="incomplete savepoint"):
        open_savepoint(partial)
    assert list_savepoints(saved.parent) == []


def test_open_refuses_unknown_format_versions_and_bad_manifests(saved: Path) -> None:
    manifest = saved / MANIFEST
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(SavepointError, match="unknown savepoint format_version 99"):
        open_savepoint(saved)
    for version in (1, 2):
        manifest.write_text(json.dumps({"format_version": version}))
        with pytest.raises(SavepointError, match="the manifest is malformed"):
            open_savepoint(saved)
    manifest.write_text("{")
    with pytest.raises(SavepointError, match="is not valid JSON"):
        open_savepoint(saved)


def test_unknown_operator(saved: Path) -> None:
    with pytest.raises(SavepointError, match=r"no operator 'nope' \(operators: pairs, "):
        list(open_savepoint(saved).entries("nope"))


def test_list_finds_savepoints_one_and_two_levels_deep(tmp_path: Path) -> None:
    spec = kit.spec()
    task = TaskSnapshot("sp-events", 0, ("sp-events",), {"position": 1, "watermark": 0})
    write_savepoint(tmp_path / "a", spec, [task], {}, created_ms=2)
    write_savepoint(tmp_path / "job" / "b", spec, [task], {}, created_ms=1)
    write_savepoint(tmp_path / "x" / "y" / "too-deep", spec, [task], {}, created_ms=3)
    (tmp_path / "junk").mkdir()
    (tmp_path / ".c.partial-1").mkdir()
    found = list_savepoints(tmp_path)
    assert [s.path.name for s in found] == ["b", "a"]
    assert found[0].pipeline == "sp-test" and found[0].operators == (
        "pairs",
        "per-minute",
        "totals",
    )
    assert [s.path.name for s in list_savepoints(tmp_path / "a")] == ["a"]
    assert list_savepoints(tmp_path / "missing") == []


def test_dispose(saved: Path) -> None:
    size = load_manifest(saved).total_bytes
    assert dispose(saved) >= size
    assert not saved.exists()
    with pytest.raises(SavepointError, match="is not a directory"):
        dispose(saved)


def test_dispose_refuses_what_is_not_a_savepoint(tmp_path: Path, saved: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file").write_text("keep me")
    with pytest.raises(SavepointError, match=r"has no manifest\.json"):
        dispose(tmp_path / "plain")
    (saved / "notes.txt").write_text("mine")
    with pytest.raises(SavepointError, match=r"not part of the savepoint \(notes.txt\)"):
        dispose(saved)
    assert (saved / MANIFEST).exists() and (tmp_path / "plain" / "file").exists()


def test_dispose_removes_a_dead_writers_partial_directory(tmp_path: Path) -> None:
    dead = tmp_path / ".sp.partial-999999999"
    dead.mkdir()
    (dead / "tasks.avro").write_bytes(b"x" * 10)
    assert dispose(dead) == 10 and not dead.exists()
    import os

    alive = tmp_path / f".sp.partial-{os.getppid()}"
    alive.mkdir()
    with pytest.raises(SavepointError, match="is being written by process"):
        dispose(alive)


def test_task_metadata_is_kept_verbatim(saved: Path) -> None:
    task = open_savepoint(saved).tasks()[0]
    assert task.meta["checkpoint_id"] == 1 and task.meta["fingerprint"] == fingerprint(kit.spec())
    assert orjson.loads(orjson.dumps(task.meta)) == task.meta
