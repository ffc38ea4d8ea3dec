"""Watermarks through the PipelineDriver: generation, never regressing, min across upstream
tasks in-band over a repartition topic, idleness, absurd timestamps, end of input, and
processing time.

Two source partitions feeding a ``key_by`` (stage 1 reads the repartition topic)::

    in[0] --(records, markers)--+--> t.by-k.repartition[0] --> window
    in[1] --(records, markers)--+--> t.by-k.repartition[1] --> window

    a stage-1 task's watermark: the markers of the upstream tasks combined as Flink's
    StatusWatermarkValve (tests/unit/test_valve.py): min over active, aligned upstream tasks;
    a task back from idleness behind the watermark is left out until it catches up; all idle:
    the max
"""

from __future__ import annotations

from windowkit import Harness

from kstream.operators.window.base import MAX_WATERMARK, MIN_WATERMARK
from kstream.time.watermarks import ACTIVE, END, IDLE, PartitionWatermark, UpstreamWatermarks

AGG = "{type: tumbling, size: 10, aggregate: {n: count}}"
KEY_BY = "  - id: by-k\n    key_by: k\n"
REPARTITION = "t.by-k.repartition"


def downstream_watermarks(h: Harness) -> list[int]:
    return [h.driver.current_watermark(REPARTITION, p) for p in range(2)]


def test_partition_watermark_is_max_minus_bound_minus_one() -> None:
    wm = PartitionWatermark(bound_ms=5, max_future_skew_ms=1000)
    assert wm.observe(100) == 94
    assert wm.observe(90) == 94  # an older record never lowers it
    assert wm.observe(101) == 95
    assert wm.force(50) == 95  # forcing lower is ignored
    assert wm.is_absurd(1102) and not wm.is_absurd(1101)


def test_monotonous_strategy_is_a_bound_of_zero() -> None:
    h = Harness(AGG, watermark="{strategy: monotonous}")
    h.send(3)
    h.send(10)  # watermark 9
    assert h.fired() == [("a", 0, 10, 1, 9)]


def test_watermark_never_regresses() -> None:
    h = Harness(AGG, watermark="{max_out_of_orderness: 0}")
    h.send(20)  # watermark 19
    h.watermark(5)  # lower: ignored
    assert h.driver.current_watermark("in") == 19
    h.send(1)  # an old record: late, and the watermark stays
    assert h.task.watermark == 19
    assert len(h.driver.late("in")) == 1


def test_upstream_watermarks_never_regress_and_wait_for_every_upstream() -> None:
    up = UpstreamWatermarks(upstream_tasks=2)
    assert up.update("in:0", 50, ACTIVE) == MIN_WATERMARK  # in:1 not heard from yet
    assert up.update("in:1", 30, ACTIVE) == 30
    assert up.update("in:1", 20, ACTIVE) == 30  # a lower marker does not pull it back
    assert up.update("in:1", 60, ACTIVE) == 50
    assert up.update("in:0", 70, IDLE) == 60  # idle: excluded
    assert up.update("in:1", 80, END) == 70  # ended, the other idle: the max of the idle ones
    assert not up.ended
    assert up.update("in:0", 90, END) == MAX_WATERMARK
    assert up.ended


def test_downstream_watermark_is_the_min_over_upstream_tasks() -> None:
    h = Harness(AGG, partitions=2, operators=KEY_BY)
    h.send(3, key="a", partition=0)
    h.watermark(50, partition=0)
    assert downstream_watermarks(h) == [MIN_WATERMARK, MIN_WATERMARK]  # in[1] silent
    h.watermark(8, partition=1)
    assert downstream_watermarks(h) == [8, 8]
    assert h.fired() == []
    h.watermark(9, partition=1)
    assert h.fired() == [("a", 0, 10, 1, 9)]
    markers = [r for r in h.driver.topic(REPARTITION) if r.value is None]
    assert {r.headers["kstream.origin"] for r in markers} == {"in:0", "in:1"}


def test_idle_partition_is_excluded_and_reincluded_when_data_returns() -> None:
    h = Harness(
        AGG, partitions=2, operators=KEY_BY, watermark="{max_out_of_orderness: 0, idle_timeout: 1s}"
    )
    drv = h.driver
    h.send(5, key="a", partition=0)  # in[0] watermark 4
    drv.advance_time(600)
    h.send(25, key="a", partition=0)  # in[0] watermark 24; in[1] never had data
    assert downstream_watermarks(h) == [MIN_WATERMARK, MIN_WATERMARK]
    drv.advance_time(600)  # now 1200: in[1] idle for 1200 ms >= 1 s; in[0] for 600 ms
    assert downstream_watermarks(h) == [24, 24]  # in[1] excluded
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(32, key="b", partition=1)  # in[1] is back with watermark 31
    h.send(45, key="a", partition=0)  # in[0] watermark 44
    assert downstream_watermarks(h) == [31, 31]  # min(44, 31): in[1] counts again
    assert h.fired() == [("a", 20, 30, 1, 29)]
    h.send(40, key="b", partition=1)  # in[1] watermark 39
    assert h.fired() == [("b", 30, 40, 1, 39)]


IDLE_1S = "{max_out_of_orderness: 0, idle_timeout: 1s}"
LATE_OK = "{type: tumbling, size: 10, allowed_lateness: 30, aggregate: {n: count}}"


