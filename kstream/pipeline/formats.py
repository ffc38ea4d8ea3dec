"""Formats, schemas, the schema registry and error policies in a pipeline file (see
:mod:`kstream.pipeline.load` for the format, ``docs/formats.md`` and ``docs/errors.md``).

Schema paths are resolved relative to the pipeline file (the working directory for pipelines
loaded from text) and loaded once here, so that a missing or invalid schema, or a sink schema
that cannot hold the window results, is reported with its line by ``kstream validate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast, get_args

from kstream.pipeline import schemas
from kstream.pipeline.checks import pipeline_dir
from kstream.pipeline.dataflow import result_window
from kstream.pipeline.spec import ErrorPolicy, Format, PipelineSpec, RecordMetadata, ValueFields
from kstream.pipeline.yamlnodes import Issues, Node, check_keys, describe, read_enum, read_str

__all__ = [
    "FORMATS",
    "Formats",
    "KeyFields",
    "check_pipeline",
    "read_formats",
    "read_key_fields",
    "read_metadata",
    "read_policy",
    "read_registry",
]

FORMATS: tuple[str, ...] = get_args(Format)
POLICIES: tuple[str, ...] = get_args(ErrorPolicy)
METADATA: tuple[RecordMetadata, ...] = get_args(RecordMetadata)
VALUE_FIELDS: tuple[str, ...] = get_args(ValueFields)
SCHEMA_HINT = "schema paths are relative to the pipeline file, e.g. schemas/flight.avsc"


@dataclass(frozen=True)
class Formats:
    """The format keys of a source or sink (schema paths absolute, inline schemas as JSON
    text)."""

    format: Format = "json"
    key_format: Format = "string"
    schema: str | None = None
    writer_schema: str | None = None
    key_schema: str | None = None


@dataclass(frozen=True)
class KeyFields:
    """The key-field keys of a source or sink: ``key_fields``, ``key_fields_prefix`` and
    (sinks) ``value_fields_include``."""

    fields: tuple[str, ...] = ()
    prefix: str = ""
    value_fields: ValueFields = "all"


def read_key_fields(issues: Issues, node: Node, key_format: Format, *, sink: bool) -> KeyFields:
    """``key_fields`` (distinct field names), ``key_fields_prefix`` (every field starts with
    it) and, for a sink, ``value_fields_include`` (``all`` or ``except_key``). Key fields need
    ``key_format`` ``json`` (an object) or ``avro`` (a record of ``key_schema``), or
    ``string``/``bytes`` with one field."""
    fields_node = node.get("key_fields")
    where = fields_node or node
    fields = _field_names(issues, fields_node)
    prefix = read_str(issues, node.get("key_fields_prefix")) or ""
    include = node.get("value_fields_include")
    value_fields = cast(ValueFields, read_enum(issues, include, VALUE_FIELDS, "all"))
    for key in ("key_fields_prefix", "value_fields_include"):
        unused = node.get(key)
        if unused is not None and fields_node is None:
            issues.add(unused, f"'{key}' is only used with key_fields", "add key_fields")
    for name in fields if prefix else []:
        if not name.startswith(prefix):
            hint = f"name it {prefix}{name}, or change key_fields_prefix"
            issues.add(where, f"key field {name!r} does not start with {prefix!r}", hint)
    if len(fields) > 1 and key_format not in ("json", "avro"):
        what = f"a {key_format} key holds one field, not {len(fields)}"
        issues.add(where, what, "use key_format: json (an object of the fields)")
    return KeyFields(tuple(fields), prefix, value_fields if sink else "all")


def _field_names(issues: Issues, node: Node | None) -> list[str]:
    """``key_fields``: a non-empty list of distinct field names (none when absent)."""
    fields: list[str] = []
    if node is None:
        return fields
    items = node.items() if node.is_seq else []
    if not items:
        issues.add(node, "key_fields is a list of field names", "key_fields: [a, b]")
    for item in items:
        name = read_str(issues, item)
        if name is not None and name in fields:
            issues.add(item, f"field {name!r} is listed twice", "list each key field once")
        elif name is not None:
            fields.append(name)
    return fields


def read_registry(issues: Issues, node: Node | None) -> dict[str, str]:
    """``schema_registry:``: a URL, or a mapping of client settings with ``url`` (e.g.
    ``basic.auth.user.info``); values become strings."""
    if node is None or node.value is None:
        return {}
    if not node.is_map:
        url = read_str(issues, node)
        return {"url": url} if url else {}
    check_keys(issues, node, [key for key, _ in node.entries()], ("url",))
    settings: dict[str, str] = {}
    for key, child in node.entries():
        if isinstance(child.value, str | int | float | bool):
            settings[key] = (
                str(child.value).lower() if isinstance(child.value, bool) else str(child.value)
            )
        else:
            issues.add(child, f"expected a scalar value, got {describe(child.value)}", "url: ...")
    return settings


def read_formats(issues: Issues, node: Node, *, sink: bool, registry: bool) -> Formats:
    """``format``, ``key_format``, ``schema``, ``writer_schema`` (sources) and ``key_schema``.

    A plain Avro source needs ``schema`` (and ``key_schema`` for Avro keys); with a schema
    registry the writer schema comes from the registry and ``schema`` is the optional reader
    schema. A sink's schema is checked against its records in :func:`check_pipeline`.
    """
    fmt = cast(Format, read_enum(issues, node.get("format"), FORMATS, "json"))
    key_fmt = cast(Format, read_enum(issues, node.get("key_format"), FORMATS, "string"))
    schema = _schema_path(issues, node.get("schema"))
    writer = _schema_path(issues, node.get("writer_schema"))
    key_schema = _schema_path(issues, node.get("key_schema"))
    writer_fix = (
        ": with a schema_registry each record names its writer schema"
        if registry
        else ", or set format: avro"
    )
    for key, used, what, fix in (
        ("schema", fmt == "avro", "format: avro", ", or set format: avro"),
        (
            "writer_schema",
            fmt == "avro" and not registry,
            "format: avro without a registry",
            writer_fix,
        ),
        ("key_schema", key_fmt == "avro", "key_format: avro", ", or set key_format: avro"),
    ):
        child = node.get(key)
        if child is not None and not used:
            issues.add(child, f"'{key}' is only used with {what}", f"remove '{key}'{fix}")
    if not sink and not registry:
        for key, needed, value in (("schema", fmt, schema), ("key_schema", key_fmt, key_schema)):
            where = node.get("format" if key == "schema" else "key_format") or node
            if needed == "avro" and value is None and node.get(key) is None:
                hint = f"add '{key}: schemas/NAME.avsc', or configure a schema_registry"
                issues.add(where, f"an Avro source needs '{key}'", hint)
    return Formats(fmt, key_fmt, schema, writer, key_schema)


def _schema_path(issues: Issues, node: Node | None) -> str | None:
    """The absolute path of a schema file, after checking that it loads; for an inline schema
    (a mapping), its JSON text (:func:`kstream.pipeline.schemas.load_schema`)."""
    if node is not None and node.is_map:
        inline = json.dumps(node.value, separators=(",", ":"))
        try:
            schemas.load_schema(inline)
        except schemas.SchemaError as exc:
            issues.add(node, str(exc), "an inline schema is an Avro schema as YAML (or JSON)")
            return None
        return inline
    text = read_str(issues, node)
    if node is None or text is None:
        return None
    path = str((pipeline_dir(issues.file) / text).resolve())
    try:
        schemas.load_schema_file(path)
    except schemas.SchemaError as exc:
        issues.add(node, str(exc), SCHEMA_HINT)
        return None
    return path


def read_policy(
    issues: Issues, node: Node, default: ErrorPolicy | None
) -> tuple[ErrorPolicy | None, str | None]:
    """``on_error`` and ``dead_letter_topic`` (required with, and only with, dead_letter).
    ``default`` None: an operator or sink without ``on_error`` uses the source's policy."""
    policy_node = node.get("on_error")
    policy = read_enum(issues, policy_node, POLICIES, default or "") if policy_node else default
    topic_node = node.get("dead_letter_topic")
    topic = read_str(issues, topic_node, name=True)
    if policy == "dead_letter" and topic_node is None:
        issues.add(
            policy_node or node,
            "on_error: dead_letter needs 'dead_letter_topic'",
            "add dead_letter_topic: <topic>",
        )
    if policy != "dead_letter" and topic_node is not None:
        shown = policy or "unset (the source's policy applies)"
        hint = "set on_error: dead_letter, or remove dead_letter_topic"
        issues.add(topic_node, f"dead_letter_topic is unused with on_error: {shown}", hint)
    return cast(ErrorPolicy | None, policy or None), topic


