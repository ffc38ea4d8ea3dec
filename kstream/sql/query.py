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

from kstream.sql.aggregate import CHANGELOG_FORMAT, grouped_operators, window_args
from kstream.sql.catalog import Column, Table, table_of
from kstream.sql.dedup import dedup_operators, is_deduplication
from kstream.sql.derived import derived_table
from kstream.sql.dialect import TableArgument
from kstream.sql.exprs import Untranslatable
from kstream.sql.joins import join_operators
from kstream.sql.keys import raw_column
from kstream.sql.scope import Scope, projection
from kstream.sql.topn import is_top_n, top_n_operators

__all__ = ["CompiledInsert", "aggregated_view", "compile_insert", "is_aggregating"]

_CLAUSES = {
    "order": "ORDER BY",
    "limit": "LIMIT",
    "distinct": "SELECT DISTINCT",
    "with_": "WITH",
}


@dataclass
class CompiledInsert:
    """The pipeline items of one INSERT: the ``sources`` it reads, ``operators`` (pipeline-file
    mappings, in order, each chain's first with its ``from``), the ``last`` node (what the sink
    writes) and the ``sink`` table; ``updating`` when it writes a dynamic table's updates (an
    upsert stream)."""

    sink: Table
    sources: list[Table] = field(default_factory=list)
    operators: list[dict[str, Any]] = field(default_factory=list)
    last: str = ""
    updating: bool = False


def compile_insert(insert: exp.Insert, tables: dict[str, Table], prefix: str) -> CompiledInsert:
    """Compile ``insert``; operator ids start with ``prefix``.

    Raises:
        Untranslatable: a construct kstream does not compile (yet), with its node.
    """
    sink = table_of(tables, insert.this)
    query = insert.expression
    compiled = CompiledInsert(sink)
    if isinstance(query, exp.Union):
        _union(query, tables, compiled, prefix)
    elif isinstance(query, exp.Select):
        _select(query, tables, compiled, prefix)
    else:
        what = query.key.upper()
        raise Untranslatable(query, f"{what} as an INSERT's query is not supported yet")
    _check_sink(insert, sink, compiled)
    if sink.format == CHANGELOG_FORMAT:
        compiled.operators.append(_debezium_rows(prefix, compiled.last))
        compiled.last = compiled.operators[-1]["id"]
    return compiled


def _debezium_rows(prefix: str, last: str) -> dict[str, Any]:
    """The ``map`` writing each row as Flink's ``debezium-json`` writes it: ``+I``/``+U`` as
    ``{"before": null, "after": row, "op": "c"}``, ``-U``/``-D`` as ``{"before": row, "after":
    null, "op": "d"}`` (an append-only query's rows are all ``+I``)."""
    fields = {
        "before": "debezium_image(record, '-')",
        "after": "debezium_image(record, '+')",
        "op": "debezium_op(record)",
    }
    return {"id": f"{prefix}debezium", "from": last, "map": {"select": [], "fields": fields}}


def _union(
    query: exp.Union, tables: dict[str, Table], compiled: CompiledInsert, prefix: str
) -> None:
    """``UNION ALL`` of selects: each compiled on its own, then a ``union`` node (Flink's
    ``UNION ALL`` keeps every row; ``UNION`` removes duplicates: refused)."""
    branches: list[exp.Expression] = []
    pending: list[exp.Expression] = [query]
    while pending:
        node = pending.pop(0)
        if isinstance(node, exp.Union):
            if node.args.get("distinct"):
                raise Untranslatable(node, "UNION (without ALL) is not supported yet")
            pending[:0] = [node.this, node.expression]
        else:
            branches.append(node)
    lasts = []
    for i, branch in enumerate(branches):
        if not isinstance(branch, exp.Select):
            raise Untranslatable(branch, "UNION ALL of selects only")
        _select(branch, tables, compiled, f"{prefix}{i + 1}-")
        if compiled.updating:
            raise Untranslatable(branch, "UNION ALL of updating queries is not supported yet")
        lasts.append(compiled.last)
    compiled.operators.append({"id": f"{prefix}union", "union": lasts})
    compiled.last = f"{prefix}union"


