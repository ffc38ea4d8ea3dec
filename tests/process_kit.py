"""A savepoint holding a process function's state and timers, written from the driver's
tasks without a broker (tests/unit/test_process_savepoint.py, tests/cli)."""

from __future__ import annotations

from pathlib import Path

from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import snapshot_local, write_savepoint
from kstream.state.store import TaskStore, task_dir
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: sp-proc
sources:
  - {topic: events, event_time: {field: ts}}
operators:
  - {key_by: k, id: by-k}
  - id: fn
    process:
      python: process_udfs:Everything
      state: {count: value, seen: list, parity: map, flags: value}
      ports: [odd, timers]
sinks:
  - {topic: out, from: fn}
  - {topic: odd, from: fn.odd}
  - {topic: timers, from: fn.timers}
"""
KEYS = [f"k{i}" for i in range(6)]


def write_process_savepoint(tmp_path: Path, pipeline: str = PIPELINE) -> Path:
    """Run ``pipeline`` (with a source ``events`` keyed by ``k``) on 30 records over 2
    partitions, write each task's state as one stopped checkpoint under ``tmp_path/state``, and
    a savepoint of it to ``tmp_path/sp``."""
    spec = load_pipeline_text(pipeline, "p.yaml")
    driver = PipelineDriver(spec, partitions=2)
    for i in range(30):
        k = KEYS[i % len(KEYS)]
        driver.send("events", {"k": k, "n": i, "ts": 1_000 + i}, key=k, partition=i % 2)
    return save_driver_state(driver, tmp_path)


def save_driver_state(driver: PipelineDriver, tmp_path: Path) -> Path:
    """Write each of ``driver``'s tasks' state as one stopped checkpoint under
    ``tmp_path/state`` and a savepoint of it to ``tmp_path/sp``; returns the savepoint."""
    plan, spec = driver.plan, driver.plan.spec
    for task in {id(t): t for t in driver.tasks.values()}.values():
        meta = task.meta()
        meta.update(checkpoint_id=1, pipeline=plan.prefix, fingerprint=None, stopped_by="r1")
        changes = {
            k: [(a, b) for a, b in v if b is not None] for k, v in task.state_changes().items()
        }
        path = task_dir(tmp_path / "state", plan.prefix, task.stage.id, task.partition)
        store = TaskStore(path, [ref.column_family for ref in task.stage.stores])
        try:
            store.apply(changes, meta)
        finally:
            store.close()
    tasks, entries = snapshot_local(spec, tmp_path / "state")
    write_savepoint(tmp_path / "sp", spec, tasks, entries)
    return tmp_path / "sp"
