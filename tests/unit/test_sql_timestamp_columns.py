"""``TIMESTAMP(3)`` / ``TIMESTAMP_LTZ(3)`` columns read from JSON text, as Flink's ``json``
format reads them (``'json.timestamp-format.standard'`` ``SQL`` or ``ISO-8601``), in
expressions and as the rowtime (event-time unit ``sql``)."""

from __future__ import annotations

import pytest

from kstream.errors import ConfigError
from kstream.expr.sql_functions import sql_parse_timestamp
from kstream.pipeline.load import load_pipeline_text
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

JAN1_5H = 1_357_016_400_000  # 2013-01-01 05:00:00 UTC


@pytest.mark.parametrize(
    ("text", "kind", "standard", "ms"),
    [
        ("2013-01-01 05:00:00", "ts", "SQL", JAN1_5H),
        ("2013-01-01 05:00", "ts", "SQL", JAN1_5H),  # seconds optional (ISO_LOCAL_TIME)
        ("2013-01-01 05:00:00.25", "ts", "SQL", JAN1_5H + 250),
        ("2013-01-01 05:00:00.123456", "ts", "SQL", JAN1_5H + 123),  # beyond ms: cut
        ("2013-01-01 05:00:00Z", "ltz", "SQL", JAN1_5H),
        ("2013-01-01T05:00:00", "ts", "ISO-8601", JAN1_5H),
        ("2013-01-01T05:00:00.5Z", "ltz", "ISO-8601", JAN1_5H + 500),
    ],
)
def test_flinks_json_timestamp_texts(text: str, kind: str, standard: str, ms: int) -> None:
    assert sql_parse_timestamp(text, kind, standard) == ms


@pytest.mark.parametrize(
    ("text", "kind", "standard"),
    [
        ("2013-01-01T05:00:00", "ts", "SQL"),  # the ISO separator in the SQL standard
        ("2013-01-01 05:00:00Z", "ts", "SQL"),  # a zone on a TIMESTAMP
        ("2013-01-01 05:00:00", "ltz", "SQL"),  # no zone on an LTZ
        ("2013-01-01T05:00:00Z", "ts", "ISO-8601"),
        ("2013-02-30 05:00:00", "ts", "SQL"),  # no such day
        ("1357016400000", "ts", "SQL"),
        ("2013-01-01 05:00:00+01:00", "ltz", "SQL"),
    ],
)
def test_other_texts_fail_as_in_flink(text: str, kind: str, standard: str) -> None:
    with pytest.raises(ValueError):
        sql_parse_timestamp(text, kind, standard)


JOB = """CREATE TABLE e (k STRING, at TIMESTAMP(3), WATERMARK FOR at AS at - INTERVAL '1' SECOND)
WITH ('connector' = 'kafka', 'topic' = 'e', 'format' = 'json'{options});
CREATE TABLE out (k STRING, at TIMESTAMP(3), later TIMESTAMP(3), ws TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
INSERT INTO out SELECT k, MAX(at), MAX(at) + INTERVAL '1' MINUTE, window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE e, DESCRIPTOR(at), INTERVAL '1' MINUTE))
GROUP BY k, window_start, window_end;"""


def test_a_timestamp_column_is_the_rowtime_and_reads_as_a_timestamp() -> None:
    spec = load_sql_text(JOB.format(options=""), "t.sql")
    assert (spec.sources[0].time.field, spec.sources[0].time.unit) == ("at", "sql")
    driver = PipelineDriver(spec)
    for at in ("2013-01-01 05:00:10", "2013-01-01 05:00:59.5", "2013-01-01 05:01:30"):
        driver.send("e", {"k": "a", "at": at})
    assert [r.value for r in driver.output("out")] == [
        {
            "k": "a",
            "at": "2013-01-01 05:00:59.5",
            "later": "2013-01-01 05:01:59.5",
            "ws": "2013-01-01 05:00:00",
            "n": 2,
        }
    ]


def test_an_unknown_timestamp_standard_is_refused() -> None:
    job = JOB.format(options=", 'json.timestamp-format.standard' = 'RFC'")
    with pytest.raises(ConfigError, match=r"'json\.timestamp-format\.standard' is 'SQL' or"):
        load_sql_text(job, "t.sql")


def test_yaml_event_time_unit_sql_reads_flinks_text() -> None:
    text = """pipeline: p
sources:
  - topic: e
    event_time: {field: at, unit: sql}
sinks:
  - topic: out
"""
    driver = PipelineDriver(load_pipeline_text(text))
    driver.send("e", {"at": "2013-01-01 05:00:00.25"})
    driver.send("e", {"at": "2013-01-01T05:00:01Z"})
    assert [r.timestamp_ms for r in driver.output("out")] == [JAN1_5H + 250, JAN1_5H + 1_000]


@pytest.mark.parametrize(
    ("option", "accepted"),
    [
        ("'json.fail-on-missing-field' = 'false'", True),  # Flink's default
        ("'json.ignore-parse-errors' = 'false'", True),
        ("'json.ignore-parse-errors' = 'true'", False),  # Flink nulls the fields: refused
        ("'json.encode.ignore-null-fields' = 'true'", False),
        ("'json.map-null-key.mode' = 'DROP'", False),  # not taken at all
    ],
)
def test_json_options_other_than_flinks_defaults_are_refused(option: str, accepted: bool) -> None:
    job = JOB.format(options=f", {option}")
    if accepted:
        load_sql_text(job, "t.sql")
        return
    with pytest.raises(ConfigError, match=r"is not supported .* (Flink's default|this option)"):
        load_sql_text(job, "t.sql")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("'scan.startup.mode' = 'timestamp'", "'scan.startup.mode' = 'timestamp' is not supported"),
        ("'scan.bounded.mode' = 'latest-offset'", "option 'scan.bounded.mode' is not supported"),
        ("'topic-pattern' = 'e.*'", "option 'topic-pattern' is not supported"),
        ("'sink.partitioner' = 'round-robin'", "'sink.partitioner' = 'round-robin' is not"),
        ("'debezium-json.schema-include' = 'true'", "'debezium-json.schema-include' = 'true'"),
    ],
)
def test_with_options_kstream_does_not_honour_are_refused(option: str, message: str) -> None:
    """An option ignored could change what Flink reads or writes: each is an error."""
    with pytest.raises(ConfigError, match=message):
        load_sql_text(JOB.format(options=f", {option}"), "t.sql")


def test_options_without_effect_on_the_results_are_taken() -> None:
    options = (
        ", 'sink.partitioner' = 'default', 'sink.delivery-guarantee' = 'at-least-once',"
        " 'properties.group.id' = 'g', 'scan.startup.mode' = 'group-offsets'"
    )
    load_sql_text(JOB.format(options=options), "t.sql")
