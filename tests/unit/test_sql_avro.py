"""Flink SQL tables in the ``avro`` and ``avro-confluent`` formats: the schema derived from the
columns (Flink's AvroSchemaConverter), the bytes written, the values read, and the refusals."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from kstream.errors import ConfigError
from kstream.expr.sql_decimals import DECIMAL_FUNCTIONS
from kstream.io import avro
from kstream.io.kafka import schema_registry
from kstream.sql.avro_schema import value_format
from kstream.sql.catalog import read_table
from kstream.sql.compile import load_sql_text, sql_mapping
from kstream.sql.script import SqlIssues, parse_script
from kstream.testing.driver import PipelineDriver

NS = "org.apache.flink.avro.generated"


def _schema_of(columns: str, options: str = "'format' = 'avro'", pk: str = "") -> Any:
    """The value format keys (format, schema) of table ``out (columns)``'s sources and sinks.

    Raises:
        ConfigError: as the compiler reports it.
    """
    sql = (
        f"CREATE TABLE out ({columns}{pk}) WITH ('connector' = 'kafka', 'topic' = 'o', {options});"
    )
    issues = SqlIssues("s.sql", sql)
    table = read_table(issues, parse_script(sql, "s.sql").statements[0])
    assert table is not None
    found = value_format(issues, table)
    issues.raise_if_any()
    assert found["format"] == "avro"
    return found["schema"]


def _nullable(name: str, avro_type: Any) -> dict[str, Any]:
    return {"name": name, "type": ["null", avro_type], "default": None}


@pytest.mark.parametrize(
    ("sql_type", "avro_type"),
    [
        ("BOOLEAN", "boolean"),
        ("TINYINT", "int"),
        ("SMALLINT", "int"),
        ("INT", "int"),
        ("INTEGER", "int"),
        ("BIGINT", "long"),
        ("FLOAT", "float"),
        ("DOUBLE", "double"),
        ("STRING", "string"),
        ("VARCHAR(20)", "string"),
        ("CHAR(3)", "string"),
        (
            "DECIMAL(10, 2)",
            {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        ),
        ("DECIMAL", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 0}),
        ("TIMESTAMP(3)", {"type": "long", "logicalType": "timestamp-millis"}),
        ("TIMESTAMP(0)", {"type": "long", "logicalType": "timestamp-millis"}),
    ],
)
def test_each_type_maps_as_flinks_avro_schema_converter(sql_type: str, avro_type: Any) -> None:
    schema = _schema_of(f"a {sql_type}")
    assert schema == {
        "type": "record",
        "name": "record",
        "namespace": NS,
        "fields": [_nullable("a", avro_type)],
    }


def test_not_null_and_primary_key_columns_are_plain_and_computed_metadata_are_left_out() -> None:
    columns = (
        "k STRING, a BIGINT NOT NULL, b INT NULL, c AS a + 1, "
        "t TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'"
    )
    schema = _schema_of(columns, "'format' = 'avro'", ", PRIMARY KEY (k) NOT ENFORCED")
    assert schema["fields"] == [
        {"name": "k", "type": "string"},
        {"name": "a", "type": "long"},
        _nullable("b", "int"),
    ]


def test_timestamps_follow_the_legacy_mapping_option() -> None:
    options = "'format' = 'avro', 'avro.timestamp_mapping.legacy' = 'false'"
    schema = _schema_of("a TIMESTAMP(3), b TIMESTAMP_LTZ(3)", options)
    assert schema["fields"] == [
        _nullable("a", {"type": "long", "logicalType": "local-timestamp-millis"}),
        _nullable("b", {"type": "long", "logicalType": "timestamp-millis"}),
    ]
    options = "'value.format' = 'avro', 'value.avro.timestamp_mapping.legacy' = 'false'"
    assert _schema_of("b TIMESTAMP_LTZ(3)", options)["fields"][0]["type"][1] == {
        "type": "long",
        "logicalType": "timestamp-millis",
    }


@pytest.mark.parametrize(
    ("sql_type", "message"),
    [
        ("TIMESTAMP_LTZ(3)", "legacy Avro timestamp mapping cannot derive"),
        ("TIMESTAMP", r"TIMESTAMP\(6\): kstream writes Avro timestamps of precision 3"),
        ("TIMESTAMP(6)", "precision 3"),
        ("DATE", "has type DATE, which has no Avro mapping"),
        ("VARBINARY", "no Avro mapping"),
    ],
)
def test_a_type_without_avro_mapping_is_refused_at_its_column(sql_type: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _schema_of(f"ok INT,\n  a {sql_type}")
    issue = caught.value.issues[0]
    assert (issue.file, issue.line, issue.column) == ("s.sql", 2, 3)
    assert "Avro columns:" in issue.hint


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'format' = 'avro', 'avro.bogus' = 'x'", "option 'avro.bogus' is not supported"),
        ("'format' = 'avro', 'avro.encoding' = 'json'", "'avro.encoding' = 'json' is not"),
        ("'format' = 'avro-confluent'", "no 'avro-confluent.url' option"),
        (
            "'format' = 'avro-confluent', 'avro-confluent.url' = 'mock://x', "
            "'avro-confluent.ssl.keystore.location' = '/k'",
            "option 'avro-confluent.ssl.keystore.location' is not supported",
        ),
        (
            "'format' = 'avro-confluent', 'avro-confluent.url' = 'mock://x', "
            "'avro-confluent.subject' = 'other'",
            "'avro-confluent.subject' = 'other' is not supported",
        ),
        (
            "'value.format' = 'avro-confluent', 'value.avro-confluent.url' = 'mock://x', "
            "'value.avro-confluent.schema' = '{}'",
            "option 'value.avro-confluent.schema' is not supported",
        ),
    ],
)
def test_unknown_or_unsupported_format_options_are_refused(options: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _schema_of("a INT", options)


def test_one_registry_per_job_and_no_plain_avro_next_to_it() -> None:
    sql = """CREATE TABLE src (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 's',
      'format' = 'avro');
    CREATE TABLE out (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 'o',
      'format' = 'avro-confluent', 'avro-confluent.url' = 'mock://x');
    INSERT INTO out SELECT * FROM src;"""
    with pytest.raises(ConfigError, match="'avro' next to 'avro-confluent' tables"):
        sql_mapping(sql, "s.sql")
    two = sql.replace(
        "'format' = 'avro')", "'format' = 'avro-confluent', 'avro-confluent.url' = 'mock://y')"
    )
    with pytest.raises(ConfigError, match="another schema registry"):
        sql_mapping(two, "s.sql")


FLIGHTS = """CREATE TABLE flights (
  carrier STRING, flight INT, distance INT, dep_delay INT, sched_dep_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE
) WITH ('connector' = 'kafka', 'topic' = 'flights', 'format' = 'json');
"""
OUT = """CREATE TABLE out (
  carrier STRING NOT NULL, flight INT, delay INT, sched TIMESTAMP(3), km DECIMAL(8, 2),
  hours DOUBLE, far BOOLEAN
) WITH ('connector' = 'kafka', 'topic' = 'out', {options});
INSERT INTO out SELECT carrier, flight, dep_delay, CAST(ts AS TIMESTAMP(3)),
  distance * 1.609, distance / 500.0, distance > 1000 FROM flights;
