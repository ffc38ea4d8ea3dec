"""Avro value formats of SQL tables: Flink's ``avro`` and ``avro-confluent``.

The Avro schema of a table is derived from its physical columns (not computed, not metadata)
as Flink's ``AvroSchemaConverter.convertToSchema`` derives it: a record named ``record`` in
namespace ``org.apache.flink.avro.generated``, one field per column in order; a nullable
column is the union ``["null", T]`` with ``"default": null``, a ``NOT NULL`` (or primary key)
column plain ``T``. Types (with Flink's default ``'avro.timestamp_mapping.legacy' = 'true'``):

=====================================  ==================================================
BOOLEAN                                ``boolean``
TINYINT, SMALLINT, INT                 ``int``
BIGINT                                 ``long``
FLOAT, DOUBLE                          ``float``, ``double``
CHAR, VARCHAR, STRING                  ``string``
DECIMAL(p, s)                          ``bytes``, logicalType ``decimal`` (p, s)
TIMESTAMP(p), p <= 3                   ``long``, logicalType ``timestamp-millis``
                                       (not legacy: ``local-timestamp-millis``)
TIMESTAMP_LTZ(p), p <= 3               not legacy only: ``long``, ``timestamp-millis``
=====================================  ==================================================

Every other type (``TIMESTAMP`` without a precision is ``TIMESTAMP(6)``, ``DATE``, ``BYTES``,
...) is refused at compile time. The pipeline gets the schema inline (``schema:`` of the source
or sink); ``avro-confluent`` tables also set the pipeline's ``schema_registry``.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kstream.sql.catalog import Column, Table
from kstream.sql.exprs import Untranslatable
from kstream.sql.keys import key_columns, value_excludes
from kstream.sql.script import SqlIssues

__all__ = [
    "AVRO_FORMATS",
    "avro_type",
    "is_avro",
    "key_format",
    "registry_settings",
    "table_schema",
    "value_format",
]

AVRO_FORMATS = ("avro", "avro-confluent")
NAME = "record"
NAMESPACE = "org.apache.flink.avro.generated"
_T = exp.DataType.Type
_PLAIN: dict[Any, str] = {
    _T.BOOLEAN: "boolean",
    _T.TINYINT: "int",
    _T.SMALLINT: "int",
    _T.INT: "int",
    _T.BIGINT: "long",
    _T.FLOAT: "float",
    _T.DOUBLE: "double",
    _T.CHAR: "string",
    _T.VARCHAR: "string",
    _T.TEXT: "string",
}
#: Flink's default precision of a type written without one
_DEFAULT_PRECISION = {_T.TIMESTAMP: 6, _T.TIMESTAMPLTZ: 6, _T.DECIMAL: 10}
#: the options of each format, after its prefix: ``avro.`` / ``avro-confluent.`` (or
#: ``value.avro.`` ... with ``value.format``); -> the schema registry client setting
_AVRO_OPTIONS = ("encoding", "timestamp_mapping.legacy", "open.fastread")
_REGISTRY_OPTIONS = {  # "": accepted (checked), not a client setting
    "url": "url",
    "subject": "",
    "basic-auth.user-info": "basic.auth.user.info",
    "basic-auth.credentials-source": "basic.auth.credentials.source",
}

_HINT = (
    "Avro columns: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, STRING, "
    "DECIMAL(p, s), TIMESTAMP(3) (see docs/sql.md)"
)


def is_avro(table: Table) -> bool:
    """Whether ``table``'s value format is ``avro`` or ``avro-confluent``."""
    return table.root.format in AVRO_FORMATS


def value_format(issues: SqlIssues, table: Table) -> dict[str, Any]:
    """The keys a pipeline source or sink of ``table`` gets for its value format: ``{}`` for a
    format that is not Avro, else ``{"format": "avro", "schema": <the derived schema>}``.
    Unknown or unsupported format options and columns without an Avro type go to ``issues``."""
    if not is_avro(table):
        return {}
    legacy = _check_options(issues, table, _value_part(table))
    schema = table_schema(issues, table, legacy)
    return {"format": "avro", "schema": schema} if schema is not None else {}


