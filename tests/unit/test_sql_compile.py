"""Flink SQL compiled to the pipeline spec, run in memory (the broker-free driver)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline
from kstream.pipeline.spec import WindowSpec
from kstream.sql import load_job, load_sql_text
from kstream.testing.driver import PipelineDriver
from kstream.tools.datasets import flights_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EVENTS = """
SET 'pipeline.name' = 'events';
CREATE TABLE events (
  k STRING, v BIGINT, x DOUBLE, s STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
"""


def sink(columns: str, name: str = "out") -> str:
    return (
        f"CREATE TABLE {name} ({columns}) "
        f"WITH ('connector' = 'kafka', 'topic' = '{name}', 'format' = 'json');\n"
    )


def rows(driver: PipelineDriver, name: str = "out") -> list[dict[str, Any]]:
    return [r.value for r in driver.take_output(name)]


def test_flights_hourly_sql_gives_the_windows_of_the_yaml() -> None:
    flights = list(itertools.islice(flights_records(), 5_000))

    def run(spec: Any, sink_name: str) -> list[dict[str, Any]]:
        driver = PipelineDriver(spec, partitions=2)
        for n, (key, value, ts) in enumerate(flights):
            driver.send("flights", value, key=key, timestamp_ms=ts, partition=n % 2)
        driver.end_of_input()
        return [r.value for r in driver.output(sink_name)]

    def text(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")

    yaml_rows = run(load_pipeline(EXAMPLES / "flights-hourly.yaml"), "flights-hourly")
    sql_rows = run(load_job(EXAMPLES / "flights-hourly.sql"), "flights_hourly")
    expected = sorted(
        (
            r["key"],
            text(r["window_start"]),
            text(r["window_end"]),
            r["flights"],
            r["avg_dep_delay"],
            r["max_dep_delay"],
        )
        for r in yaml_rows
    )
    got = sorted(tuple(r.values()) for r in sql_rows)
    assert len(got) == 309
    assert got == expected
    assert list(sql_rows[0]) == [
        "origin",
        "window_start",
        "window_end",
        "flights",
        "avg_dep_delay",
        "max_dep_delay",
    ]
    assert all(isinstance(r["max_dep_delay"], float) for r in sql_rows)  # DOUBLE as Flink writes


def test_sql_watermark_has_no_minus_one() -> None:
    """WATERMARK FOR ts AS ts - INTERVAL '5' SECOND is max - 5 s (Flink SQL), not max - 5 s - 1.

    event time  0        10 000         14 999
                [ window  )               ^ watermark 14 999 - 5 000 = 9 999 = end - 1
                  1 000                     the window fires here (DataStream: at 15 000)
    """
    spec = load_sql_text(
        EVENTS
        + sink("k STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT")
        + "INSERT INTO out SELECT k, window_start, window_end, COUNT(*) FROM "
        "TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) "
        "GROUP BY window_start, window_end, k;",
        "wm.sql",
    )
    driver = PipelineDriver(spec)
    driver.send("events", {"k": "a", "at_ms": 1_000}, key="a")
    driver.send("events", {"k": "a", "at_ms": 14_998}, key="a")
    assert rows(driver) == []
    driver.send("events", {"k": "a", "at_ms": 14_999}, key="a")
    assert rows(driver) == [
        {
            "k": "a",
            "window_start": "1970-01-01 00:00:00",
            "window_end": "1970-01-01 00:00:10",
            "n": 1,
        }
    ]


def test_projection_and_filter_follow_sql_semantics() -> None:
    spec = load_sql_text(
        EVENTS
        + sink("k STRING, half BIGINT, ratio DOUBLE, size STRING, tag STRING, big BOOLEAN")
        + """INSERT INTO out
        SELECT UPPER(k) || '!', v / 2, x / 2, CASE WHEN v > 10 THEN 'big' ELSE 'small' END,
               IF(s IN ('a', 'b'), 'ab', COALESCE(s, 'none')), v BETWEEN 5 AND 10
        FROM events WHERE v > 1 OR s IS NULL;""",
        "select.sql",
    )
    driver = PipelineDriver(spec)
    driver.send("events", {"k": "p", "v": 7, "x": 7, "s": "a", "at_ms": 1})
    driver.send("events", {"k": "q", "v": None, "x": 1.5, "s": "c", "at_ms": 2})  # v > 1: null
    driver.send("events", {"k": "r", "v": -7, "x": -7, "s": None, "at_ms": 3})
    driver.send("events", {"k": "s", "v": 20, "x": 1, "s": "c", "at_ms": 4})
    assert rows(driver) == [
        {"k": "P!", "half": 3, "ratio": 3.5, "size": "small", "tag": "ab", "big": True},
        {"k": "R!", "half": -3, "ratio": -3.5, "size": "small", "tag": "none", "big": False},
        {"k": "S!", "half": 10, "ratio": 0.5, "size": "big", "tag": "c", "big": False},
    ]


@pytest.mark.parametrize(
    ("tvf", "expected"),
    [
        (
            "HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)",
            {"type": "sliding", "slide_ms": 5_000, "size_ms": 10_000},
        ),
        (
            "SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' MINUTE)",
            {"type": "session", "gap_ms": 60_000},
        ),
    ],
)
def test_hop_and_session_windows(tvf: str, expected: dict[str, Any]) -> None:
    spec = load_sql_text(
        EVENTS
        + sink("k STRING, n BIGINT, d BIGINT")
        + f"INSERT INTO out SELECT k, COUNT(*), COUNT(DISTINCT s) FROM TABLE({tvf}) "
        "GROUP BY window_start, window_end, k;",
        "w.sql",
    )
    window = next(op for op in spec.operators if isinstance(op, WindowSpec))
    assert {k: getattr(window, k) for k in expected} == expected
    assert [(a.kind, a.expr) for a in window.aggregations] == [
        ("count", None),
        ("count_distinct", "s"),
    ]


def test_set_options_reach_the_spec() -> None:
    spec = load_sql_text(
        "SET 'execution.checkpointing.interval' = '2 s';\n"
        + EVENTS
        + sink("k STRING")
        + "INSERT INTO out SELECT k FROM events;",
        "set.sql",
    )
    assert spec.name == "events"
    assert spec.checkpoint.interval_ms == 2_000
    assert spec.sources[0].watermark.strategy == "sql"
    assert spec.sources[0].watermark.max_out_of_orderness_ms == 5_000


@pytest.mark.parametrize(
    ("query", "where", "message"),
    [
        (
            "INSERT INTO out SELECT e.k FROM events e LEFT JOIN events o ON e.k = o.k;",
            "9:52",
            "a LEFT join without time bounds (Flink retracts its padded rows) is not supported",
        ),
        ("INSERT INTO out SELECT k FROM nowhere;", "9:31", "table nowhere is not defined"),
        ("INSERT INTO out SELECT kk FROM events;", "9:24", "column kk is not in table events"),
        ("INSERT INTO out SELECT k, v FROM events;", "9:24", "the query has 2 columns"),
        (
            "INSERT INTO out SELECT LPAD(k, 2, 'x') FROM events;",
            "9:24",
            "LPAD is not supported yet",
        ),
        (
            "INSERT INTO out SELECT k FROM events GROUP BY k;",
            "9:13",
            "table out ('kafka') cannot take a dynamic table's updates",
        ),
        ("SELECT k FROM events;", "9:8", "a SELECT without INSERT INTO has nowhere to go"),
    ],
)
def test_unsupported_constructs_are_named_at_their_position(
    query: str, where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sql_text(EVENTS + sink("k STRING") + query, "job.sql")
    text = str(caught.value)
    assert text.startswith(f"job.sql:{where}"), text
    assert message in text


def test_table_errors() -> None:
    text = (
        "CREATE TABLE t (a BIGINT, ts AS TO_TIMESTAMP_LTZ(a, 3), WATERMARK FOR ts AS ts + 1) "
        "WITH ('connector' = 'filesystem', 'format' = 'csv');\n"
        + sink("a BIGINT")
        + "INSERT INTO out SELECT a FROM t;"
    )
    with pytest.raises(ConfigError) as caught:
        load_sql_text(text, "t.sql")
    messages = [i.message for i in caught.value.issues]
    assert any("bounded watermarks" in m for m in messages)
    assert any("connector 'filesystem' is not supported" in m for m in messages)
    assert any("no 'topic' option" in m for m in messages)
    assert any("format 'csv'" in m for m in messages)


def test_settings_that_change_results_are_refused_others_noted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    query = sink("k STRING") + "INSERT INTO out SELECT k FROM events;"
    with pytest.raises(
        ConfigError, match=r"SET 'table\.local-time-zone' = 'Europe/Paris' is not supported"
    ):
        load_sql_text("SET 'table.local-time-zone' = 'Europe/Paris';\n" + EVENTS + query, "s.sql")
    with caplog.at_level("WARNING", logger="kstream.sql.compile"):
        load_sql_text("SET 'parallelism.default' = '4';\n" + EVENTS + query, "s.sql")
    assert "SET 'parallelism.default' is ignored (parallelism comes from the partitions)" in (
        caplog.text
    )


def test_rowtime_from_the_kafka_timestamp() -> None:
    ddl = """CREATE TABLE t (k STRING, ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
      WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
    WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json');
    """
    query = sink("k STRING, n BIGINT") + (
        "INSERT INTO out SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), "
        "INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k;"
    )
    spec = load_sql_text(ddl + query, "m.sql")
    source = spec.sources[0]
    assert (source.time.kind, source.time.field) == ("event", None)  # the Kafka timestamp
    driver = PipelineDriver(spec)
    for at in (1_000, 2_000, 11_001):
        driver.send("t", {"k": "a"}, key="a", timestamp_ms=at)
    assert [r.value for r in driver.take_output("out")] == [{"k": "a", "n": 2}]