def _select(
    select: exp.Select, tables: dict[str, Table], compiled: CompiledInsert, prefix: str
) -> None:
    """Append one SELECT's chain of operators (reading its table) to ``compiled``."""
    sink = compiled.sink
    _refuse_clauses(select)
    select = _expand_star(select, tables)
    source_node = select.args["from_"].this
    if len(select.expressions) != len(sink.columns):
        got, want = len(select.expressions), len(sink.columns)
        raise Untranslatable(select, f"the query has {got} columns, sink {sink.name} has {want}")
    dedup = isinstance(source_node, exp.Subquery) and is_deduplication(source_node)
    grouped = select.args.get("group") or select.args.get("having")
    if grouped and (select.args.get("joins") or dedup):
        what = "GROUP BY over a join or a deduplication is not supported yet"
        raise Untranslatable(grouped, what)
    if select.args.get("having") and not (select.args.get("group") or _window_call(source_node)):
        raise Untranslatable(select.args["having"], "HAVING without GROUP BY is not supported")
    joins = select.args.get("joins")
    if isinstance(source_node, exp.Subquery) and not dedup and not joins:  # a derived table
        name = source_node.alias_or_name or f"{prefix}subquery"
        tables = {**tables, name.lower(): derived_table(name, source_node.this, tables)}
        source_node = exp.to_table(name)
    sources: list[Table]
    if select.args.get("joins"):
        sources, ops = join_operators(select, tables, sink, prefix)
        compiled.updating = False
        if any(s.query is not None for s in sources):
            raise Untranslatable(select, "a join of an aggregating view is not supported yet")
    elif dedup and is_top_n(select, source_node, tables):
        top_n = top_n_operators(select, source_node, tables, sink, prefix, produced_query)
        source, ops, compiled.updating = top_n
        sources = [source]
    elif dedup:
        source, ops = dedup_operators(select, source_node, tables, sink, prefix)
        sources, compiled.updating = [source], True
    else:
        source, ops, compiled.updating = _table_query(select, source_node, tables, sink, prefix)
        sources = [source]
    if sources[0].base is not None:  # a view: its filters first, reading its table
        ops = _view_filters(sources[0], prefix) + ops
        sources = [sources[0].root]
    if sources[0].query is not None:  # an aggregating view: its operators first
        view_ops, root = _view_operators(sources[0], prefix)
        ops, sources = view_ops + ops, [root]
    if any(s.format == "raw" for s in sources):
        ops = [_raw_row(sources, select, prefix), *ops]
    ops[0].setdefault("from", sources[0].name)
    compiled.sources += [s for s in sources if s not in compiled.sources]
    compiled.operators += ops
    compiled.last = ops[-1]["id"]


def _raw_row(sources: list[Table], select: exp.Select, prefix: str) -> dict[str, Any]:
    """The ``map`` making a ``raw`` table's value (text) the row of its one column (Flink's
    ``raw`` format: the whole value is a single STRING column).

    Raises:
        Untranslatable: a join of a raw table, or a raw table without exactly one column.
    """
    if len(sources) > 1:
        raise Untranslatable(select, "a join of a 'raw' table is not supported yet")
    table = sources[0]
    physical = [c for c in table.columns if c.computed is None and c.metadata is None]
    if len(physical) != 1 or not physical[0].name.isidentifier():
        what = f"a 'raw' table ({table.name}) has exactly one physical column, a plain name"
        raise Untranslatable(table.node or select, what)
    fields = {physical[0].name: "record"}
    return {"id": f"{prefix}raw", "map": {"select": [], "fields": fields}}


def _expand_star(select: exp.Select, tables: dict[str, Table]) -> exp.Select:
    """``SELECT *`` over one table or view: its columns, metadata columns left out (Flink)."""
    if not any(isinstance(e, exp.Star) for e in select.expressions):
        return select
    source = select.args["from_"].this
    if select.args.get("joins") or not isinstance(source, exp.Table) or _window_call(source):
        raise Untranslatable(select, "SELECT * is supported over one table or view (for now)")
    table = table_of(tables, source)
    items: list[exp.Expression] = []
    for item in select.expressions:
        if isinstance(item, exp.Star):
            items += [exp.column(c.name) for c in table.columns if c.metadata is None]
        else:
            items.append(item)
    expanded = select.copy()
    expanded.set("expressions", items)
    return expanded


def _view_filters(view: Table, prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}view-where-{i + 1}", "filter": Scope(table).text(cond)}
        for i, (table, cond) in enumerate(view.filters)
    ]


def _table_query(
    select: exp.Select,
    source_node: exp.Expression,
    tables: dict[str, Table],
    sink: Table,
    prefix: str,
    kinds: dict[str, str | None] | None = None,
) -> tuple[Table, list[dict[str, Any]], bool]:
    window = _window_call(source_node)
    source = table_of(tables, window_args(window)["DATA"].this if window else source_node)
    scope = Scope(source)
    ops: list[dict[str, Any]] = []
    where = select.args.get("where")
    if where is not None:
        ops.append({"id": f"{prefix}where", "filter": scope.text(where.this)})
    if window is not None or select.args.get("group"):
        grouped, updating = grouped_operators(select, window, scope, sink, prefix, kinds)
        return source, ops + grouped, updating
    fields = projection(scope, select, sink)
    ops.append({"id": f"{prefix}select", "map": {"select": [], "fields": fields}})
    return source, ops, False


