"""The window join (kstream.operators.join.window; docs/joins.md "Window join") through the
broker-free driver: window boundaries, firing time and timestamps, sliding windows, outer rows,
late records, and random streams against a brute-force join in plain Python."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from kstream.testing.driver import PipelineDriver

PIPELINE = """\
pipeline: w
sources:
  - {{id: a, topic: a, event_time: t, watermark: {{max_out_of_orderness: {ooo}}}}}
  - {{id: b, topic: b, event_time: t, watermark: {{max_out_of_orderness: {ooo}}}}}
operators:
  - id: j
    from: a
    join: {{type: window, right: b, on: k, how: {how}, window: {window}}}
sinks:
  - {{topic: out}}
  - {{topic: late, from: j.late}}
"""
TUMBLING = "{type: tumbling, size: 10}"


def driver(window: str = TUMBLING, how: str = "inner", ooo: int = 0, partitions: int = 1):
    text = PIPELINE.format(window=window, how=how, ooo=ooo)
    return PipelineDriver.from_yaml(text, partitions=partitions)


def rows(d: PipelineDriver) -> list[tuple[Any, ...]]:
    """``(left n, right m, timestamp)`` per output record (None: the side is unmatched)."""
    out = []
    for r in d.output("out"):
        right = r.value.get("b")
        out.append((r.value.get("n"), right["m"] if right else None, r.timestamp_ms))
    return out


def test_records_of_one_window_join_when_it_fires() -> None:
    #   windows of 10 ms:   [0, 10)            [10, 20)
    #   a (left)            L0@2   L1@9        L2@10
    #   b (right)           R0@5               R1@19
    #   fires at            9: L0+R0, L1+R0    19: L2+R1
    d = driver()
    d.send("a", {"k": "x", "t": 2, "n": 0})
    d.send("b", {"k": "x", "t": 5, "m": 0})
    d.send("a", {"k": "x", "t": 9, "n": 1})
    assert rows(d) == []  # the join's watermark (min of both inputs) is 4
    d.send("a", {"k": "x", "t": 10, "n": 2})
    d.send("b", {"k": "x", "t": 19, "m": 1})  # watermark 9: [0, 10) fires
    assert rows(d) == [(0, 0, 9), (1, 0, 9)]
    d.end_of_input()
    assert rows(d)[2:] == [(2, 1, 19)]


def test_a_sliding_windows_record_joins_in_each_of_its_windows() -> None:
    #   size 10, slide 5: R@7 is in [0, 10) and [5, 15); L@3 only in [0, 10), L@12 only in [5, 15)
    d = driver(window="{type: sliding, size: 10, slide: 5}")
    d.send("b", {"k": "x", "t": 7, "m": 0})
    d.send("a", {"k": "x", "t": 3, "n": 0})
    d.send("a", {"k": "x", "t": 12, "n": 1})
    d.end_of_input()
    assert rows(d) == [(0, 0, 9), (1, 0, 14)]


def test_outer_sides_emit_their_records_of_windows_without_the_other_side() -> None:
    d = driver(how="full")
    d.send("a", {"k": "x", "t": 1, "n": 0})
    d.send("b", {"k": "x", "t": 12, "m": 0})
    d.send("a", {"k": "y", "t": 23, "n": 1})
    d.send("b", {"k": "y", "t": 24, "m": 1})
    d.end_of_input()
    assert rows(d) == [(0, None, 9), (None, 0, 19), (1, 1, 29)]


def test_a_record_whose_windows_fired_is_late() -> None:
    d = driver()
    d.send("a", {"k": "x", "t": 30, "n": 0})
    d.send("b", {"k": "x", "t": 30, "m": 0})  # watermark 29: [20, 30) has fired
    d.send("b", {"k": "x", "t": 29, "m": 1})
    d.end_of_input()
    assert rows(d) == [(0, 0, 39)]
    late = d.output("late")
    assert [(r.value["m"], r.headers["kstream.late.side"]) for r in late] == [(1, "right")]


def brute_force(
    lefts: list[dict[str, Any]], rights: list[dict[str, Any]], size: int, slide: int, how: str
) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    starts = range(-slide * (size // slide + 1), 10_000 + size, slide)  # aligned to the epoch
    for start in starts:
        end = start + size
        for key in "abcdef":
            ls = [r for r in lefts if r["k"] == key and start <= r["t"] < end]
            rs = [r for r in rights if r["k"] == key and start <= r["t"] < end]
            if ls and rs:
                out.update((lv["n"], rv["m"], end - 1) for lv in ls for rv in rs)
            elif ls and how in ("left", "full"):
                out.update((lv["n"], None, end - 1) for lv in ls)
            elif rs and how in ("right", "full"):
                out.update((None, rv["m"], end - 1) for rv in rs)
    return out


@pytest.mark.parametrize(
    ("window", "how", "partitions"),
    [((100, 100), "inner", 1), ((100, 40), "full", 3), ((60, 20), "left", 2)],
)
def test_random_streams_equal_a_brute_force_join(
    window: tuple[int, int], how: str, partitions: int
) -> None:
    rng = random.Random(f"{window}{how}")
    size, slide = window
    lefts = [{"k": rng.choice("abcde"), "t": rng.randrange(10_000), "n": n} for n in range(300)]
    rights = [{"k": rng.choice("bcdef"), "t": rng.randrange(10_000), "m": m} for m in range(300)]
    spec = (
        f"{{type: tumbling, size: {size}}}"
        if size == slide
        else f"{{type: sliding, size: {size}, slide: {slide}}}"
    )
    d = driver(window=spec, how=how, ooo=100_000, partitions=partitions)
    sends = [("a", v) for v in lefts] + [("b", v) for v in rights]
    rng.shuffle(sends)
    for source, value in sends:
        d.send(source, value, key=value["k"], partition=rng.randrange(partitions))
    d.end_of_input()
    assert d.output("late") == []
    assert Counter(rows(d)) == brute_force(lefts, rights, size, slide, how)
