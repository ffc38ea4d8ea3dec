"""The Kafka key of a Flink SQL table, as Flink's Kafka connectors encode it (docs/sql.md).

- ``kafka`` tables: ``'key.format'`` (``json``: an object of the key columns; ``raw``: one
  STRING column as its text) with ``'key.fields' = 'a;b'`` (physical columns, in that order);
  without ``'key.format'`` kstream writes its own key (the ``key_by`` key) where Flink writes
  none.
- ``upsert-kafka`` tables: the ``PRIMARY KEY`` columns (in its order) in ``'key.format'``.
- ``'key.fields-prefix'``: the key's names are the key columns without it (Flink requires
  ``'value.fields-include' = 'EXCEPT_KEY'`` with it); ``'value.fields-include'``: ``ALL`` (the
  default: the value has every column) or ``EXCEPT_KEY`` (the key columns only in the key).

A sink writes the key with the pipeline sink's ``key_fields`` (docs/pipeline.md); a source
with ``EXCEPT_KEY`` reads the key columns from the key with the source's ``key_fields``
(with ``ALL`` Flink reads every column from the value, and so does kstream, except that an
``upsert-kafka`` table's tombstones delete the row of their key's PRIMARY KEY columns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from kstream.sql.exprs import Untranslatable
from kstream.sql.script import SqlIssues

if TYPE_CHECKING:
    from kstream.sql.catalog import Column, Table

__all__ = [
    "KEY_FORMATS",
    "STRING_TYPES",
    "check_key_options",
    "is_text",
    "key_columns",
    "raw_column",
    "sink_key",
    "sink_value",
    "source_key",
    "value_excludes",
]

#: Flink key formats kstream writes and reads, and the pipeline ``key_format`` of each
KEY_FORMATS = {"json": "json", "raw": "string", "avro": "avro", "avro-confluent": "avro"}
_VALUE_FIELDS = ("ALL", "EXCEPT_KEY")
STRING_TYPES = ("STRING", "VARCHAR", "CHAR")


def is_text(column: Column) -> bool:
    """Whether ``column`` is of a character type (``STRING``, ``VARCHAR(n)``, ``CHAR(n)``)."""
    return column.type.split("(")[0] in STRING_TYPES


def key_columns(table: Table) -> tuple[str, ...]:
    """The table's key columns: the PRIMARY KEY of an ``upsert-kafka`` table, the
    ``'key.fields'`` of a ``kafka`` table (empty: no key format)."""
    if table.options.get("connector") == "upsert-kafka":
        return table.primary_key if table.options.get("key.format") else ()
    fields = table.options.get("key.fields", "")
    return tuple(f.strip() for f in fields.split(";") if f.strip())


def check_key_options(issues: SqlIssues, table: Table) -> None:
    """Report key options kstream cannot honour (or Flink refuses) at the table's position."""
    options, where = table.options, table.node
    upsert = options.get("connector") == "upsert-kafka"
    fmt = options.get("key.format")
    if upsert and "key.fields" in options:
        hint = "the key of an upsert-kafka table is its PRIMARY KEY"
        issues.add(where, f"table {table.name}: 'key.fields' is not an upsert-kafka option", hint)
    elif upsert and fmt is None:
        hint = "add 'key.format' = 'json' (or 'raw' for one STRING column), as Flink requires"
        issues.add(where, f"table {table.name}: an upsert-kafka table needs 'key.format'", hint)
    elif not upsert and (fmt is None) != ("key.fields" not in options):
        what = "'key.format' and 'key.fields' go together"
        issues.add(where, f"table {table.name}: {what}", "set both, or neither")
    if fmt is not None and fmt not in KEY_FORMATS:
        what = f"table {table.name}: key format '{fmt}' is not supported yet"
        issues.add(
            where,
            what,
            "use 'key.format' = 'json', 'avro', 'avro-confluent' or 'raw' (one STRING column)",
        )
    _check_value_fields(issues, table)
    columns = key_columns(table) if fmt in KEY_FORMATS else ()
    _check_columns(issues, table, columns, fmt)
    if columns and table.format == "debezium-json":
        what = f"table {table.name}: a key format with 'debezium-json' values"
        issues.add(where, f"{what} is not supported yet", "remove 'key.format' and 'key.fields'")


