"""Avro with fastavro: schema files, schemaless encoding and decoding with schema resolution, the
Confluent wire format, and the schema of window results. The only module that imports fastavro.

fastavro's exceptions are translated here, once: bad data becomes
:class:`~kstream.errors.RecordError` (stage ``deserialize`` or ``serialize``), an unusable schema
becomes :class:`SchemaError`. See ``docs/formats.md``.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import fastavro
from fastavro.schema import load_schema
from fastavro.validation import validate

from kstream.errors import KStreamError, RecordError, UsageError
from kstream.spec import AggregationSpec, WindowSpec

#: The Confluent wire format: magic byte 0, the schema id as 4 bytes big-endian, the body.
MAGIC = 0
HEADER_BYTES = 5
#: Type of a value whose type cannot be derived (window keys, ``min`` of a JSON field, ...).
GENERAL = ("null", "long", "double", "string", "boolean")
_NUMERIC = {"int": "long", "long": "long", "float": "double", "double": "double"}
_PRIMITIVE = {"boolean", "string", "bytes", *_NUMERIC}
_MESSAGE_LIMIT = 300

Decode = Callable[[bytes], Any]
Encode = Callable[[Any], bytes]


class SchemaError(UsageError):
    """An Avro schema file (or registry schema) is missing, not JSON, or not a valid schema."""


def load_schema_file(path: str) -> Any:
    """The parsed schema in the file at ``path``; named types it references that the file does
    not define are loaded from ``<full name>.avsc`` in the same directory.

    Raises:
        SchemaError: the file (or a referenced one) is missing or invalid.
    """
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise SchemaError(f"cannot read Avro schema {path}: {exc.strerror or exc}") from exc
    return _load_cached(path, stamp)


@lru_cache(maxsize=64)
def _load_cached(path: str, stamp: int) -> Any:
    try:
        return load_schema(path)
    except Exception as exc:  # fastavro raises many kinds (JSON, unknown type, missing file)
        raise SchemaError(f"invalid Avro schema {path}: {_short(exc)}") from exc


def parse_schema(schema: str | dict[str, Any] | list[Any], where: str = "schema") -> Any:
    """Parse a schema given as JSON text or as a JSON value.

    Raises:
        SchemaError: not JSON or not a valid Avro schema.
    """
    try:
        value = json.loads(schema) if isinstance(schema, str) else schema
        return fastavro.parse_schema(value)
    except Exception as exc:
        raise SchemaError(f"invalid Avro {where}: {_short(exc)}") from exc


def parse_schema_with_references(text: str, references: Sequence[str], where: str) -> Any:
    """Parse schema ``text`` whose named types may be defined in ``references`` (schema texts,
    dependencies first), as a schema registry returns them.

    Raises:
        SchemaError: a text is not JSON or not a valid Avro schema.
    """
    named: dict[str, Any] = {}
    try:
        for ref in references:
            fastavro.parse_schema(_strip_logical(json.loads(ref)), named_schemas=named)
        return fastavro.parse_schema(_strip_logical(json.loads(text)), named_schemas=named)
    except Exception as exc:
        raise SchemaError(f"invalid Avro {where}: {_short(exc)}") from exc


def schema_json(parsed: Any) -> str:
    """The schema as plain JSON text (named types expanded, fastavro's private keys removed),
    e.g. to register it with a schema registry."""
    return json.dumps(_public(parsed), separators=(",", ":"))


def _public(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def plain(parsed: Any) -> Any:
    """``parsed`` without logical types, for reading and writing: kstream works with the
    underlying values (``timestamp-millis`` as epoch ms, ``date`` as days, ``decimal`` as bytes,
    ``uuid`` as a string) instead of fastavro's datetime, Decimal and UUID objects."""
    public = _public(parsed)
    if "logicalType" not in json.dumps(public):
        return parsed
    return fastavro.parse_schema(_strip_logical(public))


def _strip_logical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_logical(v) for k, v in value.items() if k != "logicalType"}
    if isinstance(value, list):
        return [_strip_logical(v) for v in value]
    return value


