"""The session window join (kstream.operators.join.session; docs/joins.md "Window join") through
the broker-free driver: sessions merged across both sides (touching sessions merge, as Flink's
``TimeWindow.intersects``), firing time and timestamps, outer rows, late records, the state
left after firing, and random streams against a brute-force session join in plain Python."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_join_window import PIPELINE, rows

from kstream.operators.join.node import JoinNode
from kstream.testing.driver import PipelineDriver


def driver(gap: int = 10, how: str = "inner", ooo: int = 0, partitions: int = 1):
    text = PIPELINE.format(window=f"{{type: session, gap: {gap}}}", how=how, ooo=ooo)
    return PipelineDriver.from_yaml(text, partitions=partitions)


def test_records_of_both_sides_share_one_session_and_join_when_it_fires() -> None:
    #   gap 10:   L0@0 opens [0, 10); R0@8 extends it to [0, 18); L1@18 touches it: [0, 28)
    #   a (left)  L0@0              L1@18             L2@40
    #   b (right)        R0@8                                  R1@60
    #   sessions  [0, 28): L0 L1 R0                  [40, 50): L2    [60, 70): R1
    d = driver()
    d.send("a", {"k": "x", "t": 0, "n": 0})
    d.send("b", {"k": "x", "t": 8, "m": 0})
    d.send("a", {"k": "x", "t": 18, "n": 1})
    d.send("a", {"k": "x", "t": 40, "n": 2})
    d.send("b", {"k": "x", "t": 60, "m": 1})  # the join's watermark: 39 (a: 40 - 0 - 1)
    assert rows(d) == [(0, 0, 27), (1, 0, 27)]
    d.end_of_input()
    assert rows(d)[2:] == []  # inner: [40, 50) and [60, 70) each hold one side only


def test_sessions_one_gap_apart_merge_and_one_more_millisecond_keeps_them_apart() -> None:
    d = driver()
    d.send("a", {"k": "x", "t": 0, "n": 0})
    d.send("b", {"k": "x", "t": 10, "m": 0})  # [0, 10) and [10, 20) touch: one session
    d.send("a", {"k": "y", "t": 0, "n": 1})
    d.send("b", {"k": "y", "t": 11, "m": 1})  # [0, 10) and [11, 21): two sessions
    d.end_of_input()
    assert rows(d) == [(0, 0, 19)]


def test_a_late_record_bridges_two_sessions_into_one() -> None:
    #   ooo 100: nothing is late.  L0@0 [0, 10)   R0@18 [18, 28)   then L1@9 [9, 19): [0, 28)
    d = driver(ooo=100)
    d.send("a", {"k": "x", "t": 0, "n": 0})
    d.send("b", {"k": "x", "t": 18, "m": 0})
    d.send("a", {"k": "x", "t": 9, "n": 1})
    d.end_of_input()
    assert rows(d) == [(0, 0, 27), (1, 0, 27)]


def test_outer_sides_emit_their_records_of_sessions_without_the_other_side() -> None:
    d = driver(how="full")
    d.send("a", {"k": "x", "t": 1, "n": 0})
    d.send("b", {"k": "x", "t": 30, "m": 0})
    d.send("a", {"k": "y", "t": 50, "n": 1})
    d.send("b", {"k": "y", "t": 55, "m": 1})
    d.send("a", {"k": None, "t": 70, "n": 2})  # a null key: unmatched at once, its own session
    d.end_of_input()
    assert rows(d) == [(0, None, 10), (None, 0, 39), (2, None, 79), (1, 1, 64)]


def test_a_record_is_late_only_when_no_open_session_takes_it() -> None:
    #   b runs ahead; the join's watermark is a's: 29 once L@30 arrives
    d = driver(gap=10)
    d.send("b", {"k": "x", "t": 35, "m": 0})  # [35, 45) open
    d.send("a", {"k": "x", "t": 30, "n": 0})  # [30, 40) merges: [30, 45)
    d.send("b", {"k": "x", "t": 26, "m": 1})  # behind the watermark, but [26, 36) merges: kept
    d.send("b", {"k": "x", "t": 10, "m": 2})  # [10, 20): fired long ago, nothing takes it
    d.end_of_input()
    assert sorted(rows(d)) == [(0, 0, 44), (0, 1, 44)]
    assert [r.value["m"] for r in d.output("late")] == [2]


def test_a_fired_session_leaves_no_state_and_fires_once() -> None:
    d = driver(ooo=100)
    for t in (0, 5, 12, 3, 30, 21):  # one session [0, 40) after merging, timers moved each time
        d.send("a" if t % 2 else "b", {"k": "x", "t": t, "n": t, "m": t})
    d.end_of_input()
    assert {ts for *_, ts in rows(d)} == {39}
    assert len(rows(d)) == 3 * 3
    nodes = [n for task in d._all_tasks for n in task.executor.nodes.values()]
    join = next(n for n in nodes if isinstance(n, JoinNode))
    assert join.join.store.cache_only() == [] and len(join.timers) == 0


def brute_force(
    lefts: list[dict[str, Any]], rights: list[dict[str, Any]], gap: int, how: str
) -> Counter[tuple[Any, ...]]:
    """Sessions by key over both sides' times: a record within ``gap`` of the session's
    latest time (distance ``<= gap``: touching windows merge) extends it."""
    out: Counter[tuple[Any, ...]] = Counter()
    tagged = [("l", r) for r in lefts] + [("r", r) for r in rights]
    for key in {r["k"] for _, r in tagged}:
        records = sorted(((r["t"], side, r) for side, r in tagged if r["k"] == key), key=_time)
        sessions: list[list[tuple[str, dict[str, Any]]]] = []
        ends: list[int] = []
        for t, side, record in records:
            if sessions and t <= ends[-1]:
                sessions[-1].append((side, record))
                ends[-1] = max(ends[-1], t + gap)
            else:
                sessions.append([(side, record)])
                ends.append(t + gap)
        for members, end in zip(sessions, ends, strict=True):
            ls = [r for side, r in members if side == "l"]
            rs = [r for side, r in members if side == "r"]
            if ls and rs:
                out.update((lv["n"], rv["m"], end - 1) for lv in ls for rv in rs)
            elif ls and how in ("left", "full"):
                out.update((lv["n"], None, end - 1) for lv in ls)
            elif rs and how in ("right", "full"):
                out.update((None, rv["m"], end - 1) for rv in rs)
    return out


@pytest.mark.parametrize(
    ("gap", "how", "partitions"), [(30, "inner", 1), (50, "full", 3), (20, "left", 2)]
)
def test_random_streams_equal_a_brute_force_session_join(
    gap: int, how: str, partitions: int
) -> None:
    rng = random.Random(f"{gap}{how}")
    lefts = [{"k": rng.choice("abcde"), "t": rng.randrange(10_000), "n": n} for n in range(300)]
    rights = [{"k": rng.choice("bcdef"), "t": rng.randrange(10_000), "m": m} for m in range(300)]
    d = driver(gap=gap, how=how, ooo=100_000, partitions=partitions)
    sends = [("a", v) for v in lefts] + [("b", v) for v in rights]
    rng.shuffle(sends)
    for source, value in sends:
        d.send(source, value, key=value["k"], partition=rng.randrange(partitions))
    d.end_of_input()
    assert d.output("late") == []
    assert Counter(rows(d)) == brute_force(lefts, rights, gap, how)


def _time(record: tuple[int, str, dict[str, Any]]) -> int:
    return record[0]


FLINK = Path(__file__).resolve().parents[1] / "fixtures" / "flink" / "session_joins.json"


def flink_cases() -> list[tuple[str, dict[str, Any]]]:
    return sorted(orjson.loads(FLINK.read_bytes())["cases"].items())


@pytest.mark.parametrize(("name", "case"), flink_cases())
def test_sessions_are_the_ones_apache_flink_merges(name: str, case: dict[str, Any]) -> None:
    """tests/fixtures/flink/session_joins.json: which elements Flink's own
    ``EventTimeSessionWindows`` (Java, through PyFlink) put in one merged session of the union
    of both sides, per key; here every session's rows (a full join, so one-sided sessions show
    too) must be exactly those of Flink's sessions, at ``latest + gap - 1``."""
    gap, elements = case["gap"], case["elements"]
    d = driver(gap=gap, how="full", ooo=10**9)
    for n, (side, key, ts) in enumerate(elements):
        d.send("a" if side == "L" else "b", {"k": key, "t": ts, "n": n, "m": n}, key=key)
    d.end_of_input()
    expected: Counter[tuple[Any, ...]] = Counter()
    for _key, positions in case["sessions"]:
        at = max(elements[p][2] for p in positions) + gap - 1
        lefts = [p for p in positions if elements[p][0] == "L"]
        rights = [p for p in positions if elements[p][0] == "R"]
        if lefts and rights:
            expected.update((n, m, at) for n in lefts for m in rights)
        else:
            expected.update((n, None, at) for n in lefts)
            expected.update((None, m, at) for m in rights)
    assert d.output("late") == []
    assert Counter(rows(d)) == expected, name
