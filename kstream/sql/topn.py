"""Flink SQL's Top-N: ``ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) <= N`` (docs/sql.md).

- **Window Top-N** over a TUMBLE, HOP or CUMULATE aggregation::

      SELECT cols FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY window_start, window_end [, k] ORDER BY c DESC [, ...]) AS rn
        FROM (SELECT window_start, window_end, k2, COUNT(*) AS c
              FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' DAY))
              GROUP BY window_start, window_end, k2)
      ) WHERE rn <= N

  keeps the first ``N`` rows of each window (and ``k``) once, when the window ends: an
  append-only result, as Flink's ``WindowRankOperator``. It compiles to the window aggregation
  (its rows kept as computed: timestamps as epoch ms), a ``key_by`` on the PARTITION BY
  columns, a ``tumbling`` window of the TVF's period (TUMBLE's size, HOP's slide, CUMULATE's
  step) collecting the rows of every window ending with it, a ``flat_map`` ranking them
  (``sql_top_n``) and the projection. A window's results carry timestamp ``window_end - 1`` and
  are emitted before the watermark that fired them moves on, so each falls into the collecting
  window with the same end, never late.
- **Top-N over a non-windowed GROUP BY** (an updating table): the aggregation, a ``key_by`` on
  the partition, a ``top_n`` node whose rows are the GROUP BY keys, and a ``key_by`` on the
  partition and the rank (the result's upsert key).
- **Top-N over a table's rows** (append-only, Flink's ``AppendOnlyTopNFunction``): a
  ``top_n`` node without ``row_key``, which keeps only the ranked rows.

Refused: SESSION windows (no common end grid), no PARTITION BY over an updating input, an
updating Top-N that does not select its rank, ranks by computed columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp

from kstream.expr.sql_rank import RANK_FIELD
from kstream.sql.catalog import Column, Table, table_of
from kstream.sql.dedup import rank_bound, row_number, rowtime_order
from kstream.sql.exprs import Untranslatable
from kstream.sql.scope import Scope, projection

__all__ = ["is_top_n", "top_n_operators"]

#: :func:`kstream.sql.query.produced_query` (passed in: query.py imports this module)
ProducedQuery = Callable[
    [exp.Select, dict[str, Table], str, str],
    tuple[Table, list[dict[str, Any]], bool, list[Column]],
]
_PERIOD = {"tumbling": "size", "sliding": "slide", "cumulate": "step"}


def is_top_n(select: exp.Select, subquery: exp.Subquery, tables: dict[str, Table]) -> bool:
    """Whether a ``ROW_NUMBER()`` subquery is a Top-N: it ranks the rows of an aggregation, or
    keeps more than one row, or orders by something else than the rowtime; else it is a
    deduplication (kstream/sql/dedup.py).

    Raises:
        Untranslatable: no or several ROW_NUMBER()s, no ``WHERE rn <= N``.
    """
    inner = subquery.this
    if not isinstance(inner, exp.Select) or isinstance(inner.args["from_"].this, exp.Subquery):
        return isinstance(inner, exp.Select)
    rank_name, over = row_number(inner)
    rowtime = table_of(tables, inner.args["from_"].this).rowtime
    return rank_bound(select, rank_name) > 1 or rowtime_order(over, rowtime) is None


def top_n_operators(
    select: exp.Select,
    subquery: exp.Subquery,
    tables: dict[str, Table],
    sink: Table,
    prefix: str,
    produced_query: ProducedQuery,
) -> tuple[Table, list[dict[str, Any]], bool]:
    """The source table, the operators of a Top-N query, and whether its result is updating
    (a Top-N over a non-windowed GROUP BY).

    Raises:
        Untranslatable: a rank over something else than a window TVF or GROUP BY aggregation,
            PARTITION BY without the window columns, an ORDER BY of expressions, a condition
            beside ``rn``, an updating Top-N that does not select its rank.
    """
    inner = subquery.this
    rank_name, over = row_number(inner)
    bound = rank_bound(select, rank_name)
    over_table = not isinstance(inner.args["from_"].this, exp.Subquery)
    for arg in ("joins", "group") if over_table else ("where", "joins", "group"):
        if inner.args.get(arg):
            raise Untranslatable(inner, "a Top-N subquery selects *, columns and the rank only")
    if over_table:
        source, ops = _table_top_n(select, inner, over, rank_name, bound, tables, sink, prefix)
        return source, ops, True
    aggregated = inner.args["from_"].this.this
    if not isinstance(aggregated, exp.Select) or not aggregated.args.get("group"):
        raise Untranslatable(inner, "Top-N ranks the rows of an aggregation (for now)")
    source, ops, updating, produced = produced_query(
        aggregated, tables, f"{prefix}agg-", "a ranked aggregation"
    )
    window = next((op["window"] for op in ops if "window" in op), {"type": "global"})
    if not updating and window["type"] not in _PERIOD:
        what = "Top-N is supported over a TUMBLE, HOP or CUMULATE aggregation (yet)"
        raise Untranslatable(inner.args["from_"].this, what)
    rank = Column(rank_name, "", produced=True, kind="int")
    scope = Scope(Table(name=f"{prefix}ranked", columns=[*produced, rank]))
    if updating:
        rows = _row_fields(aggregated)
        ops += _updating_rank(select, over, scope, (rank_name, rows), bound, prefix)
    else:
        ops += _window_rank(over, scope, window, bound, prefix)
    fields = projection(scope, select, sink)
    ops.append({"id": f"{prefix}select", "map": {"select": [], "fields": fields}})
    return source, ops, updating


def _window_rank(
    over: exp.Window, scope: Scope, window: dict[str, Any], bound: int, prefix: str
) -> list[dict[str, Any]]:
    """``key_by`` the partition, collect each window end's rows, rank them, flatten the rows."""
    partition = _partition(over, scope)
    if not {"window_start", "window_end"} <= {p.lower() for p in partition}:
        raise Untranslatable(over, "window Top-N needs PARTITION BY window_start, window_end")
    items = _order(over, scope)
    collect = {"type": "tumbling", "size": window[_PERIOD[window["type"]]]}
    if window.get("offset"):
        collect["offset"] = window["offset"]
    collect["aggregate"] = {"rows": {"collect": "record"}}
    flat = {f"{c.name}": f'rows["{c.name}"]' for c in scope.table.columns[:-1]}
    flat[scope.table.columns[-1].name] = f'rows["{RANK_FIELD}"]'
    return [
        {"id": f"{prefix}rank-keys", "key_by": _list(partition)},
        {"id": f"{prefix}rank-collect", "window": collect},
        {
            "id": f"{prefix}rank",
            "flat_map": {
                "explode": f"sql_top_n(rows, {bound}, '{', '.join(items)}')",
                "as": "rows",
            },
        },
        {"id": f"{prefix}ranked", "map": {"select": [], "fields": flat}},
    ]