def schema_name(parsed: Any) -> str:
    """A short name for messages: the full name of a named schema, else its type."""
    if isinstance(parsed, dict):
        return str(parsed.get("name") or parsed.get("type"))
    if isinstance(parsed, list):
        return "union"
    return str(parsed)


def record_fields(parsed: Any) -> dict[str, Any]:
    """Field name -> type of a record schema (empty for other schemas)."""
    if isinstance(parsed, dict) and parsed.get("type") == "record":
        return {f["name"]: f["type"] for f in parsed.get("fields", [])}
    return {}


def decoder(writer: Any, reader: Any | None = None) -> Decode:
    """A decoder of schemaless Avro bodies written with ``writer`` and read as ``reader``
    (schema resolution: added fields take their defaults, removed ones are skipped, ints widen).

    The decoder raises :class:`RecordError` (``deserialize``) for a truncated or malformed
    body, a body with bytes left over (most often: written with another schema), invalid UTF-8
    in a string, or a writer schema that cannot be resolved to the reader schema.
    """
    read = fastavro.schemaless_reader
    target = None if reader is None or reader is writer else plain(reader)
    writer = plain(writer)

    def decode(raw: bytes) -> Any:
        body = io.BytesIO(raw)
        try:
            value = read(body, writer, target)
        except Exception as exc:  # EOFError, UnicodeDecodeError, SchemaResolutionError, ...
            raise RecordError("deserialize", _read_failure(exc, writer, reader)) from exc
        left = len(raw) - body.tell()
        if left:
            raise RecordError(
                "deserialize",
                f"invalid Avro: {left} bytes left over after a {schema_name(writer)} record "
                "(written with another schema?)",
            )
        return value

    return decode


def _read_failure(exc: Exception, writer: Any, reader: Any | None) -> str:
    name = type(exc).__name__
    if name == "SchemaResolutionError":
        return (
            f"writer schema {schema_name(writer)} cannot be read as "
            f"{schema_name(reader)}: {_short(exc)}"
        )
    if isinstance(exc, EOFError):
        return f"truncated Avro body ({schema_name(writer)})"
    if isinstance(exc, IndexError):  # fastavro's resolving reader ran past the end
        return f"truncated or malformed Avro body ({schema_name(writer)}): {_short(exc)}"
    return f"invalid Avro ({schema_name(writer)}): {name}: {_short(exc)}"


def encoder(schema: Any) -> Encode:
    """An encoder of values as schemaless Avro bodies; each value is validated first (a float in
    a ``long`` field is an error, not a truncation).

    The encoder raises :class:`RecordError` (``serialize``) when the value does not match.
    """
    write = fastavro.schemaless_writer
    schema = plain(schema)
    check = _fast_check(schema)

    def encode(value: Any) -> bytes:
        try:
            if check is None or not check(value):
                validate(value, schema, raise_errors=True)
            body = io.BytesIO()
            write(body, schema, value)
        except Exception as exc:  # ValidationError, TypeError, ValueError
            reason = f"value does not match Avro schema {schema_name(schema)}: {_short(exc)}"
            raise RecordError("serialize", reason) from exc
        return body.getvalue()

    return encode


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: v is True or v is False,
    "int": lambda v: type(v) is int and -(2**31) <= v < 2**31,
    "long": lambda v: type(v) is int and -(2**63) <= v < 2**63,
    "float": lambda v: type(v) in (int, float),
    "double": lambda v: type(v) in (int, float),
    "string": lambda v: type(v) is str,
    "bytes": lambda v: type(v) is bytes,
}


