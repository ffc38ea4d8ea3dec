"""Flink SQL queries run in memory: functions, time arithmetic, window columns, and the
updating table of a non-windowed GROUP BY (each expected value is what Flink gives)."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.expr.sql_functions import date_format, json_value, sql_timestamp
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

EVENTS = """SET 'pipeline.name' = 'events';
CREATE TABLE events (
  k STRING, v BIGINT, x DOUBLE, s STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
"""
T0 = 1_357_035_300_123  # 2013-01-01 10:15:00.123 UTC


def run(sink: str, query: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    spec = load_sql_text(EVENTS + sink + query, "q.sql")
    driver = PipelineDriver(spec)
    for record in records:
        driver.send("events", record, key=record.get("k"))
    driver.end_of_input()
    return [r.value for r in driver.output(spec.sinks[0].name)]


def test_time_and_string_functions() -> None:
    sink = """CREATE TABLE out (
      day STRING, hour_start TIMESTAMP(3), later TIMESTAMP_LTZ(3), mins BIGINT, m BIGINT,
      part STRING, t STRING, j STRING, ts TIMESTAMP_LTZ(3)
    ) WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT
      DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm'), FLOOR(ts TO HOUR),
      TIMESTAMPADD(HOUR, 2, ts), TIMESTAMPDIFF(MINUTE, ts, ts + INTERVAL '90' MINUTE),
      MOD(v, 3), SUBSTRING(s, 2, 3), TRIM(k), JSON_VALUE(s, '$.a'), ts
    FROM events;"""
    got = run(sink, query, [{"k": " a ", "v": -7, "s": '{"a": 1.5}', "at_ms": T0}])
    assert got == [
        {
            "day": "2013-01-01 10:15",
            "hour_start": "2013-01-01 10:00:00",
            "later": "2013-01-01 12:15:00.123Z",
            "mins": 90,
            "m": -1,  # Java's %: the sign of the dividend
            "part": '"a"',
            "t": "a",
            "j": "1.5",
            "ts": "2013-01-01 10:15:00.123Z",
        }
    ]


def test_window_columns_and_named_arguments() -> None:
    sink = """CREATE TABLE out (
      k STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
      window_time TIMESTAMP_LTZ(3), n BIGINT, total BIGINT, mean BIGINT, hi DOUBLE
    ) WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out
    SELECT k, window_start, window_end, window_time, COUNT(*), SUM(v), AVG(v), MAX(x)
    FROM TABLE(HOP(DATA => TABLE events, TIMECOL => DESCRIPTOR(ts),
                   SLIDE => INTERVAL '10' SECOND, SIZE => INTERVAL '20' SECOND))
    GROUP BY window_start, window_end, k;"""
    got = run(sink, query, [
        {"k": "a", "v": 1, "x": 1, "at_ms": 12_000},
        {"k": "a", "v": 2, "x": 2.5, "at_ms": 15_000},
    ])  # fmt: skip
    assert got == [
        {"k": "a", "window_start": "1970-01-01 00:00:00", "window_end": "1970-01-01 00:00:20",
         "window_time": "1970-01-01 00:00:19.999Z", "n": 2, "total": 3, "mean": 1, "hi": 2.5},
        {"k": "a", "window_start": "1970-01-01 00:00:10", "window_end": "1970-01-01 00:00:30",
         "window_time": "1970-01-01 00:00:29.999Z", "n": 2, "total": 3, "mean": 1, "hi": 2.5},
    ]  # fmt: skip


def test_group_by_without_window_is_an_updating_table() -> None:
    """Flink: a non-windowed GROUP BY is a dynamic table; its upsert-kafka sink holds the last
    row per key."""
    sink = """CREATE TABLE out (k STRING, n BIGINT, total BIGINT, kinds BIGINT,
      PRIMARY KEY (k) NOT ENFORCED
    ) WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
            'value.format' = 'json');
    """
    query = "INSERT INTO out SELECT k, COUNT(*), SUM(v), COUNT(DISTINCT s) FROM events GROUP BY k;"
    records = [
        {"k": "a", "v": 1, "s": "p", "at_ms": 1},
        {"k": "b", "v": 5, "s": "p", "at_ms": 2},
        {"k": "a", "v": 2, "s": "q", "at_ms": 3},
        {"k": "a", "v": None, "s": "q", "at_ms": 4},
    ]
    spec = load_sql_text(EVENTS + sink + query, "g.sql")
    driver = PipelineDriver(spec)
    for record in records:
        driver.send("events", record, key=record["k"])
    out = driver.output("out")
    assert [r.value for r in out] == [
        {"k": "a", "n": 1, "total": 1, "kinds": 1},
        {"k": "b", "n": 1, "total": 5, "kinds": 1},
        {"k": "a", "n": 2, "total": 3, "kinds": 2},
        {"k": "a", "n": 3, "total": 3, "kinds": 2},
    ]  # one update per record, keyed by the GROUP BY key
    assert [r.key for r in out] == [{"k": "a"}, {"k": "b"}, {"k": "a"}, {"k": "a"}]  # Flink's
    table = {r.key["k"]: r.value for r in out}
    assert table == {"a": {"k": "a", "n": 3, "total": 3, "kinds": 2},
                     "b": {"k": "b", "n": 1, "total": 5, "kinds": 1}}  # fmt: skip


def test_having_on_a_group_by_deletes_a_row_that_stops_qualifying() -> None:
    """Flink retracts the row of a key whose update fails HAVING; in the upsert topic that is a
    tombstone (None), so the table holds the qualifying rows only::

        a: v 4 (sum 4, kept)   v 3 (sum 7: deleted)   b: v 1 (sum 1, kept)
    """
    sink = """CREATE TABLE out (k STRING, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
    WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
          'value.format' = 'json');
    """
    query = "INSERT INTO out SELECT k, SUM(v) FROM events GROUP BY k HAVING SUM(v) < 5;"
    driver = PipelineDriver(load_sql_text(EVENTS + sink + query, "h.sql"))
    for k, v in (("a", 4), ("a", 3), ("b", 1)):
        driver.send("events", {"k": k, "v": v, "at_ms": 1}, key=k)
    out = [(r.key, r.value) for r in driver.output("out")]
    a, b = {"k": "a"}, {"k": "b"}  # the key: a JSON object of the PRIMARY KEY, as Flink's
    assert out == [(a, {"k": "a", "total": 4}), (a, None), (b, {"k": "b", "total": 1})]


@pytest.mark.parametrize(
    ("ms", "text"),
    [(T0, "2013-01-01 10:15:00.123"), (T0 - 123, "2013-01-01 10:15:00"),
     (T0 - 3, "2013-01-01 10:15:00.12"), (-1, "1969-12-31 23:59:59.999")],
)  # fmt: skip
def test_sql_timestamp_writes_a_fraction_only_when_needed(ms: int, text: str) -> None:
    assert sql_timestamp(ms) == text


def test_date_format_and_json_value() -> None:
    assert date_format(T0, "yy/M/d 'at' HH:mm:ss.SSS") == "13/1/1 at 10:15:00.123"
    with pytest.raises(ValueError, match="pattern letter 'E'"):
        date_format(T0, "EEE")
    doc = '{"a": {"b": [1, true, null, {"c": 2}]}, "s": "x"}'
    assert [json_value(doc, p) for p in ("$.a.b[0]", "$.a.b[1]", "$.s")] == ["1", "true", "x"]
    assert [json_value(doc, p) for p in ("$.a", "$.a.b[2]", "$.a.b[9]", "$.zz")] == [None] * 4
    assert json_value("not json", "$.a") is None


UPSERT = """CREATE TABLE out (k STRING, v BIGINT, s STRING, PRIMARY KEY (k) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
      'value.format' = 'json');
