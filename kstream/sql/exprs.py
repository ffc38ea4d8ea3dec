"""SQL scalar expressions translated to kstream's expression language (docs/expressions.md).

The expression language already has SQL's three-valued logic (:mod:`kstream.expr.nulls`), so a
translation is mostly syntax: ``a <> b`` -> ``a != b``, ``x IS NULL`` -> ``x is None``,
``a || b`` -> ``concat(a, b)``, ``CASE`` -> ``x if c else y``. Where Flink's result depends on
types (``7 / 2`` is ``3`` between integers), the operand types come from the tables' columns
and the literals; when they cannot be told, the construct is refused rather than computed
differently. A construct without a translation is an :class:`Untranslatable` naming it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from kstream.sql import decimals
from kstream.sql.decimals import int_kind

__all__ = [
    "UNIT_MS",
    "ColumnRef",
    "Untranslatable",
    "interval_ms",
    "translate",
    "translate_typed",
]

#: a column reference's expression text and its type (``int``, ``float``, ``str``, ``bool``,
#: ``decimal``, ``ts`` a TIMESTAMP(3) and ``ltz`` a TIMESTAMP_LTZ(3), both as epoch milliseconds
#: in UTC; None when unknown); ``int`` and ``decimal`` may carry their digits
#: (:mod:`kstream.sql.decimals`)
ColumnRef = Callable[[exp.Column], tuple[str, str | None]]

_BINARY: dict[type, str] = {
    exp.EQ: "==",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.And: "and",
    exp.Or: "or",
}
_ARITHMETIC: dict[type, str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}
#: SQL functions with a same-meaning function of the expression language
_FUNCTIONS = {
    "UPPER": "upper",
    "LOWER": "lower",
    "COALESCE": "coalesce",
    "ABS": "abs",
    "CONCAT": "concat",
    "LENGTH": "len",
    "REPLACE": "replace",
}
_RESULT_TYPES = {
    "len": int_kind(10),
    "concat": "str",
    "upper": "str",
    "lower": "str",
    "trim": "str",
    "replace": "str",
    "json_value": "str",
}
#: units of FLOOR/CEIL(... TO unit), TIMESTAMPADD and TIMESTAMPDIFF, in milliseconds
UNIT_MS = {
    "MILLISECOND": 1,
    "SECOND": 1_000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
    "WEEK": 7 * 86_400_000,
}
_TIMES = ("ts", "ltz")
_CASTS = {
    "DOUBLE": ("float", "float"),
    "FLOAT": ("float", "float"),
    "INT": ("int", int_kind(10)),
    "BIGINT": ("int", int_kind(19)),
    "SMALLINT": ("int", int_kind(5)),
    "TINYINT": ("int", int_kind(3)),
    "TEXT": ("str", "str"),
    "VARCHAR": ("str", "str"),
    "CHAR": ("str", "str"),
}


class Untranslatable(Exception):
    """``node`` (a SQL construct) has no translation yet; ``what`` names it."""

    def __init__(self, node: exp.Expression | None, what: str) -> None:
        super().__init__(what)
        self.node = node
        self.what = what


def translate(node: exp.Expression, column: ColumnRef) -> str:
    """The kstream expression for SQL ``node``; ``column`` resolves column references.

    Raises:
        Untranslatable: a construct kstream does not translate (yet).
    """
    return _Translator(column).expr(node)[0]


def translate_typed(node: exp.Expression, column: ColumnRef) -> tuple[str, str | None]:
    """:func:`translate` and the result's type (see :data:`ColumnRef`)."""
    return _Translator(column).expr(node)