def key_format(issues: SqlIssues, table: Table) -> dict[str, Any]:
    """The ``key_schema`` of a pipeline source or sink of ``table`` whose ``'key.format'`` is
    ``avro`` or ``avro-confluent`` (``{}`` otherwise): a record of the key columns in key
    order, named without ``'key.fields-prefix'``, as Flink derives the key format's schema
    from the key's row type. Unsupported ``key.avro*`` options go to ``issues``."""
    part = _key_part(table)
    if part is None:
        return {}
    legacy = _check_options(issues, table, part)
    prefix = table.options.get("key.fields-prefix", "")
    fields: list[dict[str, Any]] = []
    for name in key_columns(table):
        column = table.column(name)
        if column is None:  # reported by kstream.sql.keys
            return {}
        field = _field(issues, table, column, legacy, column.name.removeprefix(prefix), "key ")
        if field is None:
            return {}
        fields.append(field)
    return {
        "key_schema": {"type": "record", "name": NAME, "namespace": NAMESPACE, "fields": fields}
    }


def table_schema(issues: SqlIssues, table: Table, legacy: bool = True) -> dict[str, Any] | None:
    """The Avro schema (a JSON value) of ``table``'s physical columns (without its key columns
    under ``'value.fields-include' = 'EXCEPT_KEY'``), as described above; None when a column
    has no Avro type (each such column is an issue at its line)."""
    fields: list[dict[str, Any]] = []
    refused = False
    excluded = value_excludes(table)  # EXCEPT_KEY: the key columns are in the key only
    for column in table.columns:
        if column.computed is not None or column.metadata is not None:
            continue
        if column.name.lower() in excluded:
            continue
        field = _field(issues, table, column, legacy, column.name)
        if field is None:
            refused = True
        else:
            fields.append(field)
    if refused:
        return None
    return {"type": "record", "name": NAME, "namespace": NAMESPACE, "fields": fields}


def _field(
    issues: SqlIssues, table: Table, column: Column, legacy: bool, name: str, role: str = ""
) -> dict[str, Any] | None:
    """The Avro record field ``name`` of ``column``: ``["null", T]`` with a null default when
    nullable, else ``T``; None when its type has no Avro mapping (an issue at the column;
    ``role``: ``"key "`` for a key column)."""
    try:
        found = avro_type(column.node.args.get("kind") if column.node else None, legacy)
    except Untranslatable as exc:
        where = column.node or table.node
        issues.add(where, f"table {table.name}: {role}column {column.name} {exc.what}", _HINT)
        return None
    if _nullable(table, column):
        return {"name": name, "type": ["null", found], "default": None}
    return {"name": name, "type": found}


def avro_type(kind: exp.Expression | None, legacy: bool = True) -> Any:
    """The Avro type (a JSON value) of SQL type ``kind`` (a sqlglot ``DataType``).

    Raises:
        Untranslatable: the type has none; ``what`` says why (``"has type DATE, which ..."``).
    """
    if not isinstance(kind, exp.DataType):
        raise Untranslatable(kind, "has no type")
    plain = _PLAIN.get(kind.this)
    if plain is not None:
        return plain
    params = [int(p.name) for p in kind.expressions if p.name.isdigit()]
    precision = params[0] if params else _DEFAULT_PRECISION.get(kind.this, 0)
    shown = kind.sql(dialect="hive").upper()
    if kind.this == _T.DECIMAL:
        scale = params[1] if len(params) > 1 else 0
        return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
    if kind.this in (_T.TIMESTAMP, _T.TIMESTAMPLTZ) and precision > 3:
        what = f"has type {shown}({precision}): kstream writes Avro timestamps of precision 3 (ms)"
        raise Untranslatable(kind, what)
    if kind.this == _T.TIMESTAMP:
        logical = "timestamp-millis" if legacy else "local-timestamp-millis"
        return {"type": "long", "logicalType": logical}
    if kind.this == _T.TIMESTAMPLTZ and not legacy:
        return {"type": "long", "logicalType": "timestamp-millis"}
    if kind.this == _T.TIMESTAMPLTZ:
        what = (
            "has type TIMESTAMP_LTZ, which Flink's legacy Avro timestamp mapping cannot derive "
            "(set 'avro.timestamp_mapping.legacy' = 'false', or declare TIMESTAMP(3))"
        )
        raise Untranslatable(kind, what)
    raise Untranslatable(kind, f"has type {shown}, which has no Avro mapping in kstream")


