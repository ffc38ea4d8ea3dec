"""A source's ``metadata:`` fields (Flink SQL's ``METADATA`` columns): each record gets its
Kafka topic, partition, offset, timestamp or key, before its event time is read."""

from __future__ import annotations

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

PIPELINE = """pipeline: positions
sources:
  - topic: weather
    metadata: {p: partition, o: offset, t: topic, at: timestamp, k: key}
    event_time: at
sinks:
  - topic: positions
"""


def test_metadata_fields_are_set_from_the_kafka_record() -> None:
    driver = PipelineDriver(load_pipeline_text(PIPELINE), partitions=2)
    driver.send("weather", {"temp": 1.5}, key="EWR", timestamp_ms=7_000, partition=1)
    driver.send("weather", {"temp": 2.5, "p": "replaced"}, key="JFK", timestamp_ms=8_000)
    driver.send("weather", {"temp": 3.5}, key="EWR", timestamp_ms=9_000, partition=1)
    got = [(r.value, r.timestamp_ms) for r in driver.output("positions")]
    assert got == [
        ({"temp": 1.5, "p": 1, "o": 0, "t": "weather", "at": 7_000, "k": "EWR"}, 7_000),
        ({"temp": 2.5, "p": 0, "o": 0, "t": "weather", "at": 8_000, "k": "JFK"}, 8_000),
        ({"temp": 3.5, "p": 1, "o": 1, "t": "weather", "at": 9_000, "k": "EWR"}, 9_000),
    ]


def test_unknown_metadata_is_an_error_at_its_line() -> None:
    with pytest.raises(ConfigError, match=r"<string>:4: .*unknown record metadata 'headers'"):
        load_pipeline_text(PIPELINE.replace("k: key", "k: headers"))


def test_sql_metadata_columns_read_the_record_metadata() -> None:
    sql = """CREATE TABLE w (origin STRING, at_ms BIGINT,
      part INT METADATA FROM 'partition' VIRTUAL, off BIGINT METADATA FROM 'offset' VIRTUAL,
      kts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
      ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts
    ) WITH ('connector' = 'kafka', 'topic' = 'w', 'format' = 'json');
    CREATE TABLE out (origin STRING, part INT, odd BOOLEAN, kts TIMESTAMP_LTZ(3))
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT origin, part, MOD(off, 2) = 1, kts FROM w;"""
    driver = PipelineDriver(load_sql_text(sql, "m.sql"), partitions=2)
    for i in range(3):
        driver.send("w", {"origin": "EWR", "at_ms": i}, timestamp_ms=5_000 + i, partition=i % 2)
    got = sorted(tuple(r.value.values()) for r in driver.output("out"))
    assert got == [
        ("EWR", 0, False, "1970-01-01 00:00:05Z"),
        ("EWR", 0, True, "1970-01-01 00:00:05.002Z"),
        ("EWR", 1, False, "1970-01-01 00:00:05.001Z"),
    ]


def test_sql_refuses_metadata_keys_it_does_not_read() -> None:
    sql = """CREATE TABLE w (origin STRING, h STRING METADATA FROM 'headers')
    WITH ('connector' = 'kafka', 'topic' = 'w', 'format' = 'json');
    CREATE TABLE out (origin STRING) WITH ('connector' = 'kafka', 'topic' = 'out');
    INSERT INTO out SELECT origin FROM w;"""
    with pytest.raises(ConfigError, match="metadata key 'headers' is not supported yet"):
        load_sql_text(sql, "m.sql")


def test_sql_timestamp_type_leader_epoch_and_key_columns() -> None:
    """Flink's ``timestamp-type`` (its names) and ``leader-epoch``; ``key`` (a kstream
    extension) is the record key's text."""
    sql = """CREATE TABLE w (origin STRING,
      tt STRING METADATA FROM 'timestamp-type' VIRTUAL,
      epoch INT METADATA FROM 'leader-epoch' VIRTUAL,
      k STRING METADATA FROM 'key' VIRTUAL
    ) WITH ('connector' = 'kafka', 'topic' = 'w', 'format' = 'json');
    CREATE TABLE out (origin STRING, tt STRING, epoch INT, k STRING)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT origin, tt, epoch, k FROM w;"""
    driver = PipelineDriver(load_sql_text(sql, "m.sql"))
    driver.send("w", {"origin": "EWR"}, key="ewr-1")
    (record,) = driver.output("out")
    assert record.value == {"origin": "EWR", "tt": "CreateTime", "epoch": 0, "k": "ewr-1"}


@pytest.mark.parametrize(
    "column",
    [
        "k INT METADATA FROM 'key'",  # the key's text: a STRING
        "k STRING METADATA FROM 'key'",  # with a key format: read key columns with key.fields
    ],
)
def test_sql_refuses_a_key_column_that_is_not_the_keys_text(column: str) -> None:
    key_format = "" if "INT" in column else ", 'key.format' = 'json', 'key.fields' = 'origin'"
    sql = f"""CREATE TABLE w (origin STRING, {column})
    WITH ('connector' = 'kafka', 'topic' = 'w', 'format' = 'json'{key_format});
    CREATE TABLE out (origin STRING) WITH ('connector' = 'kafka', 'topic' = 'out');
    INSERT INTO out SELECT origin FROM w;"""
    with pytest.raises(ConfigError, match="METADATA FROM 'key' is the key's text"):
        load_sql_text(sql, "m.sql")
