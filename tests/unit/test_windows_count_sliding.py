"""Sliding count windows follow Flink's ``countWindow(size, slide)``: ``GlobalWindows`` +
``CountEvictor(size)`` + ``CountTrigger(slide)``. Every ``slide`` elements of a key a window
fires with the key's last ``size`` elements, the first firings with fewer::

    size 3, slide 2     elements   0 1 2 3 4 5 6 7
                        [0, 2)     ■ ■                  fires at element 1 (count 2)
                        [1, 4)       ■ ■ ■              fires at element 3 (count 4)
                        [3, 6)           ■ ■ ■          fires at element 5
                        [5, 8)               ■ ■ ■      fires at element 7

    size 2, slide 3     [1, 3)       ■ ■                fires at element 2 (count 3)
                        [4, 6)             ■ ■          element 0, 3, 6 belong to no window

``accumulation: discarding`` (Flink ``PurgingTrigger``) purges at each firing: a firing holds the
last ``min(size, slide)`` elements since the previous one::

    size 3, slide 2     [0, 2) [2, 4) [4, 6) [6, 8)

``tests/fixtures/flink/count_windows.json`` holds what Apache Flink itself emits for the same
inputs (made by ``tests/fixtures/flink/make_count_windows.py``); kstream must emit the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from windowkit import Harness

FLINK = Path(__file__).resolve().parents[1] / "fixtures" / "flink" / "count_windows.json"
AGG = "aggregate: {n: count, pos: {collect: v}}"


def count(extra: str) -> Harness:
    return Harness(f"{{type: count, {extra} {AGG}}}")


def feed(h: Harness, keys: str) -> list[tuple[str, list[int]]]:
    """Send one element per character of ``keys`` (its key), valued with its position among
    its key's elements; returns the firings as ``(key, positions held)``."""
    seen: dict[str, int] = {}
    for key in keys:
        h.send(100 + len(seen), key=key, v=seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
    return [(r.key, r.value["pos"]) for r in h.new()]


def spans(h: Harness) -> list[tuple[str, int, int, list[int]]]:
    return [
        (r.key, r.value["window_start"], r.value["window_end"], r.value["pos"]) for r in h.new()
    ]


def test_size_3_slide_2_fires_every_2_elements_with_the_last_3() -> None:
    h = count("size: 3, slide: 2,")
    assert feed(h, "aaaaaaaa") == [
        ("a", [0, 1]),
        ("a", [1, 2, 3]),
        ("a", [3, 4, 5]),
        ("a", [5, 6, 7]),
    ]


def test_window_bounds_are_the_positions_held() -> None:
    h = count("size: 3, slide: 2,")
    for i in range(6):
        h.send(10 * i, v=i)
    assert spans(h) == [
        ("a", 0, 2, [0, 1]),
        ("a", 1, 4, [1, 2, 3]),
        ("a", 3, 6, [3, 4, 5]),
    ]


def test_keys_interleaved_count_separately() -> None:
    h = count("size: 3, slide: 2,")
    #            a a b a b b b a a b
    got = feed(h, "aababbbaab")
    assert got == [
        ("a", [0, 1]),  # a's 2nd element
        ("b", [0, 1]),  # b's 2nd element
        ("b", [1, 2, 3]),  # b's 4th element
        ("a", [1, 2, 3]),  # a's 4th element
    ]
    assert h.open_windows() == 2  # a: [3, 6) holds a3, a4; b: [3, 6) holds b3, b4


def test_slide_larger_than_size_skips_elements() -> None:
    h = count("size: 2, slide: 3,")
    assert feed(h, "aaaaaaaa") == [("a", [1, 2]), ("a", [4, 5])]
    assert h.open_windows() == 1  # [7, 9) holds element 7
    h.send(1, v=8)
    assert spans(h) == [("a", 7, 9, [7, 8])]


def test_slide_equal_to_size_is_the_tumbling_window() -> None:
    for extra in ("size: 3,", "size: 3, slide: 3,"):
        h = count(extra)
        for i in range(7):
            h.send(i, v=i)
        assert spans(h) == [("a", 0, 3, [0, 1, 2]), ("a", 3, 6, [3, 4, 5])]


def test_the_result_timestamp_is_the_latest_event_time_held() -> None:
    h = count("size: 3, slide: 2,")
    for ts in (50, 90, 60, 70):
        h.send(ts)
    assert [r.timestamp_ms for r in h.new()] == [90, 90]  # [0, 2) and [1, 4)


def test_elements_left_over_at_end_of_input_never_fire() -> None:
    h = count("size: 3, slide: 2,")
    feed(h, "aaa")
    h.driver.end_of_input()
    assert h.new() == []  # element 2 waits for element 3, as Flink's CountTrigger does


def test_discarding_fires_only_the_elements_since_the_last_firing() -> None:
    h = count("size: 3, slide: 2, accumulation: discarding,")
    for i in range(8):
        h.send(i, v=i)
    assert spans(h) == [
        ("a", 0, 2, [0, 1]),
        ("a", 2, 4, [2, 3]),
        ("a", 4, 6, [4, 5]),
        ("a", 6, 8, [6, 7]),
    ]


def test_discarding_with_slide_larger_than_size_keeps_the_last_size() -> None:
    h = count("size: 2, slide: 3, accumulation: discarding,")
    assert feed(h, "aaaaaa") == [("a", [1, 2]), ("a", [4, 5])]


def test_discarding_tumbling_is_the_tumbling_window() -> None:
    h = count("size: 2, accumulation: discarding,")
    assert feed(h, "abab" * 2) == [("a", [0, 1]), ("b", [0, 1]), ("a", [2, 3]), ("b", [2, 3])]


@pytest.mark.parametrize("mode", ["update", "changelog"])
def test_every_firing_is_a_new_window_in_upsert_modes(mode: str) -> None:
    h = count(f"size: 3, slide: 2, emit: {mode},")
    feed(h, "aaaa")
    out = h.driver.output("out")
    assert [json.loads(r.key) for r in out] == [
        {"key": "a", "window_start": 0, "window_end": 2},
        {"key": "a", "window_start": 1, "window_end": 4},
    ]
    if mode == "changelog":
        assert [r.value["op"] for r in out] == ["+I", "+I"]


def test_restored_sliding_count_windows_continue_exactly() -> None:
    body = f"{{type: count, size: 3, slide: 2, {AGG}}}"
    events = list(enumerate("aabaababba"))
    whole = Harness(body)
    for v, key in events[:3]:
        whole.send(v, key=key, v=v)
    stores = {
        store: sorted((k, v) for k, v in changes if v is not None)
        for store, changes in whole.task.state_changes().items()
    }
    meta = whole.task.meta()
    whole.new()
    resumed = Harness(body)
    resumed.task.restore(meta, stores)
    for h in (whole, resumed):
        for v, key in events[3:]:
            h.send(v, key=key, v=v)
    expected = [(r.key, r.value) for r in whole.new()]
    assert [(r.key, r.value) for r in resumed.new()] == expected
    assert ("a", [1, 3, 4]) in [(key, value["pos"]) for key, value in expected]  # spans the restore


def flink_cases() -> dict[str, Any]:
    return dict(json.loads(FLINK.read_text())["cases"])


@pytest.mark.parametrize("name", sorted(flink_cases()))
def test_kstream_emits_what_flink_emits(name: str) -> None:
    case = flink_cases()[name]
    extra = f"size: {case['size']},"
    if case["slide"] is not None:
        extra += f" slide: {case['slide']},"
    if case["purging"]:
        extra += " accumulation: discarding,"
    got = feed(count(extra), case["keys"])
    assert [[key, pos] for key, pos in got] == case["fired"]


def test_the_flink_fixture_covers_the_cases_of_this_file() -> None:
    cases = flink_cases()
    assert cases["size3_slide2"]["fired"] == [
        ["a", [0, 1]],
        ["a", [1, 2, 3]],
        ["a", [3, 4, 5]],
        ["a", [5, 6, 7]],
    ]
    assert cases["size2_slide3"]["fired"][0] == ["a", [1, 2]]
    assert len({case["keys"] for case in cases.values() if len(set(case["keys"])) > 1}) >= 2
