"""Kafka keys of Flink SQL tables as Flink's Kafka connectors write and read them: ``kafka``
tables' ``'key.format'`` + ``'key.fields'``, ``upsert-kafka`` tables' PRIMARY KEY,
``'key.fields-prefix'`` and ``'value.fields-include'`` (kstream/sql/keys.py)."""

from __future__ import annotations

import pytest

from kstream.errors import ConfigError
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

EVENTS = """CREATE TABLE events (
  k STRING, v BIGINT, s STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
"""
APPEND = """CREATE TABLE out (k STRING, s STRING, v BIGINT)
WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json', {options});
INSERT INTO out SELECT k, s, v FROM events;
"""


def _written(sql: str, records: list[dict[str, object]]) -> list[tuple[bytes | None, bytes | None]]:
    driver = PipelineDriver(load_sql_text(sql, "keys.sql"))
    for record in records:
        driver.send("events", {"at_ms": 1, **record})
    return [(k, v) for k, v, *_ in driver.topics["out"]]


def test_a_kafka_sink_writes_its_key_fields_as_a_json_object_in_their_order() -> None:
    sql = EVENTS + APPEND.format(options="'key.format' = 'json', 'key.fields' = 's;k'")
    written = _written(sql, [{"k": "a", "s": "x", "v": 1}])
    assert written == [(b'{"s":"x","k":"a"}', b'{"k":"a","s":"x","v":1}')]


def test_except_key_and_a_key_prefix() -> None:
    sink = """CREATE TABLE out (key_k STRING, s STRING, v BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json', 'key.format' = 'json',
          'key.fields' = 'key_k', 'key.fields-prefix' = 'key_',
          'value.fields-include' = 'EXCEPT_KEY');
    INSERT INTO out SELECT k, s, v FROM events;
    """
    written = _written(EVENTS + sink, [{"k": "a", "s": "x", "v": 1}])
    assert written == [(b'{"k":"a"}', b'{"s":"x","v":1}')]


def test_a_raw_key_is_the_text_of_its_one_string_column() -> None:
    sql = EVENTS + APPEND.format(options="'key.format' = 'raw', 'key.fields' = 's'")
    assert [k for k, _ in _written(sql, [{"k": "a", "s": "x", "v": 1}])] == [b"x"]


def test_having_writes_tombstones_with_the_primary_key_in_its_order() -> None:
    """PRIMARY KEY (s, k) in the other order than GROUP BY k, s: the GROUP BY key is built in
    the key's order, so a row that stops qualifying is deleted under the key of its rows."""
    sink = """CREATE TABLE out (k STRING, s STRING, total BIGINT, PRIMARY KEY (s, k) NOT ENFORCED)
    WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
          'value.format' = 'json');
    INSERT INTO out SELECT k, s, SUM(v) FROM events GROUP BY k, s HAVING SUM(v) < 5;
    """
    written = _written(EVENTS + sink, [{"k": "a", "s": "x", "v": 4}, {"k": "a", "s": "x", "v": 3}])
    key = b'{"s":"x","k":"a"}'
    assert written == [(key, b'{"k":"a","s":"x","total":4}'), (key, None)]


def test_a_source_with_except_key_reads_its_key_columns_from_the_key() -> None:
    sql = """CREATE TABLE events (k STRING, v BIGINT)
    WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json', 'key.format' = 'json',
          'key.fields' = 'k', 'value.fields-include' = 'EXCEPT_KEY');
    CREATE TABLE out (k STRING, v BIGINT) WITH ('connector' = 'kafka', 'topic' = 'out',
          'format' = 'json');
    INSERT INTO out SELECT k, v * 10 FROM events;
    """
    driver = PipelineDriver(load_sql_text(sql, "keys.sql"))
    driver.send("events", {"v": 1}, key='{"k": "a"}')
    assert [r.value for r in driver.output("out")] == [{"k": "a", "v": 10}]


RATES = """CREATE TABLE orders (k STRING, s STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts
) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json');
CREATE TABLE rates (s STRING, k STRING, r BIGINT, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts, PRIMARY KEY (k, s) NOT ENFORCED
) WITH ('connector' = 'upsert-kafka', 'topic' = 'rates', 'key.format' = 'json',
        'value.format' = 'json');
CREATE TABLE out (k STRING, r BIGINT) WITH ('connector' = 'kafka', 'topic' = 'out',
  'format' = 'json');
INSERT INTO out SELECT o.k, rt.r
FROM orders AS o LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS rt ON o.k = rt.k AND o.s = rt.s;
"""


