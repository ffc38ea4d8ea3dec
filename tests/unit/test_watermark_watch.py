"""The held-back watermark watch (kstream/runtime/watermark_watch.py) on tasks run in memory by
the PipelineDriver with a manual clock: a source partition without records holds the source stage
(case a) and, through the repartition topic, the window stage (case b); the warning comes after
the threshold, once per episode; idle_timeout, a moving watermark and ended inputs end it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kstream.runtime.task import Task
from kstream.runtime.watermark_watch import Channel, WatermarkWatch, held_back
from kstream.testing import PipelineDriver
from kstream.time.valve import MIN_WATERMARK

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HOUR = 3_600_000
T0 = 1_357_000_000_000  # 2013-01-01 00:26:40 UTC

HOURLY = """
pipeline: watch
sources:
  - topic: flights
    event_time: {field: ts, unit: ms}
    watermark: {max_out_of_orderness: 1h%s}
operators:
  - id: by-origin
    key_by: origin
  - id: hourly
    window: {type: tumbling, size: 1h, aggregate: {flights: count}}
sinks:
  - topic: out
"""

SINGLE_STAGE = """
pipeline: single
sources:
  - topic: flights
    event_time: {field: ts, unit: ms}
    watermark: {max_out_of_orderness: 1h}
operators:
  - id: hourly
    window: {type: tumbling, size: 1h, aggregate: {flights: count}}
sinks:
  - topic: out
"""


def driver(idle: str = "", text: str = HOURLY) -> PipelineDriver:
    """4 source partitions; records go to partitions 0, 1 and 3 only."""
    return PipelineDriver.from_yaml(
        text % idle if "%s" in text else text, partitions=4, start_time_ms=1_000_000
    )


def tasks(d: PipelineDriver, stage: str | None = None) -> list[Task]:
    unique = list(dict.fromkeys(d.tasks.values()))
    return [t for t in unique if stage is None or t.stage.id == stage]


def feed(d: PipelineDriver, hours: int, partitions: tuple[int, ...] = (0, 1, 3)) -> None:
    for h in range(hours):
        for p in partitions:
            d.send("flights", {"origin": f"o{p}", "ts": T0 + h * HOUR}, partition=p)


def by_stage(watch: WatermarkWatch) -> dict[str, tuple[int, str | None, str | None]]:
    return {s.stage: (s.watermark, s.holder, s.warning) for s in watch.stages}


def test_a_partition_without_records_holds_both_stages_and_is_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = driver()
    watch = WatermarkWatch(d.plan, threshold_ms=30_000)
    feed(d, 5)
    d.advance_time(1_000)
    watch.check(tasks(d), d.now_ms)
    stages = by_stage(watch)
    holder = "task flights:2 (topic flights partition 2)"
    # before the threshold: the holder is shown, nothing is warned
    assert stages["flights"] == (MIN_WATERMARK, holder, None)
    assert stages["by-origin"] == (MIN_WATERMARK, holder, None)
    with caplog.at_level(logging.WARNING, logger="kstream.runtime.watermark"):
        d.advance_time(29_000)
        watch.check(tasks(d), d.now_ms)
        assert not caplog.records
        d.advance_time(1_000)
        for _ in range(3):  # later checks of the same episode log nothing more
            watch.check(tasks(d), d.now_ms)
            d.advance_time(1_000)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # the source stage (case a), the window stage (case b)
    source, window = messages
    assert source.startswith("stage flights: watermark held at -inf for 30 s by task flights:2 ")
    assert window.startswith("stage by-origin: watermark held at -inf for 30 s by task flights:2")
    for text in messages:
        assert "(topic flights partition 2: no records for 31 s)" in text
        assert "while others advanced to 2013-01-01 03:26:39" in text  # T0 + 4 h - 1 h - 1 ms
        assert "needs `idle_timeout` on its source watermark" in text
        assert "docs/time-and-windows.md" in text
    assert by_stage(watch)["by-origin"][2] is not None


def test_the_downstream_stage_alone_names_the_upstream_task_not_heard_from() -> None:
    """Case (b) in a process running only the window stage: the upstream task that never sent
    a marker holds every downstream task's valve at the minimum."""
    d = driver()
    watch = WatermarkWatch(d.plan, threshold_ms=5_000)
    feed(d, 3)
    watch.check(tasks(d, "by-origin"), d.now_ms)
    d.advance_time(5_000)
    (stage,) = watch.check(tasks(d, "by-origin"), d.now_ms)
    assert stage.stage == "by-origin" and stage.watermark == MIN_WATERMARK
    assert stage.holder == "task flights:2 (topic flights partition 2)"
    assert stage.warning is not None
    assert "(topic flights partition 2: no watermark from it yet)" in stage.warning
    assert "needs `idle_timeout`" in stage.warning