"""


@pytest.mark.parametrize(("order", "kept"), [("ASC", "early"), ("DESC", "late")])
def test_deduplication_keeps_the_first_or_last_row_by_rowtime(order: str, kept: str) -> None:
    """Keep first: the smallest rowtime per key, even when it arrives after a larger one (the
    row is then replaced, an update); keep last: the largest. Equal rowtimes: keep first keeps
    the earlier arrival, keep last the later one.

        arrival   1: a@20 'mid'   2: a@10 'early'   3: a@30 'late'   4: a@10 'tie'
    """
    query = f"""INSERT INTO out SELECT k, v, s FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts {order}) AS rn FROM events
      WHERE v IS NOT NULL
    ) WHERE rn = 1;"""
    spec = load_sql_text(EVENTS + UPSERT + query, "d.sql")
    driver = PipelineDriver(spec)
    for at, s in ((20_000, "mid"), (10_000, "early"), (30_000, "late"), (10_000, "tie")):
        driver.send("events", {"k": "a", "v": at, "s": s, "at_ms": at}, key="a")
    driver.send("events", {"k": "b", "v": None, "s": "dropped", "at_ms": 1}, key="b")
    table = {r.key["k"]: r.value for r in driver.output("out")}
    assert table == {"a": {"k": "a", "v": 10_000 if kept == "early" else 30_000, "s": kept}}


def test_top_n_without_its_rank_and_union_distinct_are_refused() -> None:
    top = """INSERT INTO out SELECT k, v, s FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM events
    ) WHERE rn <= 3;"""
    with pytest.raises(ConfigError, match=r"must select its rank rn \(its upsert key\)"):
        load_sql_text(EVENTS + UPSERT + top, "top.sql")
    union = "INSERT INTO o2 SELECT k FROM events UNION SELECT s FROM events;"
    sink = "CREATE TABLE o2 (k STRING) WITH ('connector' = 'kafka', 'topic' = 'o2');\n"
    with pytest.raises(ConfigError, match=r"UNION \(without ALL\) is not supported yet"):
        load_sql_text(EVENTS + sink + union, "u.sql")


def test_union_all_of_two_tables() -> None:
    other = """CREATE TABLE other (name STRING, n BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'other', 'format' = 'json');
    CREATE TABLE out (who STRING, n BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out
    SELECT UPPER(k), v FROM events WHERE v > 1
    UNION ALL SELECT name, n * 10 FROM other
    UNION ALL SELECT k, 0 FROM events;"""
    spec = load_sql_text(EVENTS + other + query, "u.sql")
    assert [s.topic for s in spec.sources] == ["events", "other"]
    driver = PipelineDriver(spec)
    driver.send("events", {"k": "a", "v": 2, "at_ms": 1})
    driver.send("other", {"name": "z", "n": 4})
    assert sorted((r["who"], r["n"]) for r in rows_of(driver)) == [
        ("A", 2), ("a", 0), ("z", 40)
    ]  # fmt: skip


def rows_of(driver: PipelineDriver) -> list[dict[str, Any]]:
    return [r.value for r in driver.output("out")]


TWO = """CREATE TABLE a (k STRING, v BIGINT, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'a', 'format' = 'json');
CREATE TABLE b (k STRING, w BIGINT, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'b', 'format' = 'json');
CREATE TABLE out (k STRING, v BIGINT, w BIGINT, bt TIMESTAMP_LTZ(3))
WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
"""


def joined(query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` over a@10 000 ms (key x and y) and b records of key x at 8 999, 9 000,
    9 500, 12 000 and 12 001 ms (w = 1..5)::

        b (x)   8 999   9 000  9 500        12 000  12 001
        a (x)                        10 000
    """
    driver = PipelineDriver(load_sql_text(TWO + query, "j.sql"))
    driver.send("a", {"k": "x", "v": 1, "at_ms": 10_000})
    driver.send("a", {"k": "y", "v": 2, "at_ms": 10_000})
    for w, at in enumerate((8_999, 9_000, 9_500, 12_000, 12_001), start=1):
        driver.send("b", {"k": "x", "w": w, "at_ms": at})
    driver.end_of_input()
    return sorted(
        (r.value["k"], r.value["v"], r.value["w"], r.value["bt"]) for r in driver.output("out")
    )


def test_interval_join_bounds_are_inclusive_and_left_rows_are_padded() -> None:
    rows = joined(
        "INSERT INTO out SELECT a.k, a.v, b.w, b.ts FROM a LEFT JOIN b ON a.k = b.k "
        "AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '2' SECOND;"
    )
    assert rows == [
        ("x", 1, 2, "1970-01-01 00:00:09Z"),
        ("x", 1, 3, "1970-01-01 00:00:09.5Z"),
        ("x", 1, 4, "1970-01-01 00:00:12Z"),
        ("y", 2, None, None),
    ]


def test_a_join_without_time_bounds_is_a_regular_join_of_every_pair() -> None:
    rows = joined("INSERT INTO out SELECT a.k, a.v, b.w, b.ts FROM a JOIN b ON a.k = b.k;")
    assert [w for _, _, w, _ in rows] == [1, 2, 3, 4, 5]  # any distance in time, y unmatched


def test_interval_join_in_where_with_strict_bounds() -> None:
    rows = joined(
        "INSERT INTO out SELECT a.k, v, w, b.ts FROM a, b WHERE a.k = b.k AND w > 1 "
        "AND b.ts > a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '2' SECOND > b.ts;"
    )
    assert rows == [("x", 1, 3, "1970-01-01 00:00:09.5Z")]


def test_expressions_over_aggregates_and_having() -> None:
    sink = """CREATE TABLE out (k STRING, n2 BIGINT, mean DOUBLE, tag STRING)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out
    SELECT UPPER(k), COUNT(*) * 2, SUM(x) / COUNT(x), CONCAT(k, '-', CAST(MAX(v) AS STRING))
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, k HAVING COUNT(*) > 1;"""
    got = run(sink, query, [
        {"k": "a", "v": 1, "x": 1.0, "at_ms": 1_000},
        {"k": "a", "v": 7, "x": None, "at_ms": 2_000},
        {"k": "b", "v": 1, "x": 1.0, "at_ms": 3_000},
    ])  # fmt: skip
    assert got == [{"k": "A", "n2": 4, "mean": 1.0, "tag": "a-7"}]


def test_grouped_select_of_a_plain_column_is_an_error() -> None:
    sink = "CREATE TABLE out (k STRING, s STRING) WITH ('connector' = 'kafka', 'topic' = 'out');\n"
    query = """INSERT INTO out SELECT k, s
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, k;"""
    with pytest.raises(ConfigError, match="column s is neither a GROUP BY key nor aggregated"):
        load_sql_text(EVENTS + sink + query, "q.sql")


def test_temporal_join_finds_the_version_valid_at_the_left_rowtime() -> None:
    """``FOR SYSTEM_TIME AS OF f.ts``: the version with the largest time <= the left row's.

    rates (k = x)  --V1 08:00 (r=1)-------V2 10:00 (r=2)-----------
    orders         ------------o 09:30--------------o 10:00---o 12:00 (k = y: no rate)
    """
    ddl = """CREATE TABLE orders (k STRING, n BIGINT, at_ms BIGINT,
      ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE
    ) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json');
    CREATE TABLE rates (k STRING, r BIGINT, at_ms BIGINT,
      ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts,
      PRIMARY KEY (k) NOT ENFORCED
    ) WITH ('connector' = 'upsert-kafka', 'topic' = 'rates', 'key.format' = 'json',
            'value.format' = 'json');
    CREATE TABLE out (k STRING, n BIGINT, r BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT o.k, o.n, rt.r
    FROM orders AS o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS rt ON o.k = rt.k;"""
    spec = load_sql_text(ddl + query, "t.sql")
    assert spec.sources[1].table is not None and spec.sources[1].table.key == "k"
    driver = PipelineDriver(spec)
    hour = 3_600_000
    key = '{"k":"x"}'  # the table's key.format: a JSON object of its PRIMARY KEY, as Flink's
    driver.send("rates", {"k": "x", "r": 1, "at_ms": 8 * hour}, key=key)
    driver.send("rates", {"k": "x", "r": 2, "at_ms": 10 * hour}, key=key)
    for n, at in enumerate((9.5 * hour, 10 * hour, 12 * hour), start=1):
        driver.send("orders", {"k": "x" if n < 3 else "y", "n": n, "at_ms": int(at)})
    driver.end_of_input()
    assert sorted((r.value["n"], r.value["r"]) for r in driver.output("out")) == [
        (1, 1), (2, 2), (3, None)
    ]  # fmt: skip


def test_temporal_join_needs_a_versioned_table_joined_on_its_key() -> None:
    ddl = """CREATE TABLE orders (k STRING, at_ms BIGINT, ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
      WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'orders');
    CREATE TABLE rates (k STRING, r BIGINT) WITH ('connector' = 'kafka', 'topic' = 'rates');
    CREATE TABLE out (k STRING) WITH ('connector' = 'kafka', 'topic' = 'out');
    """
    query = """INSERT INTO out SELECT o.k
    FROM orders o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS rt ON o.k = rt.k;"""
    with pytest.raises(ConfigError, match="needs a PRIMARY KEY and a WATERMARK"):
        load_sql_text(ddl + query, "t.sql")


def test_cumulate_window_and_hop_late_rule() -> None:
    sink = """CREATE TABLE out (k STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
      n BIGINT) WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT k, window_start, window_end, COUNT(*)
    FROM TABLE(CUMULATE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '30' SECOND))
    GROUP BY window_start, window_end, k;"""
    spec = load_sql_text(EVENTS + sink + query, "c.sql")
    window = spec.operators[1]
    assert (window.type, window.step_ms, window.size_ms, window.late_rule) == (
        "cumulate", 10_000, 30_000, "sql"
    )  # fmt: skip
    got = run(sink, query, [{"k": "a", "at_ms": 5_000}, {"k": "a", "at_ms": 25_000}])
    assert [(r["window_end"][-8:], r["n"]) for r in got] == [
        ("00:00:10", 1), ("00:00:20", 1), ("00:00:30", 2)
    ]  # fmt: skip
    hop = query.replace("CUMULATE", "HOP").replace("'30' SECOND", "'25' SECOND")
    with pytest.raises(ConfigError, match="HOP needs a size that is a multiple of its slide"):
        load_sql_text(EVENTS + sink + hop, "h.sql")


def test_window_join_joins_rows_of_the_same_window_and_key() -> None:
    """TUMBLE 10 s on both sides, FULL JOIN on k: rows of one window and key join (each pair
    once); a window with rows on one side only gives them with the other side null.

        a (x)   1 000          12 000
        b (x)   3 000 5 000                25 000
    """
    sink = """CREATE TABLE out (v BIGINT, w BIGINT, window_start TIMESTAMP(3))
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out
    SELECT L.v, R.w, COALESCE(L.window_start, R.window_start)
    FROM (SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND))) L
    FULL JOIN (SELECT * FROM TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '10' SECOND))) R
    ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.k = R.k;"""
    two = TWO.split("CREATE TABLE out")[0]
    driver = PipelineDriver(load_sql_text(two + sink + query, "wj.sql"))
    for v, at in ((1, 1_000), (2, 12_000)):
        driver.send("a", {"k": "x", "v": v, "at_ms": at})
    for w, at in ((3, 3_000), (5, 5_000), (25, 25_000)):
        driver.send("b", {"k": "x", "w": w, "at_ms": at})
    driver.end_of_input()
    got = sorted(
        (r.value["v"] or 0, r.value["w"] or 0, r.value["window_start"][-8:])
        for r in driver.output("out")
    )
    assert got == [(0, 25, "00:00:20"), (1, 3, "00:00:00"), (1, 5, "00:00:00"), (2, 0, "00:00:10")]


def test_like_trim_casts_and_json_value_returning() -> None:
    sink = """CREATE TABLE out (a BOOLEAN, b BOOLEAN, c STRING, d STRING, hour_start TIMESTAMP(3),
      doy STRING, n INT, x DOUBLE, bad INT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT
      k LIKE 'N9%', k NOT LIKE '_9__', TRIM(LEADING 'N' FROM k), TRIM(TRAILING '2' FROM k),
      CAST(FLOOR(ts TO HOUR) AS TIMESTAMP(3)), DATE_FORMAT(ts, 'D'),
      JSON_VALUE(s, '$.n' RETURNING INT), JSON_VALUE(s, '$.x' RETURNING DOUBLE),
      JSON_VALUE(s, '$.x' RETURNING INT)
    FROM events;"""
    got = run(sink, query, [{"k": "NN912", "s": '{"n": 7, "x": 2.5}', "at_ms": T0}])
    assert got == [{
        "a": False, "b": True, "c": "912", "d": "NN91", "hour_start": "2013-01-01 10:00:00",
        "doy": "1", "n": 7, "x": 2.5, "bad": None,
    }]  # fmt: skip


def test_views_and_subqueries_are_derived_tables() -> None:
    """A view's columns read as their expressions over its table; its WHERE runs first."""
    view = """CREATE TEMPORARY VIEW big AS
      SELECT k, v * 10 AS v10, ts FROM events WHERE v > 1;
    """
    sink = """CREATE TABLE out (k STRING, n BIGINT, total BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT k, COUNT(*), SUM(v10)
    FROM TABLE(TUMBLE(TABLE big, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, k;"""
    records = [{"k": "a", "v": v, "at_ms": 1_000 * v} for v in (1, 2, 3)]
    assert run(view + sink, query, records) == [{"k": "a", "n": 2, "total": 50}]
    sub = """INSERT INTO out SELECT k, v10, v10 + 1 FROM (
      SELECT UPPER(k) AS k, v * 10 AS v10 FROM events WHERE v <> 2) WHERE v10 > 5;"""
    assert run(sink, sub, records) == [
        {"k": "A", "n": 10, "total": 11}, {"k": "A", "n": 30, "total": 31}
    ]  # fmt: skip


def test_window_join_sides_filter_before_joining() -> None:
    sink = """CREATE TABLE out (v BIGINT, w BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT L.v, R.w
    FROM (SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND))
          WHERE v > 1) L
    JOIN (SELECT * FROM TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '10' SECOND))
          WHERE w < 5) R
    ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.k = R.k;"""
    two = TWO.split("CREATE TABLE out")[0]
    driver = PipelineDriver(load_sql_text(two + sink + query, "wj.sql"))
    for v in (1, 2):
        driver.send("a", {"k": "x", "v": v, "at_ms": 1_000})
    for w in (3, 5):
        driver.send("b", {"k": "x", "w": w, "at_ms": 2_000})
    driver.end_of_input()
    assert [r.value for r in driver.output("out")] == [{"v": 2, "w": 3}]


def test_first_and_last_value_take_the_arrival_order() -> None:
    sink = """CREATE TABLE out (k STRING, f STRING, l STRING)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    """
    query = """INSERT INTO out SELECT k, FIRST_VALUE(s), LAST_VALUE(s)
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, k;"""
    records = [
        {"k": "a", "s": s, "at_ms": at} for s, at in (("x", 5_000), ("y", 1_000), ("z", 3_000))
    ]
    assert run(sink, query, records) == [{"k": "a", "f": "x", "l": "z"}]
    hop = query.replace(
        "TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        "HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)",
    )
    with pytest.raises(ConfigError, match="FIRST_VALUE and LAST_VALUE are supported in TUMBLE"):
        load_sql_text(EVENTS + sink + hop, "h.sql")