def test_a_tombstone_of_an_upsert_table_deletes_the_row_of_its_json_key() -> None:
    """rates (x, p): r 1 at 1 s, deleted at 2 s (a tombstone under {"k":"x","s":"p"}); orders
    at 1.5 s and 2.5 s: the first finds r 1, the second no row."""
    driver = PipelineDriver(load_sql_text(RATES, "keys.sql"))
    key = '{"k":"x","s":"p"}'
    driver.send("rates", {"s": "p", "k": "x", "r": 1, "at_ms": 1000}, key=key)
    driver.send("rates", None, key=key, timestamp_ms=2000)
    for at in (1500, 2500):
        driver.send("orders", {"k": "x", "s": "p", "at_ms": at})
    driver.end_of_input()
    assert sorted((r.value["r"] or 0) for r in driver.output("out")) == [0, 1]


def test_a_lookup_table_with_except_key_reads_its_key_column_from_the_key() -> None:
    """The broadcast table's rows get their key fields from the key before they are keyed."""
    sql = """CREATE TABLE f (tailnum STRING, flight INT, proc_time AS PROCTIME())
    WITH ('connector' = 'kafka', 'topic' = 'f', 'format' = 'json');
    CREATE TABLE p (tailnum STRING, seats INT)
    WITH ('connector' = 'kafka', 'topic' = 'p', 'value.format' = 'json', 'key.format' = 'raw',
          'key.fields' = 'tailnum', 'value.fields-include' = 'EXCEPT_KEY');
    CREATE TABLE out (flight INT, seats INT) WITH ('connector' = 'kafka', 'topic' = 'out');
    INSERT INTO out SELECT f.flight, p.seats
    FROM f JOIN p FOR SYSTEM_TIME AS OF f.proc_time AS p ON f.tailnum = p.tailnum;"""
    driver = PipelineDriver(load_sql_text(sql, "l.sql"))
    driver.send("p", {"seats": 100}, key="N1")
    driver.send("f", {"tailnum": "N1", "flight": 7})
    assert [r.value for r in driver.output("out")] == [{"flight": 7, "seats": 100}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'key.format' = 'json'", "'key.format' and 'key.fields' go together"),
        ("'key.fields' = 'k'", "'key.format' and 'key.fields' go together"),
        ("'key.format' = 'csv', 'key.fields' = 'k'", "key format 'csv' is not supported"),
        ("'key.format' = 'raw', 'key.fields' = 'v'", "a 'raw' key of a BIGINT column"),
        ("'key.format' = 'raw', 'key.fields' = 'k;s'", "a 'raw' key holds one column, not 2"),
        ("'key.format' = 'json', 'key.fields' = 'zz'", "key column zz is not a physical column"),
        (
            "'key.format' = 'json', 'key.fields' = 'k', 'key.fields-prefix' = 'x_'",
            "key column k does not start with 'x_'",
        ),
        (
            "'key.format' = 'json', 'key.fields' = 'k', 'value.fields-include' = 'SOME'",
            "'value.fields-include' is SOME",
        ),
        ("'value.fields-include' = 'EXCEPT_KEY'", "EXCEPT_KEY' without a key format"),
    ],
)
def test_key_options_kstream_cannot_honour_are_refused_by_name(options: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_sql_text(EVENTS + APPEND.format(options=options), "keys.sql")
    assert info.value.issues[0].line == 6  # the CREATE TABLE of the sink


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        (
            "PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', 'topic' = 'out', "
            "'value.format' = 'json');",
            "an upsert-kafka table needs 'key.format'",
        ),
        (
            "PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', 'topic' = 'out', "
            "'key.format' = 'json', 'key.fields' = 'k', 'value.format' = 'json');",
            "'key.fields' is not an upsert-kafka option",
        ),
        (
            "PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', 'topic' = 'out', "
            "'key.format' = 'json', 'key.fields-prefix' = 'k', 'value.format' = 'json');",
            "a key prefix needs EXCEPT_KEY",
        ),
    ],
)
def test_upsert_kafka_key_options_are_checked(sink: str, message: str) -> None:
    sql = EVENTS + f"CREATE TABLE out (k STRING, n BIGINT, {sink}\n"
    sql += "INSERT INTO out SELECT k, COUNT(*) FROM events GROUP BY k;"
    with pytest.raises(ConfigError, match=message):
        load_sql_text(sql, "keys.sql")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("k", r"with HAVING, the key of out \(k\) must be the GROUP BY keys"),
        ("k, s, total", r"with HAVING, the key of out \(k, s, total\) must be the GROUP BY"),
        ("k, zz", "key column zz is not a physical column"),
    ],
)
def test_having_into_a_key_that_is_not_the_group_by_is_refused(key: str, message: str) -> None:
    sink = f"""CREATE TABLE out (k STRING, s STRING, total BIGINT, PRIMARY KEY ({key}) NOT ENFORCED)
    WITH ('connector' = 'upsert-kafka', 'topic' = 'out', 'key.format' = 'json',
          'value.format' = 'json');
    INSERT INTO out SELECT k, s, SUM(v) FROM events GROUP BY k, s HAVING SUM(v) < 5;
    """
    with pytest.raises(ConfigError, match=message):
        load_sql_text(EVENTS + sink, "keys.sql")
