"""A join's state in savepoints: written and read by node id, decoded for ``kstream state
dump`` (``Savepoint.windows``), summarized for ``savepoint inspect``, and re-sharded by key hash
into another partition count, buffers and timers together."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from process_kit import save_driver_state

from kstream.errors import SavepointError
from kstream.graph.plan import build_plan
from kstream.io.partitioner import partition_for
from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import check_restore, open_savepoint
from kstream.savepoint.reshard import SavepointSeed
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: js
sources:
  - {id: a, topic: a, event_time: t}
  - {id: b, topic: b, event_time: t}
operators:
  - id: j
    from: a
    join: {type: interval, right: b, on: k, between: [-1000, 1000], how: full}
sinks:
  - {topic: out}
"""
KEYS = ["k1", "k2", "k3", "k4", "k5"]


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """30 records on each side over 2 partitions, buffered (the watermark is far behind their
    cleanup times), each task's state as one stopped checkpoint, and a savepoint of it."""
    spec = load_pipeline_text(PIPELINE, "p.yaml")
    driver = PipelineDriver(spec, partitions=2)
    for i in range(30):
        k = KEYS[i % len(KEYS)]
        driver.send("a", {"k": k, "n": i, "t": 1_000 + i}, key=k, partition=i % 2)
        driver.send("b", {"k": k, "m": i, "t": 1_000 + i}, key=k, partition=i % 2)
    return save_driver_state(driver, tmp_path)


def test_buffers_and_timers_are_saved_and_decoded(saved: Path) -> None:
    sp = open_savepoint(saved)
    assert list(sp.manifest.operators) == ["j"]
    rows = list(sp.windows("j", key="k1"))
    assert sorted((r["side"], r["value"]["t"]) for r in rows) == [
        (side, 1_000 + i) for side in ("left", "right") for i in range(0, 30, 5)
    ]
    assert all(r["key"] == "k1" and r["ts"] == r["value"]["t"] for r in rows)
    assert len(list(sp.windows("j"))) == 60
    timers = list(sp.entries("j", "timers"))
    assert len(timers) == 60  # one per side and time: left at t + 1000, right at t + 1000
    assert all(orjson.loads(t.routing) in KEYS for t in timers)


def test_restore_rescales_the_buffers_and_timers_by_key_hash(saved: Path) -> None:
    spec = load_pipeline_text(PIPELINE, "p.yaml")
    plan = build_plan(spec)
    assert check_restore(open_savepoint(saved).manifest, spec) == []
    stage = next(s for s in plan.stages if s.joins)
    partitions = {"a": 2, "b": 2, **{t: 3 for t in stage.input_topics}}
    seed = SavepointSeed(saved, plan, partitions, allow_non_restored=False)
    seen: set[str] = set()
    records = 0
    for p in range(3):
        _meta, stores = seed.seed(stage.id, p)
        for raw, _ in stores.get("op.j", []):
            key, *rest = orjson.loads(raw)
            assert partition_for(orjson.dumps(key), 3) == p
            seen.add(key)
            records += len(rest) == 3
        for raw, _ in stores.get("op.j.timers", []):
            assert partition_for(orjson.dumps(orjson.loads(raw[9:])[0]), 3) == p
    assert seen == set(KEYS) and records == 60


def test_a_changed_interval_is_refused(saved: Path) -> None:
    changed = load_pipeline_text(PIPELINE.replace("[-1000, 1000]", "[-5000, 1000]"), "p.yaml")
    with pytest.raises(SavepointError, match=r"operator j: its definition changed \(lower_ms\)"):
        check_restore(open_savepoint(saved).manifest, changed)
    select = PIPELINE.replace("how: full}", "how: left, select: {n: n}}")
    assert check_restore(open_savepoint(saved).manifest, load_pipeline_text(select, "p.yaml")) == []