def test_group_by_an_expression() -> None:
    sink = """CREATE TABLE out (route STRING, n BIGINT, PRIMARY KEY (route) NOT ENFORCED)
    WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
          'value.format' = 'json');
    """
    query = """INSERT INTO out SELECT CONCAT(k, '-', s) AS route, COUNT(*)
    FROM events GROUP BY CONCAT(k, '-', s);"""
    spec = load_sql_text(EVENTS + sink + query, "g.sql")
    driver = PipelineDriver(spec)
    for k, s in (("a", "x"), ("a", "y"), ("a", "x")):
        driver.send("events", {"k": k, "s": s, "at_ms": 1})
    table = {r.key["route"]: r.value for r in driver.output("out")}
    assert table == {"a-x": {"route": "a-x", "n": 2}, "a-y": {"route": "a-y", "n": 1}}


def test_group_by_into_debezium_json_writes_each_change_with_its_kind() -> None:
    """Flink's debezium-json sink: +I/+U as "c" with "after", -U as "d" with "before"; an update
    that leaves the row unchanged writes nothing (Flink's GroupAggFunction)."""
    sink = """CREATE TABLE out (k STRING, hi BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'debezium-json');
    """
    query = "INSERT INTO out SELECT k, MAX(v) FROM events GROUP BY k;"
    driver = PipelineDriver(load_sql_text(EVENTS + sink + query, "c.sql"))
    for v in (3, 1, 5):  # 1 leaves MAX(v) = 3
        driver.send("events", {"k": "a", "v": v, "at_ms": 1}, key="a")
    assert [r.value for r in driver.output("out")] == [
        {"before": None, "after": {"k": "a", "hi": 3}, "op": "c"},
        {"before": {"k": "a", "hi": 3}, "after": None, "op": "d"},
        {"before": None, "after": {"k": "a", "hi": 5}, "op": "c"},
    ]


