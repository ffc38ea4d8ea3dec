"""Emit modes (final, update, changelog) and early-firing triggers through the PipelineDriver.

A tumbling window [0, 10) with allowed lateness 100 and a late-but-allowed element::

    elements 1, 2 | watermark 9 (fires) | element 3 (late, allowed: re-fires)
    final:      (a, n=2)                 (a, n=3)
    update:     ({a,0,10}, n=2)          ({a,0,10}, n=3)          upsert by (key, window)
    changelog:  +I n=2                   -U n=2, +U n=3
"""

from __future__ import annotations

from windowkit import Harness

WINDOW_KEY = '{"key":"a","window_start":0,"window_end":10}'


def tumbling(extra: str, start_time_ms: int = 0) -> Harness:
    h = Harness(
        f"{{type: tumbling, size: 10, allowed_lateness: 100, {extra} aggregate: {{n: count}}}}"
    )
    h.driver.now_ms = start_time_ms
    return h


def refire(h: Harness) -> list[tuple[object, object, int]]:
    h.send(1)
    h.send(2)
    h.watermark(9)
    h.send(3)
    return [(r.key, r.value, r.timestamp_ms) for r in h.new()]


def test_final_mode_keys_results_by_record_key() -> None:
    rows = refire(tumbling(""))
    window = {"key": "a", "window_start": 0, "window_end": 10}
    assert rows == [("a", {**window, "n": 2}, 9), ("a", {**window, "n": 3}, 9)]


def test_update_mode_upserts_by_key_and_window() -> None:
    rows = refire(tumbling("emit: update,"))
    assert [(k, v["n"], ts) for k, v, ts in rows] == [(WINDOW_KEY, 2, 9), (WINDOW_KEY, 3, 9)]


def test_changelog_mode_marks_rows_like_flink() -> None:
    rows = refire(tumbling("emit: changelog,"))
    assert [(k, v["op"], v["n"], ts) for k, v, ts in rows] == [
        (WINDOW_KEY, "+I", 2, 9),
        (WINDOW_KEY, "-U", 2, 9),
        (WINDOW_KEY, "+U", 3, 9),
    ]


def test_count_trigger_fires_partial_results_then_the_final_one() -> None:
    h = tumbling("trigger: {count: 2},")
    h.send(1)
    assert h.fired() == []
    h.send(2)
    assert h.fired() == [("a", 0, 10, 2, 9)]  # early: 2 elements since the last emission
    h.send(3)
    assert h.fired() == []
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 3, 9)]  # the on-time firing


def test_count_trigger_counts_since_the_last_emission() -> None:
    h = tumbling("trigger: {count: 2},")
    for ts in range(5):
        h.send(ts)
    assert [f[3] for f in h.fired()] == [2, 4]


def test_count_trigger_in_changelog_mode() -> None:
    h = tumbling("trigger: {count: 2}, emit: changelog,")
    for ts in range(3):
        h.send(ts)
    h.watermark(9)
    assert [(r.value["op"], r.value["n"]) for r in h.new()] == [("+I", 2), ("-U", 2), ("+U", 3)]


def test_every_trigger_fires_changed_windows_on_the_processing_time_grid() -> None:
    """every 10 s, aligned to the epoch: the first element at clock 3 s arms the timer for
    10 s; at each firing only windows changed since their last emission emit."""
    h = Harness(
        "{type: tumbling, size: 1000000, trigger: {every: 10s}, emit: changelog, "
        "aggregate: {n: count}}"
    )
    drv = h.driver
    drv.now_ms = 3000
    h.send(1)
    drv.advance_time(6999)  # 9999
    assert h.new() == []
    drv.advance_time(1)  # 10000
    assert [(r.value["op"], r.value["n"]) for r in h.new()] == [("+I", 1)]
    drv.advance_time(10_000)  # 20000: nothing changed
    assert h.new() == []
    h.send(2)
    drv.advance_time(10_000)  # 30000
    assert [(r.value["op"], r.value["n"]) for r in h.new()] == [("-U", 1), ("+U", 2)]
    h.watermark(999_999)  # the on-time firing always emits
    assert [(r.value["op"], r.value["n"]) for r in h.new()] == [("-U", 2), ("+U", 2)]


def test_every_trigger_stops_once_the_window_fired() -> None:
    h = Harness(
        "{type: tumbling, size: 10, allowed_lateness: 1000, trigger: {every: 1s}, "
        "aggregate: {n: count}}"
    )
    h.send(1)
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(2)  # late but allowed: re-fires at once
    assert h.fired() == [("a", 0, 10, 2, 9)]
    h.driver.advance_time(5000)
    assert h.fired() == []


def test_count_trigger_on_sliding_windows_counts_per_window() -> None:
    """size 10, slide 5: ts 1 -> [-5,5), [0,10); ts 6 -> [0,10), [5,15)."""
    h = Harness("{type: sliding, size: 10, slide: 5, trigger: {count: 2}, aggregate: {n: count}}")
    h.send(1)
    h.send(6)
    assert h.fired() == [("a", 0, 10, 2, 9)]


def test_count_trigger_on_sessions_carries_counts_through_a_merge() -> None:
    h = Harness("{type: session, gap: 10, trigger: {count: 3}, aggregate: {n: count}}")
    h.send(0)
    h.send(20)
    assert h.fired() == []
    h.send(10)  # [10, 20) touches [0, 10) and [20, 30): 1 + 1 + 1 elements since emission
    assert h.fired() == [("a", 0, 30, 3, 29)]
