"""Grouped queries: window TVF aggregations and non-windowed ``GROUP BY`` (dynamic tables).

- ``FROM TABLE(TUMBLE|HOP|SESSION(TABLE t, DESCRIPTOR(rowtime), ...)) GROUP BY window_start,
  window_end, k, ...``: ``key_by`` on the keys, a ``window`` (tumbling, sliding, session; final
  results when the watermark passes the window's end - 1, as Flink SQL's window aggregation),
  then a ``map`` to the sink's columns;
- ``GROUP BY k, ...`` without a window: a ``global`` window emitting the key's updated row after
  every record (``emit: update``): Flink's updating dynamic table, written to an
  ``upsert-kafka`` table (the last row per key is the table). Its ``HAVING`` is a ``filter``
  with ``otherwise: delete``: an update that does not qualify deletes the key's row (a
  tombstone), as Flink retracts a row that stops qualifying.

Aggregates: ``COUNT(*)``, ``COUNT(x)``, ``COUNT(DISTINCT x)``, ``SUM``, ``MIN``, ``MAX``, ``AVG``
(an integer average of integers, as Flink). ``FIRST_VALUE``/``LAST_VALUE`` are refused: Flink
picks by arrival order, kstream's ``first``/``last`` by event time.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kstream.expr.sql_changelog import ROW_KIND_FIELD
from kstream.sql.avro_schema import is_avro
from kstream.sql.catalog import Table
from kstream.sql.decimals import int_kind
from kstream.sql.exprs import Untranslatable, interval_ms, translate_typed
from kstream.sql.keys import key_columns
from kstream.sql.scope import Scope, sink_value

__all__ = ["CHANGELOG_FORMAT", "grouped_operators", "window_args", "window_spec"]

#: the sink format that takes an updating query's changes as rows with their kind (Flink's
#: ``debezium-json``; the kind travels in ``ROW_KIND_FIELD``, kstream/expr/sql_changelog.py)
CHANGELOG_FORMAT = "debezium-json"

_WINDOW_COLUMNS = ("window_start", "window_end", "window_time")
#: window TVFs' parameters in Flink's order, and the pipeline's window type of each
_PARAMETERS = {
    "TUMBLE": ("DATA", "TIMECOL", "SIZE", "OFFSET"),
    "HOP": ("DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"),
    "SESSION": ("DATA", "TIMECOL", "GAP"),
    "CUMULATE": ("DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"),
}
_TYPES = {"TUMBLE": "tumbling", "HOP": "sliding", "CUMULATE": "cumulate", "SESSION": "session"}
_NOT_SIZES = ("DATA", "TIMECOL")
_AGGREGATES: dict[type, str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Min: "min",
    exp.Max: "max",
    exp.Avg: "avg",
    exp.FirstValue: "first_arrived",
    exp.LastValue: "last_arrived",
}


def grouped_operators(
    select: exp.Select,
    call: exp.Anonymous | None,
    scope: Scope,
    sink: Table,
    prefix: str,
    kinds: dict[str, str | None] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The ``key_by``, ``window`` and ``map`` items of a grouped query, and whether its result
    is an updating table (a non-windowed GROUP BY). ``kinds``, when given, receives the type of
    each sink column's value (an aggregating view's columns; a column of type ``""`` is
    written as the value is).

    Raises:
        Untranslatable: an unsupported window, key, aggregate or column.
    """
    keys = _group_keys(select, call, scope)
    having = select.args.get("having")
    if call is None and having is not None and key_columns(sink):
        keys = _tombstone_key_order(select, keys, scope, sink)
    window: dict[str, Any] = (
        window_spec(call, scope.table) if call is not None else {"type": "global"}
    )
    results = _Results(keys, scope, windowed=call is not None)
    fields: dict[str, str] = {}
    for column, item in zip(sink.columns, select.expressions, strict=True):
        node = item.this if isinstance(item, exp.Alias) else item
        text, kind = results.expr(node)
        fields[column.name] = sink_value(column.type, text, kind, is_avro(sink))
        if kinds is not None:
            kinds[column.name] = kind
    condition = results.expr(having.this)[0] if having is not None else None
    window["aggregate"] = results.aggregate
    _check_arrival_order(select, window)
    key_expr = keys[0][0] if len(keys) == 1 else "[" + ", ".join(k for k, _ in keys) + "]"
    ops: list[dict[str, Any]] = [
        {"id": f"{prefix}keys", "key_by": key_expr},
        {"id": f"{prefix}window" if call is not None else f"{prefix}group", "window": window},
    ]
    if call is None and sink.format == CHANGELOG_FORMAT:  # Flink's -U/+U rows, with their kind
        window["emit"] = "changelog"
        fields[ROW_KIND_FIELD] = "op"
        if having is not None:
            what = f"HAVING on a GROUP BY written as {CHANGELOG_FORMAT} is not supported yet"
            raise Untranslatable(having, what)
    if having is not None and condition is not None and call is not None:
        ops.append({"id": f"{prefix}having", "filter": condition})
    elif having is not None and condition is not None:
        # an updating table: a row that stops qualifying is deleted (Flink retracts it)
        ops.append({"id": f"{prefix}having", "filter": {"expr": condition, "otherwise": "delete"}})
    ops.append({"id": f"{prefix}select", "map": {"select": [], "fields": fields}})
    return ops, call is None


