"""Graph pipelines through the broker-free PipelineDriver: branch routing, unions, the ``late``
and ``errors`` ports, several ``key_by`` outputs of one stage, several sources, and default
error policies taken from the source upstream of each node; results checked against plain
Python."""

from __future__ import annotations

import random
import textwrap
from collections import Counter

import pytest

from kstream.pipeline.load import load_pipeline_text
from kstream.runtime.policy import BadRecordFailure
from kstream.testing import PipelineDriver

HOUR = 3_600_000
WINDOW = "{type: tumbling, size: 1h, aggregate: {n: count}}"
SOURCE = """\
pipeline: g
sources:
  - topic: flights
    event_time: ts
"""


def driver(body: str, head: str = SOURCE, partitions: int = 1) -> PipelineDriver:
    return PipelineDriver(load_pipeline_text(head + textwrap.dedent(body), "g.yaml"), partitions)


def test_branch_first_match_wins_and_default_takes_the_rest() -> None:
    d = driver(
        """\
        operators:
          - id: routed
            branch: {big: "x > 10", positive: "x > 0", default: rest}
        sinks:
          - {topic: big, from: routed.big}
          - {topic: positive, from: routed.positive}
          - {topic: rest, from: routed.rest}
        """
    )
    for x in (5, 50, -1, 0, 11, 10):
        d.send("flights", {"x": x, "ts": 0})
    assert [r.value["x"] for r in d.topic("big")] == [50, 11]
    assert [r.value["x"] for r in d.topic("positive")] == [5, 10]
    assert [r.value["x"] for r in d.topic("rest")] == [-1, 0]


def test_branch_without_default_drops_what_matches_nothing() -> None:
    d = driver(
        """\
        operators:
          - {id: routed, branch: {big: "x > 10"}}
        sinks:
          - {topic: big, from: routed.big}
        """
    )
    for x in (5, 50):
        d.send("flights", {"x": x, "ts": 0})
    assert [r.value["x"] for r in d.topic("big")] == [50]


def test_union_keeps_arrival_order_and_sink_lists_union_too() -> None:
    d = driver(
        """\
        operators:
          - {id: routed, branch: {odd: "x % 2 == 1", default: even}}
          - {id: tagged-odd, from: routed.odd, map: {fields: {kind: "'odd'"}}}
          - {id: all, union: [tagged-odd, routed.even]}
        sinks:
          - {topic: all, from: all}
          - {topic: again, from: [tagged-odd, routed.even]}
        """
    )
    for x in range(6):
        d.send("flights", {"x": x, "ts": 0})
    assert [r.value["x"] for r in d.topic("all")] == list(range(6))
    assert [r.value.get("kind") for r in d.topic("all")] == [None, "odd"] * 3
    assert [r.value["x"] for r in d.topic("again")] == list(range(6))


def test_the_late_port_feeds_operators_and_sinks_with_the_late_headers() -> None:
    d = driver(
        f"""\
        operators:
          - {{id: by-origin, key_by: origin}}
          - id: hourly
            window: {WINDOW}
          - id: late-shape
            from: hourly.late
            map: {{select: [origin, ts]}}
        sinks:
          - {{topic: hourly, from: hourly}}
          - {{topic: late, from: late-shape}}
        """
    )
    d.send("flights", {"origin": "JFK", "ts": 2 * HOUR})
    d.send("flights", {"origin": "JFK", "ts": 10})  # the watermark is past hour 0's end
    d.end_of_input()
    (late,) = d.topic("late")
    assert (late.key, late.value, late.timestamp_ms) == ("JFK", {"origin": "JFK", "ts": 10}, 10)
    assert late.headers == {
        "kstream.late.operator": "hourly",
        "kstream.late.window_start": "0",
        "kstream.late.window_end": str(HOUR),
        "kstream.late.watermark": str(2 * HOUR - 1),
    }
    assert [r.value["n"] for r in d.topic("hourly")] == [1]
    assert [r.value["origin"] for r in d.late("flights")] == ["JFK"]