"""
#: the schema Flink derives for OUT, written out by hand
OUT_SCHEMA = {
    "type": "record",
    "name": "record",
    "namespace": NS,
    "fields": [
        {"name": "carrier", "type": "string"},
        _nullable("flight", "int"),
        _nullable("delay", "int"),
        _nullable("sched", {"type": "long", "logicalType": "timestamp-millis"}),
        _nullable("km", {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}),
        _nullable("hours", "double"),
        _nullable("far", "boolean"),
    ],
}
ROW = {"carrier": "UA", "flight": 1545, "distance": 1400, "dep_delay": None}
ROW["sched_dep_ts"] = 1357048800000  # 2013-01-01 14:00:00 UTC
#: what OUT's query makes of ROW (fastavro writes the Decimal as its decimal bytes)
ROW_OUT = {"carrier": "UA", "flight": 1545, "delay": None, "sched": 1357048800000}
ROW_OUT |= {"km": Decimal("2252.60"), "hours": 2.8, "far": True}


def _fastavro_bytes(record: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(OUT_SCHEMA), record)
    return body.getvalue()


def test_an_avro_sink_writes_the_bytes_of_flinks_schema() -> None:
    spec = load_sql_text(FLIGHTS + OUT.format(options="'format' = 'avro'"), "a.sql")
    driver = PipelineDriver(spec)
    driver.send("flights", ROW)
    written = [v for _, v, *_ in driver.topics["out"]]
    assert written == [_fastavro_bytes(ROW_OUT)]
    value = driver.output("out")[0].value
    assert value["km"] == bytes.fromhex("036fec") and value["sched"] == 1357048800000


def test_except_key_leaves_the_key_columns_out_of_the_avro_value() -> None:
    """Flink's value projection: with EXCEPT_KEY the value schema (and bytes) have no key
    columns; the key is the JSON object of the key fields."""
    options = (
        "'format' = 'avro', 'key.format' = 'json', 'key.fields' = 'carrier;flight', "
        "'value.fields-include' = 'EXCEPT_KEY'"
    )
    spec = load_sql_text(FLIGHTS + OUT.format(options=options), "k.sql")
    value_schema = {**OUT_SCHEMA, "fields": OUT_SCHEMA["fields"][2:]}
    assert json.loads(spec.sinks[0].schema or "") == value_schema
    driver = PipelineDriver(spec)
    driver.send("flights", ROW)
    ((key, value, *_),) = driver.topics["out"]
    assert key == b'{"carrier":"UA","flight":1545}'
    body = io.BytesIO()
    rest = {k: v for k, v in ROW_OUT.items() if k not in ("carrier", "flight")}
    fastavro.schemaless_writer(body, fastavro.parse_schema(value_schema), rest)
    assert value == body.getvalue()


def test_an_avro_source_reads_decimals_timestamps_and_a_computed_rowtime() -> None:
    sql = """CREATE TABLE src (
      carrier STRING NOT NULL, flight INT, delay INT, sched TIMESTAMP(3), km DECIMAL(8, 2),
      hours DOUBLE, far BOOLEAN, ms AS CAST(km * 2 AS DECIMAL(9, 2)),
      rt AS TO_TIMESTAMP_LTZ(flight, 3), WATERMARK FOR rt AS rt
    ) WITH ('connector' = 'kafka', 'topic' = 'src', 'format' = 'avro');
    CREATE TABLE out (carrier STRING, sched TIMESTAMP(3), ms DECIMAL(9, 2), hours DOUBLE,
      at_rt TIMESTAMP_LTZ(3), far BOOLEAN)
    WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
    INSERT INTO out SELECT carrier, sched, ms, hours, rt, far FROM src WHERE km < 0;"""
    spec = load_sql_text(sql, "r.sql")
    assert spec.sources[0].time.field == "flight"
    driver = PipelineDriver(spec)
    record = {"carrier": "AA", "flight": 2500, "delay": 3, "sched": 1357048800123}
    record |= {"km": Decimal("-1.29"), "hours": 1.5, "far": None}
    driver.send("src", _fastavro_bytes(record))
    driver.send("src", _fastavro_bytes(record | {"km": Decimal("1.29")}))
    assert [r.value for r in driver.output("out")] == [
        {
            "carrier": "AA",
            "sched": "2013-01-01 14:00:00.123",
            "ms": -2.58,  # a JSON number
            "hours": 1.5,
            "at_rt": "1970-01-01 00:00:02.5Z",
            "far": None,
        }
    ]


def test_avro_confluent_registers_the_schema_under_topic_value_and_frames_each_value() -> None:
    options = "'format' = 'avro-confluent', 'avro-confluent.url' = 'mock://sql-avro-test'"
    spec = load_sql_text(FLIGHTS + OUT.format(options=options), "c.sql")
    assert spec.schema_registry == {"url": "mock://sql-avro-test"}
    driver = PipelineDriver(spec)
    driver.send("flights", ROW)
    [raw] = [v for _, v, *_ in driver.topics["out"]]
    schema_id, body = avro.unframe(raw)
    text, _ = schema_registry(spec.schema_registry).schema(schema_id)
    canonical = fastavro.schema.to_parsing_canonical_form
    assert canonical(fastavro.parse_schema(json.loads(text))) == canonical(
        fastavro.parse_schema(OUT_SCHEMA)
    )
    assert schema_registry(spec.schema_registry).register("out-value", text) == schema_id
    assert body == _fastavro_bytes(ROW_OUT)
    assert driver.output("out")[0].value["carrier"] == "UA"


@pytest.mark.parametrize(
    ("value", "hex_bytes"),
    [("0", "00"), ("1.27", "7f"), ("1.28", "0080"), ("-1.28", "80"), ("-1.29", "ff7f")],
)
def test_decimal_bytes_are_javas_minimal_twos_complement(value: str, hex_bytes: str) -> None:
    to_avro, from_avro = DECIMAL_FUNCTIONS["dec_avro"][0], DECIMAL_FUNCTIONS["avro_dec"][0]
    assert to_avro(Decimal(value), 2).hex() == hex_bytes
    assert from_avro(bytes.fromhex(hex_bytes), 2) == Decimal(value)


def test_window_and_upsert_results_go_to_avro_tables() -> None:
    sql = """CREATE TABLE f (origin STRING, d INT, at_ms BIGINT, ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
      WATERMARK FOR ts AS ts) WITH ('connector' = 'kafka', 'topic' = 'f', 'format' = 'json');
    CREATE TABLE w (origin STRING, ws TIMESTAMP(3), n BIGINT, mx INT)
    WITH ('connector' = 'kafka', 'topic' = 'w', 'format' = 'avro');
    INSERT INTO w SELECT origin, window_start, COUNT(*), MAX(d)
    FROM TABLE(TUMBLE(TABLE f, DESCRIPTOR(ts), INTERVAL '1' SECOND))
    GROUP BY origin, window_start, window_end;
    CREATE TABLE up (origin STRING NOT NULL, n BIGINT, PRIMARY KEY (origin) NOT ENFORCED)
    WITH ('connector' = 'upsert-kafka', 'topic' = 'up', 'key.format' = 'json',
      'value.format' = 'avro');
    INSERT INTO up SELECT origin, COUNT(*) FROM f GROUP BY origin;"""
    driver = PipelineDriver(load_sql_text(sql, "w.sql"))
    for origin, d, at_ms in (("A", 1, 100), ("A", 5, 200), ("B", None, 1500), ("B", 2, 2500)):
        driver.send("f", {"origin": origin, "d": d, "at_ms": at_ms}, key=origin)
    assert [r.value for r in driver.output("w")] == [
        {"origin": "A", "ws": 0, "n": 2, "mx": 5},
        {"origin": "B", "ws": 1000, "n": 1, "mx": None},
    ]
    up_schema = {"type": "record", "name": "record", "namespace": NS}
    up_schema["fields"] = [{"name": "origin", "type": "string"}, _nullable("n", "long")]
    last = {r.key["origin"]: r.value for r in driver.output("up")}  # Flink's JSON key
    assert last == {"A": {"origin": "A", "n": 2}, "B": {"origin": "B", "n": 2}}
    assert driver.topics["up"][-1][0] == b'{"origin":"B"}'
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(up_schema), {"origin": "B", "n": 2})
    assert driver.topics["up"][-1][1] == body.getvalue()


KEYED = """CREATE TABLE f (origin STRING, carrier STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts)
WITH ('connector' = 'kafka', 'topic' = 'f', 'format' = 'json');
CREATE TABLE up (origin STRING, carrier STRING, n BIGINT,
  PRIMARY KEY (origin, carrier) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = 'up', 'key.format' = '{key_format}',
  'value.format' = 'json'{registry});
