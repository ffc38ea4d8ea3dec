"""Count windows and the global aggregation through the PipelineDriver.

Count windows number each key's elements 0, 1, 2, ... in arrival order; every ``slide``
elements a window fires with the last ``size`` (Flink ``countWindow(size, slide)``)::

    size 3 (tumbling):        [0,3) [3,6) [6,9) ...   fires when element 2, 5, 8, ... arrives
    size 4, slide 2:        [0,2)                     fires at element 1 (2 elements so far)
                            [0,  4)                   fires at element 3
                                [2,  6)               fires at element 5
                                    [4,  8)           fires at element 7

More sliding cases, and Flink's own output for them: test_windows_count_sliding.py.

A global aggregation is one window per key over all time, closed by the end of input.
"""

from __future__ import annotations

from windowkit import Harness

AGG = "aggregate: {n: count, total: {sum: v}}"


def count(extra: str) -> Harness:
    return Harness(f"{{type: count, {extra} {AGG}}}")


def glob(extra: str = "") -> Harness:
    return Harness(f"{{type: global, {extra} {AGG}}}")


def test_tumbling_count_window_fires_at_size_elements() -> None:
    h = count("size: 3,")
    for i in range(7):
        h.send(100 + i, v=i)
    rows = [
        (r.value["window_start"], r.value["window_end"], r.value["n"], r.value["total"])
        for r in h.new()
    ]
    assert rows == [(0, 3, 3, 3), (3, 6, 3, 12)]
    assert h.open_windows() == 1


def test_count_window_result_timestamp_is_its_latest_event_time() -> None:
    h = count("size: 3,")
    for ts in (50, 70, 60):
        h.send(ts)
    (record,) = h.new()
    assert record.timestamp_ms == 70
    assert record.key == "a"


def test_incomplete_count_window_is_discarded_at_end_of_input() -> None:
    h = count("size: 3,")
    h.send(1)
    h.send(2)
    h.driver.end_of_input()
    assert h.new() == []


def test_count_windows_ignore_the_watermark() -> None:
    h = count("size: 2,")
    h.send(1_000)
    h.watermark(10_000)  # no firing, and nothing is late afterwards
    assert h.new() == []
    h.send(5)
    assert [r.value["n"] for r in h.new()] == [2]
    assert h.driver.late("in") == []


def test_count_windows_are_per_key() -> None:
    h = count("size: 2,")
    for key in "abab":
        h.send(1, key=key)
    assert [r.key for r in h.new()] == ["a", "b"]


def test_sliding_count_windows_fire_every_slide_elements_with_the_last_size() -> None:
    h = count("size: 4, slide: 2,")
    for i in range(9):
        h.send(i, v=i)
    rows = [(r.value["window_start"], r.value["window_end"], r.value["total"]) for r in h.new()]
    assert rows == [(0, 2, 0 + 1), (0, 4, 0 + 1 + 2 + 3), (2, 6, 2 + 3 + 4 + 5), (4, 8, 22)]
    assert h.open_windows() == 2  # [6, 10) holds element 8, [8, 12) opens with it


def test_sliding_count_window_by_one() -> None:
    h = count("size: 3, slide: 1,")
    for i in range(5):
        h.send(i, v=i)
    assert [r.value["total"] for r in h.new()] == [0, 0 + 1, 0 + 1 + 2, 6, 9]


def test_count_window_update_and_changelog_keys() -> None:
    h = count("size: 1, emit: update,")
    h.send(1)
    assert [r.key for r in h.new()] == ['{"key":"a","window_start":0,"window_end":1}']
    h = count("size: 1, emit: changelog,")
    h.send(1)
    h.send(2)
    assert [r.value["op"] for r in h.new()] == ["+I", "+I"]


def test_global_defaults_to_an_upsert_per_record() -> None:
    h = glob()
    h.send(10, v=1)
    h.send(5, v=2)  # older: the result timestamp stays the largest event time
    h.send(1, key="b", v=7)
    rows = [(r.key, r.value, r.timestamp_ms) for r in h.new()]
    assert rows == [
        ("a", {"key": "a", "n": 1, "total": 1}, 10),
        ("a", {"key": "a", "n": 2, "total": 3}, 10),
        ("b", {"key": "b", "n": 1, "total": 7}, 1),
    ]
    h.driver.end_of_input()
    assert h.new() == []  # every key's latest result was already emitted


def test_global_changelog() -> None:
    h = glob("emit: changelog,")
    h.send(1, v=1)
    h.send(2, v=2)
    assert [(r.value["op"], r.value["n"]) for r in h.new()] == [("+I", 1), ("-U", 1), ("+U", 2)]


def test_global_final_emits_once_per_key_at_end_of_input() -> None:
    h = glob("emit: final,")
    for key in "aba":
        h.send(1, key=key)
    h.watermark(10**15)
    assert h.new() == []  # a watermark does not close the global window
    h.driver.end_of_input()
    assert sorted((r.key, r.value["n"]) for r in h.new()) == [("a", 2), ("b", 1)]


def test_global_count_trigger_then_flush_at_end_of_input() -> None:
    h = glob("trigger: {count: 2},")
    for v in range(3):
        h.send(1, v=v)
    h.send(1, key="b")
    h.send(1, key="b")
    assert [(r.key, r.value["n"]) for r in h.new()] == [("a", 2), ("b", 2)]
    h.driver.end_of_input()
    assert [(r.key, r.value["n"]) for r in h.new()] == [("a", 3)]  # only changed keys


def test_global_every_trigger() -> None:
    h = glob("trigger: {every: 1s},")
    h.send(1)
    h.send(2)
    assert h.new() == []
    h.driver.advance_time(1000)
    assert [(r.key, r.value["n"]) for r in h.new()] == [("a", 2)]


def test_global_after_a_key_by_ends_with_the_upstream_input() -> None:
    h = Harness(
        f"{{type: global, emit: final, {AGG}}}",
        partitions=2,
        operators="  - id: by-k\n    key_by: k\n",
    )
    h.send(1, key="x", partition=0)
    h.send(2, key="x", partition=1)
    h.driver.end_of_input()
    assert [(r.key, r.value["n"]) for r in h.new()] == [("x", 2)]