def test_idle_timeout_ends_the_hold() -> None:
    d = driver(", idle_timeout: 10s")
    watch = WatermarkWatch(d.plan, threshold_ms=30_000)
    feed(d, 5)
    watch.check(tasks(d), d.now_ms)
    assert by_stage(watch)["by-origin"][1] == "task flights:2 (topic flights partition 2)"
    d.advance_time(10_000)  # partitions 0, 1, 3 get records again; 2 stays idle
    feed(d, 6)
    for _ in range(30):
        d.advance_time(1_000)
        feed(d, 1)
        watch.check(tasks(d), d.now_ms)
    stages = by_stage(watch)
    assert stages["by-origin"][1:] == (None, None)
    assert stages["flights"][1:] == (None, None)
    assert stages["by-origin"][0] > MIN_WATERMARK  # windows fire downstream
    assert d.output("out")


def test_a_holder_whose_watermark_moves_starts_a_new_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A slow partition that keeps moving is behind, not held: its episode restarts whenever its
    watermark moves; the warning comes only after it stays put for the threshold."""
    d = driver()
    watch = WatermarkWatch(d.plan, threshold_ms=10_000)
    feed(d, 10, partitions=(0, 1, 3))
    with caplog.at_level(logging.WARNING, logger="kstream.runtime.watermark"):
        for h in range(4):
            d.send("flights", {"origin": "o2", "ts": T0 + h * HOUR}, partition=2)
            d.advance_time(6_000)
            watch.check(tasks(d), d.now_ms)
        assert not caplog.records
        assert by_stage(watch)["flights"][1] == "task flights:2 (topic flights partition 2)"
        d.advance_time(6_000)  # held since the last check saw it move: 6 s
        watch.check(tasks(d), d.now_ms)
        assert not caplog.records
        d.advance_time(6_000)
        watch.check(tasks(d), d.now_ms)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("stage flights:")]
    assert "held at 2013-01-01 02:26:39 for 12 s by task flights:2" in record.getMessage()
    assert "no records for 18 s" in record.getMessage()


def test_a_new_episode_of_the_same_holder_is_warned_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = driver()
    watch = WatermarkWatch(d.plan, threshold_ms=2_000)
    feed(d, 3)
    with caplog.at_level(logging.WARNING, logger="kstream.runtime.watermark"):
        watch.check(tasks(d, "flights"), d.now_ms)
        d.advance_time(2_000)
        watch.check(tasks(d, "flights"), d.now_ms)
        d.send("flights", {"origin": "o2", "ts": T0}, partition=2)  # moves: the episode ends
        watch.check(tasks(d, "flights"), d.now_ms)
        d.advance_time(2_000)
        watch.check(tasks(d, "flights"), d.now_ms)
    held = [r.getMessage().split(" for ")[0] for r in caplog.records]
    assert held == [
        "stage flights: watermark held at -inf",
        "stage flights: watermark held at 2012-12-31 23:26:39",
    ]


def test_a_single_stage_without_repartition_is_shown_never_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each task fires its own windows: an empty partition holds nothing back."""
    d = driver(text=SINGLE_STAGE)
    watch = WatermarkWatch(d.plan, threshold_ms=1_000)
    feed(d, 3)
    with caplog.at_level(logging.WARNING, logger="kstream.runtime.watermark"):
        watch.check(tasks(d), d.now_ms)
        d.advance_time(5_000)
        (stage,) = watch.check(tasks(d), d.now_ms)
    assert stage.holder == "task flights:2 (topic flights partition 2)" and stage.warning is None
    assert not caplog.records