INSERT INTO up SELECT origin, carrier, COUNT(*) FROM f GROUP BY origin, carrier;
CREATE TABLE o (k_origin STRING, carrier STRING)
WITH ('connector' = 'kafka', 'topic' = 'o', 'key.format' = '{key_format}',
  'key.fields' = 'k_origin', 'key.fields-prefix' = 'k_', 'value.fields-include' = 'EXCEPT_KEY',
  'format' = 'json'{registry});
INSERT INTO o SELECT origin, carrier FROM f;"""


def _record(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "record", "namespace": NS, "fields": list(fields)}


def test_avro_keys_are_records_of_the_key_columns() -> None:
    """'key.format' = 'avro': an upsert table's PRIMARY KEY columns (NOT NULL, plain types)
    and a kafka table's key.fields (nullable, named without the prefix), as Flink derives the
    key schema from the key's row type; a tombstone-free upsert writes the same key twice."""
    spec = load_sql_text(KEYED.format(key_format="avro", registry=""), "k.sql")
    up, out = spec.sinks
    up_key = _record({"name": "origin", "type": "string"}, {"name": "carrier", "type": "string"})
    assert (up.key_format, json.loads(up.key_schema or "")) == ("avro", up_key)
    assert json.loads(out.key_schema or "") == _record(_nullable("origin", "string"))
    driver = PipelineDriver(spec)
    for at_ms in (1, 2):
        driver.send("f", {"origin": "EWR", "carrier": "UA", "at_ms": at_ms}, key="EWR")
    keys = [key for key, *_ in driver.topics["up"]]
    assert keys == [b"\x06EWR\x04UA"] * 2  # two Avro strings: zigzag length 3, then UTF-8
    ((key, value, *_), _again) = driver.topics["o"]
    assert (key, value) == (b"\x02\x06EWR", b'{"carrier":"UA"}')  # union branch 1: string


def test_avro_confluent_keys_are_registered_under_topic_key() -> None:
    registry = ", 'key.avro-confluent.url' = 'mock://sql-avro-keys'"
    spec = load_sql_text(KEYED.format(key_format="avro-confluent", registry=registry), "k.sql")
    assert spec.schema_registry == {"url": "mock://sql-avro-keys"}
    driver = PipelineDriver(spec)
    driver.send("f", {"origin": "EWR", "carrier": "UA", "at_ms": 1}, key="EWR")
    ((key, *_),) = driver.topics["o"]
    schema_id, body = avro.unframe(key)
    assert body == b"\x02\x06EWR"
    text, _refs = schema_registry({"url": "mock://sql-avro-keys"}).schema(schema_id)
    canonical = fastavro.schema.to_parsing_canonical_form
    want = fastavro.parse_schema(_record(_nullable("origin", "string")))
    assert canonical(fastavro.parse_schema(json.loads(text))) == canonical(want)
