"""Flink SQL in memory: cascading window aggregations (a view that aggregates in a window,
read by a second window on its ``window_time``), UNION ALL of tables of different partition
counts, and DOUBLE columns holding integral JSON numbers (each expected value is Flink's)."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

EVENTS = """SET 'pipeline.name' = 'events';
CREATE TABLE events (
  k STRING, v BIGINT, x DOUBLE, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
"""
HOURLY = """CREATE TEMPORARY VIEW hourly AS
SELECT k, window_time AS hour_time, COUNT(*) AS n, SUM(v) AS total
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY k, window_start, window_end, window_time;
"""
DAILY = """CREATE TABLE out (
  k STRING, window_start TIMESTAMP(3), window_time TIMESTAMP_LTZ(3),
  hours BIGINT, busiest BIGINT, total BIGINT, last_hour TIMESTAMP_LTZ(3)
) WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
INSERT INTO out
SELECT k, window_start, window_time, COUNT(*), MAX(n), SUM(total), MAX(hour_time)
FROM TABLE(TUMBLE(TABLE hourly, DESCRIPTOR(hour_time), INTERVAL '1' DAY))
GROUP BY k, window_start, window_end, window_time;
"""
HOUR = 3_600_000
DAY0 = 1_356_998_400_000  # 2013-01-01 00:00:00 UTC


def rows(script: str, records: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    spec = load_sql_text(script, "q.sql")
    driver = PipelineDriver(spec)
    for table, record in records:
        driver.send(table, record, key=record.get("k"))
    driver.end_of_input()
    return [r.value for r in driver.output(spec.sinks[0].name)]


def test_a_window_over_an_aggregating_view_cascades_on_window_time() -> None:
    """Hourly counts, then a daily window over them on the hourly ``window_time`` (end - 1 ms):
    the hour 23:00-24:00 belongs to its day, the next hour to the next day."""
    at = [DAY0 + 10, DAY0 + 20, DAY0 + 5 * HOUR, DAY0 + 23 * HOUR + 1, DAY0 + 24 * HOUR]
    records = [("events", {"k": "a", "v": i + 1, "at_ms": t}) for i, t in enumerate(at)]
    got = rows(EVENTS + HOURLY + DAILY, records)
    day1 = {
        "k": "a",
        "window_start": "2013-01-01 00:00:00",
        "window_time": "2013-01-01 23:59:59.999Z",
        "hours": 3,
        "busiest": 2,
        "total": 1 + 2 + 3 + 4,
        "last_hour": "2013-01-01 23:59:59.999Z",
    }
    day2 = {
        "k": "a",
        "window_start": "2013-01-02 00:00:00",
        "window_time": "2013-01-02 23:59:59.999Z",
        "hours": 1,
        "busiest": 1,
        "total": 5,
        "last_hour": "2013-01-02 00:59:59.999Z",
    }
    assert got == [day1, day2]


def test_the_view_compiles_before_the_query_reading_it() -> None:
    spec = load_sql_text(EVENTS + HOURLY + DAILY, "q.sql")
    ids = [op.id for op in spec.operators]
    assert ids == [
        "out-hourly-keys", "out-hourly-window", "out-hourly-select",
        "out-keys", "out-window", "out-select",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("view", "message"),
    [
        ("SELECT k, COUNT(*) AS n FROM events GROUP BY k", "over a window TVF"),
        (
            "SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), "
            "INTERVAL '1' HOUR)) GROUP BY k, window_start, window_end",
            "name each column of an aggregating view once",
        ),
    ],
)
def test_aggregating_views_that_are_refused(view: str, message: str) -> None:
    script = EVENTS + f"CREATE TEMPORARY VIEW v AS {view};\n" + DAILY.replace("hourly", "v")
    with pytest.raises(ConfigError, match=message):
        load_sql_text(script, "q.sql")


def test_a_double_column_holding_an_integral_number_is_a_double() -> None:
    """Flink's json format reads 0 into a DOUBLE column as 0.0 (CAST to STRING: ``0.0``)."""
    script = (
        EVENTS
        + """CREATE TABLE out (k STRING, s STRING, half DOUBLE)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT k, CAST(x AS STRING), x / 2 FROM events;"""
    )
    got = rows(script, [("events", {"k": "a", "x": 3, "at_ms": 0})])
    assert got == [{"k": "a", "s": "3.0", "half": 1.5}]


def test_union_all_of_tables_of_different_partition_counts_gives_every_row() -> None:
    script = (
        EVENTS
        + """CREATE TABLE other (k STRING, v BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'other', 'format' = 'json');
    CREATE TABLE out (k STRING, v BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT k, v FROM events UNION ALL SELECT k, v * 10 FROM other;"""
    )
    spec = load_sql_text(script, "u.sql")
    assert "out-union.input1" in [op.id for op in spec.operators]
    driver = PipelineDriver(spec, {"events": 4, "other": 1})
    for i in range(12):
        driver.send("events", {"k": f"k{i}", "v": i, "at_ms": i}, key=f"k{i}", partition=i % 4)
        driver.send("other", {"k": f"k{i}", "v": i}, key=f"k{i}")
    driver.end_of_input()
    got = sorted(r.value["v"] for r in driver.output("out"))
    assert got == sorted([*range(12), *(10 * i for i in range(12))])
