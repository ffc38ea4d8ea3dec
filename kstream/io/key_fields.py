"""``key_fields`` of sources and sinks: the Kafka key as named fields of the value, as Flink's
Kafka connectors write and read it (``'key.fields'``, ``'key.fields-prefix'``,
``'value.fields-include'``; docs/pipeline.md, "Sources" and "Sinks").

A sink's key is built from the value: with ``key_format: json`` (or ``avro``, a record of the
key schema) the object ``{name: value}`` of the fields in ``key_fields`` order (``name``: the
field without ``key_fields_prefix``), with ``string`` or ``bytes`` the one field's value. A
tombstone (a null value) has no fields: its key fields are the record's key, a list of one
value per field in ``key_fields`` order (the key itself for one field), as the ``key_by``
before it made it. With ``value_fields_include: except_key`` the value written leaves the key
fields out.

A source's ``key_fields`` are set on the value from the decoded key: a JSON object's fields
(by the name without the prefix; a missing one is null), or the whole key for one field. A
tombstone (a table's null value) has no fields: its key becomes the key fields' values, a list
in ``key_fields`` order (one field: its value), the key a table's ``key`` expression gives its
rows when it names the key fields in that order (``key: "[carrier, origin]"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.errors import RecordError
from kstream.pipeline.spec import SinkSpec, SourceSpec

__all__ = [
    "OBJECT_KEY_FORMATS",
    "Project",
    "ReadKey",
    "key_reader",
    "sink_projection",
    "tombstone_key",
]

#: key formats whose key is a record of the key fields (a JSON object, an Avro record)
OBJECT_KEY_FORMATS = ("json", "avro")

#: ``project(key, value) -> (key, value)``: the key and value a sink writes
Project = Callable[[Any, Any], tuple[Any, Any]]
#: ``read(value, key) -> value``: the value with the source's key fields set from the key
ReadKey = Callable[[Any, Any], Any]


def sink_projection(sink: SinkSpec) -> Project | None:
    """The function giving the key (and value) ``sink`` writes, None without ``key_fields``
    and ``value_field`` (the value written is that field of the value alone).

    The function raises :class:`~kstream.errors.RecordError` (stage ``serialize``) for a value
    that is not an object, or a tombstone whose key does not hold one value per key field.
    """
    fields = sink.key_fields
    if not fields:
        return _value_field(sink.value_field)
    names = [f.removeprefix(sink.key_fields_prefix) for f in fields]
    only = sink.value_field
    as_object = sink.key_format in OBJECT_KEY_FORMATS
    except_key = sink.value_fields_include == "except_key"

    def project(key: Any, value: Any) -> tuple[Any, Any]:
        if value is None:
            return _tombstone_key(key, names, as_object), None
        if not isinstance(value, dict):
            what = type(value).__name__
            raise RecordError("serialize", f"key_fields need an object value, got {what}")
        written: Any
        if as_object:
            written = {name: value.get(f) for name, f in zip(names, fields, strict=True)}
        else:
            written = value.get(fields[0])
        if except_key:
            value = {k: v for k, v in value.items() if k not in fields}
        return written, (value if only is None else value.get(only))

    return project


def _value_field(field: str | None) -> Project | None:
    """The projection of a sink with a ``value_field`` and no ``key_fields``: the key as it is,
    the value that field alone (None when missing: a tombstone, as Flink's ``raw`` writes a
    null)."""
    if field is None:
        return None

    def project(key: Any, value: Any) -> tuple[Any, Any]:
        if value is None:
            return key, None
        if not isinstance(value, dict):
            what = type(value).__name__
            raise RecordError("serialize", f"value_field needs an object value, got {what}")
        return key, value.get(field)

    return project


def _tombstone_key(key: Any, names: list[str], as_object: bool) -> Any:
    """A tombstone's key fields: its record key, paired with ``names`` by position."""
    if len(names) == 1:
        return {names[0]: key} if as_object else key
    if not isinstance(key, list | tuple) or len(key) != len(names):
        want = f"a list of {len(names)} values ({', '.join(names)})"
        raise RecordError("serialize", f"a tombstone's key must be {want}, got {key!r:.80}")
    return dict(zip(names, key, strict=True))


def key_reader(source: SourceSpec) -> ReadKey | None:
    """The function setting ``source``'s key fields on a value, None without ``key_fields``.

    The function raises :class:`~kstream.errors.RecordError` (stage ``deserialize``) for a
    value that is not an object, or a JSON key that is neither an object nor null.
    """
    fields = source.key_fields
    if not fields:
        return None
    names = [(f, f.removeprefix(source.key_fields_prefix)) for f in fields]
    as_object = source.key_format in OBJECT_KEY_FORMATS

    def read(value: Any, key: Any) -> Any:
        if not isinstance(value, dict):
            what = type(value).__name__
            raise RecordError("deserialize", f"key_fields need an object value, got {what}")
        out = dict(value)
        if not as_object:
            out[fields[0]] = key
            return out
        if key is not None and not isinstance(key, dict):
            what = type(key).__name__
            raise RecordError("deserialize", f"key_fields need a JSON object key, got {what}")
        for field, name in names:
            out[field] = key.get(name) if key is not None else None
        return out

    return read


def tombstone_key(source: SourceSpec) -> Callable[[Any], Any] | None:
    """The function giving a tombstone's key from its decoded key: the key fields' values (see
    the module docstring); None when the key stays as decoded (no ``key_fields``, or a
    ``string``/``bytes`` key: the one field's value already).

    The function raises :class:`~kstream.errors.RecordError` (stage ``deserialize``) for a
    JSON key that is neither an object nor null.
    """
    if not source.key_fields or source.key_format not in OBJECT_KEY_FORMATS:
        return None
    names = [f.removeprefix(source.key_fields_prefix) for f in source.key_fields]

    def key_of(key: Any) -> Any:
        if key is None:
            return None
        if not isinstance(key, dict):
            what = type(key).__name__
            raise RecordError("deserialize", f"key_fields need a JSON object key, got {what}")
        values = [key.get(name) for name in names]
        return values[0] if len(values) == 1 else values

    return key_of
