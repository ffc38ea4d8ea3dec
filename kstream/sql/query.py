"""``INSERT INTO sink SELECT ...`` compiled to the pipeline file's operators (docs/sql.md).

The query shapes that compile today:

- a projection with an optional ``WHERE`` over one table: ``filter`` then ``map``;
- a window TVF aggregation or a non-windowed ``GROUP BY`` (:mod:`kstream.sql.aggregate`).

The SELECT list maps to the sink's columns by position, as in Flink; each value is written as
Flink's ``json`` format writes the sink column's type (:func:`~kstream.sql.scope.sink_value`).
Every other construct is refused by name at its position
(:class:`~kstream.sql.exprs.Untranslatable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from kstream.sql.aggregate import grouped_operators, window_args
from kstream.sql.catalog import Table
from kstream.sql.dialect import TableArgument
from kstream.sql.exprs import Untranslatable
from kstream.sql.scope import Scope, sink_value

__all__ = ["CompiledInsert", "compile_insert"]

_CLAUSES = {
    "joins": "JOIN",
    "having": "HAVING",
    "order": "ORDER BY",
    "limit": "LIMIT",
    "distinct": "SELECT DISTINCT",
    "with_": "WITH",
}


@dataclass
class CompiledInsert:
    """The pipeline items of one INSERT: the ``source`` table, ``operators`` (pipeline-file
    mappings, in order) and the ``sink`` table; ``updating`` when it writes a dynamic table's
    updates (an upsert stream)."""

    source: Table
    sink: Table
    operators: list[dict[str, Any]] = field(default_factory=list)
    updating: bool = False


def compile_insert(insert: exp.Insert, tables: dict[str, Table], prefix: str) -> CompiledInsert:
    """Compile ``insert``; operator ids start with ``prefix``.

    Raises:
        Untranslatable: a construct kstream does not compile (yet), with its node.
    """
    sink = _table(tables, insert.this)
    select = insert.expression
    if not isinstance(select, exp.Select):
        what = select.key.upper()
        raise Untranslatable(select, f"{what} as an INSERT's query is not supported yet")
    _refuse_clauses(select)
    source_node = select.args["from_"].this
    window = _window_call(source_node)
    source = _table(tables, window_args(window)["DATA"].this if window else source_node)
    if len(select.expressions) != len(sink.columns):
        got, want = len(select.expressions), len(sink.columns)
        raise Untranslatable(select, f"the query has {got} columns, sink {sink.name} has {want}")
    scope = Scope(source)
    compiled = CompiledInsert(source, sink)
    where = select.args.get("where")
    if where is not None:
        compiled.operators.append({"id": f"{prefix}where", "filter": scope.text(where.this)})
    if window is not None or select.args.get("group"):
        ops, compiled.updating = grouped_operators(select, window, scope, sink, prefix)
        compiled.operators += ops
    else:
        fields = {
            c.name: sink_value(c.type, *scope.expr(_unalias(e)))
            for c, e in zip(sink.columns, select.expressions, strict=True)
        }
        compiled.operators.append(
            {"id": f"{prefix}select", "map": {"select": [], "fields": fields}}
        )
    _check_sink(insert, sink, compiled.updating)
    return compiled


def _check_sink(insert: exp.Insert, sink: Table, updating: bool) -> None:
    connector = sink.options.get("connector")
    if updating and connector != "upsert-kafka":
        hint = "write it to an 'upsert-kafka' table with a PRIMARY KEY, as Flink requires"
        what = f"table {sink.name} ('{connector}') cannot take a dynamic table's updates"
        raise Untranslatable(insert.this, f"{what} ({hint})")
    if connector == "upsert-kafka" and not sink.primary_key:
        raise Untranslatable(insert.this, f"upsert-kafka table {sink.name} needs a PRIMARY KEY")


def _refuse_clauses(select: exp.Select) -> None:
    for arg, what in _CLAUSES.items():
        value = select.args.get(arg)
        if value:
            node = value[0] if isinstance(value, list) else value
            raise Untranslatable(node, f"{what} is not supported yet")


def _table(tables: dict[str, Table], node: exp.Expression) -> Table:
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        raise Untranslatable(node, "this FROM clause is not supported yet")
    table = tables.get(node.name.lower())
    if table is None:
        raise Untranslatable(node, f"table {node.name} is not defined (CREATE TABLE it first)")
    return table


def _window_call(node: exp.Expression) -> exp.Anonymous | None:
    """The window TVF call of ``FROM TABLE(TUMBLE(...))``, else None."""
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous):
        outer = node.this
        if str(outer.this).upper() == "TABLE" and outer.expressions:
            call = outer.expressions[0]
            if isinstance(call, exp.Anonymous) and isinstance(
                window_args(call).get("DATA"), TableArgument
            ):
                return call
        raise Untranslatable(node, "only window TVFs (TUMBLE, HOP, SESSION) read FROM TABLE(...)")
    return None


def _unalias(node: exp.Expression) -> exp.Expression:
    return node.this if isinstance(node, exp.Alias) else node
