"""Key and value formats: ``json`` (orjson), ``avro`` (:mod:`kstream.io.avro`), ``string`` (UTF-8)
and ``bytes``. See ``docs/formats.md``.

Decoders take bytes (or None) and raise :class:`~kstream.errors.RecordError` with stage
``deserialize``; encoders take Python values and raise it with stage ``serialize``. The builders
at the bottom (:func:`source_decoders`, :func:`sink_encoders`, :func:`late_encoder`) choose the
codec of a source, a sink or a late-data topic from the pipeline spec, including plain Avro with
an optional writer schema and Avro in the Confluent wire format when a schema registry is set.

JSON choices: a leading UTF-8 byte order mark is skipped (RFC 8259 section 8.1 lets parsers
ignore it); ``NaN``/``Infinity``, numbers beyond the double range (e.g. a 5,000-digit integer)
and documents nested deeper than :data:`MAX_JSON_DEPTH` are bad records. A
:class:`~decimal.Decimal` (a SQL DECIMAL) is written as a JSON number of its exact value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import orjson

from kstream.errors import RecordError
from kstream.io import avro
from kstream.pipeline import dataflow, schemas
from kstream.pipeline.spec import (
    FlatMapSpec,
    MapSpec,
    PipelineSpec,
    PortRef,
    SinkSpec,
    SourceSpec,
    WindowSpec,
)

Decoder = Callable[[bytes | None], Any]
Encoder = Callable[[Any], bytes | None]

#: Deepest nesting of arrays and objects accepted in a JSON document.
MAX_JSON_DEPTH = 100
_BOM = b"\xef\xbb\xbf"


def _json_decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.startswith(_BOM):
            raise RecordError("deserialize", f"invalid JSON: {exc}") from exc
        try:
            value = orjson.loads(raw[len(_BOM) :])
        except orjson.JSONDecodeError as again:
            raise RecordError("deserialize", f"invalid JSON: {again}") from again
    if (
        len(raw) > 2 * MAX_JSON_DEPTH
        and raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
        and _too_deep(value)
    ):
        raise RecordError("deserialize", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _too_deep(value: Any) -> bool:
    """Whether arrays/objects nest more than :data:`MAX_JSON_DEPTH` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _json_object_decode(raw: bytes | None) -> Any:
    value = _json_decode(raw)
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise RecordError("deserialize", f"expected a JSON object, got {kind}")
    return value


def _string_decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("deserialize", f"invalid UTF-8: {exc}") from exc


def _bytes_decode(raw: bytes | None) -> Any:
    return raw


