"""Views and subqueries in FROM as derived tables (``CREATE VIEW v AS SELECT ...``).

A projection and filter over one table (no aggregation, join or window) becomes a
:class:`~kstream.sql.catalog.Table` whose columns are computed over the table it reads, the way
a computed column is: a query over the view reads them as their expressions, and the view's
WHERE runs as a filter before the query's own operators. A view keeps its table's rowtime and
watermark when it selects the rowtime column unchanged.
"""

from __future__ import annotations

from sqlglot import exp

from kstream.sql.catalog import Column, Table, table_of
from kstream.sql.exprs import Untranslatable

__all__ = ["derived_table"]

_NOT_A_PROJECTION = ("joins", "group", "having", "order", "limit", "distinct", "with_")


def derived_table(name: str, select: exp.Expression, tables: dict[str, Table]) -> Table:
    """The derived table of ``select`` (a view's or a subquery's query), called ``name``.

    Raises:
        Untranslatable: the query aggregates, joins, reads a window TVF or is not a SELECT.
    """
    if not isinstance(select, exp.Select):
        raise Untranslatable(select, "a view or subquery is a SELECT (UNION: not yet)")
    for arg in _NOT_A_PROJECTION:
        if select.args.get(arg):
            what = "a view or subquery that aggregates, joins or sorts is not supported yet"
            raise Untranslatable(select, what)
    base = table_of(tables, select.args["from_"].this)
    table = Table(name=name, base=base, filters=list(base.filters))
    where = select.args.get("where")
    if where is not None:
        table.filters.append((base, where.this))
    for item in select.expressions:
        table.columns += _columns(item, base)
    kept = table.column(base.rowtime) if base.rowtime is not None else None
    if (
        kept is not None
        and isinstance(kept.computed, exp.Column)
        and kept.computed.name.lower() == (base.rowtime or "").lower()
    ):
        table.rowtime, table.watermark_bound_ms = kept.name, base.watermark_bound_ms
    table.primary_key = base.primary_key
    return table


def _columns(item: exp.Expression, base: Table) -> list[Column]:
    if isinstance(item, exp.Star):
        return [Column(c.name, c.type, exp.column(c.name), base=base) for c in base.columns]
    node = item.this if isinstance(item, exp.Alias) else item
    name = item.alias_or_name
    if not name or (isinstance(item, exp.Column) is False and not isinstance(item, exp.Alias)):
        raise Untranslatable(item, "name every computed column of a view or subquery (AS name)")
    found = base.column(node.name) if isinstance(node, exp.Column) else None
    return [Column(name, found.type if found else "", node, base=base)]
