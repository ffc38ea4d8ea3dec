"""A task writing a repartition topic sends a watermark marker every MARKER_RECORDS records of a
large batch when its watermark rose (besides every MARKER_INTERVAL_MS of processing time): a
table read in one 10,000-record batch moves the downstream watermark in steps, so a downstream
temporal join never fires months of waiting records in one step (longer than
``max.poll.interval.ms``)."""

from __future__ import annotations

import orjson
from test_task_ids import PIPELINE, REPARTITION

from kstream.pipeline.load import load_pipeline_text
from kstream.runtime.task import MARKER_RECORDS
from kstream.testing import PipelineDriver
from kstream.testing.driver import _Message


def batch(count: int) -> list[_Message]:
    return [
        _Message(b"a", orjson.dumps({"k": "a", "ts": 100 * n}), 0, n, None, "in")
        for n in range(count)
    ]


def markers(driver: PipelineDriver) -> list[int]:
    return [
        int(r.headers["kstream.watermark"])
        for r in driver.topic(REPARTITION)
        if r.value is None and r.headers.get("kstream.status") == "active"
    ]


def test_a_large_batch_sends_a_marker_every_marker_records_records() -> None:
    driver = PipelineDriver(load_pipeline_text(PIPELINE, "t.yaml"), partitions=1)
    driver.tasks[("in", 0)].process(batch(MARKER_RECORDS * 3 + 500))
    sent = markers(driver)
    # the clock does not move: MARKER_INTERVAL_MS alone would allow one marker per batch;
    # the watermark is the highest time so far - 1 (Flink's bounded out-of-orderness, bound 0)
    last_ts = [100 * (MARKER_RECORDS * k - 1) for k in (1, 2, 3)] + [
        100 * (MARKER_RECORDS * 3 + 499)
    ]
    assert sent == [ts - 1 for ts in last_ts]


def test_a_small_batch_sends_one_marker() -> None:
    driver = PipelineDriver(load_pipeline_text(PIPELINE, "t.yaml"), partitions=1)
    driver.tasks[("in", 0)].process(batch(MARKER_RECORDS))
    assert markers(driver) == [100 * (MARKER_RECORDS - 1) - 1]
