"""The chaos suite's process workload (tests/chaos/process_workload.py) without a broker: its
pipeline on the driver, fed as the harness feeds the broker (4 partitions, then one far-future
event per partition), gives exactly its plain-Python truth; so a chaos run that finds a
difference found one in recovery, not in the workload."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))

import process_workload
import workload

from kstream.testing.driver import PipelineDriver


def test_the_process_workload_on_the_driver_equals_its_truth(tmp_path: Path) -> None:
    path = tmp_path / "chaos.yaml"
    path.write_text(process_workload.pipeline("kafka"))
    for file in process_workload.FILES:
        (tmp_path / file.name).write_bytes(file.read_bytes())
    driver = PipelineDriver.from_yaml(path, partitions=4, keep_repartition=False)
    evs = workload.events(keys=8, per_key=1500, partitions=4, seed=5)
    for e in evs + workload.flush_events(evs, 4):
        value = orjson.dumps({"key": e.key, "ts": e.ts, "v": e.v})
        driver.send("chaos-in", value, key=e.key, timestamp_ms=e.ts, partition=e.partition)
    got = [process_workload.entry(r.value) for r in driver.output("chaos-out")]
    expected = process_workload.truth(evs)
    assert len(expected) > 40 and max(len(v[3]) for v in expected.values()) == 3
    assert len(got) == len(dict(got)), "a window sum was emitted twice"
    assert dict(got) == expected
    assert all(r.key == r.value["key"] for r in driver.output("chaos-out"))
