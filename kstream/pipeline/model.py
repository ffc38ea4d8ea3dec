"""The pipeline *file* format as pydantic models: what users write in YAML.

:class:`PipelineFile` mirrors the format documented in :mod:`kstream.pipeline.load`. Every
mapping forbids unknown keys (``extra="forbid"``; only ``kafka``, the ``schema_registry``
settings, ``map.fields``, ``branch`` ports and ``aggregate`` are open mappings); an operator
item is a union discriminated by the operator key it holds (``filter``, ``map``, ...;
:mod:`kstream.pipeline.model_operators`), a window a union discriminated by ``type``.
The models have two uses:

- :func:`pipeline_json_schema` (``kstream schema``): the JSON Schema (draft 2020-12) of the
  file, for editor completion and checks; descriptions come from the models' docstrings.
- The single source of the allowed keys: the loader's key tuples (``SOURCE_KEYS``,
  ``WINDOW_KEYS``, ...) are derived with :func:`keys_of` and :func:`required_of`, so the loader
  and the schema cannot drift.

The models check structure: keys, value types, enumerations, required keys, "exactly one of"
choices. The loader stays what reads a file and reports problems with ``file:line``, a key path
and a fix, including what a schema cannot express (references between nodes, bounds of
durations, expressions that compile, schema files that load). ``PipelineFile.model_validate``
on plain YAML data raises ``pydantic.ValidationError`` on a structural problem; a file that
``kstream validate`` accepts validates.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from kstream import __version__
from kstream.pipeline.model_base import (
    Duration,
    FileModel,
    Name,
    PositiveInt,
    Scalar,
    Size,
    Text,
    absent,
    keys_of,
    merged_keys,
    required_of,
)
from kstream.pipeline.model_joins import Table
from kstream.pipeline.model_operators import (
    AGGREGATION_KEYS,
    ITEM_KEYS,
    ITEM_MODELS,
    OPERATOR_KINDS,
    WINDOW_MODELS,
    OperatorItem,
)
from kstream.pipeline.spec import (
    ErrorPolicy,
    Format,
    Guarantee,
    RecordMetadata,
    TimeKind,
    TimeUnit,
    ValueFields,
    WatermarkStrategy,
)

__all__ = [
    "AGGREGATION_KEYS",
    "ITEM_KEYS",
    "ITEM_MODELS",
    "OPERATOR_KINDS",
    "SCHEMA_ID",
    "WINDOW_MODELS",
    "PipelineFile",
    "keys_of",
    "merged_keys",
    "pipeline_json_schema",
    "required_of",
]

#: The ``$id`` of the JSON Schema.
SCHEMA_ID = "urn:kstream:pipeline"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class EventTime(FileModel):
    """Where a record's event time is read: a field of the value and its unit."""

    field: Text
    """The field holding the event time (`a.b` for a nested field)."""
    unit: TimeUnit = "ms"
    """`ms` or `s` since the epoch, or `iso` (ISO-8601 with a timezone)."""


class Watermark(FileModel):
    """Watermark generation per source partition (durations: 500ms, 10s, 5m, 1h, 1d or ms)."""

    strategy: WatermarkStrategy = "bounded"
    """`bounded`: watermark = max seen - max_out_of_orderness - 1 (Flink DataStream);
    `monotonous`: bound 0; `sql`: max seen - max_out_of_orderness (Flink SQL's
    `WATERMARK FOR ts AS ts - INTERVAL ...`, no -1 ms)."""
    max_out_of_orderness: Duration = 0
    """How late records may arrive and still be on time (`bounded` only)."""
    idle_timeout: Duration = absent("A partition without records this long goes idle.")
    max_future_skew: Duration = "1d"
    """A record further ahead of the highest timestamp seen is a bad record."""


class Source(FileModel):
    """A source topic: its format, its time, its watermark and its error policy."""

    topic: Name
    """The topic to read."""
    id: Name = absent("The node id (default: the topic).")
    name: Name = absent("Older spelling of `id`.")
    format: Format = "json"
    """The value format: json, string, bytes or avro (docs/formats.md)."""
    key_format: Format = "string"
    """The key format: json, string, bytes or avro."""
    schema_: Text | dict[str, Any] = absent(
        "Avro reader schema file, relative to this file (or the schema inline).", alias="schema"
    )
    writer_schema: Text | dict[str, Any] = absent(
        "Avro schema producers wrote (format: avro, no registry): a file, or inline."
    )
    key_schema: Text | dict[str, Any] = absent(
        "Avro key schema file (key_format: avro), or the schema inline."
    )
    time: TimeKind = "event"
    """`event` (event_time), `processing` (wall clock) or `ingestion` (Kafka timestamp)."""
    event_time: Text | EventTime = absent(
        "A field name (unit ms), or {field, unit}; default: the Kafka record timestamp."
    )
    watermark: Watermark | None = None
    """Watermark generation (all keys optional)."""
    on_error: ErrorPolicy = "fail"
    """What a bad record does: `fail`, `skip` or `dead_letter` (docs/errors.md)."""
    dead_letter_topic: Name = absent("Where bad records go (with on_error: dead_letter).")
    table: Table = absent("Read as a table: {key, versioned, broadcast} (docs/joins.md).")
    metadata: dict[str, RecordMetadata] = absent(
        "Fields set from the Kafka record: {field: topic|partition|offset|timestamp|key}."
    )
    key_fields: Annotated[list[Text], Field(min_length=1)] = absent(
        "Fields of the value set from the key: a JSON object's fields, or the whole key (one)."
    )
    key_fields_prefix: Text = absent("The key's names are the key_fields without this prefix.")


