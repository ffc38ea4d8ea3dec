"""``kstream schema``: the JSON Schema of the pipeline file, for editor completion."""

from __future__ import annotations

import json
from typing import TextIO

import click
from kstream_cli.errors import handle_errors

from kstream.pipeline.model import pipeline_json_schema


@click.command()
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
def schema(output: TextIO) -> None:
    """Print the JSON Schema (draft 2020-12) of pipeline YAML files.

    Editors use it for completion, hover help and checks as you type, e.g. VS Code's YAML
    extension with this first line in the pipeline file:

        # yaml-language-server: $schema=./kstream-pipeline.schema.json

    The schema checks the keys and value types; `kstream validate` checks the rest (references
    between nodes, expressions, schema files) and reports every error with file:line.
    """
    output.write(json.dumps(pipeline_json_schema(), indent=2, ensure_ascii=False) + "\n")