def _fast_check(schema: Any) -> Callable[[Any], bool] | None:
    """For a record of primitive fields (or unions of them): a quick test that a value certainly
    matches (fastavro's full validation is several times slower than writing). False means
    "not sure": the full validation then decides. None when the schema is not that simple."""
    tests: list[tuple[str, tuple[Callable[[Any], bool], ...]]] = []
    for name, avro_type in record_fields(schema).items():
        branches = avro_type if isinstance(avro_type, list) else [avro_type]
        if not all(isinstance(b, str) and b in _TYPE_TESTS for b in branches):
            return None
        tests.append((name, tuple(_TYPE_TESTS[b] for b in branches)))
    if not tests:
        return None

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for name, accepted in tests:
            field = value.get(name)
            if not any(test(field) for test in accepted):
                return False
        return True

    return check


def frame(schema_id: int, body: bytes) -> bytes:
    """A Confluent wire-format message: magic byte, schema id, body."""
    return bytes((MAGIC,)) + schema_id.to_bytes(4, "big") + body


def unframe(raw: bytes) -> tuple[int, bytes]:
    """``(schema id, body)`` of a Confluent wire-format message.

    Raises:
        RecordError: (``deserialize``) shorter than 5 bytes or a magic byte other than 0.
    """
    if len(raw) < HEADER_BYTES or raw[0] != MAGIC:
        first = f"0x{raw[0]:02x}" if raw else "nothing"
        raise RecordError(
            "deserialize",
            f"not in the Confluent wire format (magic byte 0 and a 4-byte schema id): "
            f"{len(raw)} bytes starting with {first}",
        )
    return int.from_bytes(raw[1:HEADER_BYTES], "big"), raw[HEADER_BYTES:]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


# -- window results ------------------------------------------------------------------------------


def result_fields(window: WindowSpec) -> list[str]:
    """The fields of ``window``'s results, in order."""
    names = ["key"] if window.type == "global" else ["key", "window_start", "window_end"]
    names += [agg.name for agg in window.aggregations]
    return [*names, "op"] if window.emit == "changelog" else names


def result_schema(window: WindowSpec, namespace: str, inputs: dict[str, Any] | None) -> Any:
    """The parsed schema derived for ``window``'s results: ``key`` (null, long, double, string
    or boolean), ``window_start``/``window_end`` as long, one nullable field per aggregation
    (count -> long, avg -> double, other kinds from the input field's type in ``inputs`` when the
    aggregation reads a plain field, else the general union), and ``op`` in changelog mode."""
    fields: list[dict[str, Any]] = [{"name": "key", "type": list(GENERAL)}]
    if window.type != "global":
        fields += [{"name": "window_start", "type": "long"}, {"name": "window_end", "type": "long"}]
    for agg in window.aggregations:
        fields.append({"name": agg.name, "type": _agg_type(agg, inputs or {}), "default": None})
    if window.emit == "changelog":
        fields.append({"name": "op", "type": "string"})
    name = _avro_name(f"{window.id}_result")
    return parse_schema(
        {"type": "record", "name": name, "namespace": _namespace(namespace), "fields": fields},
        f"result schema of window {window.id}",
    )


def _agg_type(agg: AggregationSpec, inputs: dict[str, Any]) -> Any:
    if agg.kind in ("count", "count_distinct"):
        return ["null", "long"]
    if agg.kind == "avg":
        return ["null", "double"]
    known = _plain_type(inputs.get(agg.expr or "")) if agg.kind != "python" else None
    if agg.kind == "sum" and known is not None:
        known = _NUMERIC.get(known)
    if agg.kind == "collect":
        return ["null", {"type": "array", "items": known or list(GENERAL)}]
    return ["null", known] if known else list(GENERAL)


