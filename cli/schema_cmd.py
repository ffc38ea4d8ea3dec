"""``kstream schema``: the JSON Schema of the pipeline file, for editor completion; with a
pipeline and ``--sink``, the Avro schema kstream writes that sink's values with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TextIO

import click
from kstream_cli.errors import handle_errors

from kstream.errors import UsageError
from kstream.io import codecs
from kstream.pipeline import dataflow, schemas
from kstream.pipeline.model import pipeline_json_schema
from kstream.pipeline.spec import PipelineSpec, SinkSpec
from kstream.sql import load_job


@click.command()
@click.argument(
    "pipeline",
    required=False,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--sink",
    "sink_name",
    metavar="TOPIC",
    help="With PIPELINE: print the Avro schema of this sink's values (its topic or id).",
)
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8", atomic=True),
    default="-",
    show_default="stdout",
    metavar="FILE",
    help="Write the schema to FILE.",
)
@handle_errors
def schema(pipeline: Path | None, sink_name: str | None, output: TextIO) -> None:
    """Print the JSON Schema (draft 2020-12) of pipeline YAML files, or with PIPELINE --sink
    TOPIC the Avro schema kstream writes that sink's values with.

    Editors use the JSON Schema for completion, hover help and checks as you type, e.g. VS
    Code's YAML extension with this first line in the pipeline file:

        # yaml-language-server: $schema=./kstream-pipeline.schema.json

    The schema checks the keys and value types; `kstream validate` checks the rest (references
    between nodes, expressions, schema files) and reports every error with file:line.

    With --sink: the sink's `schema:` file, or for window results the schema derived from the
    window (docs/formats.md); for window results written as JSON, the schema the sink would get
    with `format: avro`. Printed as JSON, named types expanded, e.g. to register it or to start
    a schema file from it.

    \b
    Examples:
      kstream schema > kstream-pipeline.schema.json
      kstream schema examples/flights-hourly.yaml --sink flights-hourly
    """
    if pipeline is None:
        if sink_name is not None:
            raise UsageError("--sink needs a PIPELINE: kstream schema PIPELINE --sink TOPIC")
        document: Any = pipeline_json_schema()
    else:
        spec = load_job(pipeline)
        if sink_name is None:
            raise UsageError(
                f"with PIPELINE, name a sink with --sink TOPIC; {pipeline} has {_sinks(spec)}"
            )
        document = schemas.public_json(sink_avro_schema(spec, sink_name))
    output.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def sink_avro_schema(spec: PipelineSpec, name: str) -> Any:
    """The parsed Avro schema of the values of ``spec``'s sink ``name`` (topic or id): its
    ``schema:`` file, else for window results the derived one (also for a JSON sink: what it
    would get with ``format: avro``).

    Raises:
        UsageError: no such sink; a sink of other records without a schema file.
        SchemaError: a schema file is invalid.
    """
    sink = next((s for s in spec.sinks if name in (s.topic, s.name)), None)
    if sink is None:
        raise UsageError(f"no sink {name!r} in pipeline '{spec.name}'; it has {_sinks(spec)}")
    if sink.format == "avro" or sink.schema is not None:
        return codecs.sink_value_schema(sink, spec)
    if dataflow.result_window(spec, sink) is None:
        raise UsageError(
            f"sink {sink.topic} ({sink.format}) has no Avro schema: kstream derives one only for "
            "window results reaching a sink unchanged (only filters, branches or key_by after "
            "the window, and no union before it); an Avro sink of other records needs a "
            "'schema:' file"
        )
    return codecs.sink_value_schema(_as_avro(sink), spec)


def _as_avro(sink: SinkSpec) -> SinkSpec:
    return dataclasses.replace(sink, format="avro")


def _sinks(spec: PipelineSpec) -> str:
    """``the sinks a, b`` / ``the sink a`` (topics), for messages."""
    topics = [s.topic for s in spec.sinks]
    return f"the sink{'s' if len(topics) > 1 else ''} {', '.join(topics)}"