def _json_number(value: Any) -> orjson.Fragment:
    """A :class:`~decimal.Decimal` (a SQL DECIMAL) as a JSON number of the same value, as
    Flink's ``json`` format writes a DECIMAL (``BigDecimal.toString``: ``33.33``, ``1E-7``);
    orjson's ``default`` hook, so other types cost nothing.

    Raises:
        TypeError: another type orjson does not know, or an infinite or NaN Decimal.
    """
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _json_encode(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=_json_number, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError: unsupported type, too deep, ...
        raise RecordError("serialize", f"cannot encode as JSON: {exc}") from exc


def _string_encode(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict | list | tuple):
        return _json_encode(value)
    return str(value).encode()


def _bytes_encode(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return _string_encode(value)


def value_decoder(fmt: str) -> Decoder:
    """Decoder for a source value in a schemaless format: ``json`` requires an object."""
    return {"json": _json_object_decode, "string": _string_decode, "bytes": _bytes_decode}[fmt]


def key_decoder(fmt: str) -> Decoder:
    """Decoder for a record key in a schemaless format (any JSON value for ``json``)."""
    return {"json": _json_decode, "string": _string_decode, "bytes": _bytes_decode}[fmt]


def encoder(fmt: str) -> Encoder:
    """Encoder for keys and values in a schemaless format (``json``, ``string``, ``bytes``)."""
    return {"json": _json_encode, "string": _string_encode, "bytes": _bytes_encode}[fmt]


# -- Avro ----------------------------------------------------------------------------------------


def avro_decoder(
    reader: Any | None, writer: Any | None = None, registry: Mapping[str, str] | None = None
) -> Decoder:
    """Decoder of Avro values: plain (schemaless) bodies written with ``writer`` (default: the
    ``reader`` schema), or with ``registry`` settings the Confluent wire format, whose writer
    schema is fetched by id (once) and resolved to ``reader`` (None: read as written).
    A null value (tombstone) decodes to None.

    Raises:
        BrokerError: (when decoding) the registry cannot be reached.
    """
    if registry:
        decode = _registry_decoder(registry, reader)
    else:
        decode = avro.decoder(writer if writer is not None else reader, reader)

    def run(raw: bytes | None) -> Any:
        return None if raw is None else decode(raw)

    return run


def _registry_decoder(settings: Mapping[str, str], reader: Any | None) -> avro.Decode:
    from kstream.io import kafka

    registry = kafka.schema_registry(settings)
    known: dict[int, avro.Decode | RecordError] = {}

    def decode(raw: bytes) -> Any:
        schema_id, body = avro.unframe(raw)
        found = known.get(schema_id)
        if found is None:
            found = known[schema_id] = _writer_decoder(registry, schema_id, reader)
        if isinstance(found, RecordError):
            raise RecordError(found.stage, found.reason)
        return found(body)

    return decode


def _writer_decoder(registry: Any, schema_id: int, reader: Any | None) -> Any:
    """The decoder for writer schema ``schema_id``, or the RecordError saying why there is none
    (kept, so a poison id costs one registry request)."""
    try:
        text, references = registry.schema(schema_id)
        writer = schemas.parse_schema_with_references(text, references, f"schema id {schema_id}")
    except RecordError as exc:
        return exc
    except schemas.SchemaError as exc:
        return RecordError("deserialize", str(exc))
    return avro.decoder(writer, reader)


def avro_encoder(
    schema: Any, registry: Mapping[str, str] | None = None, subject: str | None = None
) -> Encoder:
    """Encoder of Avro values: plain bodies, or with ``registry`` settings the Confluent wire
    format with ``schema`` registered under ``subject`` (now). None encodes to a tombstone.

    Raises:
        BrokerError: the registry cannot be reached or refuses the schema.
    """
    encode = avro.encoder(schema)
    prefix = b""
    if registry:
        from kstream.io import kafka

        text = schemas.schema_json(schema)
        schema_id = kafka.schema_registry(registry).register(subject or "", text)
        prefix = avro.frame(schema_id, b"")

    def run(value: Any) -> bytes | None:
        return None if value is None else prefix + encode(value)

    return run


# -- per source, sink and late-data topic --------------------------------------------------------


def _schema(ref: str | None) -> Any | None:
    return None if ref is None else schemas.load_schema(ref)


def source_decoders(source: SourceSpec, registry: Mapping[str, str]) -> tuple[Decoder, Decoder]:
    """``(key decoder, value decoder)`` of a source. A JSON value must be an object; an Avro
    value must not be a tombstone; a table's values may be tombstones (None: a deletion).

    Raises:
        SchemaError: a schema file is missing or invalid.
    """
    if source.key_format == "avro":
        decode_key = avro_decoder(_schema(source.key_schema), None, registry)
    else:
        decode_key = key_decoder(source.key_format)
    if source.format != "avro":
        decode = value_decoder(source.format)
    else:
        decode = avro_decoder(_schema(source.schema), _schema(source.writer_schema), registry)
    table = source.table is not None

    def decode_value(raw: bytes | None) -> Any:
        if raw is None:
            if table:
                return None
            if source.format == "avro":
                raise RecordError("deserialize", "expected an Avro value, got null (a tombstone)")
        return decode(raw)

    if source.format != "avro" and not table:
        return decode_key, decode
    return decode_key, decode_value


def sink_encoders(sink: SinkSpec, spec: PipelineSpec) -> tuple[Encoder, Encoder]:
    """``(key encoder, value encoder)`` of a sink. An Avro sink uses its ``schema``, or for
    window results one derived from the aggregations (:func:`kstream.io.schemas.result_schema`).

    Raises:
        SchemaError: a schema file is invalid, or an Avro sink of other records has none.
        BrokerError: the schema registry refuses or cannot be reached.
    """
    registry = spec.schema_registry
    if sink.key_format == "avro":
        key_schema = _schema(sink.key_schema) or schemas.parse_schema(list(schemas.GENERAL))
        encode_key = avro_encoder(key_schema, registry, f"{sink.topic}-key")
    else:
        encode_key = encoder(sink.key_format)
    if sink.format != "avro":
        return encode_key, encoder(sink.format)
    schema = sink_value_schema(sink, spec)
    return encode_key, avro_encoder(schema, registry, f"{sink.topic}-value")


def sink_decoders(sink: SinkSpec, spec: PipelineSpec) -> tuple[Decoder, Decoder]:
    """``(key decoder, value decoder)`` reading back what a sink wrote (e.g. in tests).

    Raises:
        SchemaError: as :func:`sink_encoders`.
    """
    registry = spec.schema_registry
    if sink.key_format == "avro":
        key_schema = _schema(sink.key_schema) or schemas.parse_schema(list(schemas.GENERAL))
        decode_key = avro_decoder(None if registry else key_schema, None, registry)
    else:
        decode_key = key_decoder(sink.key_format)
    if sink.format != "avro":
        return decode_key, key_decoder(sink.format)
    schema = None if registry else sink_value_schema(sink, spec)
    return decode_key, avro_decoder(schema, None, registry)


def sink_value_schema(sink: SinkSpec, spec: PipelineSpec) -> Any:
    """The Avro schema of an Avro sink's values (see :func:`sink_encoders`).

    Raises:
        SchemaError: as :func:`sink_encoders`.
    """
    if sink.schema is not None:
        return schemas.load_schema(sink.schema)
    window = dataflow.result_window(spec, sink)
    if window is None:
        raise schemas.SchemaError(
            f"sink {sink.name} writes Avro but has no 'schema' (only window results get one "
            "derived)"
        )
    return schemas.result_schema(window, spec.name, window_input_fields(spec, window))


def window_input_fields(spec: PipelineSpec, window: WindowSpec) -> dict[str, Any] | None:
    """Avro field types of the records reaching ``window``, as far as they are known from the
    source's reader schema (maps and ``explode`` remove the fields they compute; a ``python``
    map or flat_map, anything)."""
    chain = dataflow.producer_chain(spec, PortRef(window.id))
    if not chain:
        return None
    source = chain[0]
    if not isinstance(source, SourceSpec) or source.format != "avro" or source.schema is None:
        return None
    fields = dict(schemas.record_fields(schemas.load_schema(source.schema)))
    for op in chain[1:]:
        if op.id == window.id:
            return fields
        if isinstance(op, MapSpec | FlatMapSpec) and op.python:
            return None
        if isinstance(op, FlatMapSpec):
            fields.pop(op.as_field or "", None)
        elif isinstance(op, MapSpec):
            if op.select is not None:
                fields = {k: v for k, v in fields.items() if k in op.select}
            for name, _ in op.fields:
                fields.pop(name, None)
        elif isinstance(op, WindowSpec):  # an earlier window: its results, not the source's
            return None
    return fields


def late_encoder(spec: PipelineSpec, window: WindowSpec, topic: str) -> Encoder:
    """Value encoder of ``window``'s late-data topic: the value format of the source upstream
    of the window (Avro: its reader schema; JSON when an Avro source declares no schema).

    Raises:
        SchemaError, BrokerError: as :func:`sink_encoders`.
    """
    source = dataflow.upstream_source(spec, window.id)
    if source.format != "avro":
        return encoder("json" if source.format == "json" else source.format)
    if source.schema is None:
        return encoder("json")
    return avro_encoder(_schema(source.schema), spec.schema_registry, f"{topic}-value")