def test_a_sink_on_an_errors_port_gets_the_dead_letters() -> None:
    d = driver(
        """\
        operators:
          - {id: ratio, map: {fields: {r: "10 / x"}}}
        sinks:
          - {topic: out, from: ratio}
          - {topic: bad, from: ratio.errors}
        """
    )
    d.send("flights", {"x": 2, "ts": 0})
    d.send("flights", {"x": 0, "ts": 0})
    assert [r.value["r"] for r in d.topic("out")] == [5.0]
    (bad,) = d.topic("bad")
    assert bad.value == {"x": 0, "ts": 0}
    assert bad.headers["kstream.error.operator"] == "ratio"
    assert bad.headers["kstream.error.class"] == "ZeroDivisionError"


def test_two_key_by_outputs_of_one_stage_match_plain_python() -> None:
    d = driver(
        f"""\
        operators:
          - id: routed
            branch: {{delayed: "dep_delay > 60", default: on-time}}
          - {{id: by-origin, from: routed.delayed, key_by: origin}}
          - {{id: slow, window: {WINDOW}}}
          - {{id: by-dest, from: routed.on-time, key_by: dest}}
          - {{id: fast, window: {WINDOW}}}
        sinks:
          - {{topic: slow, from: slow}}
          - {{topic: fast, from: fast}}
        """,
        head=SOURCE + "    watermark: {max_out_of_orderness: 1h}\n",
        partitions=3,
    )
    rng = random.Random(7)
    rows = [
        {
            "origin": rng.choice(["EWR", "JFK", "LGA"]),
            "dest": rng.choice(["ATL", "ORD", "LAX", "SFO"]),
            "dep_delay": rng.randint(-20, 200),
            "ts": i * 60_000,
        }
        for i in range(600)
    ]
    for i, row in enumerate(rows):
        d.send("flights", row, partition=i % 3)
    d.end_of_input()
    slow = Counter((r["origin"], r["ts"] // HOUR * HOUR) for r in rows if r["dep_delay"] > 60)
    fast = Counter((r["dest"], r["ts"] // HOUR * HOUR) for r in rows if r["dep_delay"] <= 60)
    got_slow = Counter({(r.key, r.value["window_start"]): r.value["n"] for r in d.topic("slow")})
    got_fast = Counter({(r.key, r.value["window_start"]): r.value["n"] for r in d.topic("fast")})
    assert got_slow == slow
    assert got_fast == fast


def test_each_source_feeds_its_own_stage_with_its_own_default_policy() -> None:
    head = """\
    pipeline: two
    sources:
      - {topic: ewr-flights, id: ewr, event_time: ts, on_error: skip}
      - {topic: nyc-flights, id: nyc, event_time: ts}
    """
    d = driver(
        """\
        operators:
          - {id: ewr-ratio, from: ewr, map: {fields: {r: "10 / x"}}}
          - {id: nyc-ratio, from: nyc, map: {fields: {r: "10 / x"}}}
        sinks:
          - {topic: ewr-out, from: ewr-ratio}
          - {topic: nyc-out, from: nyc-ratio}
        """,
        head=textwrap.dedent(head),
    )
    d.send("ewr", {"x": 0, "ts": 0})  # skipped: the policy of source ewr
    d.send("ewr", {"x": 5, "ts": 0})
    d.send("nyc", {"x": 2, "ts": 0})
    assert [r.value["r"] for r in d.topic("ewr-out")] == [2.0]
    assert [r.value["r"] for r in d.topic("nyc-out")] == [5.0]
    with pytest.raises(BadRecordFailure, match="nyc-ratio"):
        d.send("nyc", {"x": 0, "ts": 0})  # fails: the policy of source nyc


def test_in_a_task_reading_two_topics_each_node_has_the_watermark_of_its_own_inputs() -> None:
    head = """\
    pipeline: two
    sources:
      - {topic: a-flights, id: a, event_time: ts}
      - {topic: b-flights, id: b, event_time: ts}
    """
    d = driver(
        f"""\
        operators:
          - {{id: both, union: [a, b]}}
          - {{id: a-hourly, from: a, window: {WINDOW}}}
          - {{id: all-hourly, from: both, window: {WINDOW}}}
        sinks:
          - {{topic: a-out, from: a-hourly}}
          - {{topic: all-out, from: all-hourly}}
        """,
        head=textwrap.dedent(head),
    )
    d.send("a", {"ts": 10}, key="k")
    d.send("a", {"ts": 2 * HOUR}, key="k")  # a's watermark passes hour 0; b has sent nothing
    assert [(r.key, r.value["window_start"], r.value["n"]) for r in d.topic("a-out")] == [
        ("k", 0, 1)
    ]
    assert d.topic("all-out") == []  # behind the union, b holds the watermark back
    assert d.current_watermark("a") == -(2**63)  # the task's: the min over both inputs
    d.send("b", {"ts": 3 * HOUR}, key="k")
    assert [(r.value["window_start"], r.value["n"]) for r in d.topic("all-out")] == [(0, 1)]
    d.end_input("a")
    d.end_input("b")
    assert [(r.value["window_start"], r.value["n"]) for r in d.topic("all-out")] == [
        (0, 1),
        (2 * HOUR, 1),
        (3 * HOUR, 1),
    ]


def test_the_driver_sets_the_watermark_of_one_source_of_a_task() -> None:
    head = """\
    pipeline: two
    sources:
      - {topic: a-flights, id: a, event_time: ts}
      - {topic: b-flights, id: b, event_time: ts}
    """
    d = driver(
        f"""\
        operators:
          - {{id: both, union: [a, b]}}
          - {{id: a-hourly, from: a, window: {WINDOW}}}
        sinks:
          - {{topic: all, from: both}}
          - {{topic: a-out, from: a-hourly}}
        """,
        head=textwrap.dedent(head),
    )
    d.send("a", {"ts": 10}, key="k")
    d.watermark("b", 5 * HOUR)
    assert d.topic("a-out") == []  # a's watermark has not moved
    d.watermark("a", HOUR)
    assert [r.value["n"] for r in d.topic("a-out")] == [1]
    assert d.current_watermark("a") == HOUR


UNION_IDLE = """\
pipeline: idle
sources:
  - {topic: a-flights, id: a, event_time: ts, watermark: {idle_timeout: 10s}}
  - {topic: b-flights, id: b, event_time: ts, watermark: {idle_timeout: 10s}}
"""


def union_driver() -> PipelineDriver:
    return driver(
        f"""\
        operators:
          - {{id: both, union: [a, b]}}
          - {{id: hourly, window: {WINDOW}}}
        sinks:
          - {{topic: out, from: hourly}}
          - {{topic: late, from: hourly.late}}
        """,
        head=textwrap.dedent(UNION_IDLE),
    )


def test_union_an_input_returning_from_idleness_behind_does_not_hold_the_watermark() -> None:
    d = union_driver()
    d.send("b", {"ts": 0}, key="k")
    d.advance_time(10_000)  # b idle; a never sent anything: idle too after the timeout
    d.send("a", {"ts": 5 * HOUR}, key="k")  # a active again: the watermark follows a
    assert d.current_watermark("a") == 5 * HOUR - 1
    d.send("b", {"ts": HOUR}, key="k")  # b returns behind: late, and it holds nothing back
    assert d.current_watermark("a") == 5 * HOUR - 1
    assert [r.value["ts"] for r in d.topic("late")] == [HOUR]
    d.send("a", {"ts": 7 * HOUR}, key="k")
    assert d.current_watermark("a") == 7 * HOUR - 1  # not held at b's 1 h


def test_union_all_inputs_idle_advances_to_the_max_so_windows_fire() -> None:
    d = union_driver()
    d.send("a", {"ts": 10}, key="k")
    d.send("b", {"ts": 3 * HOUR}, key="k")
    assert d.topic("out") == []  # a holds the min at 9
    d.advance_time(10_000)  # both idle: the watermark jumps to the max (3 h - 1)
    assert d.current_watermark("a") == 3 * HOUR - 1
    assert [(r.value["window_start"], r.value["n"]) for r in d.topic("out")] == [(0, 1)]