def _check_value_fields(issues: SqlIssues, table: Table) -> None:
    include = table.options.get("value.fields-include", "ALL").upper()
    prefix = table.options.get("key.fields-prefix", "")
    if include not in _VALUE_FIELDS:
        hint = "use 'ALL' or 'EXCEPT_KEY'"
        issues.add(table.node, f"table {table.name}: 'value.fields-include' is {include}", hint)
    elif prefix and include == "ALL":
        hint = "set 'value.fields-include' = 'EXCEPT_KEY', as Flink requires"
        issues.add(table.node, f"table {table.name}: a key prefix needs EXCEPT_KEY", hint)
    if include == "EXCEPT_KEY" and not table.options.get("key.format"):
        what = f"table {table.name}: 'value.fields-include' = 'EXCEPT_KEY' without a key format"
        issues.add(table.node, what, "add 'key.format' and the key columns")


def _check_columns(
    issues: SqlIssues, table: Table, columns: tuple[str, ...], fmt: str | None
) -> None:
    prefix = table.options.get("key.fields-prefix", "")
    for name in columns:
        column = table.column(name)
        if column is None or column.computed is not None or column.metadata is not None:
            what = f"table {table.name}: key column {name} is not a physical column"
            issues.add(table.node, what, "a key column is a regular column of the table")
        elif not name.startswith(prefix):
            what = f"table {table.name}: key column {name} does not start with '{prefix}'"
            issues.add(table.node, what, "name it with the 'key.fields-prefix'")
        elif fmt == "raw" and not is_text(column):
            what = f"table {table.name}: a 'raw' key of a {column.type} column"
            hint = "kstream writes a raw key of one STRING column: use 'key.format' = 'json'"
            issues.add(table.node, f"{what} is not supported yet", hint)
    if fmt == "raw" and len(columns) > 1:
        what = f"table {table.name}: a 'raw' key holds one column, not {len(columns)}"
        issues.add(table.node, what, "use 'key.format' = 'json'")


def _except_key(table: Table) -> bool:
    return table.options.get("value.fields-include", "ALL").upper() == "EXCEPT_KEY"


def value_excludes(table: Table) -> frozenset[str]:
    """The columns left out of ``table``'s value (lower case): its key columns under
    ``'value.fields-include' = 'EXCEPT_KEY'``, else none (Flink's value projection)."""
    if not _except_key(table):
        return frozenset()
    return frozenset(c.lower() for c in key_columns(table))


def _key_options(table: Table, columns: tuple[str, ...]) -> dict[str, Any]:
    """``key_format``, ``key_fields`` (``columns``) and ``key_fields_prefix`` of ``table``."""
    options: dict[str, Any] = {
        "key_format": KEY_FORMATS[table.options["key.format"]],
        "key_fields": list(columns),
    }
    if table.options.get("key.fields-prefix"):
        options["key_fields_prefix"] = table.options["key.fields-prefix"]
    return options


def sink_key(table: Table) -> dict[str, Any]:
    """The pipeline sink's key options of ``table`` (none without a key format)."""
    columns = key_columns(table)
    if not columns:
        return {}
    options = _key_options(table, columns)
    if _except_key(table):
        options["value_fields_include"] = "except_key"
    return options


def source_key(table: Table) -> dict[str, Any]:
    """The pipeline source's key options of ``table``: with ``EXCEPT_KEY`` the key columns
    are read from the key; with ``ALL`` from the value, as Flink does (none), except for an
    ``upsert-kafka`` table, whose tombstones are rows of their key: its key columns are read
    from the key (the same values as in the value, as Flink writes an upsert topic)."""
    columns = key_columns(table)
    upsert = table.options.get("connector") == "upsert-kafka"
    if not columns or not (_except_key(table) or upsert):
        return {}
    return _key_options(table, columns)


def raw_column(table: Table, where: exp.Expression | None = None) -> str:
    """The one column a ``raw`` sink table writes as its whole value (UTF-8 text): its one
    physical ``STRING`` column besides its key columns under ``EXCEPT_KEY`` (Flink's raw
    format holds one column).

    Raises:
        Untranslatable: not exactly one such column, or not a STRING.
    """
    excluded = value_excludes(table)
    physical = [
        c
        for c in table.columns
        if c.computed is None and c.metadata is None and c.name.lower() not in excluded
    ]
    if len(physical) != 1 or physical[0].type.split("(")[0] not in ("STRING", "VARCHAR"):
        what = f"a 'raw' sink ({table.name}) writes exactly one STRING column as its value"
        raise Untranslatable(where or table.node, what)
    return physical[0].name


def sink_value(table: Table) -> dict[str, Any]:
    """The pipeline sink's value keys of a ``raw`` table: its one column's text as the whole
    value (``format: string``, ``value_field``); ``{}`` for other formats."""
    if table.format != "raw":
        return {}
    return {"format": "string", "value_field": raw_column(table)}