def test_a_raw_table_is_one_string_column_and_other_formats_are_refused() -> None:
    raw = """CREATE TABLE lines (line STRING) WITH ('connector' = 'kafka', 'topic' = 'lines',
      'format' = 'raw');
    CREATE TABLE out (line STRING, n INT) WITH ('connector' = 'kafka', 'topic' = 'out');
    INSERT INTO out SELECT UPPER(line), CHAR_LENGTH(line) FROM lines WHERE line LIKE 'a%';"""
    driver = PipelineDriver(load_sql_text(raw, "r.sql"))
    for text in ("abc", "xyz", "a b"):
        driver.send("lines", text)
    assert [r.value for r in driver.output("out")] == [
        {"line": "ABC", "n": 3},
        {"line": "A B", "n": 3},
    ]
    csv = raw.replace("'format' = 'raw'", "'format' = 'csv'")
    with pytest.raises(ConfigError, match="format 'csv' is not supported yet"):
        load_sql_text(csv, "a.sql")
    raw_sink = raw.replace("'topic' = 'out')", "'topic' = 'out', 'format' = 'raw')")
    with pytest.raises(ConfigError, match="a 'raw' sink \\(out\\) writes exactly one STRING"):
        load_sql_text(raw_sink, "s.sql")  # two columns