def check_pipeline(issues: Issues, root: Node, spec: PipelineSpec) -> None:
    """Whole-pipeline checks: every Avro sink has a schema that can hold its records, and no
    dead-letter topic is the source topic (bad records would come back forever)."""
    sinks = root.get("sinks")
    nodes = sinks.items() if sinks is not None else []
    for sink, node in zip(spec.sinks, nodes, strict=False):
        if sink.format != "avro":
            continue
        window = result_window(spec, sink)
        where = node.get("schema") or node.get("format") or node
        if sink.schema is None and window is None and node.get("schema") is None:
            hint = "add 'schema: schemas/NAME.avsc' (only window results get a derived schema)"
            issues.add(
                where, "an Avro sink of records other than window results needs 'schema'", hint
            )
        elif sink.schema is not None and window is not None:
            problems = schemas.check_result_schema(schemas.load_schema(sink.schema), window)
            for problem in problems:
                issues.add(
                    where,
                    f"schema cannot hold window '{window.id}' results: {problem}",
                    f"its fields are {', '.join(schemas.result_fields(window))}",
                )
    for source in spec.sources:
        if source.topic in spec.dead_letter_topics():
            issues.add(
                root.get("sources") or root,
                f"dead-letter topic '{source.topic}' is a source topic",
                "bad records would be read again forever; use another topic",
            )


def read_metadata(issues: Issues, node: Node | None) -> tuple[tuple[str, RecordMetadata], ...]:
    """A source's ``metadata: {field: topic|partition|offset|timestamp|key}``."""
    hint = "write metadata: {kafka_partition: partition, kafka_offset: offset}"
    if node is None:
        return ()
    if not node.is_map:
        issues.add(node, f"expected a mapping, got {describe(node.value)}", hint)
        return ()
    fields: list[tuple[str, RecordMetadata]] = []
    for name, child in node.entries():
        what = next((m for m in METADATA if m == child.value), None)
        if not isinstance(name, str) or not name:
            issues.add(child, f"invalid field name {describe(name)}", hint)
        elif what is None:
            expected = f"one of: {', '.join(METADATA)}"
            shown = repr(child.value) if isinstance(child.value, str) else describe(child.value)
            issues.add(child, f"unknown record metadata {shown}", expected)
        else:
            fields.append((name, what))
    return tuple(fields)
