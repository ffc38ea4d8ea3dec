"""``kstream schema``: the JSON Schema of pipeline files, on stdout or into a file; with a
pipeline and ``--sink``, the Avro schema of a sink's values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
from click.testing import CliRunner, Result
from kstream_cli.main import cli

from kstream.pipeline.model import SCHEMA_ID, pipeline_json_schema


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={})


def test_schema_prints_the_json_schema_on_stdout() -> None:
    result = invoke("schema")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    schema = json.loads(result.stdout)
    assert schema == pipeline_json_schema()
    assert (schema["$id"], schema["title"]) == (SCHEMA_ID, "kstream pipeline")
    assert {"pipeline", "sources", "operators", "sinks"} <= set(schema["properties"])


def test_schema_output_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "kstream-pipeline.schema.json"
    result = invoke("schema", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8")) == pipeline_json_schema()


def test_schema_is_listed_with_its_help() -> None:
    assert "schema" in invoke("--help").stdout
    help_text = invoke("schema", "--help").stdout
    assert "yaml-language-server: $schema=" in help_text
    assert "--output FILE" in help_text


# -- kstream schema PIPELINE --sink TOPIC: the Avro schema of a sink's values ------------------

REPO = Path(__file__).resolve().parents[2]
GENERAL = ["null", "long", "double", "string", "boolean"]

SINKS_PIPELINE = f"""
pipeline: flights-avro
sources:
  - topic: flights-avro
    format: avro
    schema: {REPO / "schemas" / "flight.avsc"}
    event_time: {{field: sched_dep_ts, unit: ms}}
operators:
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
        carriers: {{collect: carrier}}
        worst: {{max: "dep_delay * 2"}}
  - id: daily
    from: by-origin
    window:
      type: tumbling
      size: 1d
      aggregate:
        flights: count
        avg_dep_delay: {{avg: dep_delay}}
        max_dep_delay: {{max: dep_delay}}
sinks:
  - {{topic: hourly-avro, from: hourly, format: avro}}
  - {{topic: hourly-json, from: hourly}}
  - topic: daily-file
    from: daily
    format: avro
    schema: {REPO / "schemas" / "flights-hourly.avsc"}
  - {{topic: raw-flights, from: by-origin}}
"""


def sink_schema(tmp_path: Path, *args: str) -> Result:
    path = tmp_path / "pipeline.yaml"
    path.write_text(SINKS_PIPELINE, encoding="utf-8")
    return invoke("schema", str(path), *args)


def fields(schema: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["type"] for f in schema["fields"]}


def test_sink_schema_derived_for_window_results(tmp_path: Path) -> None:
    result = sink_schema(tmp_path, "--sink", "hourly-avro")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith('{\n  "type": "record"')  # pretty-printed
    schema = json.loads(result.stdout)
    assert schema["name"] == "kstream.flights_avro.hourly_result"
    assert fields(schema) == {
        "key": GENERAL,
        "window_start": "long",
        "window_end": "long",
        "flights": ["null", "long"],
        "avg_dep_delay": ["null", "double"],
        "max_dep_delay": ["null", "long"],  # dep_delay is ["null", "long"] in flight.avsc
        "carriers": ["null", {"type": "array", "items": "string"}],
        "worst": GENERAL,  # an expression: type unknown
    }
    assert not any(key.startswith("__") for key in json.dumps(schema).split('"'))
    fastavro.parse_schema(schema)  # a valid schema as printed


def test_sink_schema_of_a_json_window_sink_is_what_format_avro_would_give(
    tmp_path: Path,
) -> None:
    as_json = sink_schema(tmp_path, "--sink", "hourly-json")
    as_avro = sink_schema(tmp_path, "--sink", "hourly-avro")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == json.loads(as_avro.stdout)


def test_sink_schema_file_is_printed_with_its_names(tmp_path: Path) -> None:
    result = sink_schema(tmp_path, "--sink", "daily-file", "--output", str(tmp_path / "s.avsc"))
    assert result.exit_code == 0, result.output
    schema = json.loads((tmp_path / "s.avsc").read_text(encoding="utf-8"))
    assert schema["name"] == "kstream.examples.nycflights13.FlightsHourly"
    assert fields(schema)["key"] == "string" and fields(schema)["flights"] == "long"


def test_unknown_sink_names_the_sinks(tmp_path: Path) -> None:
    result = sink_schema(tmp_path, "--sink", "hourly")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: no sink 'hourly' in pipeline 'flights-avro'; it has the sinks hourly-avro, "
        "hourly-json, daily-file, raw-flights"
    )
    assert result.stdout == ""


def test_sink_without_a_derivable_schema_is_an_error(tmp_path: Path) -> None:
    result = sink_schema(tmp_path, "--sink", "raw-flights")
    assert result.exit_code == 2
    assert "sink raw-flights (json) has no Avro schema" in result.stderr
    assert "'schema:' file" in result.stderr


def test_pipeline_needs_sink_and_sink_needs_pipeline(tmp_path: Path) -> None:
    result = sink_schema(tmp_path)
    assert result.exit_code == 2
    assert "--sink TOPIC" in result.stderr and "the sinks hourly-avro, hourly-json" in result.stderr
    result = invoke("schema", "--sink", "hourly-avro")
    assert result.exit_code == 2
    assert "--sink needs a PIPELINE" in result.stderr