def test_a_raw_sink_writes_its_one_column_as_the_value() -> None:
    """Flink's raw format on a sink: the text of the one STRING column (a NULL: a null value),
    the key column of a raw key under EXCEPT_KEY aside."""
    sql = """CREATE TABLE f (origin STRING, dest STRING)
    WITH ('connector' = 'kafka', 'topic' = 'f', 'format' = 'json');
    CREATE TABLE r (origin STRING, line STRING) WITH ('connector' = 'kafka', 'topic' = 'r',
      'key.format' = 'raw', 'key.fields' = 'origin', 'value.fields-include' = 'EXCEPT_KEY',
      'value.format' = 'raw');
    INSERT INTO r SELECT origin, CONCAT(origin, '-', dest) FROM f;"""
    driver = PipelineDriver(load_sql_text(sql, "r.sql"))
    driver.send("f", {"origin": "EWR", "dest": "LAX"}, key="x")
    driver.send("f", {"origin": "JFK", "dest": None}, key="x")
    written = [(key, value) for key, value, *_ in driver.topics["r"]]
    assert written == [(b"EWR", b"EWR-LAX"), (b"JFK", None)]
    bad = sql.replace("line STRING", "line INT")
    with pytest.raises(ConfigError, match="writes exactly one STRING column"):
        load_sql_text(bad, "b.sql")


