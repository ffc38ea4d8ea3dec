"""``CREATE TABLE`` over Kafka topics: the catalog of a script's tables (Flink's Kafka connector).

A :class:`Table` keeps what the compiler needs: the physical columns with their SQL types, the
computed columns (``name AS expr``), the metadata columns, the rowtime column and its watermark
bound, the primary key and the ``WITH`` options under Flink's names (``connector``, ``topic``,
``format`` / ``value.format`` with its ``avro.*`` / ``avro-confluent.*`` options,
``key.format``, ``properties.*``, ``scan.startup.mode``; the key options are checked in
:mod:`kstream.sql.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from kstream.sql.dialect import MetadataColumn
from kstream.sql.exprs import Untranslatable, interval_ms
from kstream.sql.keys import check_key_options
from kstream.sql.script import SqlIssues

__all__ = ["Column", "Table", "interval_ms", "read_table", "table_of"]

CONNECTORS = ("kafka", "upsert-kafka")
#: the value formats kstream reads or writes: ``json``; ``raw`` (a source table's one STRING
#: column is the whole value); ``debezium-json`` (an updating query's changes, to a ``kafka``
#: table); ``avro`` and ``avro-confluent`` (the schema derived from the physical columns, the
#: options checked: :mod:`kstream.sql.avro_schema`).
FORMATS = ("json", "raw", "debezium-json", "avro", "avro-confluent")


@dataclass(frozen=True)
class Column:
    """A column: ``name``, its SQL type text (``BIGINT``, ``TIMESTAMP_LTZ(3)``, ...) and, for a
    computed column, its expression; for a metadata column, the metadata key."""

    name: str
    type: str
    computed: exp.Expression | None = None
    metadata: str | None = None
    node: exp.Expression | None = None
    #: a view's or subquery's column: the table its expression reads (None: this table)
    base: Table | None = None
    #: a column of records kstream makes (an aggregating view's result): read as the field of
    #: its name, of this type (a ``ColumnRef`` type, e.g. ``ltz`` for epoch ms)
    produced: bool = False
    kind: str | None = None


@dataclass
class Table:
    """One ``CREATE TABLE``: columns in order, options, watermark and key. A view or a subquery
    in FROM is a derived table: its columns are computed over ``base``, ``filters`` are its
    WHERE conditions (each with the table it reads)."""

    name: str
    columns: list[Column] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    rowtime: str | None = None
    watermark_bound_ms: int | None = None
    primary_key: tuple[str, ...] = ()
    node: exp.Expression | None = None
    #: set when a query reads it as a table (a temporal join): the pipeline source's ``table:``
    read_as_table: dict[str, Any] | None = None
    base: Table | None = None
    filters: list[tuple[Table, exp.Expression]] = field(default_factory=list)
    #: the result table of ``kstream sql`` (any query may write it, updating or not)
    is_result: bool = False
    #: an aggregating view (a window aggregation): its query, compiled before each query that
    #: reads the view, over the tables defined before it (:mod:`kstream.sql.query`)
    query: exp.Select | None = None
    query_tables: dict[str, Table] = field(default_factory=dict)

    @property
    def root(self) -> Table:
        """The ``CREATE TABLE`` a derived table reads in the end (itself for a table)."""
        return self.base.root if self.base is not None else self

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (case-insensitive, as Flink's default), else None."""
        for col in self.columns:
            if col.name.lower() == name.lower():
                return col
        return None

    @property
    def topic(self) -> str:
        return self.options.get("topic", "")

    @property
    def format(self) -> str:
        return self.options.get("value.format") or self.options.get("format") or "json"


def table_of(tables: dict[str, Table], node: exp.Expression) -> Table:
    """The table ``node`` (a FROM item) names.

    Raises:
        Untranslatable: not a plain table name, or not defined.
    """
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        raise Untranslatable(node, "this FROM clause is not supported yet")
    table = tables.get(node.name.lower())
    if table is None:
        raise Untranslatable(node, f"table {node.name} is not defined (CREATE TABLE it first)")
    return table


