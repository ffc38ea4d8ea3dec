"""Cumulate windows (Flink SQL's CUMULATE) and the late rule of overlapping windows."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.operators.window.assign import cumulate_windows
from kstream.testing.driver import PipelineDriver


def pipeline(window: str) -> str:
    return f"""
pipeline: w
sources:
  - topic: events
    event_time: {{field: t}}
operators:
  - id: w
    window: {window}
sinks:
  - {{topic: out, from: w}}
"""


def test_cumulate_windows_share_a_start_and_grow_by_step() -> None:
    """size 20, step 5: [0, 5), [0, 10), [0, 15), [0, 20); the next from 20.

    time   0    5    10   15   20
           [----)
           [---------)
           [--------------)
           [-------------------)
    """
    assert cumulate_windows(4, 20, 5) == [(0, 5), (0, 10), (0, 15), (0, 20)]
    assert cumulate_windows(5, 20, 5) == [(0, 10), (0, 15), (0, 20)]
    assert cumulate_windows(19, 20, 5) == [(0, 20)]
    assert cumulate_windows(20, 20, 5) == [(20, 25), (20, 30), (20, 35), (20, 40)]
    assert cumulate_windows(-1, 20, 5) == [(-20, 0)]
    assert cumulate_windows(3, 20, 5, offset_ms=2) == [(2, 7), (2, 12), (2, 17), (2, 22)]


def results(driver: PipelineDriver) -> list[tuple[int, int, int]]:
    return [
        (r.value["window_start"], r.value["window_end"], r.value["n"])
        for r in driver.take_output("out")
    ]


def send(driver: PipelineDriver, t: int) -> None:
    driver.send("events", {"t": t}, key="a", timestamp_ms=t)


def test_cumulate_fires_each_window_at_its_end() -> None:
    driver = PipelineDriver.from_yaml(
        pipeline("{type: cumulate, size: 20, step: 5, aggregate: {n: count}}")
    )
    for t in (1, 6, 7, 16):
        send(driver, t)
    # watermark 15 = 16 - 0 - 1: [0, 5), [0, 10) and [0, 15) have fired, [0, 20) has not
    assert results(driver) == [(0, 5, 1), (0, 10, 3), (0, 15, 3)]
    driver.end_of_input()
    assert results(driver) == [(0, 20, 4)]


@pytest.mark.parametrize(("rule", "late"), [("datastream", 0), ("sql", 1)])
def test_late_rule_of_sliding_windows(rule: str, late: int) -> None:
    """size 10, slide 5: an element at 3 after the watermark passed 4 (the end - 1 of [-5, 5))
    is in [0, 10) too, still open. datastream: it goes there; sql: late (its slice has fired).
    """
    window = f"{{type: sliding, size: 10, slide: 5, late_rule: {rule}, aggregate: {{n: count}}}}"
    driver = PipelineDriver.from_yaml(pipeline(window))
    send(driver, 1)
    send(driver, 5)  # watermark 4: [-5, 5) fires
    send(driver, 3)
    driver.end_of_input()
    counted: dict[Any, int] = {(s, e): n for s, e, n in results(driver)}
    assert counted[(0, 10)] == 3 - late


def test_cumulate_size_must_be_a_multiple_of_step() -> None:
    with pytest.raises(ConfigError, match="is not a multiple of step"):
        PipelineDriver.from_yaml(
            pipeline("{type: cumulate, size: 20, step: 6, aggregate: {n: count}}")
        )
    with pytest.raises(ConfigError, match="'late_rule' is for sliding and cumulate windows"):
        PipelineDriver.from_yaml(
            pipeline("{type: tumbling, size: 20, late_rule: sql, aggregate: {n: count}}")
        )


def test_first_and_last_arrived_follow_arrival_order_not_event_time() -> None:
    """first/last pick by event time; first_arrived/last_arrived by arrival (Flink SQL's
    FIRST_VALUE/LAST_VALUE), nulls skipped.

        arrival   1: t=5 'b'   2: t=2 'a'   3: t=7 null   4: t=6 'c'
    """
    aggregate = "{f: {first: v}, l: {last: v}, fa: {first_arrived: v}, la: {last_arrived: v}}"
    driver = PipelineDriver.from_yaml(
        pipeline(f"{{type: tumbling, size: 10, aggregate: {aggregate}}}")
    )
    for t, v in ((5, "b"), (2, "a"), (7, None), (6, "c")):
        driver.send("events", {"t": t, "v": v}, key="k", timestamp_ms=t)
    driver.end_of_input()
    (result,) = [r.value for r in driver.output("out")]
    assert (result["f"], result["l"], result["fa"], result["la"]) == ("a", "c", "b", "c")


def test_arrival_order_aggregations_are_refused_in_session_windows() -> None:
    window = "{type: session, gap: 10, aggregate: {fa: {first_arrived: v}}}"
    with pytest.raises(ConfigError, match="'first_arrived' is not for session windows"):
        PipelineDriver.from_yaml(pipeline(window))
