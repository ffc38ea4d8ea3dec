"""Savepoint format version 2 holds graphs: several sources (each with its offsets), a task
reading several topics (a position per topic), every store of a node (windows and their
timers), all named by id; a restore seeds each task by stage id, and a rescale routes a
window's timers with the window (same record key, same new task)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kstream.graph.plan import build_plan
from kstream.io.partitioner import partition_for
from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import open_savepoint, snapshot_local, write_savepoint
from kstream.savepoint.reshard import SavepointSeed
from kstream.state.store import TaskStore, task_dir
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: sp-graph
sources:
  - {id: ewr, topic: g-ewr, event_time: {field: ts}, watermark: {max_out_of_orderness: 1s}}
  - {id: others, topic: g-others, event_time: {field: ts}, watermark: {max_out_of_orderness: 1s}}
operators:
  - {id: both, union: [ewr, others]}
  - {id: by-key, key_by: key}
  - id: per-minute
    window: {type: tumbling, size: 1m, aggregate: {n: count, total: {sum: amount}}}
sinks:
  - topic: g-out
"""
KEYS = [f"k{i}" for i in range(7)]


def write_state(root: Path, stopped: bool) -> PipelineDriver:
    """Run the pipeline on 2 partitions per topic and write each task's state as one
    checkpoint (``stopped``: as a stop-with-savepoint leaves it)."""
    spec = load_pipeline_text(PIPELINE, "g.yaml")
    driver = PipelineDriver(spec, partitions=2)
    for i in range(120):
        topic = "g-ewr" if i % 3 else "g-others"
        value = {"key": KEYS[i % len(KEYS)], "amount": i, "ts": 1_000 * i}
        driver.send(topic, value, key=value["key"], partition=i % 2)
    plan = driver.plan
    for task in {id(t): t for t in driver.tasks.values()}.values():
        meta = task.meta()
        meta.update(checkpoint_id=1, pipeline=plan.prefix, fingerprint=None)
        if stopped:
            meta["stopped_by"] = "r1"
        changes = {
            k: [(a, b) for a, b in v if b is not None] for k, v in task.state_changes().items()
        }
        path = task_dir(root, plan.prefix, task.stage.id, task.partition)
        store = TaskStore(path, [ref.column_family for ref in task.stage.stores])
        try:
            store.apply(changes, meta)
        finally:
            store.close()
    return driver


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    write_state(tmp_path / "state", stopped=True)
    spec = load_pipeline_text(PIPELINE, "g.yaml")
    tasks, entries = snapshot_local(spec, tmp_path / "state")
    write_savepoint(tmp_path / "sp", spec, tasks, entries)
    return tmp_path / "sp"


def test_sources_stages_and_tasks_by_id(saved: Path) -> None:
    sp = open_savepoint(saved)
    m = sp.manifest
    assert m.format_version == 2
    assert [(s.id, s.topic, s.partitions) for s in m.sources.values()] == [
        ("ewr", "g-ewr", 2),
        ("others", "g-others", 2),
    ]
    tasks = {t.task_id: t for t in sp.tasks()}
    assert set(tasks) == {"ewr:0", "ewr:1", "by-key:0", "by-key:1"}
    assert tasks["ewr:0"].inputs == ("g-ewr", "g-others")
    for source in m.sources.values():
        assert source.offsets == {p: tasks[f"ewr:{p}"].position(source.topic) for p in (0, 1)}
    # 120 records, one in three to g-others, split over 2 partitions
    assert sum(m.sources["ewr"].offsets.values()) == 80
    assert sum(m.sources["others"].offsets.values()) == 40
    assert [(s.id, s.inputs) for s in m.stages] == [
        ("ewr", ("g-ewr", "g-others")),
        ("by-key", ("sp-graph.by-key.repartition",)),
    ]
    node = m.nodes["per-minute"]
    assert node.stage == "by-key" and set(node.stores) == {"", "timers"}
    assert node.stores["timers"].records == node.entries > 0


def test_restore_into_the_same_layout_gives_each_task_its_state(saved: Path) -> None:
    spec = load_pipeline_text(PIPELINE, "g.yaml")
    plan = build_plan(spec)
    sp = open_savepoint(saved)
    counts = {"g-ewr": 2, "g-others": 2, "sp-graph.by-key.repartition": 2}
    seed = SavepointSeed(saved, plan, counts, allow_non_restored=False)
    tasks = {t.task_id: t for t in sp.tasks()}
    for p in (0, 1):
        meta, stores = seed.seed("ewr", p)
        assert meta == tasks[f"ewr:{p}"].meta and stores == {}
    seeded = {"op.per-minute": [], "op.per-minute.timers": []}
    for p in (0, 1):
        _meta, stores = seed.seed("by-key", p)
        for name, rows in stores.items():
            seeded[name] += rows
    assert sorted(seeded["op.per-minute"]) == sorted(
        (e.key, e.value) for e in sp.entries("per-minute")
    )
    assert sorted(seeded["op.per-minute.timers"]) == sorted(
        (e.key, e.value) for e in sp.entries("per-minute", "timers")
    )


def test_rescaling_routes_timers_with_their_windows(saved: Path) -> None:
    plan = build_plan(load_pipeline_text(PIPELINE, "g.yaml"))
    counts = {"g-ewr": 2, "g-others": 2, "sp-graph.by-key.repartition": 3}
    seed = SavepointSeed(saved, plan, counts, allow_non_restored=False)
    sp = open_savepoint(saved)
    windows = {e.key: e.routing for e in sp.entries("per-minute")}
    timers = {e.key: e.routing for e in sp.entries("per-minute", "timers")}
    for p in range(3):
        _meta, stores = seed.seed("by-key", p)
        for key, _value in stores.get("op.per-minute", []):
            assert partition_for(windows[key], 3) == p
        for key, _value in stores.get("op.per-minute.timers", []):
            assert partition_for(timers[key], 3) == p
    # every window's record key has its timer in the same new task
    assert set(windows.values()) == set(timers.values())


def test_a_source_renamed_away_is_refused(saved: Path) -> None:
    from kstream.errors import SavepointError
    from kstream.savepoint import check_restore

    renamed = load_pipeline_text(
        PIPELINE.replace("id: others", "id: rest").replace(
            "union: [ewr, others]", "union: [ewr, rest]"
        ),
        "g.yaml",
    )
    with pytest.raises(SavepointError, match=r"source others .* give the source `id: others`"):
        check_restore(open_savepoint(saved).manifest, renamed)
