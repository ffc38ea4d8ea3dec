"""Flink SQL's interval join compiled to a pipeline ``join`` (docs/sql.md, docs/joins.md).

::

    SELECT ... FROM flights f [LEFT | RIGHT | FULL] JOIN weather w
      ON f.origin = w.origin
     AND w.ts BETWEEN f.ts - INTERVAL '30' MINUTE AND f.ts + INTERVAL '30' MINUTE

(or ``FROM flights f, weather w WHERE ...``). The equalities between the two sides are the join
key; the bounds on the rowtimes, in any form (``BETWEEN``, ``>=``, ``<``, ...), become
``between: [lo, hi]`` on ``right.ts - left.ts`` (a strict bound moves by 1 ms, as Flink's
``IntervalJoinOperator`` bounds are inclusive). The join emits a flattened row (``l__c`` for
the left table's columns, ``r__c`` for the right's, null for a missing outer side), which the
WHERE filter (inner joins also take other ON conditions there) and the projection to the
sink's columns read. ``FOR SYSTEM_TIME AS OF l.proc_time`` (a ``PROCTIME()`` column) is a lookup
join on a broadcast table. An inner join without time bounds of two append-only tables is Flink's
regular join: every pair of rows with equal keys, whenever each arrives, so it compiles to an
interval join whose bounds (``REGULAR_JOIN_BOUND_MS``) cover any two rowtimes; its state keeps
every row of both sides, as Flink's does without a state TTL. A regular outer join (Flink
retracts its padded rows when a match arrives) or one over an updating table is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from kstream.sql.catalog import Table, table_of
from kstream.sql.exprs import Untranslatable, interval_ms
from kstream.sql.scope import JoinScope, Scope, projection
from kstream.sql.window_join import WindowedSides, split_window_conditions, windowed_sides

__all__ = ["join_operators"]

#: how long a versioned table keeps the versions behind the join's watermark (1 day): a left row
#: up to a day behind it still finds the version valid at its time (docs/sql.md)
TEMPORAL_VERSIONS_MS = 86_400_000
#: the bound of a regular join's interval (about 10,000 years, in ms): wider than the distance
#: between any two rowtimes, so no row is late or forgotten and every pair with equal keys meets
REGULAR_JOIN_BOUND_MS = 10_000 * 365 * 86_400_000
_SIDES = {None: "inner", "": "inner", "LEFT": "left", "RIGHT": "right", "FULL": "full"}
_FLIP: dict[type, type] = {exp.GTE: exp.LTE, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.LT: exp.GT}


@dataclass
class _Join:
    """A join's parts: both tables, the scope of its columns, the kind (``how``), the key
    pairs, the rowtime bounds, the other conditions and what joins them (for errors)."""

    left: Table
    right: Table
    scope: JoinScope
    how: str
    keys: list[tuple[str, str]]
    bounds: list[tuple[type, int, exp.Expression]]
    residual: list[exp.Expression]
    node: exp.Expression


def join_operators(
    select: exp.Select, tables: dict[str, Table], sink: Table, prefix: str
) -> tuple[list[Table], list[dict[str, Any]]]:
    """The two tables and the operators of an interval or temporal join query.

    Raises:
        Untranslatable: another kind of join, or conditions it cannot use.
    """
    joins = select.args["joins"]
    if len(joins) != 1:
        raise Untranslatable(joins[1], "a query joins two tables (for now)")
    join = joins[0]
    windowed = windowed_sides(select.args["from_"].this, join.this, tables)
    where = select.args.get("where")
    parts = _parts(select, join, tables, windowed)
    if parts.how == "inner":
        where = None  # its conditions are among the parts' (key, bounds, residual)
    version = join.this.args.get("version")
    if windowed is not None:
        join_spec = _window(parts, windowed.window)
    else:
        join_spec = _temporal(parts, version) if version is not None else _interval(parts)
    ops, inputs = _side_filters(windowed, parts.left, parts.right, prefix)
    join_spec["right"] = inputs[1]
    right_path = f"{inputs[1]}." if inputs[1].isidentifier() else f'record["{inputs[1]}"].'
    join_spec["select"] = {f"l__{c}": c for c in _physical(parts.left)} | {
        f"r__{c}": f"{right_path}{c}" for c in _physical(parts.right)
    }
    if windowed is not None:
        join_spec["select"] |= windowed.select(right_path)
    ops.append({"id": f"{prefix}join", "from": inputs[0], "join": join_spec})
    ops += _after_join(parts, where, select, sink, prefix)
    return [parts.left, parts.right], ops


def _parts(
    select: exp.Select, join: exp.Join, tables: dict[str, Table], windowed: WindowedSides | None
) -> _Join:
    """The join's tables, scope and conditions (an inner join's WHERE among them).

    Raises:
        Untranslatable: views, no key equality, other conditions in an outer join's ON.
    """
    left_node, right_node = select.args["from_"].this, join.this
    if windowed is not None:
        left, right, extras = windowed.left, windowed.right, windowed.columns
    else:
        left, right = table_of(tables, left_node), table_of(tables, right_node)
        extras = [{}, {}]
    if left.base is not None or right.base is not None:
        raise Untranslatable(join, "a join of views or subqueries is not supported yet")
    scope = JoinScope(
        [
            (left_node.alias_or_name, Scope(left, "l__", extras[0])),
            (right_node.alias_or_name, Scope(right, "r__", extras[1])),
        ]
    )
    how = _how(join)
    conjuncts = _conjuncts(join.args.get("on"))
    if windowed is not None:
        conjuncts = split_window_conditions(conjuncts)
    where = select.args.get("where")
    if how == "inner" and where is not None:
        conjuncts += _conjuncts(where.this)
    parts = _Join(left, right, scope, how, *_classify(conjuncts, scope, left, right), join)
    if not parts.keys:
        raise Untranslatable(join, "a join needs equality conditions between the tables")
    if parts.residual and how != "inner":
        what = f"a {how.upper()} join takes only the key and the time bounds in ON (for now)"
        raise Untranslatable(parts.residual[0], what)
    return parts


def _after_join(
    parts: _Join, where: exp.Where | None, select: exp.Select, sink: Table, prefix: str
) -> list[dict[str, Any]]:
    """The filter (other conditions, an outer join's WHERE) and the projection to the sink."""
    scope = parts.scope
    ops: list[dict[str, Any]] = []
    filters = [scope.text(c) for c in parts.residual]
    filters += [scope.text(where.this)] if where is not None else []
    if filters:
        ops.append({"id": f"{prefix}where", "filter": " and ".join(f"({f})" for f in filters)})
    fields = projection(scope, select, sink)
    ops.append({"id": f"{prefix}select", "map": {"select": [], "fields": fields}})
    return ops


def _side_filters(
    windowed: WindowedSides | None, left: Table, right: Table, prefix: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Filter items for the WHERE of a window join's sides, and the join's two inputs."""
    ops: list[dict[str, Any]] = []
    inputs = [left.name, right.name]
    filters = windowed.filters if windowed is not None else [None, None]
    for i, (table, cond) in enumerate(zip((left, right), filters, strict=True)):
        if cond is not None:
            inputs[i] = f"{prefix}{'right' if i else 'left'}-where"
            ops.append({"id": inputs[i], "from": table.name, "filter": Scope(table).text(cond)})
    return ops, inputs


def _interval(parts: _Join) -> dict[str, Any]:
    lo, hi = _regular(parts) if not parts.bounds else _between(parts.bounds, parts.node)
    return {
        "type": "interval",
        "right": parts.right.name,
        "how": parts.how,
        "between": [lo, hi],
        "on": {"left": _key(k for k, _ in parts.keys), "right": _key(k for _, k in parts.keys)},
    }


def _window(parts: _Join, window: dict[str, Any]) -> dict[str, Any]:
    if parts.bounds:
        raise Untranslatable(parts.node, "a window join takes no other time bounds")
    return {
        "type": "window",
        "right": parts.right.name,
        "how": parts.how,
        "window": window,
        "on": {"left": _key(k for k, _ in parts.keys), "right": _key(k for _, k in parts.keys)},
    }


def _temporal(parts: _Join, version: exp.Expression) -> dict[str, Any]:
    """``JOIN t FOR SYSTEM_TIME AS OF l.rowtime ON l.k = t.pk``: the right table is read as a
    versioned table keyed by its primary key (Flink's event-time temporal join)."""
    right = parts.right
    at = version.expression
    if _is_proctime(at, parts.left):
        return _lookup(parts)
    term = _time_term(at, parts.scope, parts.left) if at is not None else None
    if term != ("left", 0):
        what = "AS OF the left table's rowtime (processing-time lookup joins: not yet)"
        raise Untranslatable(version, f"a temporal join is supported {what}")
    if not right.primary_key or right.rowtime is None:
        what = f"table {right.name} needs a PRIMARY KEY and a WATERMARK (a versioned table)"
        raise Untranslatable(parts.node, what)
    if parts.how not in ("inner", "left") or parts.bounds:
        raise Untranslatable(parts.node, "a temporal join is INNER or LEFT, on the key only")
    by_right = {right_key: left_key for left_key, right_key in parts.keys}
    pk = [Scope(right).text(exp.column(c)) for c in right.primary_key]
    if sorted(by_right) != sorted(pk):
        what = f"a temporal join's ON must equal the primary key ({', '.join(pk)}) of {right.name}"
        raise Untranslatable(parts.node, what)
    right.read_as_table = {"key": _key(pk), "versioned": TEMPORAL_VERSIONS_MS}
    return {
        "type": "temporal",
        "right": right.name,
        "how": parts.how,
        "on": {"left": _key(by_right[k] for k in pk), "right": _key(pk)},
    }


def _is_proctime(at: exp.Expression | None, left: Table) -> bool:
    """Whether ``AS OF`` names a left column computed as ``PROCTIME()``."""
    column = left.column(at.name) if isinstance(at, exp.Column) else None
    computed = column.computed if column is not None else None
    return isinstance(computed, exp.Anonymous) and str(computed.this).upper() == "PROCTIME"


def _lookup(parts: _Join) -> dict[str, Any]:
    """``JOIN t FOR SYSTEM_TIME AS OF l.proc_time ON l.k = t.c``: Flink's lookup join, each left
    row joined with the row of ``t`` current when it is processed. ``t`` is read as a broadcast
    table keyed by the ON columns (Kafka Streams' ``GlobalKTable``: loaded before processing,
    then kept up to date), so neither side is repartitioned (docs/joins.md, "Lookup join").

    Raises:
        Untranslatable: another join kind than INNER or LEFT, or time bounds beside it.
    """
    right = parts.right
    if parts.how not in ("inner", "left") or parts.bounds:
        raise Untranslatable(parts.node, "a lookup join is INNER or LEFT, without time bounds")
    right_keys = [right_key for _, right_key in parts.keys]
    right.read_as_table = {"key": _key(right_keys), "broadcast": True}
    return {
        "type": "lookup",
        "right": right.name,
        "how": parts.how,
        "on": {"left": _key(k for k, _ in parts.keys), "right": _key(right_keys)},
    }


def _key(parts: Iterable[str]) -> str:
    items = list(parts)
    return items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"


def _how(join: exp.Join) -> str:
    side = (join.args.get("side") or "").upper()
    kind = (join.args.get("kind") or "").upper()
    if kind not in ("", "INNER", "OUTER", "CROSS") or side not in _SIDES:
        raise Untranslatable(join, f"{side} {kind} JOIN is not supported".strip())
    return _SIDES[side]


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _physical(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.computed is None and c.metadata is None]


def _classify(
    conjuncts: list[exp.Expression], scope: JoinScope, left: Table, right: Table
) -> tuple[list[tuple[str, str]], list[tuple[type, int, exp.Expression]], list[exp.Expression]]:
    """Split the conditions into key pairs ``(left expr, right expr)`` (over each side's own
    record), bounds ``(comparison, ms, node)`` on ``right.ts - left.ts`` and the rest."""
    keys: list[tuple[str, str]] = []
    bounds: list[tuple[type, int, exp.Expression]] = []
    residual: list[exp.Expression] = []
    for cond in conjuncts:
        if isinstance(cond, exp.Between):
            low = exp.GTE(this=cond.this, expression=cond.args["low"])
            high = exp.LTE(this=cond.this, expression=cond.args["high"])
            parts = [_bound(low, scope, left, right), _bound(high, scope, left, right)]
            if all(parts):
                bounds += [(p[0], p[1], cond) for p in parts if p]
                continue
        bound = _bound(cond, scope, left, right) if type(cond) in _FLIP else None
        if bound is not None:
            bounds.append((bound[0], bound[1], cond))
        elif isinstance(cond, exp.EQ) and (pair := _key_pair(cond, scope, left, right)):
            keys.append(pair)
        else:
            residual.append(cond)
    return keys, bounds, residual


def _side(node: exp.Expression, scope: JoinScope, left: Table) -> str | None:
    """``left``/``right`` when every column of ``node`` is of that side, else None."""
    sides = {
        ("left" if scope.side_of(c) is scope.sides[0][1] else "right")
        for c in node.find_all(exp.Column)
    }
    return sides.pop() if len(sides) == 1 else None


def _key_pair(cond: exp.EQ, scope: JoinScope, left: Table, right: Table) -> tuple[str, str] | None:
    a, b = cond.this, cond.expression
    sides = (_side(a, scope, left), _side(b, scope, left))
    if sides == ("right", "left"):
        a, b = b, a
    elif sides != ("left", "right"):
        return None
    return Scope(left).text(a), Scope(right).text(b)


def _time_term(node: exp.Expression, scope: JoinScope, left: Table) -> tuple[str, int] | None:
    """``(side, offset ms)`` of ``rowtime [+|- INTERVAL ...]``, else None."""
    offset = 0
    if isinstance(node, exp.Add | exp.Sub) and isinstance(node.expression, exp.Interval):
        ms = interval_ms(node.expression)
        if ms is None:
            return None
        offset = ms if isinstance(node, exp.Add) else -ms
        node = node.this
    if not isinstance(node, exp.Column):
        return None
    side = scope.side_of(node)
    rowtime = side.table.rowtime
    if rowtime is None or node.name.lower() != rowtime.lower():
        return None
    return ("left" if side is scope.sides[0][1] else "right"), offset


def _bound(
    cond: exp.Expression, scope: JoinScope, left: Table, right: Table
) -> tuple[type, int] | None:
    """A comparison of the two rowtimes as ``(op, ms)`` meaning ``right.ts - left.ts op ms``."""
    a = _time_term(cond.this, scope, left)
    b = _time_term(cond.expression, scope, left)
    if a is None or b is None or a[0] == b[0]:
        return None
    op = type(cond)
    if a[0] == "right":  # r + ca op l + cb  ->  r - l op cb - ca
        return op, b[1] - a[1]
    return _FLIP[op], a[1] - b[1]  # l + ca op r + cb  ->  r - l flip(op) ca - cb


def _regular(parts: _Join) -> tuple[int, int]:
    """The bounds of a regular join (Flink: an inner join of append-only tables emits each
    matching pair once, whatever the rowtimes), as an interval join's ``[lo, hi]`` in ms.

    Raises:
        Untranslatable: an outer regular join or an updating table on either side.
    """
    hint = "bound the rowtimes: w.ts BETWEEN f.ts - INTERVAL '1' HOUR AND f.ts"
    if parts.how != "inner":
        what = f"a {parts.how.upper()} join without time bounds (Flink retracts its padded rows)"
        raise Untranslatable(parts.node, f"{what} is not supported yet ({hint})")
    for table in (parts.left, parts.right):
        if table.options.get("connector") != "kafka" or table.is_result:
            what = f"a join without time bounds of the updating table {table.name}"
            raise Untranslatable(parts.node, f"{what} is not supported yet ({hint})")
    return -REGULAR_JOIN_BOUND_MS, REGULAR_JOIN_BOUND_MS


def _between(
    bounds: list[tuple[type, int, exp.Expression]], where: exp.Expression
) -> tuple[int, int]:
    lows = [ms + (1 if op is exp.GT else 0) for op, ms, _ in bounds if op in (exp.GT, exp.GTE)]
    highs = [ms - (1 if op is exp.LT else 0) for op, ms, _ in bounds if op in (exp.LT, exp.LTE)]
    if not lows or not highs:
        hint = "bound the rowtimes: w.ts BETWEEN f.ts - INTERVAL '1' HOUR AND f.ts"
        raise Untranslatable(
            where, f"a join without time bounds on both sides is not supported yet ({hint})"
        )
    lo, hi = max(lows), min(highs)
    if lo > hi:
        raise Untranslatable(where, f"the time bounds leave no interval ({lo} ms > {hi} ms)")
    return lo, hi