def _tombstone_key_order(
    select: exp.Select, keys: list[tuple[str, str | None]], scope: Scope, sink: Table
) -> list[tuple[str, str | None]]:
    """``keys`` (the GROUP BY's ``(expression, type)``) in the order of ``sink``'s key columns:
    a HAVING's tombstone has no value, so its key fields are its record key, the GROUP BY key
    (docs/pipeline.md, sinks' ``key_fields``), which must hold them as the sink writes them.

    Raises:
        Untranslatable: a key column that is not a GROUP BY key as it is (converted to the
            column's type), or a GROUP BY key that is not a key column.
    """
    columns = key_columns(sink)
    ordered: list[tuple[str, str | None]] = []
    for name in columns:
        index = next((i for i, c in enumerate(sink.columns) if c.name.lower() == name.lower()), -1)
        found = _key_of(select.expressions[index], keys, scope) if index >= 0 else None
        if found is None or sink_value(sink.columns[index].type, *found) != found[0]:
            break
        ordered.append(found)
    if len(ordered) != len(keys) or len(columns) != len(keys):
        what = f"with HAVING, the key of {sink.name} ({', '.join(columns)}) must be the GROUP BY"
        raise Untranslatable(select, f"{what} keys as they are (its rows are deleted by key)")
    return ordered


def _key_of(
    item: exp.Expression, keys: list[tuple[str, str | None]], scope: Scope
) -> tuple[str, str | None] | None:
    """The GROUP BY key a SELECT item is (as it is), else None."""
    node = item.this if isinstance(item, exp.Alias) else item
    if node.find(*_AGGREGATES):
        return None
    try:
        text = scope.text(node)
    except Untranslatable:  # a window column: not a key
        return None
    return next((k for k in keys if k[0] == text), None)


def _group_keys(
    select: exp.Select, call: exp.Anonymous | None, scope: Scope
) -> list[tuple[str, str | None]]:
    """``(expression, type)`` of each GROUP BY key other than the window columns."""
    group = select.args.get("group")
    nodes = list(group.expressions) if group is not None else []
    names = [n.name.lower() for n in nodes if isinstance(n, exp.Column)]
    if call is not None and not {"window_start", "window_end"} <= set(names):
        raise Untranslatable(
            group or select, "a window aggregation must GROUP BY window_start, window_end"
        )
    keys = []
    for node in nodes:
        if node.find(*_AGGREGATES):
            raise Untranslatable(node, "GROUP BY cannot group by an aggregate")
        is_window = isinstance(node, exp.Column) and node.name.lower() in _WINDOW_COLUMNS
        if call is None or not is_window:
            keys.append(_not_decimal(node, scope.expr(node), "GROUP BY"))
    if not keys:
        raise Untranslatable(
            group or select, "an aggregation without a GROUP BY key is not supported yet"
        )
    data = window_args(call).get("DATA") if call is not None else None
    partition = data.args.get("partition_by") if data is not None else None
    if (
        call is not None
        and partition
        and sorted(map(scope.text, partition)) != sorted(k for k, _ in keys)
    ):
        raise Untranslatable(call, "SESSION's PARTITION BY must name the GROUP BY keys")
    return keys


