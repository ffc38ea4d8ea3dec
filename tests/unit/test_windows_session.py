"""Session windows through the PipelineDriver. Gap 10 ms: an element at ts opens [ts, ts + 10);
sessions that overlap or touch merge::

    ts=0  [---------)                       [0, 10)
    ts=10           [---------)             [10, 20)  touches [0, 10): one session [0, 20)
    ts=21                      [---------)  [21, 31)  1 ms apart: a separate session
"""

from __future__ import annotations

from windowkit import Harness

AGG = "aggregate: {n: count, first: {first: v}, last: {last: v}}"


def session(extra: str = "") -> Harness:
    return Harness(f"{{type: session, gap: 10, {extra} {AGG}}}")


def test_session_is_first_ts_to_last_ts_plus_gap_and_fires_at_end_minus_one() -> None:
    h = session()
    h.send(0)
    h.send(4)
    h.watermark(12)  # end is 14
    assert h.fired() == []
    h.watermark(13)
    assert h.fired() == [("a", 0, 14, 2, 13)]


def test_touching_sessions_merge() -> None:
    h = session()
    h.send(0)
    h.send(10)
    h.watermark(100)
    assert h.fired() == [("a", 0, 20, 2, 19)]


def test_sessions_one_ms_apart_do_not_merge() -> None:
    h = session()
    h.send(0)
    h.send(11)
    h.watermark(100)
    assert h.fired() == [("a", 0, 10, 1, 9), ("a", 11, 21, 1, 20)]


def test_an_earlier_element_touching_a_session_extends_it_backwards() -> None:
    h = session()
    h.send(10, v="second")
    h.send(0, v="first")  # [0, 10) touches [10, 20)
    h.watermark(100)
    (record,) = h.new()
    assert (record.value["window_start"], record.value["window_end"]) == (0, 20)
    assert (record.value["first"], record.value["last"]) == ("first", "second")


def test_element_inside_a_session_does_not_change_its_bounds() -> None:
    h = session()
    h.send(0)
    h.send(8)
    h.send(3)
    h.watermark(100)
    assert h.fired() == [("a", 0, 18, 3, 17)]


def test_an_on_time_element_bridging_two_sessions_merges_them() -> None:
    h = session()
    h.send(0, v="x")
    h.send(15, v="z")
    assert h.open_windows() == 2
    h.send(7, v="y")  # [7, 17) overlaps [0, 10) and [15, 25)
    assert h.open_windows() == 1
    h.watermark(100)
    (record,) = h.new()
    assert record.value == {
        "key": "a",
        "window_start": 0,
        "window_end": 25,
        "n": 3,
        "first": "x",
        "last": "z",
    }


def test_a_late_element_bridging_two_fired_sessions_merges_and_refires() -> None:
    h = session("allowed_lateness: 100,")
    h.send(0)
    h.send(15)
    h.watermark(30)
    assert h.fired() == [("a", 0, 10, 1, 9), ("a", 15, 25, 1, 24)]
    h.send(7)  # late but allowed: the merged session [0, 25) fires at once
    assert h.fired() == [("a", 0, 25, 3, 24)]
    assert h.open_windows() == 1


def test_late_bridge_in_changelog_mode_deletes_the_merged_sessions() -> None:
    h = session("allowed_lateness: 100, emit: changelog,")
    h.send(0)
    h.send(15)
    h.watermark(30)
    h.new()
    h.send(7)
    rows = [
        (r.value["op"], r.value["window_start"], r.value["window_end"], r.value["n"])
        for r in h.new()
    ]
    assert rows == [("-D", 0, 10, 1), ("-D", 15, 25, 1), ("+I", 0, 25, 3)]


def test_late_bridge_in_update_mode_tombstones_the_merged_sessions() -> None:
    h = session("allowed_lateness: 100, emit: update,")
    h.send(0)
    h.send(15)
    h.watermark(30)
    first = h.new()
    h.send(7)
    records = h.new()
    assert [r.value for r in records[:2]] == [None, None]
    assert [r.key for r in records[:2]] == [r.key for r in first]
    assert records[2].key == '{"key":"a","window_start":0,"window_end":25}'
    assert records[2].value["n"] == 3


def test_merge_of_sessions_not_yet_emitted_retracts_nothing() -> None:
    h = session("emit: changelog,")
    h.send(0)
    h.send(15)
    h.send(7)
    h.watermark(100)
    assert [(r.value["op"], r.value["window_end"]) for r in h.new()] == [("+I", 25)]


def test_element_late_for_its_session_is_dropped() -> None:
    h = session()
    h.send(0)
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(-1)  # [-1, 9): 8 <= 9 late, and [0, 10) is purged (no lateness)
    assert h.fired() == []
    late = h.driver.late("in")
    assert [(r.value["ts"], r.headers["window_start"], r.headers["window_end"]) for r in late] == [
        (-1, "-1", "9")
    ]


def test_after_purge_a_not_late_element_starts_a_new_session() -> None:
    """With no lateness the fired session [0, 10) is gone at watermark 9; an element at 5
    opens [5, 15), which is not late (14 > 9): Flink does the same."""
    h = session()
    h.send(0)
    h.watermark(9)
    h.fired()
    h.send(5)
    h.watermark(14)
    assert h.fired() == [("a", 5, 15, 1, 14)]


def test_sessions_are_per_key() -> None:
    h = session()
    h.send(0, key="a")
    h.send(5, key="b")
    h.send(10, key="a")
    h.watermark(100)
    assert sorted(h.fired()) == [("a", 0, 20, 2, 19), ("b", 5, 15, 1, 14)]


def test_negative_times() -> None:
    h = session()
    h.send(-25)
    h.send(-15)
    h.watermark(-6)
    assert h.fired() == [("a", -25, -5, 2, -6)]
