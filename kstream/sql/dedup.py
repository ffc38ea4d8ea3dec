"""Flink SQL's deduplication: ``ROW_NUMBER() OVER (PARTITION BY k ORDER BY rowtime) = 1``.

::

    SELECT cols FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts [ASC | DESC]) AS rn FROM t
    ) WHERE rn = 1

keeps per key the row with the smallest (``ASC``, keep first) or largest (``DESC``, keep last)
rowtime. On event time Flink's result is an updating table: a row with a smaller rowtime that
arrives later replaces the one emitted before (Flink's ``RowTimeDeduplicateFunction``; equal
rowtimes: keep first keeps the earlier arrival, keep last the later one). It compiles to a
``global`` window per key whose aggregations are ``first`` (``ASC``) or ``last`` (``DESC``) of
each selected column, since kstream's ``first``/``last`` pick by event time with exactly those
ties; the sink must be ``upsert-kafka``. ``rn <= N`` with ``N > 1`` is Top-N (kstream/sql/topn.py).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kstream.sql.avro_schema import is_avro
from kstream.sql.catalog import Table, table_of
from kstream.sql.exprs import Untranslatable
from kstream.sql.scope import Scope, sink_value

__all__ = ["dedup_operators", "is_deduplication", "rank_bound", "row_number", "rowtime_order"]


def dedup_operators(
    select: exp.Select, subquery: exp.Subquery, tables: dict[str, Table], sink: Table, prefix: str
) -> tuple[Table, list[dict[str, Any]]]:
    """The source table and operators of a deduplication query (one that
    :func:`kstream.sql.topn.is_top_n` does not take: ``WHERE rn = 1``, by the rowtime).

    Raises:
        Untranslatable: a subquery that is not a deduplication (Top-N, other windows, ...).
    """
    inner = subquery.this
    if not isinstance(inner, exp.Select) or inner.args.get("joins") or inner.args.get("group"):
        raise Untranslatable(subquery, "a subquery in FROM is supported for deduplication only")
    rank_name, window = row_number(inner)
    source = table_of(tables, inner.args["from_"].this)
    scope = Scope(source)
    keys = [scope.expr(k) for k in window.args.get("partition_by") or []]
    if not keys:
        raise Untranslatable(window, "deduplication needs PARTITION BY the key")
    kind = _order_kind(window, scope)
    ops: list[dict[str, Any]] = []
    where = inner.args.get("where")
    if where is not None:
        ops.append({"id": f"{prefix}where", "filter": scope.text(where.this)})
    aggregate: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for column, item in zip(sink.columns, select.expressions, strict=True):
        node = item.this if isinstance(item, exp.Alias) else item
        text, value_kind = _field(node, rank_name, keys, kind, aggregate, scope)
        fields[column.name] = sink_value(column.type, text, value_kind, is_avro(sink))
    key_expr = keys[0][0] if len(keys) == 1 else "[" + ", ".join(k for k, _ in keys) + "]"
    ops += [
        {"id": f"{prefix}keys", "key_by": key_expr},
        {"id": f"{prefix}dedup", "window": {"type": "global", "aggregate": aggregate}},
        {"id": f"{prefix}select", "map": {"select": [], "fields": fields}},
    ]
    return source, ops


def is_deduplication(subquery: exp.Subquery) -> bool:
    """Whether the subquery selects a ``ROW_NUMBER() OVER (...)`` (deduplication, Top-N)."""
    inner = subquery.this
    return isinstance(inner, exp.Select) and any(
        isinstance(item, exp.Alias) and isinstance(item.this, exp.Window)
        for item in inner.expressions
    )


def row_number(inner: exp.Select) -> tuple[str, exp.Window]:
    """The alias and the OVER clause of the subquery's ROW_NUMBER().

    Raises:
        Untranslatable: no or several ROW_NUMBER()s, or other items than columns and ``*``.
    """
    found = [
        item
        for item in inner.expressions
        if isinstance(item, exp.Alias) and isinstance(item.this, exp.Window)
    ]
    if len(found) != 1 or not isinstance(found[0].this.this, exp.RowNumber):
        raise Untranslatable(inner, "a deduplication subquery has one ROW_NUMBER() OVER (...)")
    for item in inner.expressions:
        if item is not found[0] and not isinstance(item, exp.Star | exp.Column):
            raise Untranslatable(item, "a deduplication subquery selects *, columns and the rank")
    return found[0].alias, found[0].this


def rank_bound(select: exp.Select, rank: str) -> int:
    """``N`` of the outer ``WHERE rn <= N`` (``rn < N + 1``; ``rn = 1`` is 1).

    Raises:
        Untranslatable: no such WHERE, or another condition beside it.
    """
    where = select.args.get("where")
    cond = where.this if where is not None else None
    if (
        isinstance(cond, exp.EQ | exp.LTE | exp.LT)
        and isinstance(cond.this, exp.Column)
        and cond.this.name.lower() == rank.lower()
        and isinstance(cond.expression, exp.Literal)
    ):
        bound = int(cond.expression.name) - (1 if isinstance(cond, exp.LT) else 0)
        if bound >= 1 and (bound == 1 or not isinstance(cond, exp.EQ)):
            return bound
    raise Untranslatable(where or select, f"a rank query needs WHERE {rank} <= N (only)")


def rowtime_order(window: exp.Window, rowtime: str | None) -> str | None:
    """``"first"`` (``ORDER BY rowtime [ASC]``) or ``"last"`` (``DESC``) when the OVER clause
    orders by ``rowtime`` alone (a deduplication), else None (a Top-N)."""
    order = window.args.get("order")
    items = order.expressions if order is not None else []
    if (
        len(items) == 1
        and isinstance(items[0].this, exp.Column)
        and rowtime is not None
        and items[0].this.name.lower() == rowtime.lower()
    ):
        return "last" if items[0].args.get("desc") else "first"
    return None


def _order_kind(window: exp.Window, scope: Scope) -> str:
    kind = rowtime_order(window, scope.table.rowtime)
    if kind is None:
        what = "deduplication orders by the rowtime alone (another order is a Top-N)"
        raise Untranslatable(window.args.get("order") or window, what)
    return kind


def _field(
    node: exp.Expression,
    rank: str,
    keys: list[tuple[str, str | None]],
    kind: str,
    aggregate: dict[str, Any],
    scope: Scope,
) -> tuple[str, str | None]:
    if isinstance(node, exp.Column) and node.name.lower() == rank.lower():
        return "1", "int"
    text, value_kind = scope.expr(node)
    for i, (key, key_kind) in enumerate(keys):
        if key == text:
            return ("key" if len(keys) == 1 else f"key[{i}]"), key_kind
    name = f"a{len(aggregate)}"
    aggregate[name] = {kind: text}
    return name, value_kind