def test_ended_inputs_hold_nothing() -> None:
    d = driver()
    watch = WatermarkWatch(d.plan, threshold_ms=1_000)
    feed(d, 3)
    d.end_of_input()
    d.advance_time(5_000)
    watch.check(tasks(d), d.now_ms)
    assert [(s.stage, s.holder, s.warning) for s in watch.stages] == [
        ("flights", None, None),
        ("by-origin", None, None),
    ]
    assert all(s.watermark == 2**63 - 1 for s in watch.stages)


def test_tick_checks_at_most_every_interval() -> None:
    d = driver()
    watch = WatermarkWatch(d.plan, threshold_ms=1_000, interval_ms=1_000)
    feed(d, 3)
    assert watch.tick(tasks(d), d.now_ms)
    first = watch.stages
    assert watch.tick(tasks(d), d.now_ms + 500) is first
    assert watch.tick(tasks(d), d.now_ms + 1_000) is not first


def channel(key: str, watermark: int, holding: bool = True) -> Channel:
    return Channel(key, key, f"topic t partition {key}", watermark, holding)


def test_held_back_is_the_lowest_holding_channel_behind_another() -> None:
    assert held_back([channel("a", 5), channel("b", 5)]) is None  # nobody ahead
    assert held_back([channel("a", 5, holding=False), channel("b", 9, holding=False)]) is None
    held = held_back([channel("a", 3), channel("b", 9), channel("c", 3), channel("d", 1, False)])
    assert held is not None
    assert (held.low, held.ahead, [c.key for c in held.channels]) == (3, 9, ["a", "c"])
    # an idle channel ahead counts as "others advanced"; an idle one behind holds nothing
    held = held_back([channel("a", 3), channel("b", 9, holding=False)])
    assert held is not None and held.low == 3 and held.ahead == 9


def test_an_input_of_a_task_reading_two_topics_holds_it_and_the_stage_after_it() -> None:
    """examples/flights-graph.yaml: task ewr:p reads ewr-flights and nyc-flights partition p;
    ewr-flights partition 0 gets nothing (its idle_timeout has not passed yet)."""
    d = PipelineDriver.from_yaml(EXAMPLES / "flights-graph.yaml", partitions=2, start_time_ms=0)
    watch = WatermarkWatch(d.plan, threshold_ms=1_000)
    flight = {"origin": "X", "dep_delay": 5, "carrier": "AA"}
    for h in range(10):
        for source, p in (("nyc", 0), ("nyc", 1), ("ewr", 1)):
            d.send(source, {**flight, "sched_dep_ts": T0 + h * HOUR}, partition=p)
    watch.check(tasks(d), d.now_ms)
    d.advance_time(2_000)
    stages = {s.stage: s for s in watch.check(tasks(d), d.now_ms)}
    holder = "task ewr:0 (topic ewr-flights partition 0)"
    assert stages["ewr"].holder == stages["by-carrier"].holder == holder
    warning = stages["by-carrier"].warning
    assert warning is not None
    assert "(topic ewr-flights partition 0: no records for 2 s, idle after 10 s)" in warning
    assert "needs `idle_timeout`" not in warning  # it has one


def test_every_source_partition_idle_shows_the_highest_watermark() -> None:
    """Input read to its end, no records since: every source task goes idle, the source stage
    shows the max of its tasks (as downstream valves take it), not the empty partition's -inf."""
    d = driver(", idle_timeout: 10s")
    watch = WatermarkWatch(d.plan, threshold_ms=30_000)
    feed(d, 5)
    d.advance_time(11_000)
    watch.check(tasks(d), d.now_ms)
    stages = by_stage(watch)
    highest = max(t.watermark for t in tasks(d, "flights"))
    assert highest > MIN_WATERMARK
    assert stages["flights"] == (highest, None, None)
    assert stages["by-origin"][0] == highest
