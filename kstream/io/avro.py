"""Avro records with fastavro: schemaless encoding and decoding with schema resolution, the
Confluent wire format, and object container files (savepoints). Schemas themselves (files,
registry texts, the schema of window results) are :mod:`kstream.pipeline.schemas`.

fastavro's exceptions about data are translated here, once: bad data becomes
:class:`~kstream.errors.RecordError` (stage ``deserialize`` or ``serialize``), a bad container
file :class:`ContainerError`. See ``docs/formats.md``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import fastavro
from fastavro.validation import validate

from kstream.errors import KStreamError, RecordError
from kstream.pipeline.schemas import (
    parse_schema,
    plain,
    public_json,
    record_fields,
    schema_name,
    short_error,
)

#: The Confluent wire format: magic byte 0, the schema id as 4 bytes big-endian, the body.
MAGIC = 0
HEADER_BYTES = 5

Decode = Callable[[bytes], Any]
Encode = Callable[[Any], bytes]


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
            f"{schema_name(reader)}: {short_error(exc)}"
        )
    if isinstance(exc, EOFError):
        return f"truncated Avro body ({schema_name(writer)})"
    if isinstance(exc, IndexError):  # fastavro's resolving reader ran past the end
        return f"truncated or malformed Avro body ({schema_name(writer)}): {short_error(exc)}"
    return f"invalid Avro ({schema_name(writer)}): {name}: {short_error(exc)}"


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
            reason = f"value does not match Avro schema {schema_name(schema)}: {short_error(exc)}"
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
        reason = f"record #{source.count} does not match {schema_name(parsed)}: {short_error(exc)}"
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
            schema = public_json(fastavro.reader(fh).writer_schema)
        except Exception as exc:  # ValueError (bad magic), EOFError, ...
            raise ContainerError(
                f"{path} is not an Avro container file: {short_error(exc)}"
            ) from exc
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
            raise ContainerError(f"{path} is truncated or corrupt: {short_error(exc)}") from exc