def _table_top_n(
    select: exp.Select,
    inner: exp.Select,
    over: exp.Window,
    rank: str,
    bound: int,
    tables: dict[str, Table],
    sink: Table,
    prefix: str,
) -> tuple[Table, list[dict[str, Any]]]:
    """Top-N over a table's rows (Flink's ``AppendOnlyTopNFunction``): each record a row of its
    own, the first N per partition kept and written as they change (an updating result)."""
    source = table_of(tables, inner.args["from_"].this)
    scope = Scope(source, extra={rank.lower(): (rank, "int")})
    ops: list[dict[str, Any]] = []
    where = inner.args.get("where")
    if where is not None:
        ops.append({"id": f"{prefix}where", "filter": scope.text(where.this)})
    ops += _updating_rank(select, over, scope, (rank, None), bound, prefix)
    fields = projection(scope, select, sink)
    ops.append({"id": f"{prefix}select", "map": {"select": [], "fields": fields}})
    return source, ops


def _updating_rank(
    select: exp.Select,
    over: exp.Window,
    scope: Scope,
    ranking: tuple[str, list[str] | None],
    bound: int,
    prefix: str,
) -> list[dict[str, Any]]:
    """``key_by`` the partition, ``top_n`` over the rows (``ranking``: the rank's name and the
    fields naming a row, None for rows that never update), then ``key_by`` the partition and
    the rank: the upsert key of the result."""
    partition = _partition(over, scope)
    if not partition:
        raise Untranslatable(over, "Top-N over an updating table needs PARTITION BY (yet)")
    rank, rows = ranking
    selected = (c for item in select.expressions for c in item.find_all(exp.Column))
    if not any(c.name.lower() == rank.lower() for c in selected):
        what = f"Top-N over an updating table must select its rank {rank} (its upsert key)"
        raise Untranslatable(select, what)
    top: dict[str, Any] = {"n": bound, "order": _order(over, scope)}
    if rows is not None:
        top["row_key"] = _list(rows)
    return [
        {"id": f"{prefix}rank-keys", "key_by": _list(partition)},
        {"id": f"{prefix}rank", "top_n": top | {"rank": rank}},
        {"id": f"{prefix}rank-upsert-keys", "key_by": _list([*partition, rank])},
    ]


def _row_fields(aggregated: exp.Select) -> list[str]:
    """The aggregation's columns that are its GROUP BY keys (a row of the updating table)."""
    fields = []
    for key in aggregated.args["group"].expressions:
        item = next(
            (
                i
                for i in aggregated.expressions
                if (i.this if isinstance(i, exp.Alias) else i) == key
            ),
            None,
        )
        if item is None or not item.alias_or_name.isidentifier():
            what = "a ranked aggregation selects each GROUP BY key under a plain name"
            raise Untranslatable(key, what)
        fields.append(item.alias_or_name)
    return fields


def _partition(over: exp.Window, scope: Scope) -> list[str]:
    return [_column_field(node, scope) for node in over.args.get("partition_by") or []]


def _order(over: exp.Window, scope: Scope) -> list[str]:
    """The ORDER BY of a rank as order items ``"field DESC NULLS LAST"``."""
    order = over.args.get("order")
    if order is None:
        raise Untranslatable(over, "Top-N needs ORDER BY in its OVER (...)")
    return [
        f"{_column_field(o.this, scope)} {'DESC' if o.args.get('desc') else 'ASC'} "
        f"NULLS {'FIRST' if o.args.get('nulls_first') else 'LAST'}"
        for o in order.expressions
    ]


def _list(fields: list[str]) -> str:
    return fields[0] if len(fields) == 1 else "[" + ", ".join(fields) + "]"


def _column_field(node: exp.Expression, scope: Scope) -> str:
    """The field of a plain column of the ranked rows (Flink ranks by columns)."""
    found = scope.table.column(node.name) if isinstance(node, exp.Column) else None
    if found is None or found.computed is not None:
        what = "a rank's PARTITION BY and ORDER BY name columns (not computed ones, yet)"
        raise Untranslatable(node, what)
    name = found.name
    if not name.isidentifier():
        raise Untranslatable(node, f"a rank column is a plain name (not {name!r}) for now")
    return name