def window_args(call: exp.Anonymous) -> dict[str, exp.Expression]:
    """A window TVF's arguments by Flink's parameter names (``DATA``, ``TIMECOL``, ``SIZE``,
    ``SLIDE``, ``GAP``, ``STEP``, ``OFFSET``), given by position or as ``NAME => value``."""
    names = _PARAMETERS.get(str(call.this).upper(), ())
    args: dict[str, exp.Expression] = {}
    for i, arg in enumerate(call.expressions):
        if isinstance(arg, exp.Kwarg):
            args[arg.this.name.upper()] = arg.expression
        elif i < len(names):
            args[names[i]] = arg
    return args


def window_spec(call: exp.Anonymous, source: Table) -> dict[str, Any]:
    """The pipeline ``window:`` (without its aggregations) of a window TVF over ``source``.

    Raises:
        Untranslatable: not a supported TVF, no DESCRIPTOR of the rowtime, bad sizes.
    """
    kind = str(call.this).upper()
    args = window_args(call)
    descriptor = args.get("TIMECOL")
    if not isinstance(descriptor, exp.Anonymous) or str(descriptor.this).upper() != "DESCRIPTOR":
        raise Untranslatable(call, f"{kind} needs DESCRIPTOR(rowtime) as its second argument")
    column = descriptor.expressions[0].name if descriptor.expressions else ""
    if source.rowtime is None or column.lower() != source.rowtime.lower():
        what = f"{column} is not the rowtime of table {source.name}"
        raise Untranslatable(descriptor, f"{what} (declare WATERMARK FOR it)")
    given = {
        name: _interval(value, offset=name == "OFFSET")
        for name, value in args.items()
        if name not in _NOT_SIZES
    }
    spec: dict[str, Any] = {"type": _TYPES.get(kind)}
    for name in _PARAMETERS.get(kind, ())[2:]:
        if name in given:
            spec[name.lower()] = given.pop(name)
        elif name != "OFFSET":
            raise Untranslatable(call, f"window TVF {kind} needs its {name} argument")
    if spec["type"] is None or given:
        extra = f" (unexpected {', '.join(given)})" if given else ""
        hint = "TUMBLE, HOP, CUMULATE and SESSION are"
        raise Untranslatable(call, f"window TVF {kind} is not supported{extra} ({hint})")
    period = spec.get("slide") or spec.get("step")
    if period:
        if spec["size"] % period:  # Flink's slicing windows need it too
            unit = "slide" if kind == "HOP" else "step"
            raise Untranslatable(call, f"{kind} needs a size that is a multiple of its {unit}")
        spec["late_rule"] = "sql"  # Flink SQL drops an element whose first window has fired
    return spec


def _interval(node: exp.Expression, offset: bool = False) -> int:
    ms = interval_ms(node) if isinstance(node, exp.Interval) else None
    if ms is None or (ms <= 0 and not offset):
        raise Untranslatable(node, "a window size must be INTERVAL 'n' SECOND|MINUTE|HOUR|DAY")
    return ms


def _check_arrival_order(select: exp.Select, window: dict[str, Any]) -> None:
    """FIRST_VALUE/LAST_VALUE take values in arrival order (Flink's FirstValueAggFunction):
    kstream matches that in TUMBLE windows and non-windowed GROUP BY. Flink's HOP and
    CUMULATE combine slices in time order and SESSION merges windows: refused there."""
    if window["type"] not in ("sliding", "cumulate", "session"):
        return
    for kind in window["aggregate"].values():
        if isinstance(kind, dict) and set(kind) & {"first_arrived", "last_arrived"}:
            found = select.find(exp.FirstValue) or select.find(exp.LastValue)
            what = "FIRST_VALUE and LAST_VALUE are supported in TUMBLE windows and GROUP BY"
            raise Untranslatable(found, f"{what} (yet), not in HOP, CUMULATE or SESSION")