def test_lookup_join_on_proctime_reads_a_broadcast_table() -> None:
    """``FOR SYSTEM_TIME AS OF f.proc_time`` (a PROCTIME() column): Flink's lookup join, each
    flight with the plane row current when it is processed; LEFT keeps a flight without one."""
    sql = """CREATE TABLE f (tailnum STRING, flight INT, at_ms BIGINT, proc_time AS PROCTIME(),
      ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts
    ) WITH ('connector' = 'kafka', 'topic' = 'f', 'format' = 'json');
    CREATE TABLE p (tailnum STRING, seats INT)
    WITH ('connector' = 'kafka', 'topic' = 'p', 'format' = 'json');
    CREATE TABLE out (flight INT, seats INT) WITH ('connector' = 'kafka', 'topic' = 'out');
    INSERT INTO out SELECT f.flight, p.seats
    FROM f LEFT JOIN p FOR SYSTEM_TIME AS OF f.proc_time AS p ON f.tailnum = p.tailnum;"""
    spec = load_sql_text(sql, "l.sql")
    table = spec.sources[1].table
    assert table is not None and table.broadcast and table.key == "tailnum"
    driver = PipelineDriver(spec)
    driver.send("p", {"tailnum": "N1", "seats": 100}, key="N1")
    for flight, tailnum in enumerate(("N1", "N2")):
        driver.send("f", {"tailnum": tailnum, "flight": flight, "at_ms": flight})
    driver.end_of_input()
    assert [r.value for r in driver.output("out")] == [
        {"flight": 0, "seats": 100},
        {"flight": 1, "seats": None},
    ]