class _Translator:
    """Each method returns ``(text, type)``."""

    def __init__(self, column: ColumnRef) -> None:
        self.column = column

    def expr(self, node: exp.Expression) -> tuple[str, str | None]:
        op = _BINARY.get(type(node))
        if op is not None:
            (a, ta), (b, tb) = self.expr(node.this), self.expr(node.expression)
            if "float" in (ta, tb):  # Flink compares a DECIMAL with a DOUBLE as DOUBLEs
                a, b = decimals.as_float(a, ta), decimals.as_float(b, tb)
            return f"({a} {op} {b})", "bool"
        op = _ARITHMETIC.get(type(node))
        if op is not None:
            return self._arithmetic(node, op)
        method = getattr(self, f"_{type(node).__name__.lower()}", None)
        if method is not None:
            result: tuple[str, str | None] = method(node)
            return result
        return self._function(node)

    def text(self, node: exp.Expression) -> str:
        return self.expr(node)[0]

    def _arithmetic(
        self, node: exp.Expression, op: str, *sides: tuple[str, str | None]
    ) -> tuple[str, str | None]:
        """``+ - * /`` (of the translated ``sides``, if given); with a DECIMAL side, Flink's
        derived type (:mod:`.decimals`)."""
        (a, ta), (b, tb) = sides or (self.expr(node.this), self.expr(node.expression))
        if "decimal" not in (ta, tb):
            return f"({a} {op} {b})", _numeric(ta, tb)
        try:
            return decimals.arithmetic(op, (a, ta), (b, tb))
        except ValueError as exc:
            raise Untranslatable(node, f"{exc} is not supported") from None

    def _column(self, node: exp.Column) -> tuple[str, str | None]:
        return self.column(node)

    def _literal(self, node: exp.Literal) -> tuple[str, str | None]:
        if node.is_string:
            return repr(node.this), "str"
        text = str(node.this)
        kind = decimals.literal_kind(text)  # 60.0 is a DECIMAL(3, 1) in Flink: exact
        return (f"decimal({text!r})" if kind == "decimal" else text), kind

    def _null(self, node: exp.Null) -> tuple[str, str | None]:
        return "None", None

    def _boolean(self, node: exp.Boolean) -> tuple[str, str | None]:
        return ("True" if node.this else "False"), "bool"

    def _paren(self, node: exp.Paren) -> tuple[str, str | None]:
        return self.expr(node.this)

    def _neg(self, node: exp.Neg) -> tuple[str, str | None]:
        text, kind = self.expr(node.this)
        return (f"dec_neg({text})" if kind == "decimal" else f"(-{text})"), kind

    def _not(self, node: exp.Not) -> tuple[str, str | None]:
        if isinstance(node.this, exp.Is):
            return f"({self.text(node.this.this)} is not None)", "bool"
        return f"(not {self.text(node.this)})", "bool"

    def _is(self, node: exp.Is) -> tuple[str, str | None]:
        if not isinstance(node.expression, exp.Null):
            raise Untranslatable(node, "IS TRUE / IS FALSE are not supported yet")
        return f"({self.text(node.this)} is None)", "bool"

    def _dpipe(self, node: exp.DPipe) -> tuple[str, str | None]:
        return f"concat({self.text(node.this)}, {self.text(node.expression)})", "str"

    def _div(self, node: exp.Div) -> tuple[str, str | None]:
        (a, ta), (b, tb) = self.expr(node.this), self.expr(node.expression)
        if "decimal" in (ta, tb):
            return self._arithmetic(node, "/", (a, ta), (b, tb))
        kind = _numeric(ta, tb)
        if kind is None:
            hint = "CAST the operands of / to DOUBLE or BIGINT: Flink divides integers as integers"
            raise Untranslatable(node, f"cannot tell the types of / ({hint})")
        return (f"int({a} / {b})" if kind == "int" else f"({a} / {b})"), kind

    def _in(self, node: exp.In) -> tuple[str, str | None]:
        if node.args.get("query") is not None:
            raise Untranslatable(node, "IN (SELECT ...) is not supported yet")
        items = ", ".join(self.text(e) for e in node.expressions)
        return f"({self.text(node.this)} in [{items}])", "bool"

    def _between(self, node: exp.Between) -> tuple[str, str | None]:
        x = self.text(node.this)
        low, high = self.text(node.args["low"]), self.text(node.args["high"])
        return f"(({low} <= {x}) and ({x} <= {high}))", "bool"

    def _case(self, node: exp.Case) -> tuple[str, str | None]:
        default = node.args.get("default")
        subject, ifs = node.this, node.args.get("ifs") or []
        conds = [
            self.text(b.this if subject is None else exp.EQ(this=subject, expression=b.this))
            for b in ifs
        ]
        parts = [self.expr(b.args["true"]) for b in ifs]
        parts.append(self.expr(default) if default is not None else ("None", None))
        values, kind = decimals.branches(parts)
        text = values[-1]
        for cond, then in zip(reversed(conds), reversed(values[:-1]), strict=True):
            text = f"({then} if {cond} else {text})"
        return text, kind

    def _if(self, node: exp.If) -> tuple[str, str | None]:
        other = node.args.get("false")
        parts = [self.expr(node.args["true"])]
        parts.append(self.expr(other) if other is not None else ("None", None))
        (then, other_text), kind = decimals.branches(parts)
        return f"({then} if {self.text(node.this)} else {other_text})", kind

    def _jsonvalue(self, node: exp.JSONValue) -> tuple[str, str | None]:
        """``JSON_VALUE(text, path [RETURNING type])``: null on a missing path or a value that
        does not convert (Flink's default ``NULL ON EMPTY`` and ``NULL ON ERROR``)."""
        if node.args.get("on_condition") is not None:
            raise Untranslatable(node, "JSON_VALUE's ON EMPTY / ON ERROR clauses: not yet")
        returning = node.args.get("returning")
        target = returning.this.name if isinstance(returning, exp.DataType) else "TEXT"
        kinds = {"TEXT": "str", "VARCHAR": "str", "INT": int_kind(10), "BIGINT": int_kind(19)}
        kinds |= {"DOUBLE": "float", "FLOAT": "float", "BOOLEAN": "bool"}
        kind = kinds.get(target)
        if kind is None:
            raise Untranslatable(node, f"JSON_VALUE RETURNING {target} is not supported yet")
        args = f"{self.text(node.this)}, {self.text(node.args['path'])}, {kind!r}"
        return f"json_value({args})", kind

    def _trim(self, node: exp.Trim) -> tuple[str, str | None]:
        chars = node.args.get("expression")
        where = str(node.args.get("position") or "BOTH").lower()
        chars_text = self.text(chars) if chars is not None else "' '"
        return f"sql_trim({self.text(node.this)}, {chars_text}, {where!r})", "str"

    def _like(self, node: exp.Like) -> tuple[str, str | None]:
        if node.args.get("escape") is not None:
            raise Untranslatable(node, "LIKE ... ESCAPE is not supported yet")
        text = f"sql_like({self.text(node.this)}, {self.text(node.expression)})"
        return (f"(not {text})" if node.args.get("negate") else text), "bool"

    def _cast(self, node: exp.Cast) -> tuple[str, str | None]:
        target = node.to.this.name if node.to is not None else ""
        if target in ("TIMESTAMP", "TIMESTAMPLTZ"):
            text, kind = self.expr(node.this)
            if kind not in _TIMES:
                raise Untranslatable(node, "CAST to a TIMESTAMP takes a TIMESTAMP (UTC)")
            return text, "ts" if target == "TIMESTAMP" else "ltz"
        text, kind = self.expr(node.this)
        decimal = decimals.decimal_type(node.to.sql("hive")) if node.to is not None else None
        if decimal is not None:  # rounded HALF_UP to the scale, NULL on overflow
            return f"dec_cast({text}, {decimal.precision}, {decimal.scale})", decimal
        cast = _CASTS.get(target)
        if cast is None:
            raise Untranslatable(node, f"CAST to {node.to.sql('hive')} is not supported yet")
        if cast[1] == "str" and kind == "decimal":
            return f"dec_str({text})", "str"  # 0.0000001, not 1E-7
        return f"{cast[0]}({text})", cast[1]

    def _interval(self, node: exp.Interval) -> tuple[str, str | None]:
        ms = interval_ms(node)
        if ms is None:
            raise Untranslatable(node, "INTERVAL 'n' SECOND | MINUTE | HOUR | DAY is supported")
        return str(ms), "int"

    def _floor(self, node: exp.Floor) -> tuple[str, str | None]:
        return self._round_time(node, ceil=False)

    def _ceil(self, node: exp.Ceil) -> tuple[str, str | None]:
        return self._round_time(node, ceil=True)

    def _round_time(self, node: exp.Floor | exp.Ceil, ceil: bool) -> tuple[str, str | None]:
        text, kind = self.expr(node.this)
        unit = node.args.get("to")
        if unit is None:
            name = "ceil" if ceil else "floor"
            return f"{name}({text})", "int" if kind in ("int", "float") else None
        ms = _unit_ms(node, unit.name)
        if kind not in _TIMES:
            raise Untranslatable(node, "FLOOR/CEIL(... TO unit) takes a TIMESTAMP")
        if ceil:  # -floor(-t / u) * u
            return f"(-((-{text}) - (-{text}) % {ms}))", kind
        return f"({text} - {text} % {ms})", kind

    def _anonymous(self, node: exp.Anonymous) -> tuple[str, str | None]:
        name = str(node.this).upper()
        handler = getattr(self, f"_fn_{name.lower()}", None)
        if handler is not None:
            result: tuple[str, str | None] = handler(node, node.expressions)
            return result
        return self._function(node)

    def _fn_to_timestamp_ltz(self, node: exp.Anonymous, args: list) -> tuple[str, str | None]:
        precision = args[1].name if len(args) == 2 else "3"
        if precision not in ("0", "3"):
            raise Untranslatable(node, "TO_TIMESTAMP_LTZ(n, 0 | 3): epoch seconds or milliseconds")
        text = self.text(args[0])
        return (text if precision == "3" else f"({text} * 1000)"), "ltz"

    def _fn_date_format(self, node: exp.Anonymous, args: list) -> tuple[str, str | None]:
        text, kind = self.expr(args[0]) if args else ("", None)
        if len(args) != 2 or kind not in _TIMES or not isinstance(args[1], exp.Literal):
            raise Untranslatable(node, "DATE_FORMAT(timestamp, 'pattern') is supported")
        return f"date_format({text}, {self.text(args[1])})", "str"

    def _fn_timestampdiff(self, node: exp.Anonymous, args: list) -> tuple[str, str | None]:
        if len(args) != 3:
            raise Untranslatable(node, "TIMESTAMPDIFF(unit, from, to)")
        ms = _unit_ms(node, args[0].name)
        a, b = self.text(args[1]), self.text(args[2])
        return f"int(({b} - {a}) / {ms})", "int"  # whole units, truncated toward zero

    def _fn_timestampadd(self, node: exp.Anonymous, args: list) -> tuple[str, str | None]:
        if len(args) != 3:
            raise Untranslatable(node, "TIMESTAMPADD(unit, n, timestamp)")
        ms = _unit_ms(node, args[0].name)
        text, kind = self.expr(args[2])
        return f"({text} + {self.text(args[1])} * {ms})", kind

    def _fn_mod(self, node: exp.Anonymous, args: list) -> tuple[str, str | None]:
        return self._java_mod(node, args)

    def _mod(self, node: exp.Mod) -> tuple[str, str | None]:
        return self._java_mod(node, [node.this, node.expression])

    def _java_mod(self, node: exp.Expression, args: list) -> tuple[str, str | None]:
        (a, ta), (b, tb) = self.expr(args[0]), self.expr(args[1])
        if not (ta == tb == "int"):
            raise Untranslatable(node, "MOD takes integers (CAST the operands)")
        return f"({a} - {b} * int({a} / {b}))", "int"  # Java's %: the sign of the dividend

    def _coalesce(self, node: exp.Coalesce) -> tuple[str, str | None]:
        texts, kind = decimals.branches([self.expr(a) for a in [node.this, *node.expressions]])
        return f"coalesce({', '.join(texts)})", kind

    def _substring(self, node: exp.Substring) -> tuple[str, str | None]:
        start = node.args.get("start")
        length = node.args.get("length")
        if not isinstance(start, exp.Literal) or start.is_string or int(start.name) < 1:
            raise Untranslatable(node, "SUBSTRING(s, start [, length]) with a start >= 1")
        tail = f", {self.text(length)}" if length is not None else ""
        return f"substr({self.text(node.this)}, {int(start.name) - 1}{tail})", "str"

    def _function(self, node: exp.Expression) -> tuple[str, str | None]:
        if not isinstance(node, exp.Func):
            raise Untranslatable(node, f"{node.key.upper()} is not supported yet")
        name = str(node.this) if isinstance(node, exp.Anonymous) else node.sql_name()
        target = _FUNCTIONS.get(name.upper())
        if target is None:
            shown = node.sql(dialect="hive").split("(")[0].upper()  # as written: LPAD, not PAD
            raise Untranslatable(node, f"{shown} is not supported yet")
        args: list[exp.Expression] = []
        for value in node.args.values():
            if isinstance(value, exp.Expression):
                args.append(value)
            elif isinstance(value, list):
                args.extend(v for v in value if isinstance(v, exp.Expression))
        return f"{target}({', '.join(self.text(a) for a in args)})", _RESULT_TYPES.get(target)


