"""Tumbling windows through the PipelineDriver: firing, lateness, purging, offsets, negatives.

Size 10 ms unless said otherwise::

    time   -10        0         10        20
            [---------)[---------)[---------)
              [-10,0)    [0,10)    [10,20)

    [0, 10) fires when watermark >= 9 (end - 1), its result carries timestamp 9;
    with allowed lateness L it is purged, and later elements dropped, once watermark >= 9 + L.
"""

from __future__ import annotations

from windowkit import Harness

AGG = "aggregate: {n: count, vs: {collect: v}}"


def tumbling(extra: str = "") -> Harness:
    return Harness(f"{{type: tumbling, size: 10, {extra} {AGG}}}")


def test_fires_exactly_at_watermark_end_minus_one_and_not_before() -> None:
    h = tumbling()
    h.send(3)
    h.watermark(8)  # end - 2
    assert h.fired() == []
    h.watermark(9)  # end - 1
    assert h.fired() == [("a", 0, 10, 1, 9)]


def test_result_timestamp_is_end_minus_one_and_value_names_the_window() -> None:
    h = tumbling()
    h.send(0, v="x")
    h.send(9, v="y")
    h.send(10, v="z")  # first element of [10, 20)
    h.watermark(100)
    records = h.new()
    assert [r.timestamp_ms for r in records] == [9, 19]
    assert records[0].key == "a"
    assert records[0].value == {
        "key": "a",
        "window_start": 0,
        "window_end": 10,
        "n": 2,
        "vs": ["x", "y"],
    }


def test_windows_before_time_zero_have_negative_starts() -> None:
    h = tumbling()
    h.send(-1)
    h.send(-10)
    h.send(-11)
    h.watermark(-12)
    assert h.fired() == []
    h.watermark(-11)  # end - 1 of [-20, -10)
    assert h.fired() == [("a", -20, -10, 1, -11)]
    h.watermark(-1)
    assert h.fired() == [("a", -10, 0, 2, -1)]


def test_offset_shifts_the_grid_and_works_before_zero() -> None:
    """offset 5:  ... [-15,-5) [-5,5) [5,15) ..."""
    h = tumbling("offset: 5,")
    for ts in (-6, -5, 4, 5):
        h.send(ts)
    h.watermark(100)
    assert [f[1:4] for f in h.fired()] == [(-15, -5, 1), (-5, 5, 2), (5, 15, 1)]


def test_negative_offset() -> None:
    """offset -3:  [-3, 7) [7, 17)"""
    h = tumbling("offset: -3,")
    for ts in (-3, 6, 7):
        h.send(ts)
    h.watermark(100)
    assert [f[1:4] for f in h.fired()] == [(-3, 7, 2), (7, 17, 1)]


def test_without_lateness_an_element_is_dropped_once_its_window_fired() -> None:
    h = tumbling()
    h.send(3)
    h.watermark(8)
    h.send(4)  # 9 + 0 <= 8 is false: still on time
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 2, 9)]
    h.send(5)  # 9 + 0 <= 9: late, dropped
    assert h.fired() == []
    late = h.driver.late("in")
    assert [(r.value["ts"], r.headers["window_start"], r.headers["watermark"]) for r in late] == [
        (5, "0", "9")
    ]
    assert h.task.counters["late"] == 1


def test_drop_exactly_when_end_minus_one_plus_lateness_reaches_the_watermark() -> None:
    h = tumbling("allowed_lateness: 5,")
    h.send(3)
    h.watermark(13)  # 9 + 5 = 14 > 13: still allowed
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(4)
    assert h.fired() == [("a", 0, 10, 2, 9)]  # late but allowed: re-fired with both
    h.watermark(14)  # 9 + 5 <= 14: purged
    h.send(5)
    assert h.fired() == []
    assert [r.value["ts"] for r in h.driver.late("in")] == [5]


def test_late_but_allowed_element_refires_its_window_every_time() -> None:
    h = tumbling("allowed_lateness: 100,")
    h.send(1)
    h.watermark(50)
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(2)
    h.send(3)
    assert h.fired() == [("a", 0, 10, 2, 9), ("a", 0, 10, 3, 9)]


def test_first_element_of_an_already_fired_window_fires_it_immediately() -> None:
    """A window that did not exist when the watermark passed its end - 1 is created by a
    late-but-allowed element and fires at once (Flink's EventTimeTrigger.onElement)."""
    h = tumbling("allowed_lateness: 100,")
    h.watermark(50)
    h.send(15)
    assert h.fired() == [("a", 10, 20, 1, 19)]
    h.watermark(1000)
    assert h.fired() == []  # no second on-time firing


def test_state_is_purged_at_end_minus_one_plus_lateness() -> None:
    h = tumbling("allowed_lateness: 5,")
    h.send(3)
    h.send(13)
    assert h.open_windows() == 2
    h.watermark(13)  # [0,10) fired, kept for lateness
    assert h.open_windows() == 2
    h.watermark(14)  # 9 + 5: purged
    assert h.open_windows() == 1
    h.watermark(24)
    assert h.open_windows() == 0


def test_without_lateness_state_is_purged_when_the_window_fires() -> None:
    h = tumbling()
    h.send(3)
    h.watermark(9)
    assert h.open_windows() == 0


def test_keys_have_separate_windows() -> None:
    h = tumbling()
    h.send(1, key="a")
    h.send(2, key="b")
    h.send(3, key="a")
    h.watermark(9)
    assert sorted(h.fired()) == [("a", 0, 10, 2, 9), ("b", 0, 10, 1, 9)]


def test_watermark_moves_in_one_jump_fire_every_window_in_time_order() -> None:
    h = tumbling()
    for ts in (25, 5, 15):
        h.send(ts)
    h.watermark(10_000)
    assert [f[1] for f in h.fired()] == [0, 10, 20]


def test_end_of_input_fires_every_open_window() -> None:
    h = tumbling("allowed_lateness: 1000,")
    h.send(5)
    h.send(1_000_000)
    h.driver.end_of_input()
    assert [f[1:4] for f in h.fired()] == [(0, 10, 1), (1_000_000, 1_000_010, 1)]
    assert h.open_windows() == 0


def test_records_advance_the_watermark_with_the_bound() -> None:
    """Bound 5: watermark = max_ts - 5 - 1. [0, 10) fires when max_ts reaches 15."""
    h = Harness(f"{{type: tumbling, size: 10, {AGG}}}", watermark="{max_out_of_orderness: 5}")
    h.send(3)
    h.send(14)  # watermark 8
    assert h.fired() == []
    h.send(15)  # watermark 9
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(9)  # 9 <= watermark 9 and no lateness: dropped
    assert len(h.driver.late("in")) == 1


def test_dropped_elements_go_to_the_late_topic_with_the_reason_in_headers() -> None:
    h = tumbling("late_topic: too-late,")
    h.send(3)
    h.watermark(12)
    h.send(4, v="dropped")
    (record,) = h.driver.late("too-late")
    assert (record.key, record.value, record.timestamp_ms) == (
        "a",
        {"ts": 4, "k": "a", "v": "dropped"},
        4,
    )
    assert record.headers == {
        "kstream.late.operator": "w",
        "kstream.late.window_start": "0",
        "kstream.late.window_end": "10",
        "kstream.late.watermark": "12",
    }
    assert h.task.counters["late"] == 1
