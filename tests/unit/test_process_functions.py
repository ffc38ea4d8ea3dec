"""Keyed process functions (``process: {python: module:Class}``) on the broker-free driver:
state kinds, timers in both domains and their deletion, side ports, error policies, checkpoint
and restore of state and timers (tests/process_udfs.py holds the functions)."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import UsageError
from kstream.runtime.policy import BadRecordFailure
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: proc
sources:
  - topic: events
    event_time: {{field: ts}}
    on_error: {policy}
    {dead_letter}
operators:
  - key_by: k
  - id: fn
    process:
      python: process_udfs:Everything
      state: {{count: value, seen: list, parity: map, flags: value}}
      ports: [odd, timers]
sinks:
  - topic: out
    from: fn
  - topic: odd
    from: fn.odd
  - topic: timers
    from: fn.timers
"""


def driver(policy: str = "fail", partitions: int = 1) -> PipelineDriver:
    dead = "dead_letter_topic: dead" if policy == "dead_letter" else ""
    text = PIPELINE.format(policy=policy, dead_letter=dead)
    return PipelineDriver.from_yaml(text, partitions=partitions, start_time_ms=1_000)


def send(d: PipelineDriver, k: str, n: int, ts: int, **extra: Any) -> None:
    d.send("events", {"k": k, "n": n, "ts": ts, **extra}, key=k)


def values(d: PipelineDriver, sink: str) -> list[Any]:
    return [r.value for r in d.take_output(sink)]


def test_value_list_and_map_state_per_key_and_side_port() -> None:
    d = driver()
    send(d, "a", 1, 100)
    send(d, "b", 2, 100)
    send(d, "a", 4, 101)
    out = d.output("out")
    assert [r.value for r in out] == [
        {"count": 1, "seen": [1], "parity": {"odd": 1}},
        {"count": 1, "seen": [2], "parity": {"even": 1}},
        {"count": 2, "seen": [1, 4], "parity": {"odd": 1, "even": 1}},
    ]
    assert [(r.key, r.timestamp_ms) for r in out] == [("a", 100), ("b", 100), ("a", 101)]
    odd = d.output("odd")
    assert [(r.key, r.value, r.timestamp_ms) for r in odd] == [("a", {"odd": 1}, 100)]


def test_event_time_timers_fire_at_the_watermark_deduplicated_per_key_and_time() -> None:
    d = driver()
    send(d, "a", 1, 100)
    send(d, "a", 3, 100)  # same key, same timer time: one timer
    send(d, "b", 2, 105)
    d.watermark("events", 109)
    fired = d.take_output("timers")
    assert fired == []  # nothing due before 110
    d.watermark("events", 112)
    fired = [r for r in d.take_output("timers") if r.value["domain"] == "event_time"]
    assert [(r.key, r.value["timer"], r.timestamp_ms, r.value["count"]) for r in fired] == [
        ("a", 110, 110, 2)
    ]
    assert fired[0].value["watermark"] == 112  # the timer sees the new watermark
    d.watermark("events", 200)
    fired = d.take_output("timers")
    assert [(r.key, r.value["timer"]) for r in fired] == [("b", 115)]


def test_processing_time_timers_fire_with_the_driver_clock() -> None:
    d = driver()
    send(d, "a", 1, 100)  # clock 1000: timer at 1100
    d.advance_processing_time(99)
    assert d.take_output("timers") == []
    d.advance_processing_time(1)
    fired = d.take_output("timers")
    assert [(r.key, r.value["timer"], r.value["domain"]) for r in fired] == [
        ("a", 1100, "processing_time")
    ]
    d.set_processing_time(5_000)
    assert d.take_output("timers") == []
    with pytest.raises(UsageError):
        d.set_processing_time(10)


def test_deleted_timers_do_not_fire() -> None:
    d = driver()
    send(d, "a", 1, 100, cmd="cancel")
    d.set_processing_time(10_000)
    d.end_of_input()
    assert d.output("timers") == []


def test_end_of_input_fires_every_pending_event_time_timer() -> None:
    d = driver()
    send(d, "a", 1, 100)
    send(d, "b", 1, 5_000)
    d.end_of_input()
    fired = [r.value["timer"] for r in d.output("timers")]
    assert fired == [110, 5_010]


def test_user_exception_follows_the_error_policy() -> None:
    d = driver("fail")
    with pytest.raises(BadRecordFailure, match="ValueError: boom"):
        send(d, "a", 1, 100, cmd="boom")
    d = driver("skip")
    send(d, "a", 1, 100, cmd="boom")
    send(d, "a", 2, 100)
    assert values(d, "out") == [{"count": 1, "seen": [2], "parity": {"even": 1}}]
    d = driver("dead_letter")
    send(d, "a", 1, 100, cmd="boom")
    dead = d.topic("dead")
    assert len(dead) == 1 and "boom" in dead[0].headers["kstream.error.message"]


def test_failing_timer_goes_to_the_error_policy() -> None:
    d = driver("dead_letter")
    send(d, "a", 1, 100, cmd="boom-timer")
    d.watermark("events", 200)
    dead = d.topic("dead")
    assert len(dead) == 1 and "timer boom" in dead[0].headers["kstream.error.message"]
    assert dead[0].value == {"timer": 110, "domain": "event_time"}


def test_state_that_is_not_json_is_a_bad_record() -> None:
    d = driver("dead_letter")
    send(d, "a", 1, 100, cmd="bad")
    reason = d.topic("dead")[0].headers["kstream.error.message"]
    assert "state 'count' of process 'fn'" in reason and "JSON" in reason


def test_undeclared_state_fails_the_task() -> None:
    d = driver("skip")
    with pytest.raises(UsageError, match="no state 'nope'"):
        send(d, "a", 1, 100, cmd="undeclared")


def test_checkpoint_and_restore_carry_state_and_timers() -> None:
    d = driver(partitions=2)
    for i, k in enumerate("abcab"):
        send(d, k, i, 100 + i)
    stores: dict[tuple[str, int], dict[str, list[tuple[bytes, bytes]]]] = {}
    watermarks = {}
    for task in {id(t): t for t in d.tasks.values()}.values():
        changes = task.state_changes()
        key = (task.stage.id, task.partition)
        stores[key] = {n: [(a, b) for a, b in v if b is not None] for n, v in changes.items()}
        watermarks[key] = task.watermark
    assert any(stores[k].get("op.fn") for k in stores)
    assert any(stores[k].get("op.fn.timers") for k in stores)
    again = driver(partitions=2)
    for task in {id(t): t for t in again.tasks.values()}.values():
        key = (task.stage.id, task.partition)
        task.executor.restore(stores[key], watermarks[key])
    send(again, "a", 9, 200)
    assert values(again, "out")[-1]["seen"] == [0, 3, 9]
    again.end_of_input()
    timers = sorted((r.key, r.value["timer"]) for r in again.output("timers"))
    assert ("a", 110) in timers and ("b", 111) in timers and ("c", 112) in timers
    assert ("a", 210) in timers
