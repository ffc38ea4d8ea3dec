"""Avro schemas of a pipeline: schema files (with named-type references), schema texts from a
registry, the schema derived for a window's results, and checks that a given schema can hold them.
Parsing goes through fastavro; its exceptions are translated here, once, into
:class:`SchemaError`. Encoding and decoding records is :mod:`kstream.io.avro`. See
``docs/formats.md``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import fastavro
from fastavro.schema import load_schema as load_schema_with_references

from kstream.errors import UsageError
from kstream.pipeline.spec import (
    AggregationSpec,
    WindowSpec,
)

#: Type of a value whose type cannot be derived (window keys, ``min`` of a JSON field, ...).
GENERAL = ("null", "long", "double", "string", "boolean")
_NUMERIC = {"int": "long", "long": "long", "float": "double", "double": "double"}
_PRIMITIVE = {"boolean", "string", "bytes", *_NUMERIC}
_MESSAGE_LIMIT = 300


class SchemaError(UsageError):
    """An Avro schema file (or registry schema) is missing, not JSON, or not a valid schema."""


def load_schema(ref: str) -> Any:
    """The parsed schema ``ref`` names, as a spec holds it (``schema``, ``writer_schema``,
    ``key_schema``): an inline schema, as its JSON text (starting with ``{``, ``[`` or ``"``:
    a ``schema:`` mapping in a pipeline file, the schema a SQL table derives), or the absolute
    path of a schema file (:func:`load_schema_file`).

    Raises:
        SchemaError: the inline schema is invalid, or the file is missing or invalid.
    """
    if ref[:1] in ("{", "[", '"'):
        return _parse_inline(ref)
    return load_schema_file(ref)


@lru_cache(maxsize=64)
def _parse_inline(text: str) -> Any:
    return parse_schema(text, "inline schema")


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
        return load_schema_with_references(path)
    except Exception as exc:  # fastavro raises many kinds (JSON, unknown type, missing file)
        raise SchemaError(f"invalid Avro schema {path}: {short_error(exc)}") from exc


def parse_schema(schema: str | dict[str, Any] | list[Any], where: str = "schema") -> Any:
    """Parse a schema given as JSON text or as a JSON value.

    Raises:
        SchemaError: not JSON or not a valid Avro schema.
    """
    try:
        value = json.loads(schema) if isinstance(schema, str) else schema
        return fastavro.parse_schema(value)
    except Exception as exc:
        raise SchemaError(f"invalid Avro {where}: {short_error(exc)}") from exc


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
        raise SchemaError(f"invalid Avro {where}: {short_error(exc)}") from exc


def schema_json(parsed: Any) -> str:
    """The schema as plain JSON text (named types expanded, fastavro's private keys removed),
    e.g. to register it with a schema registry."""
    return json.dumps(public_json(parsed), separators=(",", ":"))


def public_json(value: Any) -> Any:
    """A parsed schema (or part of one) without fastavro's private ``__`` keys."""
    if isinstance(value, dict):
        return {k: public_json(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [public_json(v) for v in value]
    return value


def plain(parsed: Any) -> Any:
    """``parsed`` without logical types, for reading and writing: kstream works with the
    underlying values (``timestamp-millis`` as epoch ms, ``date`` as days, ``decimal`` as bytes,
    ``uuid`` as a string) instead of fastavro's datetime, Decimal and UUID objects."""
    public = public_json(parsed)
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


def short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


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