def _nullable(table: Table, column: Column) -> bool:
    if column.name in table.primary_key:  # Flink: primary key columns are NOT NULL
        return False
    node = column.node
    for constraint in node.args.get("constraints") or [] if node is not None else []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null"):
            return False
    return True


def _prefix(table: Table) -> str:
    return "value." if "value.format" in table.options else ""


#: an Avro part of a table: (option prefix, format, subject suffix ``value`` or ``key``)
_Part = tuple[str, str, str]


def _value_part(table: Table) -> _Part:
    return f"{_prefix(table)}{table.format}.", table.format, "value"


def _key_part(table: Table) -> _Part | None:
    fmt = table.options.get("key.format")
    return (f"key.{fmt}.", fmt, "key") if fmt in AVRO_FORMATS else None


def _avro_parts(table: Table) -> list[_Part]:
    """The Avro parts of ``table``: its value and key formats that are Avro."""
    key = _key_part(table)
    return [*([_value_part(table)] if is_avro(table) else []), *([key] if key else [])]


def _check_options(issues: SqlIssues, table: Table, part: _Part) -> bool:
    """Refuse unknown or unsupported ``avro.*`` / ``avro-confluent.*`` options of ``part``
    (the value's or the key's); the timestamp mapping is legacy (True) unless
    ``avro.timestamp_mapping.legacy`` is ``false``."""
    prefix, fmt, role = part
    known = _AVRO_OPTIONS if fmt == "avro" else tuple(_REGISTRY_OPTIONS)
    for key, value in table.options.items():
        if not key.startswith(prefix):
            continue
        name = key.removeprefix(prefix)
        if name not in known:
            shown = ", ".join(f"'{prefix}{k}'" for k in known)
            issues.add(table.node, f"table {table.name}: option '{key}' is not supported", shown)
        elif name == "encoding" and value.lower() != "binary":
            issues.add(
                table.node,
                f"table {table.name}: '{key}' = '{value}' is not supported",
                "kstream reads and writes Avro's binary encoding",
            )
        elif name == "subject" and value != f"{table.topic}-{role}":
            issues.add(
                table.node,
                f"table {table.name}: '{key}' = '{value}' is not supported",
                f"kstream registers the {role} schema under '{table.topic}-{role}'",
            )
        elif name == "basic-auth.credentials-source" and value.upper() != "USER_INFO":
            issues.add(
                table.node,
                f"table {table.name}: '{key}' = '{value}' is not supported",
                "use 'USER_INFO' with 'basic-auth.user-info'",
            )
    if fmt == "avro-confluent" and not table.options.get(f"{prefix}url"):
        issues.add(
            table.node,
            f"table {table.name}: no '{prefix}url' option",
            f"add '{prefix}url' = 'http://registry:8081'",
        )
    return table.options.get(f"{prefix}timestamp_mapping.legacy", "true").lower() != "false"


def registry_settings(issues: SqlIssues, tables: list[Table]) -> dict[str, str]:
    """The pipeline's ``schema_registry`` client settings from the ``avro-confluent`` tables
    among ``tables`` (``{}`` when there are none). kstream has one registry per pipeline, which
    also frames every Avro value: tables with other registry settings, or ``avro`` tables
    next to ``avro-confluent`` ones, are issues."""
    settings: dict[str, str] = {}
    parts = [(t, part) for t in tables for part in _avro_parts(t)]
    confluent = [(t, prefix) for t, (prefix, fmt, _) in parts if fmt == "avro-confluent"]
    for table, prefix in confluent:
        mine = {
            _REGISTRY_OPTIONS[k.removeprefix(prefix)]: v
            for k, v in table.options.items()
            if k.startswith(prefix) and _REGISTRY_OPTIONS.get(k.removeprefix(prefix))
        }
        if settings and mine != settings:
            hint = "kstream uses one schema registry per job: give every table the same options"
            issues.add(table.node, f"table {table.name}: another schema registry", hint)
        settings = settings or mine
    plain = [t for t, (_, fmt, _) in parts if fmt == "avro"]
    if confluent and plain:
        what = f"table {plain[0].name}: 'avro' next to 'avro-confluent' tables in one job"
        hint = "kstream frames every Avro value of a job with a registry: use one of the two"
        issues.add(plain[0].node, what, hint)
    return settings