def read_table(issues: SqlIssues, create: exp.Create) -> Table | None:
    """The :class:`Table` of a ``CREATE TABLE``; problems go to ``issues`` (None if fatal)."""
    schema = create.this
    if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
        issues.add(
            create, "CREATE TABLE needs a column list", "CREATE TABLE t (a INT, ...) WITH (...)"
        )
        return None
    table = Table(name=schema.this.name, node=create)
    for item in schema.expressions:
        _read_item(issues, table, item)
    table.options = _options(create)
    _check_options(issues, table)
    check_key_options(issues, table)
    return table


def _read_item(issues: SqlIssues, table: Table, item: exp.Expression) -> None:
    if isinstance(item, exp.ColumnDef):
        table.columns.append(_column(item))
    elif isinstance(item, exp.WatermarkColumnConstraint):
        _watermark(issues, table, item)
    elif isinstance(item, exp.PrimaryKey):
        table.primary_key = tuple(e.name for e in item.expressions)
    else:
        issues.add(item, f"{item.key.upper()} is not supported in CREATE TABLE", "see docs/sql.md")


def _column(item: exp.ColumnDef) -> Column:
    computed = metadata = None
    for constraint in item.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.ComputedColumnConstraint):
            computed = kind.this
        elif isinstance(kind, MetadataColumn):
            metadata = kind.this.name if kind.this is not None else item.name
    kind_node = item.args.get("kind")
    sql_type = kind_node.sql(dialect="hive").upper() if kind_node is not None else ""
    return Column(item.name, sql_type, computed, metadata, item)


def _watermark(issues: SqlIssues, table: Table, item: exp.WatermarkColumnConstraint) -> None:
    column = item.this.name if item.this is not None else ""
    table.rowtime = column
    bound = item.expression
    if isinstance(bound, exp.Column) and bound.name.lower() == column.lower():
        table.watermark_bound_ms = 0
        return
    if (
        isinstance(bound, exp.Sub)
        and isinstance(bound.this, exp.Column)
        and bound.this.name.lower() == column.lower()
        and isinstance(bound.expression, exp.Interval)
    ):
        ms = interval_ms(bound.expression)
        if ms is not None:
            table.watermark_bound_ms = ms
            return
    hint = f"write WATERMARK FOR {column} AS {column} - INTERVAL '5' SECOND (or AS {column})"
    issues.add(bound, "kstream reads only bounded watermarks (rowtime - INTERVAL)", hint)


def _options(create: exp.Create) -> dict[str, str]:
    props = create.args.get("properties")
    options: dict[str, str] = {}
    for prop in props.expressions if props is not None else []:
        if isinstance(prop, exp.Property):
            options[prop.this.name] = prop.args["value"].name
    return options


def _check_options(issues: SqlIssues, table: Table) -> None:
    connector = table.options.get("connector")
    if connector not in CONNECTORS:
        got = f"'{connector}'" if connector else "none"
        issues.add(
            table.node,
            f"table {table.name}: connector {got} is not supported",
            "use 'connector' = 'kafka' or 'upsert-kafka'",
        )
    if not table.topic:
        issues.add(table.node, f"table {table.name}: no 'topic' option", "add 'topic' = '...'")
    if table.format not in FORMATS:
        issues.add(
            table.node,
            f"table {table.name}: format '{table.format}' is not supported yet",
            "use 'format' = 'json', 'avro', 'avro-confluent', 'raw' or 'debezium-json'",
        )
    _check_json_options(issues, table)
    _check_known_options(issues, table)