class _Results:
    """Expressions over a window's results: aggregates become the window's aggregations
    (``a0``, ``a1``, ... in :attr:`aggregate`), GROUP BY keys read ``key`` (``key[i]``), window
    columns ``window_start``/``window_end``; any other column is an error, as in Flink."""

    def __init__(self, keys: list[tuple[str, str | None]], scope: Scope, windowed: bool) -> None:
        self.keys = keys
        self.scope = scope
        self.windowed = windowed
        self.aggregate: dict[str, Any] = {}
        self._slots: dict[str, tuple[str, str | None]] = {}

    def expr(self, node: exp.Expression) -> tuple[str, str | None]:
        """``node`` over the window's result record, and its type."""
        tree = node.transform(self._swap, copy=True)
        return translate_typed(tree, lambda col: self._slots[col.name])

    def _swap(self, node: exp.Expression) -> exp.Expression:
        if type(node) in _AGGREGATES:
            return self._slot(*self._aggregate(node))
        if isinstance(node, exp.Column):
            return self._slot(*self._column(node))
        key = self._key_expression(node)
        return self._slot(*key) if key is not None else node

    def _key_expression(self, node: exp.Expression) -> tuple[str, str | None] | None:
        """``node``'s field when it is a GROUP BY key written as an expression
        (``GROUP BY CONCAT(origin, '-', dest)`` selecting the same), else None."""
        if node.find(*_AGGREGATES) or not node.find(exp.Column):
            return None
        try:
            text = self.scope.text(node)
        except Untranslatable:  # a window column inside: not a key
            return None
        for i, (key, key_kind) in enumerate(self.keys):
            if key == text:
                return ("key" if len(self.keys) == 1 else f"key[{i}]"), key_kind
        return None

    def _slot(self, text: str, kind: str | None) -> exp.Column:
        name = f"__slot{len(self._slots)}"
        self._slots[name] = (text, kind)
        return exp.column(name)

    def _column(self, node: exp.Column) -> tuple[str, str | None]:
        name = node.name.lower()
        if self.windowed and name in ("window_start", "window_end"):
            return name, "ts"
        if self.windowed and name == "window_time":
            rowtime = self.scope.expr(exp.column(self.scope.table.rowtime or ""))[1]
            return "(window_end - 1)", "ltz" if rowtime == "ltz" else "ts"
        text = self.scope.text(node)
        for i, (key, key_kind) in enumerate(self.keys):
            if key == text:
                return ("key" if len(self.keys) == 1 else f"key[{i}]"), key_kind
        raise Untranslatable(node, f"column {node.name} is neither a GROUP BY key nor aggregated")

    def _aggregate(self, node: exp.Expression) -> tuple[str, str | None]:
        kind = _AGGREGATES[type(node)]
        name = f"a{len(self.aggregate)}"
        arg = node.this
        if isinstance(arg, exp.Distinct):
            if kind != "count" or len(arg.expressions) != 1:
                raise Untranslatable(node, "DISTINCT is supported in COUNT(DISTINCT x) only")
            text = _not_decimal(node, self.scope.expr(arg.expressions[0]), "COUNT(DISTINCT)")[0]
            self.aggregate[name] = {"count_distinct": text}
            return name, int_kind(19)  # Flink: COUNT is a BIGINT
        if kind == "count" and (arg is None or isinstance(arg, exp.Star)):
            self.aggregate[name] = "count"
            return name, int_kind(19)
        what = "COUNT" if kind == "count" else kind.upper()
        text, arg_kind = _not_decimal(node, self.scope.expr(arg), what)
        self.aggregate[name] = {kind: text}
        if kind == "count":
            return name, int_kind(19)
        if kind == "avg":
            # Flink: AVG of an integer column is an integer (truncated toward zero)
            return (f"int({name})", arg_kind) if arg_kind == "int" else (name, "float")
        return name, arg_kind


def _not_decimal(
    node: exp.Expression, typed: tuple[str, str | None], what: str
) -> tuple[str, str | None]:
    """``typed`` (an expression and its type) unless it is a DECIMAL, which kstream does not
    aggregate or key by yet (its values are not stored in state).

    Raises:
        Untranslatable: a DECIMAL.
    """
    if typed[1] == "decimal":
        hint = "CAST it to DOUBLE, or aggregate an integer and divide after"
        raise Untranslatable(node, f"{what} of a DECIMAL is not supported yet ({hint})")
    return typed