class Sink(FileModel):
    """An output topic."""

    topic: Name
    """The topic to write (created if missing)."""
    name: Name = absent("The sink's name (default: the topic).")
    from_: Text | Annotated[list[Text], Field(min_length=1)] = absent(
        "What it writes: a node or node.port, or a list (unioned); default: the last operator.",
        alias="from",
    )
    format: Format = "json"
    """The value format: json, string, bytes or avro."""
    key_format: Format = "string"
    """The key format: json, string, bytes or avro."""
    schema_: Text | dict[str, Any] = absent(
        "Avro schema file, relative to this file (or the schema inline).", alias="schema"
    )
    key_schema: Text | dict[str, Any] = absent(
        "Avro key schema file (key_format: avro), or the schema inline."
    )
    partitions: PositiveInt = absent("Partitions of the topic when it must be created.")
    on_error: ErrorPolicy = absent("Serialize/produce errors; default: the source's policy.")
    dead_letter_topic: Name = absent("Where bad records go (with on_error: dead_letter).")
    key_fields: Annotated[list[Text], Field(min_length=1)] = absent(
        "The key written: these fields of the value (a JSON object, or one field's value)."
    )
    key_fields_prefix: Text = absent("The key's names are the key_fields without this prefix.")
    value_fields_include: ValueFields = "all"
    """With key_fields: `all` fields in the value, or `except_key`."""
    value_field: Text = absent(
        "The value written: this field of the value alone (Flink's raw format: one column)."
    )


class Checkpoint(FileModel):
    """How often each task commits, and with what guarantee (docs/fault-tolerance.md)."""

    interval: Duration = "5s"
    """Time between two checkpoints (500ms, 10s, 5m, ... or ms)."""
    guarantee: Guarantee = "exactly_once"
    """`exactly_once` (Kafka transactions) or `at_least_once`."""


class RocksDb(FileModel):
    """RocksDB memory knobs, each shared by every task database of the process (docs/state.md)."""

    block_cache: Size = "16MB"
    """Block cache for state read from disk."""
    write_buffer: Size = "16MB"
    """All memtables together (RocksDB WriteBufferManager)."""


class State(FileModel):
    """Where keyed state lives: RocksDB behind a bounded Python cache (docs/state.md)."""

    cache: Size = "64MB"
    """The process's write-back cache of decoded state (64MB, 512MiB, or bytes)."""
    rocksdb: RocksDb | None = None
    """RocksDB knobs."""


class Metrics(FileModel):
    """Prometheus metrics of each process (docs/metrics.md)."""

    port: Annotated[int, Field(ge=1, le=65535)]
    """Serve http://0.0.0.0:PORT/metrics (`kstream run --metrics-port` overrides it)."""


class SchemaRegistry(FileModel):
    """Confluent schema registry client settings: `url` and e.g. `basic.auth.user.info`."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Scalar] = Field(init=False)

    url: Text
    """The registry URL (`mock://NAME`: an in-process mock, for tests)."""


class PipelineFile(FileModel):
    """A kstream pipeline file: sources, operators and sinks. Reference: docs/pipeline.md; full
    check, with file:line and a fix for each error: `kstream validate FILE`."""

    model_config = ConfigDict(title="kstream pipeline")

    pipeline: Name
    """The pipeline name: the default consumer group and prefix of internal names."""
    group: Text = absent("The consumer group id (default: the pipeline name).")
    kafka: dict[str, Scalar] | None = None
    """librdkafka settings for every client (bootstrap.servers, security.protocol, ...)."""
    schema_registry: Text | SchemaRegistry | None = None
    """The schema registry URL, or {url: ..., basic.auth.user.info: ...}."""
    checkpoint: Checkpoint | None = None
    """How often tasks commit, and with what guarantee."""
    state: State | None = None
    """The state cache size and RocksDB knobs."""
    metrics: Metrics | None = None
    """Prometheus metrics: the port each process serves them on."""
    sources: Annotated[list[Source], Field(min_length=1)]
    """The topics read."""
    operators: list[OperatorItem] | None = None
    """The operators, each with one operator key; `from` defaults to the previous item."""
    sinks: Annotated[list[Sink], Field(min_length=1)]
    """The topics written."""


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pipeline file: ``$schema``, ``$id``, ``title``,
    ``$defs``...; descriptions come from the models' docstrings."""
    schema = PipelineFile.model_json_schema()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": schema.pop("title"),
        "description": schema.pop("description"),
        "$comment": f"generated by kstream {__version__} (kstream schema)",
        **schema,
    }
