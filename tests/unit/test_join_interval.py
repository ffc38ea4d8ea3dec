"""The interval join (kstream.operators.join.interval; docs/joins.md "Interval join") through the
broker-free driver: bounds, timestamps, late records, outer rows, null keys, and random streams
against a brute-force join in plain Python."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from kstream.testing.driver import PipelineDriver

PIPELINE = """\
pipeline: j
sources:
  - {{id: a, topic: a, event_time: t, watermark: {{max_out_of_orderness: {ooo}}}}}
  - {{id: b, topic: b, event_time: t, watermark: {{max_out_of_orderness: {ooo}}}}}
operators:
  - id: j
    from: a
    join: {{type: interval, right: b, on: k, between: [{lo}, {hi}], how: {how}}}
sinks:
  - {{topic: out}}
  - {{topic: late, from: j.late}}
"""


def driver(lo: int = -10, hi: int = 5, how: str = "inner", ooo: int = 0, partitions: int = 1):
    text = PIPELINE.format(lo=lo, hi=hi, how=how, ooo=ooo)
    return PipelineDriver.from_yaml(text, partitions=partitions)


def rows(d: PipelineDriver, sink: str = "out") -> list[tuple[Any, ...]]:
    """``(left n, right m, timestamp)`` per output record (None: the side is unmatched)."""
    out = []
    for r in d.output(sink):
        right = r.value.get("b")
        out.append((r.value.get("n"), right["m"] if right else None, r.timestamp_ms))
    return out


def test_bounds_are_inclusive_and_the_output_time_is_the_later_one() -> None:
    #   between: [-10, 5]: a right record joins a left one at l when l-10 <= r <= l+5
    #
    #   a (left)   ..........L100.............................
    #   b (right)  ....89..90.......105..106..................
    #                  no  yes      yes  no
    d = driver()
    for m, t in enumerate([89, 90, 105, 106]):
        d.send("b", {"k": "x", "t": t, "m": m})
    d.send("a", {"k": "x", "t": 100, "n": 0})
    d.end_of_input()
    # a join found on arrival of the left record: right records in time order
    assert rows(d) == [(0, 1, 100), (0, 2, 105)]


def test_a_right_record_joins_the_left_records_buffered_before_it() -> None:
    d = driver(lo=0, hi=0)
    d.send("a", {"k": "x", "t": 50, "n": 0})
    d.send("a", {"k": "y", "t": 50, "n": 1})
    d.send("b", {"k": "x", "t": 50, "m": 7})
    d.end_of_input()
    assert rows(d) == [(0, 7, 50)]
    assert d.output("out")[0].key == "x"
    assert d.output("out")[0].value == {"k": "x", "t": 50, "n": 0, "b": {"k": "x", "t": 50, "m": 7}}


def test_a_record_behind_the_join_watermark_goes_to_the_late_port() -> None:
    #   watermark of each source = max seen - 1 (no out-of-orderness); the join's is the min
    #   a: L100 -> wm 99;  b: R200 -> wm 199;  join wm = 99
    #   a: L98 (98 < 99) is late;  L99 is not (Flink isLate: ts < watermark)
    d = driver(lo=-1000, hi=1000)
    d.send("a", {"k": "x", "t": 100, "n": 0})
    d.send("b", {"k": "x", "t": 200, "m": 0})
    d.send("a", {"k": "x", "t": 98, "n": 1})
    d.send("a", {"k": "x", "t": 99, "n": 2})
    d.end_of_input()
    assert sorted(rows(d)) == [(0, 0, 200), (2, 0, 200)]
    late = d.output("late")
    assert [r.value["n"] for r in late] == [1]
    assert late[0].headers["kstream.late.join"] == "j"
    assert late[0].headers["kstream.late.side"] == "left"
    assert late[0].headers["kstream.late.watermark"] == "99"


def test_outer_rows_come_when_the_watermark_passes_their_bound() -> None:
    #   how: full, between: [-10, 5]
    #   L100 can match right records up to 105: released when the join watermark reaches 105
    #   R300 can match left records down to 295 (lower -10): released at watermark 310
    d = driver(how="full")
    d.send("a", {"k": "x", "t": 100, "n": 0})
    d.send("b", {"k": "x", "t": 300, "m": 0})
    assert rows(d) == []
    d.send("a", {"k": "x", "t": 106, "n": 1})  # join wm = min(105, 299) = 105
    assert rows(d) == [(0, None, 100)]
    d.send("a", {"k": "y", "t": 311, "n": 2})  # a's wm 310: L106 released (bound 111)
    d.send("b", {"k": "y", "t": 400, "m": 1})  # join wm = 310: R300 released
    assert rows(d) == [(0, None, 100), (1, None, 106), (None, 0, 300)]
    d.end_of_input()
    assert rows(d)[3:] == [(2, None, 311), (None, 1, 400)]


def test_a_matched_record_is_never_emitted_unmatched() -> None:
    d = driver(how="left")
    d.send("a", {"k": "x", "t": 100, "n": 0})
    d.send("b", {"k": "x", "t": 101, "m": 0})
    d.send("b", {"k": "x", "t": 102, "m": 1})
    d.end_of_input()
    assert rows(d) == [(0, 0, 101), (0, 1, 102)]


def test_a_null_key_matches_nothing() -> None:
    d = driver(how="left")
    d.send("a", {"k": None, "t": 100, "n": 0})
    d.send("b", {"k": None, "t": 100, "m": 0})
    d.end_of_input()
    assert rows(d) == [(0, None, 100)]


def brute_force(
    lefts: list[dict[str, Any]], rights: list[dict[str, Any]], lo: int, hi: int, how: str
) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    matched_right: set[int] = set()
    for left in lefts:
        found = False
        for right in rights:
            if (
                left["k"] is not None
                and left["k"] == right["k"]
                and lo <= right["t"] - left["t"] <= hi
            ):
                out[(left["n"], right["m"], max(left["t"], right["t"]))] += 1
                matched_right.add(right["m"])
                found = True
        if not found and how in ("left", "full"):
            out[(left["n"], None, left["t"])] += 1
    if how in ("right", "full"):
        for right in rights:
            if right["m"] not in matched_right:
                out[(None, right["m"], right["t"])] += 1
    return out


@pytest.mark.parametrize(
    ("how", "partitions"), [("inner", 1), ("left", 3), ("right", 2), ("full", 3)]
)
def test_random_streams_equal_a_brute_force_join(how: str, partitions: int) -> None:
    rng = random.Random(f"{how}{partitions}")
    lefts = [{"k": rng.choice("abcde"), "t": rng.randrange(10_000), "n": n} for n in range(400)]
    rights = [{"k": rng.choice("abcdef"), "t": rng.randrange(10_000), "m": m} for m in range(400)]
    lo, hi = -rng.randrange(300), rng.randrange(300)
    d = driver(lo=lo, hi=hi, how=how, ooo=100_000, partitions=partitions)
    sends = [("a", v) for v in lefts] + [("b", v) for v in rights]
    rng.shuffle(sends)
    for source, value in sends:
        d.send(source, value, key=value["k"], partition=rng.randrange(partitions))
    d.end_of_input()
    assert d.output("late") == []
    assert Counter(rows(d)) == brute_force(lefts, rights, lo, hi, how)


def test_select_computes_the_output_over_the_joined_record() -> None:
    text = PIPELINE.format(lo=0, hi=0, how="left", ooo=0).replace(
        "how: left}", "how: left, select: {n: n, m: b.m, both: 'n + b.m'}}"
    )
    d = PipelineDriver.from_yaml(text)
    d.send("a", {"k": "x", "t": 5, "n": 1})
    d.send("b", {"k": "x", "t": 5, "m": 2})
    d.send("a", {"k": "z", "t": 6, "n": 3})
    d.end_of_input()
    values = [r.value for r in d.output("out")]
    assert values[0] == {"n": 1, "m": 2, "both": 3}
    assert values[1]["n"] == 3 and values[1]["m"] is None


def test_the_plan_repartitions_both_inputs_by_their_join_key() -> None:
    text = PIPELINE.format(lo=0, hi=0, how="inner", ooo=0).replace(
        "on: k", "on: {left: k, right: kk}"
    )
    d = PipelineDriver.from_yaml(text, partitions=2)
    stage = next(s for s in d.plan.stages if s.joins)
    assert [i.node for i in stage.inputs] == ["j.left", "j.right"]
    assert [k.expr for s in d.plan.stages for k in s.key_bys] == ["k", "kk"]
    d.send("a", {"k": 1, "t": 5, "n": 0}, partition=0)
    d.send("b", {"kk": 1, "t": 5, "m": 0}, partition=1)
    d.end_of_input()
    assert rows(d) == [(0, 0, 5)]
