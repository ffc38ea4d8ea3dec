"""A process function's state and timers in savepoints: written and read by node id, decoded
for ``kstream state dump`` (``Savepoint.windows``), and re-sharded by key hash into another
partition count, state and timers together."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from process_kit import KEYS, PIPELINE, write_process_savepoint

from kstream.errors import SavepointError
from kstream.graph.plan import build_plan
from kstream.io.partitioner import partition_for
from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import check_restore, open_savepoint
from kstream.savepoint.reshard import SavepointSeed


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return write_process_savepoint(tmp_path)


def test_state_and_timers_are_saved_and_decoded(saved: Path) -> None:
    sp = open_savepoint(saved)
    assert list(sp.manifest.operators) == ["fn"]
    rows = list(sp.windows("fn", key="k1"))
    by_state = {r["state"]: r for r in rows}
    assert by_state["count"]["value"] == 5
    assert by_state["seen"]["value"] == [1, 7, 13, 19, 25]
    assert by_state["parity"] == {
        "key": "k1",
        "state": "parity",
        "kind": "map",
        "value": {"odd": 5},
    }
    timers = list(sp.entries("fn", "timers"))
    processing = [t for t in timers if t.key[:1] == b"p"]
    assert len(processing) == len(KEYS)  # one per key: all registered at clock 0 + 100
    assert len(timers) > len(processing)  # event-time timers the watermark has not reached
    assert all(orjson.loads(t.routing) in KEYS for t in timers)


def test_restore_rescales_state_and_timers_by_key_hash(saved: Path) -> None:
    spec = load_pipeline_text(PIPELINE, "p.yaml")
    plan = build_plan(spec)
    assert check_restore(open_savepoint(saved).manifest, spec) == []
    partitions = {"events": 2, plan.output_topic_of(plan.stages[0].key_bys[0]): 3}
    seed = SavepointSeed(saved, plan, partitions, allow_non_restored=False)
    stage = plan.stages[1]
    seen: set[str] = set()
    for p in range(3):
        _meta, stores = seed.seed(stage.id, p)
        for raw, _ in stores.get("op.fn", []):
            key = orjson.loads(raw)[0]
            assert partition_for(orjson.dumps(key), 3) == p
            seen.add(key)
        for raw, _ in stores.get("op.fn.timers", []):
            assert partition_for(orjson.dumps(orjson.loads(raw[9:])[0]), 3) == p
    assert seen == set(KEYS)


def test_a_changed_state_declaration_is_refused(saved: Path) -> None:
    changed = load_pipeline_text(PIPELINE.replace("seen: list", "seen: value"), "p.yaml")
    with pytest.raises(SavepointError, match=r"operator fn: its definition changed \(state\)"):
        check_restore(open_savepoint(saved).manifest, changed)
