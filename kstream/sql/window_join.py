"""Flink SQL's window join: two window TVFs joined on their windows and a key.

::

    SELECT ... FROM
      (SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' HOUR))) L
      [LEFT | RIGHT | FULL] JOIN
      (SELECT * FROM TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '1' HOUR))) R
      ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.k = R.k

compiles to a pipeline ``join`` of ``type: window`` (docs/joins.md): the rows of both sides in
the same window and key join when the watermark passes the window's end - 1, as Flink's window
join. Both sides must use the same TVF; ``TUMBLE`` is supported, since each side's
``window_start``/``window_end`` are then computed from its rowtime (a ``HOP`` row is in several
windows: refused for now, as are ``CUMULATE`` and ``SESSION``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from kstream.sql.aggregate import window_args, window_spec
from kstream.sql.catalog import Table, table_of
from kstream.sql.exprs import Untranslatable
from kstream.sql.scope import Scope

__all__ = ["WindowedSides", "split_window_conditions", "windowed_sides"]

_BOUNDS = ("window_start", "window_end")


@dataclass
class WindowedSides:
    """Both sides' tables, the common window (a pipeline ``window:`` of a join), and per side
    the window columns as fields of the flattened joined row (``l__window_start``, ...)."""

    left: Table
    right: Table
    window: dict[str, Any]
    columns: list[dict[str, tuple[str, str | None]]] = field(default_factory=list)
    #: each side's WHERE (filtering it before the join), over its own rows
    filters: list[exp.Expression | None] = field(default_factory=list)

    def select(self, right_path: str) -> dict[str, str]:
        """The window bounds of both sides as fields of the join's output (``l__window_start``,
        ...), computed from each side's rowtime; ``right_path`` reaches the right record."""
        fields: dict[str, str] = {}
        size, offset = self.window["size"], self.window.get("offset", 0)
        for table, prefix, path in ((self.left, "l__", ""), (self.right, "r__", right_path)):
            at = Scope(table, path).text(exp.column(table.rowtime or ""))
            start = f"({at} - ({at} - {offset}) % {size})"
            fields[f"{prefix}window_start"] = start
            fields[f"{prefix}window_end"] = f"({start} + {size})"
        return fields


def windowed_sides(
    left_node: exp.Expression, right_node: exp.Expression, tables: dict[str, Table]
) -> WindowedSides | None:
    """The window join's sides when both FROM items are window TVF subqueries, else None.

    Raises:
        Untranslatable: only one side windowed, different windows, or not TUMBLE.
    """
    calls = [_tvf(left_node), _tvf(right_node)]
    if calls == [None, None]:
        return None
    if None in calls:
        raise Untranslatable(right_node, "a window join needs a window TVF on both sides")
    left_call, right_call = (c for c in calls if c is not None)
    left = table_of(tables, window_args(left_call)["DATA"].this)
    right = table_of(tables, window_args(right_call)["DATA"].this)
    window = window_spec(left_call, left)
    if window != window_spec(right_call, right):
        raise Untranslatable(right_call, "both sides of a window join need the same window")
    if window["type"] != "tumbling":
        raise Untranslatable(
            left_call, "a window join over TUMBLE is supported (HOP, CUMULATE and SESSION: not yet)"
        )
    sides = WindowedSides(left, right, window, filters=[_where(left_node), _where(right_node)])
    for table, prefix in ((left, "l__"), (right, "r__")):
        kind = Scope(table).expr(exp.column(table.rowtime or ""))[1]
        sides.columns.append({
            "window_start": (f"{prefix}window_start", "ts"),
            "window_end": (f"{prefix}window_end", "ts"),
            "window_time": (f"({prefix}window_end - 1)", "ltz" if kind == "ltz" else "ts"),
        })  # fmt: skip
    return sides


def split_window_conditions(conjuncts: list[exp.Expression]) -> list[exp.Expression]:
    """``conjuncts`` without ``L.window_start = R.window_start`` and ``L.window_end =
    R.window_end``, which a window join requires.

    Raises:
        Untranslatable: one of them is missing.
    """
    rest, found = [], set()
    for cond in conjuncts:
        names = (
            [c.name.lower() for c in (cond.this, cond.expression) if isinstance(c, exp.Column)]
            if isinstance(cond, exp.EQ)
            else []
        )
        if len(names) == 2 and names[0] == names[1] and names[0] in _BOUNDS:
            found.add(names[0])
        else:
            rest.append(cond)
    if found != set(_BOUNDS):
        what = "a window join's ON needs L.window_start = R.window_start AND L.window_end ="
        raise Untranslatable(conjuncts[0] if conjuncts else None, f"{what} R.window_end")
    return rest


def _tvf(node: exp.Expression) -> exp.Anonymous | None:
    """The TVF call of ``(SELECT * FROM TABLE(TVF(...))) alias``, else None."""
    if not isinstance(node, exp.Subquery) or not isinstance(node.this, exp.Select):
        return None
    inner = node.this
    source = inner.args["from_"].this
    call = (
        source.this.expressions[0]
        if isinstance(source, exp.Table)
        and isinstance(source.this, exp.Anonymous)
        and source.this.expressions
        else None
    )
    if not isinstance(call, exp.Anonymous):
        return None
    if any(inner.args.get(a) for a in ("group", "joins")) or not all(
        isinstance(e, exp.Star) for e in inner.expressions
    ):
        what = "a window join's sides are SELECT * FROM TABLE(TUMBLE(...)) [WHERE ...]"
        raise Untranslatable(inner, what)
    return call


def _where(node: exp.Expression) -> exp.Expression | None:
    """The WHERE condition of a window join side's subquery, if any."""
    where = node.this.args.get("where") if isinstance(node, exp.Subquery) else None
    return where.this if where is not None else None
