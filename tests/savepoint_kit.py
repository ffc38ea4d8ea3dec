"""Helpers for the savepoint tests: a two-stage pipeline with a count window (stage 0), a tumbling
window and a global aggregation with a python aggregate (stage 1), run in memory by
:class:`kstream.testing.PipelineDriver`, and its state written to RocksDB task directories the
way a checkpoint does (``TaskStore.apply``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import PipelineSpec
from kstream.pipeline.view import fingerprint
from kstream.state.store import TaskStore, task_dir
from kstream.testing import PipelineDriver

PIPELINE = """
pipeline: sp-test
sources:
  - topic: sp-events
    event_time: {field: ts}
    watermark: {max_out_of_orderness: 1s}
operators:
  - id: pairs
    window: {type: count, size: 2, aggregate: {total: {sum: amount}}}
  - id: by-key
    key_by: key
  - id: per-minute
    window:
      type: tumbling
      size: 1m
      aggregate:
        batches: count
        amount: {sum: total}
        starts: {count_distinct: window_start}
  - id: totals
    window:
      type: global
      emit: update
      aggregate: {windows: count, best: {max: amount}, spread: {python: "savepoint_aggs:Spread"}}
sinks:
  - topic: sp-out
"""

KEYS = ("u0", "u1", "u2", "u3", "u4")


def spec() -> PipelineSpec:
    """The test pipeline (python aggregates are imported from ``tests/``)."""
    return load_pipeline_text(PIPELINE, str(Path(__file__).parent / "sp-test.yaml"))


def run(
    records: int = 151, partitions: int = 2, pipeline: PipelineSpec | None = None
) -> PipelineDriver:
    """Send ``records`` events (5 keys, one second apart, both partitions) without ending the
    input, so every operator holds open windows."""
    driver = PipelineDriver(pipeline or spec(), partitions=partitions)
    for i in range(records):
        key = KEYS[i % len(KEYS)]
        value = {"user": key, "amount": i, "ts": 1_000 * i}
        driver.send("sp-events", value, key=key, partition=i % partitions)
    return driver


def write_state(driver: PipelineDriver, state_dir: Path, checkpoint_id: int = 1) -> int:
    """Write every task's state and metadata as one checkpoint; returns the entries written."""
    plan = driver.plan
    written = 0
    for (topic, partition), task in driver.tasks.items():
        stage = plan.stage_of_topic(topic)
        meta = task.meta()
        meta.update(
            checkpoint_id=checkpoint_id,
            pipeline=plan.prefix,
            fingerprint=fingerprint(plan.spec),
            time_ms=1_700_000_000_000,
        )
        changes = {
            name: [(k, v) for k, v in rows if v is not None]
            for name, rows in task.state_changes().items()
        }
        written += sum(len(rows) for rows in changes.values())
        store = TaskStore(
            task_dir(state_dir, plan.prefix, stage.id, partition),
            [ref.column_family for ref in stage.stores],
        )
        try:
            store.apply(changes, meta)
        finally:
            store.close()
    return written


def expected_windows(driver: PipelineDriver, operator_id: str) -> list[dict[str, Any]]:
    """What the in-memory operators hold, in the shape of ``Savepoint.windows``."""
    out: list[dict[str, Any]] = []
    for task in driver.tasks.values():
        for op in task.windows:
            if op.id == operator_id:
                out.extend(_held(op))
    return out


def _held(op: Any) -> list[dict[str, Any]]:
    agg = op.agg
    if op.spec.type == "count":
        size = op.spec.count_size
        return [
            {"key": key, "window_start": start, "window_end": start + size, **agg.result(slot[0])}
            for key, state in op.store.items()
            for start, slot in state.open.items()
        ]
    if op.spec.type == "global":
        return [{"key": key, **agg.result(entry[0])} for key, entry in op.store.items()]
    return [
        {"key": key, "window_start": start, "window_end": end, **agg.result(entry[0])}
        for (key, start, end), entry in op.store.items()
    ]
