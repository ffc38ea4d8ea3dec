"""Restore from the changelogs (no usable local state): the task metadata comes from the stage's
task changelog, for every stage, also one without windows (it used to travel only with the first
window's changelog, so a stage without windows lost its duplicate-detection table and upstream
watermarks); checkpoints written before the task changelog existed still restore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.graph.plan import Plan, build_plan, changelog_topic, task_changelog_topic
from kstream.pipeline.load import load_pipeline_text
from kstream.runtime.restore import recover
from kstream.state.store import META_KEY, TaskStore

PIPELINE = """\
pipeline: rt
sources:
  - topic: in
    event_time: {field: ts, unit: ms}
operators:
  - id: by-k
    key_by: k
  - id: w
    window: {type: tumbling, size: 1m, aggregate: {n: count}}
  - id: again
    key_by: k
sinks:
  - topic: out
"""
META = {"position": 7, "seen": {"in:0": 41}, "watermark": 1_000, "checkpoint_id": 3}


@pytest.fixture
def plan() -> Plan:
    return build_plan(load_pipeline_text(PIPELINE, "rt.yaml"))


def _restore(
    plan: Plan, tmp_path: Path, stage_index: int, topics: dict[str, list[tuple[bytes, bytes]]]
) -> tuple[dict[str, Any] | None, str]:
    stage = plan.stages[stage_index]

    def read(names: list[str], _p: int, on_records: Any) -> None:
        for t in names:
            on_records(t, topics.get(t, []))

    store = TaskStore(tmp_path / "t", [ref.column_family for ref in stage.stores])
    try:
        committed = {stage.input_topic: 7}
        return recover(store, committed, "fp", read, "rt", stage, 0)
    finally:
        store.close()


def test_stage_ids_follow_node_ids(plan: Plan) -> None:
    assert [s.id for s in plan.stages] == ["in", "by-k", "again"]


def test_a_stage_without_windows_restores_its_metadata(plan: Plan, tmp_path: Path) -> None:
    assert plan.stages[2].windows == []
    topics = {task_changelog_topic("rt", "again"): [(META_KEY, orjson.dumps(META))]}
    meta, how = _restore(plan, tmp_path, 2, topics)
    assert how == "changelog" and meta == META


def test_a_checkpoint_from_before_the_task_changelog_restores(plan: Plan, tmp_path: Path) -> None:
    entry = (b"\x01window-key", b"state")
    topics = {changelog_topic("rt", "w"): [entry, (META_KEY, orjson.dumps(META))]}
    meta, how = _restore(plan, tmp_path, 1, topics)
    assert how == "changelog" and meta == META


def test_without_any_metadata_the_task_starts_at_the_committed_offset(
    plan: Plan, tmp_path: Path
) -> None:
    meta, how = _restore(plan, tmp_path, 2, {})
    assert how == "changelog" and meta is not None
    assert meta["position"] == 7 and meta["seen"] == {}


def test_a_window_stage_reads_all_its_changelogs_in_one_read(plan: Plan, tmp_path: Path) -> None:
    """The task changelog, the window's and its timers' changelogs: one consumer, one read."""
    stage = plan.stages[1]
    calls: list[list[str]] = []

    def read(names: list[str], _p: int, on_records: Any) -> None:
        calls.append(list(names))
        on_records(task_changelog_topic("rt", "by-k"), [(META_KEY, orjson.dumps(META))])

    store = TaskStore(tmp_path / "t", [ref.column_family for ref in stage.stores])
    try:
        meta, how = recover(store, {stage.input_topic: 7}, "fp", read, "rt", stage, 0)
    finally:
        store.close()
    assert how == "changelog" and meta == META
    assert calls == [["rt.by-k.task.changelog", "rt.w.changelog", "rt.w.timers.changelog"]]
