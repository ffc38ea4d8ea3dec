"""Flink's exact numeric types in SQL expressions: integer widths and DECIMAL(p, s).

The translator's types are short strings (``int``, ``float``, ``decimal``, ... see
:data:`kstream.sql.exprs.ColumnRef`). The exact numeric ones carry more, as subclasses of
``str`` equal to the plain name (and printed as it), so every ``kind == "int"`` test and
every text made of a type keeps working:

- :class:`SqlInt` is ``"int"`` with its digits as a DECIMAL: TINYINT 3, SMALLINT 5, INT 10,
  BIGINT 19 (Flink treats an integer meeting a DECIMAL as ``DECIMAL(digits, 0)``);
- :class:`SqlDecimal` is ``"decimal"`` with its precision and scale.

The result types of ``+ - * /`` between exact numerics follow Flink's
``LogicalTypeMerging.findAdditionDecimalType``, ``findMultiplicationDecimalType`` and
``findDivisionDecimalType`` (precision capped at 38 by ``adjustPrecisionScale``, which keeps
the integer digits and at least 6 fractional ones). A DOUBLE meeting a DECIMAL makes a DOUBLE.
The run-time side (``decimal``, ``dec_add``, ``dec_div``, ``dec_cast``, ...) is
:mod:`kstream.expr.sql_decimals`.
"""

from __future__ import annotations

import re

__all__ = [
    "INT_DIGITS",
    "MAX_PRECISION",
    "SqlDecimal",
    "SqlInt",
    "arithmetic",
    "as_float",
    "branches",
    "common",
    "decimal_of",
    "decimal_type",
    "int_kind",
    "literal_kind",
    "sql_decimal",
]

#: Flink's DecimalType.MAX_PRECISION
MAX_PRECISION = 38
#: Flink's LogicalTypeMerging.MINIMUM_ADJUSTED_SCALE
_MIN_ADJUSTED_SCALE = 6
#: digits of each integer type as a DECIMAL (Flink's integer-to-decimal widening)
INT_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INT": 10, "INTEGER": 10, "BIGINT": 19}
_INT_MAX = 2**31 - 1
_DECIMAL_TYPE = re.compile(r"\s*(?:DECIMAL|DEC|NUMERIC)\s*(?:\((\d+)\s*(?:,\s*(\d+))?\))?\s*$")


class SqlInt(str):
    """The type ``int`` of an integer with ``digits`` decimal digits (10 for an INT)."""

    digits: int

    def __new__(cls, digits: int) -> SqlInt:
        self = super().__new__(cls, "int")
        self.digits = digits
        return self


class SqlDecimal(str):
    """The type ``decimal`` of a ``DECIMAL(precision, scale)``."""

    precision: int
    scale: int

    def __new__(cls, precision: int, scale: int) -> SqlDecimal:
        self = super().__new__(cls, "decimal")
        self.precision, self.scale = precision, scale
        return self


def int_kind(digits: int = 10) -> SqlInt:
    """An integer type of ``digits`` digits (10: INT, 19: BIGINT)."""
    return SqlInt(digits)


def sql_decimal(precision: int, scale: int) -> SqlDecimal:
    """``DECIMAL(precision, scale)`` made to fit 38 digits as Flink does: the integer digits
    kept, the scale reduced, but not below min(scale, 6) (``adjustPrecisionScale``)."""
    if precision <= MAX_PRECISION:
        return SqlDecimal(precision, scale)
    keep = max(MAX_PRECISION - (precision - scale), min(scale, _MIN_ADJUSTED_SCALE))
    return SqlDecimal(MAX_PRECISION, keep)


def literal_kind(text: str) -> str:
    """The type of a numeric literal as Calcite parses it: ``60.0`` is DECIMAL(3, 1) (every
    digit counts, ``0.05`` is DECIMAL(3, 2)), ``60`` an INT, ``3000000000`` a BIGINT,
    ``1e3`` a DOUBLE."""
    if any(c in text for c in "eE"):
        return "float"
    if "." in text:
        whole, fraction = text.split(".", 1)
        return SqlDecimal(max(len(whole + fraction), 1), len(fraction))
    value = int(text)
    return int_kind(10 if value <= _INT_MAX else 19 if value < 2**63 else MAX_PRECISION)


