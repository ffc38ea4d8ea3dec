"""``kstream schema``: the JSON Schema of pipeline files, on stdout or into a file."""

from __future__ import annotations

import json
from pathlib import Path

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
