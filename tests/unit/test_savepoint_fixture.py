"""The committed format-v1 fixture (tests/fixtures/savepoint-v1/) stays readable and restorable:
a later kstream must open it, accept it for its pipeline, and decode the same windows."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import savepoint_kit as kit

from kstream.pipeline.load import load_pipeline
from kstream.savepoint import FORMAT_VERSION, check_restore, open_savepoint
from kstream.testing import PipelineDriver

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))

import make_savepoint_v1 as v1  # noqa: E402


def test_fixture_is_small_and_complete() -> None:
    files = sorted(p.name for p in v1.TARGET.iterdir())
    assert files == ["manifest.json", "op-per-minute.avro", "op-totals.avro", "tasks.avro"]
    assert sum((v1.TARGET / f).stat().st_size for f in files) < 50_000


def test_fixture_opens_and_fits_its_pipeline() -> None:
    sp = open_savepoint(v1.TARGET)
    assert sp.manifest.format_version == 1 and FORMAT_VERSION == 2
    assert check_restore(sp.manifest, load_pipeline(v1.PIPELINE)) == []
    assert sp.manifest.source.offsets == {0: v1.SAVED // 2, 1: v1.SAVED // 2}
    # version 1 numbered stages; they read back with the ids the runtime gives them
    source = "savepoint-v1-events"
    ids = [f"{source}:0", f"{source}:1", "by-user:0", "by-user:1"]
    assert [t.task_id for t in sp.tasks()] == ids
    assert set(sp.manifest.watermarks) == set(ids)
    assert [s.id for s in sp.manifest.stages] == [source, "by-user"]
    assert {n.stage for n in sp.manifest.nodes.values()} == {"by-user"}
    assert list(sp.entries("per-minute", "timers")) == []  # version 1 holds no timers


def test_fixture_holds_the_state_after_the_saved_records() -> None:
    driver = PipelineDriver(load_pipeline(v1.PIPELINE), partitions=v1.PARTITIONS)
    for key, value, partition in v1.records()[: v1.SAVED]:
        driver.send("savepoint-v1-events", value, key=key, partition=partition)
    v1.stop_with_savepoint(driver)
    sp = open_savepoint(v1.TARGET)
    assert all(t.meta["stopped_by"] == v1.REQUEST_ID for t in sp.tasks())
    for op_id in ("per-minute", "totals"):
        got = sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in sp.windows(op_id))
        want = sorted(
            orjson.dumps(r, option=orjson.OPT_SORT_KEYS)
            for r in kit.expected_windows(driver, op_id)
        )
        assert got == want and got