def _plain_type(avro_type: Any) -> str | None:
    """``long`` for ``long``/``int``/``["null", "int"]``, ... ; None for complex types."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    rest = [b for b in branches if b != "null"]
    if len(rest) == 1 and isinstance(rest[0], str) and rest[0] in _PRIMITIVE:
        return _NUMERIC.get(rest[0], rest[0])
    return None


def check_result_schema(parsed: Any, window: WindowSpec) -> list[str]:
    """Problems that keep ``parsed`` from holding ``window``'s results (empty when it fits):
    it must be a record with every result field, and any other field needs a default."""
    fields = record_fields(parsed)
    if not fields:
        return [f"the schema of window {window.id}'s results must be a record"]
    wanted = result_fields(window)
    problems = [f"it has no field '{name}'" for name in wanted if name not in fields]
    defaults = {f["name"] for f in parsed["fields"] if "default" in f}
    extra = [n for n in fields if n not in wanted and n not in defaults]
    problems += [f"field '{name}' is not a result field and has no default" for name in extra]
    return problems


def _avro_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def _namespace(text: str) -> str:
    parts: Sequence[str] = [_avro_name(p) for p in text.split(".") if p]
    return ".".join(["kstream", *parts])


# -- object container files ----------------------------------------------------------------------


class ContainerError(KStreamError):
    """An Avro object container file cannot be written or read: missing, unreadable, not an
    Avro container file, truncated or corrupt."""


class _Counted:
    """Iterates ``records``, counting them and remembering an exception raised by the source
    itself (so that it propagates unchanged instead of looking like a serialisation error)."""

    def __init__(self, records: Iterable[Any]) -> None:
        self._it = iter(records)
        self.count = 0
        self.failure: BaseException | None = None

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self.failure = exc
            raise
        self.count += 1
        return item


def write_container(
    path: str | os.PathLike[str],
    schema: dict[str, Any],
    records: Iterable[dict[str, Any]],
    *,
    metadata: dict[str, str] | None = None,
    codec: str = "deflate",
) -> int:
    """Write ``records`` to a new Avro object container file at ``path`` (created or replaced),
    flushed and fsynced before returning. Returns the number of records written.

    Args:
        schema: the writer schema as a JSON value (a record schema, usually).
        metadata: extra header entries (``kstream.*`` keys by convention).
        codec: ``null`` or ``deflate`` (the codecs every Avro reader supports).

    Raises:
        SchemaError: ``schema`` is not a valid Avro schema.
        RecordError: (``serialize``) a record does not match the schema.
        ContainerError: the file cannot be written.
        Whatever iterating ``records`` raises propagates unchanged.
    """
    parsed = parse_schema(schema, "container schema")
    source = _Counted(records)
    try:
        with open(path, "wb") as fh:
            fastavro.writer(fh, parsed, source, codec=codec, metadata=metadata)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        if exc is source.failure or isinstance(exc, KStreamError | KeyboardInterrupt):
            raise
        if isinstance(exc, OSError):
            raise ContainerError(f"cannot write {path}: {exc.strerror or exc}") from exc
        reason = f"record #{source.count} does not match {schema_name(parsed)}: {_short(exc)}"
        raise RecordError("serialize", reason) from exc
    return source.count


def read_container(path: str | os.PathLike[str]) -> tuple[Any, Iterator[dict[str, Any]]]:
    """The writer schema (plain JSON value) of the Avro object container file at ``path`` and
    an iterator over its records. The header is read now; the records are read lazily (the file
    is opened again on the first ``next`` and closed at the end).

    Raises:
        ContainerError: now, when the file is missing or not an Avro container file; during the
            iteration, when it is truncated or corrupt.
    """
    with _open_container(path) as fh:
        try:
            schema = _public(fastavro.reader(fh).writer_schema)
        except Exception as exc:  # ValueError (bad magic), EOFError, ...
            raise ContainerError(f"{path} is not an Avro container file: {_short(exc)}") from exc
    return schema, _records(path)


def _open_container(path: str | os.PathLike[str]) -> Any:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ContainerError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _records(path: str | os.PathLike[str]) -> Iterator[Any]:
    with _open_container(path) as fh:
        try:
            yield from fastavro.reader(fh)
        except Exception as exc:  # EOFError, zlib.error, ValueError, ...
            raise ContainerError(f"{path} is truncated or corrupt: {_short(exc)}") from exc