def is_aggregating(select: exp.Expression) -> bool:
    """Whether a view's query aggregates (GROUP BY, HAVING or a window TVF in FROM)."""
    if not isinstance(select, exp.Select):
        return False
    source = select.args.get("from_")
    windowed = source is not None and _window_call(source.this) is not None
    return bool(select.args.get("group") or select.args.get("having") or windowed)


def aggregated_view(name: str, select: exp.Select, tables: dict[str, Table]) -> Table:
    """``CREATE VIEW name AS`` a window TVF aggregation: a table whose columns are the fields
    of the aggregation's result records (each of the type the query gives it), compiled before
    every query that reads it (Flink's cascading window aggregation). Its ``window_time``
    column, when selected, is its rowtime: the result records carry ``window_end - 1`` (ms) as
    their event time, and the window's watermark reaches the operators after it.

    Raises:
        Untranslatable: not a window TVF aggregation of one table or view, unnamed or
            duplicate columns.
    """
    _refuse_clauses(select)
    source_node = select.args["from_"].this
    if select.args.get("joins") or _window_call(source_node) is None:
        what = "a view that aggregates is supported over a window TVF of one table (yet)"
        raise Untranslatable(select, f"{what}; a non-windowed GROUP BY view is an updating table")
    _, _, _, columns = produced_query(select, tables, f"{name}-", "an aggregating view")
    view = Table(name=name, columns=columns, query=select, query_tables=dict(tables))
    for item, column in zip(select.expressions, columns, strict=True):
        node = _unalias(item)
        if isinstance(node, exp.Column) and node.name.lower() == "window_time":
            view.rowtime = column.name
    return view


def produced_query(
    select: exp.Select, tables: dict[str, Table], prefix: str, what: str
) -> tuple[Table, list[dict[str, Any]], bool, list[Column]]:
    """A select over one table or window TVF compiled so that its result records' fields are
    its columns, kept as computed (timestamps in epoch ms): the table it reads, its operators
    (ids starting with ``prefix``), whether its result is updating, and its columns as
    ``produced`` columns of the type the query gives each (what reads the records: an
    aggregating view's queries, a Top-N's ranking).

    Raises:
        Untranslatable: an unnamed, duplicate or ``*`` column of ``what`` (an aggregating view,
            a ranked aggregation), or what :func:`_table_query` refuses.
    """
    names = [item.alias_or_name for item in select.expressions]
    for item, column in zip(select.expressions, names, strict=True):
        if not column.isidentifier() or names.count(column) > 1 or isinstance(item, exp.Star):
            raise Untranslatable(item, f"name each column of {what} once (AS name)")
    probe = Table(name=prefix, columns=[Column(n, "") for n in names])
    kinds: dict[str, str | None] = {}
    source, ops, updating = _table_query(
        select, select.args["from_"].this, tables, probe, prefix, kinds
    )
    columns = [Column(n, "", produced=True, kind=kinds[n]) for n in names]
    return source, ops, updating, columns


def _view_operators(view: Table, prefix: str) -> tuple[list[dict[str, Any]], Table]:
    """The operators of aggregating ``view``'s query (ids ``<prefix><view>-...``; its result
    records have the view's columns as fields), and the ``CREATE TABLE`` they read."""
    assert view.query is not None
    select = view.query
    sink = Table(name=view.name, columns=[Column(c.name, "") for c in view.columns])
    inner = f"{prefix}{view.name.lower()}-"
    source, ops, _ = _table_query(select, select.args["from_"].this, view.query_tables, sink, inner)
    if source.base is not None:
        ops = _view_filters(source, inner) + ops
        source = source.root
    if source.query is not None:
        more, source = _view_operators(source, inner)
        ops = more + ops
    return ops, source


def _check_sink(insert: exp.Insert, sink: Table, compiled: CompiledInsert) -> None:
    if sink.is_result:
        return
    connector, updating = sink.options.get("connector"), compiled.updating
    if sink.format == "raw":
        raw_column(sink, insert.this)  # one STRING column
    if sink.format == CHANGELOG_FORMAT and connector == "kafka":
        changelog = any(
            op.get("window", {}).get("emit") == "changelog" for op in compiled.operators
        )
        if updating and not changelog:
            what = f"{CHANGELOG_FORMAT} takes the changes of a non-windowed GROUP BY only (yet)"
            raise Untranslatable(insert.this, what)
        return
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
