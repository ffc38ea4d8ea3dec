"""``SET 'table.exec.state.ttl'``: Flink SQL's idle state retention compiled to ``state_ttl``
on the nodes Flink applies it to (GROUP BY, deduplication, Top-N, regular joins), none on
window aggregations and time-bounded joins; driven in processing time by the test driver."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.spec import JoinSpec, PipelineSpec, ProcessSpec, WindowSpec
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

EVENTS = """CREATE TABLE events (
  k STRING, v BIGINT, s STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
"""
COUNTS = """CREATE TABLE out (k STRING, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
      'value.format' = 'json');
INSERT INTO out SELECT k, COUNT(*) FROM events GROUP BY k;
"""
FIRST = """CREATE TABLE out (k STRING, s STRING, PRIMARY KEY (k) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
      'value.format' = 'json');
INSERT INTO out SELECT k, s FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM events
) WHERE rn = 1;
"""
TTL = "SET 'table.exec.state.ttl' = '10 s';\n"


def send(d: PipelineDriver, k: str, at: int = 1_000, s: str = "") -> None:
    d.send("events", {"k": k, "v": 1, "s": s, "at_ms": at}, key=k)


def table(d: PipelineDriver) -> list[tuple[Any, Any]]:
    return [(r.key, r.value) for r in d.take_output("out")]


def ttls(spec: PipelineSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in spec.operators:
        if isinstance(op, WindowSpec | JoinSpec):
            out[op.id] = op.state_ttl_ms
        elif isinstance(op, ProcessSpec):
            out[op.id] = op.ttl
    return out


def test_a_group_by_key_idle_for_the_ttl_restarts_its_count() -> None:
    d = PipelineDriver(load_sql_text(TTL + EVENTS + COUNTS, "c.sql"), start_time_ms=0)
    send(d, "a")
    send(d, "b")
    d.advance_processing_time(6_000)
    send(d, "a")  # a written at 6 s: kept until 16 s; b expires at 10 s
    d.advance_processing_time(6_000)
    send(d, "a")
    send(d, "b")
    assert table(d) == [
        ({"k": "a"}, {"k": "a", "n": 1}),
        ({"k": "b"}, {"k": "b", "n": 1}),
        ({"k": "a"}, {"k": "a", "n": 2}),
        ({"k": "a"}, {"k": "a", "n": 3}),
        ({"k": "b"}, {"k": "b", "n": 1}),  # restarted
    ]


def test_without_a_ttl_or_with_zero_the_count_goes_on() -> None:
    for setting in ("", "SET 'table.exec.state.ttl' = '0';\n"):
        spec = load_sql_text(setting + EVENTS + COUNTS, "c.sql")
        assert set(ttls(spec).values()) == {None}
        d = PipelineDriver(spec, start_time_ms=0)
        send(d, "a")
        d.advance_processing_time(3_600_000)
        send(d, "a")
        assert table(d)[-1] == ({"k": "a"}, {"k": "a", "n": 2})


def test_deduplication_forgets_the_first_row_after_the_ttl() -> None:
    d = PipelineDriver(load_sql_text(TTL + EVENTS + FIRST, "f.sql"), start_time_ms=0)
    send(d, "a", 1_000, "first")
    send(d, "a", 2_000, "dup")
    d.advance_processing_time(10_000)
    send(d, "a", 3_000, "again")  # the first row is forgotten: this one is first now
    assert [v["s"] for _, v in table(d)] == ["first", "first", "again"]


def test_a_regular_join_no_longer_matches_expired_rows() -> None:
    two = """CREATE TABLE a (k STRING, v BIGINT, at_ms BIGINT,
      ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
    ) WITH ('connector' = 'kafka', 'topic' = 'a', 'format' = 'json');
    CREATE TABLE b (k STRING, w BIGINT, at_ms BIGINT,
      ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
    ) WITH ('connector' = 'kafka', 'topic' = 'b', 'format' = 'json');
    CREATE TABLE out (k STRING, v BIGINT, w BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT a.k, a.v, b.w FROM a JOIN b ON a.k = b.k;
    """
    spec = load_sql_text(TTL + two, "j.sql")
    assert [op.state_ttl_ms for op in spec.operators if isinstance(op, JoinSpec)] == [10_000]
    d = PipelineDriver(spec, start_time_ms=0)
    d.send("a", {"k": "x", "v": 1, "at_ms": 1_000})
    d.send("a", {"k": "y", "v": 2, "at_ms": 1_000})
    d.advance_processing_time(5_000)
    d.send("b", {"k": "x", "w": 10, "at_ms": 1_000})  # a.x is 5 s old: matches
    d.advance_processing_time(5_000)
    d.send("b", {"k": "y", "w": 20, "at_ms": 1_000})  # a.y is 10 s old: expired
    d.send("a", {"k": "x", "v": 3, "at_ms": 1_000})  # b.x is 5 s old: matches
    assert [(v["k"], v["v"], v["w"]) for _, v in table(d)] == [("x", 1, 10), ("x", 3, 10)]


def test_windowed_aggregations_and_interval_joins_are_not_affected() -> None:
    tumble = """CREATE TABLE out (k STRING, n BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT k, COUNT(*)
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR))
    GROUP BY k, window_start, window_end;
    """
    assert set(ttls(load_sql_text(TTL + EVENTS + tumble, "t.sql")).values()) == {None}
    top = """CREATE TABLE out (k STRING, v BIGINT, rn BIGINT, PRIMARY KEY (k, rn) NOT ENFORCED)
    WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
          'value.format' = 'json');
    INSERT INTO out SELECT k, v, rn FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM events
    ) WHERE rn <= 2;
    """
    ranked = ttls(load_sql_text("SET 'table.exec.state.ttl' = '1 h';\n" + EVENTS + top, "r.sql"))
    hour = 3_600_000
    assert (("rows", hour, "processing"), ("emitted", hour, "processing")) in ranked.values()


def test_a_ttl_that_is_not_a_duration_names_the_statement() -> None:
    with pytest.raises(ConfigError, match=r"SET 'table\.exec\.state\.ttl' = 'soon' is not a"):
        load_sql_text("SET 'table.exec.state.ttl' = 'soon';\n" + EVENTS + COUNTS, "c.sql")