def interval_ms(node: exp.Interval) -> int | None:
    """``INTERVAL '5' SECOND`` in milliseconds; None for another form or unit."""
    unit = node.unit.name.upper() if node.unit is not None else ""
    try:
        amount = float(node.this.name)
    except (AttributeError, ValueError):
        return None
    scale = UNIT_MS.get(unit if unit in UNIT_MS else unit.rstrip("S"))
    return None if scale is None else int(amount * scale)


def _unit_ms(node: exp.Expression, unit: str) -> int:
    ms = UNIT_MS.get(unit.upper().rstrip("S") if unit.upper() != "MS" else "MILLISECOND")
    if ms is None:
        units = ", ".join(UNIT_MS)
        raise Untranslatable(node, f"time unit {unit.upper()} is not supported ({units} are)")
    return ms


def _numeric(a: str | None, b: str | None) -> str | None:
    """The type of an arithmetic result without a DECIMAL side: ``float`` if either side is,
    the wider integer if both are integers."""
    if a in _TIMES and b == "int":
        return a  # a timestamp plus or minus milliseconds (INTERVAL)
    if "float" in (a, b) and {a, b} <= {"int", "float"}:
        return "float"
    if a == b == "int":
        da, db = decimals.decimal_of(a), decimals.decimal_of(b)
        return int_kind(max(da.precision if da else 10, db.precision if db else 10))
    return None
