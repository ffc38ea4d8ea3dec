"""PipelineDriver on long inputs: ``send_many`` reads an iterable lazily, ``take_output`` hands
out a sink's records and forgets them, ``keep_repartition=False`` forgets what crossed a
repartition topic, and kept records are right-sized copies (not orjson's 4 KB buffers)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from kstream.errors import UsageError
from kstream.testing import PipelineDriver

HOUR = 3_600_000
KEYED = """\
pipeline: s
sources:
  - topic: flights
    event_time: ts
    watermark: {max_out_of_orderness: 0s}
operators:
  - id: by-origin
    key_by: origin
  - id: hourly
    window: {type: tumbling, size: 1h, aggregate: {n: count}}
sinks:
  - topic: hourly
"""
REPARTITION = "s.by-origin.repartition"


def flights(hours: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Two flights an hour (JFK and LGA), as ``(key, value, timestamp_ms)``."""
    for hour in range(hours):
        for origin in ("JFK", "LGA"):
            yield origin, {"origin": origin, "ts": hour * HOUR}, hour * HOUR


def test_send_many_consumes_the_iterable_lazily() -> None:
    driver = PipelineDriver.from_yaml(KEYED)
    seen_before: list[int] = []

    def watched() -> Iterator[tuple[str, dict[str, Any], int]]:
        for record in flights(4):
            seen_before.append(len(driver.output("hourly")))  # what ran before this is pulled
            yield record

    assert driver.send_many("flights", watched()) == 8
    assert seen_before == [0, 0, 0, 2, 2, 4, 4, 6]  # hour h fires once hour h + 1 arrives
    driver.end_of_input()
    assert [(r.key, r.value["n"]) for r in driver.output("hourly")][-2:] == [
        ("JFK", 1),
        ("LGA", 1),
    ]


def test_take_output_forgets_what_it_returned() -> None:
    driver = PipelineDriver.from_yaml(KEYED)
    driver.send_many("flights", flights(3))
    first = driver.take_output("hourly")
    assert [r.value["window_start"] for r in first] == [0, 0, HOUR, HOUR]
    assert driver.output("hourly") == []
    assert driver.take_output("hourly") == []
    driver.end_of_input()
    assert [r.value["window_start"] for r in driver.take_output("hourly")] == [2 * HOUR] * 2
    assert driver.output("hourly") == []


def test_without_keeping_repartition_topics_the_results_are_the_same() -> None:
    kept = PipelineDriver.from_yaml(KEYED)
    lean = PipelineDriver.from_yaml(KEYED, keep_repartition=False)
    for driver in (kept, lean):
        driver.send_many("flights", flights(5))
        driver.end_of_input()
    assert lean.output("hourly") == kept.output("hourly")
    assert len(lean.output("hourly")) == 10
    assert [r for r in kept.topic(REPARTITION) if r.value is not None]
    assert REPARTITION not in lean.topics
    with pytest.raises(UsageError, match="keep_repartition=False"):
        lean.topic(REPARTITION)


def test_kept_records_are_right_sized() -> None:
    """orjson's bytes hold a buffer of at least 4 KB whatever their length; a kept record must
    cost about its length, not that."""
    driver = PipelineDriver.from_yaml(
        "pipeline: p\nsources: [{topic: t, event_time: ts}]\n"
        "operators: [{id: f, filter: 'ts >= 0'}]\nsinks: [{topic: out}]\n"
    )
    records = [(None, {"ts": n, "name": "x" * 40}, n) for n in range(2_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        driver.send_many("t", records)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(driver.output("out")) == 2_000
    assert grown / 2_000 < 1_000  # bytes per record kept (about 4,300 without the copy)