def decimal_of(kind: str | None) -> SqlDecimal | None:
    """``kind`` as a DECIMAL: itself, an integer as ``DECIMAL(digits, 0)`` (an integer of
    unknown width as an INT); None for other types."""
    if isinstance(kind, SqlDecimal):
        return kind
    if kind == "int":
        return SqlDecimal(kind.digits if isinstance(kind, SqlInt) else 10, 0)
    return None


def decimal_type(sql_type: str) -> SqlDecimal | None:
    """``DECIMAL(10, 2)`` -> its type; ``DECIMAL`` alone is DECIMAL(10, 0) as in Flink; None
    for another type."""
    match = _DECIMAL_TYPE.match(sql_type.upper())
    if match is None:
        return None
    precision, scale = match.group(1), match.group(2)
    return SqlDecimal(int(precision or 10), int(scale or 0))


def as_float(text: str, kind: str | None) -> str:
    """``text`` converted to a DOUBLE when it is a DECIMAL (a DOUBLE meets a DECIMAL)."""
    return f"float({text})" if kind == "decimal" else text


def arithmetic(op: str, a: tuple[str, str | None], b: tuple[str, str | None]) -> tuple[str, str]:
    """``a op b`` (``op`` one of ``+ - * /``) where a side is a DECIMAL: the text and type.

    Exact numerics give a DECIMAL of Flink's derived type (run-time ``dec_add`` etc. round
    HALF_UP to its scale and give NULL beyond its precision); a DOUBLE side gives a DOUBLE.

    Raises:
        ValueError: a side that is not a number.
    """
    (ta, ka), (tb, kb) = a, b
    if "float" in (ka, kb) and {ka, kb} <= {"float", "int", "decimal"}:
        return f"({as_float(ta, ka)} {op} {as_float(tb, kb)})", "float"
    da, db = decimal_of(ka), decimal_of(kb)
    if da is None or db is None:
        raise ValueError(f"{op} of a DECIMAL and a {kb if da else ka or 'value of unknown type'}")
    kind = _RESULT[op](da, db)
    name = {"+": "dec_add", "-": "dec_sub", "*": "dec_mul", "/": "dec_div"}[op]
    return f"{name}({ta}, {tb}, {kind.precision}, {kind.scale})", kind


def _addition(a: SqlDecimal, b: SqlDecimal) -> SqlDecimal:
    """Flink LogicalTypeMerging.findAdditionDecimalType (also for ``-``)."""
    scale = max(a.scale, b.scale)
    return sql_decimal(max(a.precision - a.scale, b.precision - b.scale) + scale + 1, scale)


def _multiplication(a: SqlDecimal, b: SqlDecimal) -> SqlDecimal:
    """Flink LogicalTypeMerging.findMultiplicationDecimalType."""
    return sql_decimal(a.precision + b.precision + 1, a.scale + b.scale)


def _division(a: SqlDecimal, b: SqlDecimal) -> SqlDecimal:
    """Flink LogicalTypeMerging.findDivisionDecimalType."""
    scale = max(_MIN_ADJUSTED_SCALE, a.scale + b.precision + 1)
    return sql_decimal(a.precision - a.scale + b.scale + scale, scale)


_RESULT = {"+": _addition, "-": _addition, "*": _multiplication, "/": _division}


def common(kinds: list[str | None]) -> str | None:
    """The type the branches of CASE / IF / COALESCE take (Flink ``findCommonType``): a
    DOUBLE if one is a DOUBLE and another a DECIMAL; a DECIMAL wide enough for every exact
    branch (the most integer digits and the largest scale); else the first known type."""
    known = [k for k in kinds if k is not None]
    if "decimal" not in known:
        return known[0] if known else None
    if "float" in known:
        return "float"
    decimals = [decimal_of(k) for k in known]
    if any(d is None for d in decimals):
        return known[0]  # mixed with a non-number: left to the sink, as before
    exact = [d for d in decimals if d is not None]
    scale = max(d.scale for d in exact)
    digits = max(d.precision - d.scale for d in exact)
    return SqlDecimal(min(digits + scale, MAX_PRECISION), scale)


def branches(parts: list[tuple[str, str | None]]) -> tuple[list[str], str | None]:
    """The texts and common type of the values of CASE / IF / COALESCE: a DECIMAL branch
    becomes a DOUBLE when another is a DOUBLE (Flink ``findCommonType``)."""
    kind = common([k for _, k in parts])
    if kind == "float":
        return [as_float(t, k) for t, k in parts], kind
    return [t for t, _ in parts], kind