def test_returning_partition_behind_the_watermark_does_not_hold_it_back() -> None:
    """Case 1 (Flink: the returning channel is unaligned until it catches up). in[1] goes idle,
    returns with older records; the downstream watermark keeps following in[0], and in[1]'s
    records are late per allowed lateness (30)::

        clock     0     600    1200        1300          1400    1500    1600
        in[0]     5     25     .     45    .             65      .       80
        in[1]     3     .      idle  .     12, 2         .       70      .
        down wm   2     2      24    44    44 (not 11)   64      64      69 (in[1] counts again)
    """
    h = Harness(LATE_OK, partitions=2, operators=KEY_BY, watermark=IDLE_1S)
    drv = h.driver
    h.send(5, key="a", partition=0)
    h.send(3, key="b", partition=1)
    assert downstream_watermarks(h) == [2, 2]
    drv.advance_time(600)
    h.send(25, key="a", partition=0)
    drv.advance_time(600)  # in[1] silent for 1200 ms: idle, left out
    assert downstream_watermarks(h) == [24, 24]
    assert sorted(h.fired()) == [("a", 0, 10, 1, 9), ("b", 0, 10, 1, 9)]
    h.send(45, key="a", partition=0)
    assert downstream_watermarks(h) == [44, 44]
    assert h.fired() == [("a", 20, 30, 1, 29)]
    drv.advance_time(100)
    h.send(12, key="b", partition=1)  # back, watermark 11 < 44: unaligned
    h.send(2, key="b", partition=1)  # [0, 10): 9 + 30 <= 44: dropped
    assert downstream_watermarks(h) == [44, 44]
    assert h.fired() == [("b", 10, 20, 1, 19)]  # 19 + 30 > 44: late but allowed, fires at once
    assert [r.value["ts"] for r in drv.late("in")] == [2]
    drv.advance_time(100)
    h.send(65, key="a", partition=0)
    assert downstream_watermarks(h) == [64, 64]  # in[1] (11) does not hold it back
    assert h.fired() == [("a", 40, 50, 1, 49)]
    drv.advance_time(100)
    h.send(70, key="b", partition=1)  # watermark 69 >= 64: aligned again
    assert downstream_watermarks(h) == [64, 64]
    drv.advance_time(100)
    h.send(80, key="a", partition=0)
    assert downstream_watermarks(h) == [69, 69]  # min(79, 69): in[1] counts again
    assert h.fired() == [("a", 60, 70, 1, 69)]


def test_all_inputs_idle_advance_to_the_max_watermark() -> None:
    """Case 2 (Flink: all channels idle flushes the max). in[1] (at 24) goes idle first, then
    in[0] (at 14): the downstream watermark goes to 24 and [10, 20) fires::

        clock     0         500     1000         1500
        in[0]     .         15      .            idle
        in[1]     18, 25    .       idle         .
        down wm   -         14      14           24
    """
    h = Harness(AGG, partitions=2, operators=KEY_BY, watermark=IDLE_1S)
    h.send(18, key="b", partition=1)
    h.send(25, key="b", partition=1)
    h.driver.advance_time(500)
    h.send(15, key="a", partition=0)
    assert downstream_watermarks(h) == [14, 14]
    h.driver.advance_time(500)  # in[1] idle; in[0] still active: the min is in[0]
    assert downstream_watermarks(h) == [14, 14]
    assert h.fired() == []
    h.driver.advance_time(500)  # in[0] idle too: every input idle -> the max, 24
    assert downstream_watermarks(h) == [24, 24]
    assert sorted(h.fired()) == [("a", 10, 20, 1, 19), ("b", 10, 20, 1, 19)]
    h.send(16, key="a", partition=0)  # back behind 24: late, and the watermark holds
    assert downstream_watermarks(h) == [24, 24]
    assert [r.value["ts"] for r in h.driver.late("in")] == [16]
    h.send(40, key="a", partition=0)  # aligned again at 39; in[1] still idle
    assert downstream_watermarks(h) == [39, 39]
    assert h.fired() == [("b", 20, 30, 1, 29)]


def test_absurd_timestamp_goes_to_the_error_policy_and_does_not_move_the_watermark() -> None:
    source = "    on_error: dead_letter\n    dead_letter_topic: bad\n"
    h = Harness(
        AGG, watermark="{max_out_of_orderness: 0, max_future_skew: 1000}", source_extra=source
    )
    h.send(100)  # watermark 99
    h.send(1101)  # 1001 ms ahead of the highest seen: absurd
    assert h.task.watermark == 99
    (bad,) = h.driver.topic("bad")
    assert bad.value["ts"] == 1101
    assert bad.headers["kstream.error.stage"] == "timestamp"
    h.send(1100)  # exactly the allowed skew: fine
    assert h.task.watermark == 1099


def test_end_of_input_closes_every_window_in_every_stage() -> None:
    h = Harness(AGG, partitions=2, operators=KEY_BY)
    h.send(5, key="a", partition=0)
    h.send(1_000_005, key="b", partition=1)
    h.driver.end_of_input()
    assert sorted(h.fired()) == [("a", 0, 10, 1, 9), ("b", 1_000_000, 1_000_010, 1, 1_000_009)]
    assert downstream_watermarks(h) == [MAX_WATERMARK, MAX_WATERMARK]


def test_processing_time_windows_fire_when_the_clock_reaches_the_end() -> None:
    """time: processing: a record's time is the task clock; the watermark is clock - 1, so a
    window fires at the first tick where the clock >= end."""
    h = Harness(
        "{type: tumbling, size: 1s, aggregate: {n: count}}",
        event_time="    time: processing\n",
        watermark="{max_out_of_orderness: 0}",
    )
    drv = h.driver
    h.send(123456)  # the ts field is ignored: the record's time is the clock, 0
    drv.advance_time(500)
    h.send(0)  # time 500
    drv.advance_time(499)  # clock 999, watermark 998
    assert h.fired() == []
    drv.advance_time(1)  # clock 1000, watermark 999
    assert h.fired() == [("a", 0, 1000, 2, 999)]
    h.send(0)  # time 1000
    drv.end_of_input()
    assert h.fired() == [("a", 1000, 2000, 1, 1999)]