#: the ``WITH`` options kstream reads (``properties.*`` and the format options are checked
#: apart), and those it takes without effect on the results: a value -> the values taken
#: (None: any)
_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "connector": None,
    "topic": None,
    "format": None,
    "value.format": None,
    "key.format": None,
    "key.fields": None,
    "key.fields-prefix": None,
    "value.fields-include": None,
    "scan.startup.mode": ("earliest-offset", "latest-offset", "group-offsets"),
    "scan.watermark.idle-timeout": None,
    "scan.topic-partition-discovery.interval": None,  # kstream follows the group's assignment
    "sink.partitioner": ("default",),  # Kafka's murmur2 of the key bytes
    "sink.delivery-guarantee": ("exactly-once", "at-least-once"),  # the job's checkpoints
    "sink.transactional-id-prefix": None,  # kstream names its transactional ids per task
    "sink.parallelism": None,  # parallelism comes from the partitions
    "sink.buffer-flush.max-rows": None,  # upsert-kafka: the final table is the same
    "sink.buffer-flush.interval": None,
}
_FORMAT_PREFIXES = ("properties.", "json.", "avro.", "avro-confluent.", "debezium-json.")


def _check_known_options(issues: SqlIssues, table: Table) -> None:
    """Refuse ``WITH`` options kstream does not read, or values it cannot honour, by name:
    an ignored option could change what Flink reads or writes (``'scan.startup.mode' =
    'timestamp'``, ``'topic-pattern'``, ``'scan.bounded.mode'``, ...)."""
    for key, value in table.options.items():
        bare = key.removeprefix("value.").removeprefix("key.")
        if bare.startswith(_FORMAT_PREFIXES) or key.startswith("properties."):
            continue
        if key not in _OPTIONS:
            hint = "use kstream run --bounded" if key == "scan.bounded.mode" else "see docs/sql.md"
            issues.add(table.node, f"table {table.name}: option '{key}' is not supported", hint)
            continue
        allowed = _OPTIONS[key]
        if allowed is not None and value.strip().lower() not in allowed:
            taken = ", ".join(f"'{v}'" for v in allowed)
            what = f"table {table.name}: '{key}' = '{value}' is not supported"
            issues.add(table.node, what, f"kstream takes {taken}")
    if ";" in table.topic:
        what = f"table {table.name}: a list of topics is not supported"
        issues.add(table.node, what, "one topic per table (UNION ALL several tables)")


#: Flink ``json`` format options kstream honours: the name -> the values it takes (None: any,
#: checked where used); the others change what Flink reads or writes, so they are refused
_JSON_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "timestamp-format.standard": None,  # kstream.sql.scope.json_timestamp_standard
    "fail-on-missing-field": ("false",),  # a missing field reads as NULL, as by default
    "ignore-parse-errors": ("false",),  # a record that does not parse is a bad record
    "encode.ignore-null-fields": ("false",),  # NULL columns are written as null
    "encode.decimal-as-plain-number": ("false",),  # 1E-7, as BigDecimal.toString
    "schema-include": ("false",),  # debezium-json: no schema in the envelope
}


def _check_json_options(issues: SqlIssues, table: Table) -> None:
    """Refuse the ``json.*`` and ``debezium-json.*`` (also after ``value.`` / ``key.``)
    options kstream does not honour, or values other than Flink's defaults, by name."""
    for key, value in table.options.items():
        name = key.removeprefix("value.").removeprefix("key.")
        fmt, _, option = name.partition(".")
        if fmt not in ("json", "debezium-json"):
            continue
        allowed = _JSON_OPTIONS.get(option, ())
        if fmt == "debezium-json" and option == "timestamp-format.standard":
            allowed = ("sql",)  # the changelog writer writes Flink's SQL text
        if allowed is not None and value.strip().lower() not in allowed:
            hint = (
                f"kstream reads and writes with Flink's default, '{allowed[0]}'"
                if allowed
                else "kstream does not take this option (docs/sql.md)"
            )
            issues.add(
                table.node, f"table {table.name}: '{key}' = '{value}' is not supported", hint
            )
