"""Flink SQL's DECIMAL arithmetic at run time, on Python :class:`decimal.Decimal` values.

The SQL compiler (:mod:`kstream.sql.decimals`) derives each result's precision ``p`` and
scale ``s`` and passes them; the values are computed exactly, then fitted to ``DECIMAL(p, s)``
as Flink's ``DecimalData.fromBigDecimal`` does: rounded HALF_UP to ``s`` digits after the
point, NULL when more than ``p`` digits remain. An operand may be a Python ``int`` (an integer
column meeting a DECIMAL). Every function is strict (never sees a null).

- ``decimal(text)``: a DECIMAL literal (``decimal('60.0')``);
- ``dec_add / dec_sub / dec_mul(a, b, p, s)``: exact, then fitted (Flink
  ``DecimalDataUtils.add / subtract / multiply``);
- ``dec_div(a, b, p, s)``: the quotient rounded HALF_UP to ``s`` digits (Flink
  ``DecimalDataUtils.divide``); a zero divisor raises ``ZeroDivisionError`` (Flink fails
  the job with an ArithmeticException);
- ``dec_neg(x)``: ``-x``, exact;
- ``dec_cast(x, p, s)``: ``CAST(x AS DECIMAL(p, s))`` of an int, float (its shortest
  decimal text, as Java's ``BigDecimal.valueOf(double)``), Decimal or numeric text; NULL on
  overflow (Flink's CAST of a number); text that is not a number raises ValueError;
- ``dec_str(x)``: ``CAST(x AS STRING)``, without an exponent (``BigDecimal.toPlainString``);
- ``dec_avro(x, s)``: the Avro ``decimal`` bytes of ``x`` at scale ``s`` (the unscaled value in
  two's complement, big-endian, fewest bytes: Java's ``BigInteger.toByteArray``, as Flink's
  ``DecimalData.toUnscaledBytes``); ``avro_dec(b, s)``: the Decimal such bytes hold.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

__all__ = ["DECIMAL_FUNCTIONS", "fit"]

#: exact for the sums and products of two 38-digit values
_EXACT = Context(prec=100, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999)


def _number(x: Any) -> Decimal:
    if isinstance(x, Decimal):
        return x
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        raise TypeError(f"not a number for a DECIMAL: {type(x).__name__}")
    try:
        return Decimal(repr(x) if isinstance(x, float) else str(x).strip())
    except InvalidOperation:
        raise ValueError(f"not a number for a DECIMAL: {x!r}") from None


def fit(value: Decimal, precision: int, scale: int) -> Decimal | None:
    """``value`` as a ``DECIMAL(precision, scale)``: rounded HALF_UP to ``scale`` digits after
    the point; None when it needs more than ``precision`` digits or is not finite."""
    if not value.is_finite():
        return None
    rounded = value.quantize(Decimal(1).scaleb(-scale, _EXACT), context=_EXACT)
    digits = rounded.as_tuple().digits
    return rounded if len(digits) <= precision or not any(digits) else None


def _divide(a: Any, b: Any, precision: int, scale: int) -> Decimal | None:
    quotient = Fraction(_number(a)) / Fraction(_number(b)) * 10**scale
    whole, rest = divmod(abs(quotient.numerator), quotient.denominator)
    if 2 * rest >= quotient.denominator:  # HALF_UP: half away from zero
        whole += 1
    sign = "-" if quotient < 0 else ""
    return fit(Decimal(f"{sign}{whole}E-{scale}"), precision, scale)


def _add(a: Any, b: Any, precision: int, scale: int) -> Decimal | None:
    return fit(_EXACT.add(_number(a), _number(b)), precision, scale)


def _sub(a: Any, b: Any, precision: int, scale: int) -> Decimal | None:
    return fit(_EXACT.subtract(_number(a), _number(b)), precision, scale)


def _mul(a: Any, b: Any, precision: int, scale: int) -> Decimal | None:
    return fit(_EXACT.multiply(_number(a), _number(b)), precision, scale)


def _neg(x: Any) -> Decimal:
    return _number(x).copy_negate()


def _cast(x: Any, precision: int, scale: int) -> Decimal | None:
    return fit(_number(x), precision, scale)


def _literal(text: Any) -> Decimal:
    return _number(str(text))


def _plain(x: Any) -> str:
    return format(_number(x), "f")


def _to_avro(x: Any, scale: int) -> bytes:
    unscaled = int(_number(x).scaleb(scale, _EXACT).to_integral_value(ROUND_HALF_UP))
    size = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    return unscaled.to_bytes(size, "big", signed=True)


def _from_avro(raw: Any, scale: int) -> Decimal:
    if not isinstance(raw, bytes):
        raise TypeError(f"not Avro decimal bytes: {type(raw).__name__}")
    return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale, _EXACT)


#: name -> (callable, minimum arguments, maximum arguments), merged into the SQL functions
DECIMAL_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "decimal": (_literal, 1, 1),
    "dec_add": (_add, 4, 4),
    "dec_sub": (_sub, 4, 4),
    "dec_mul": (_mul, 4, 4),
    "dec_div": (_divide, 4, 4),
    "dec_neg": (_neg, 1, 1),
    "dec_cast": (_cast, 3, 3),
    "dec_str": (_plain, 1, 1),
    "dec_avro": (_to_avro, 2, 2),
    "avro_dec": (_from_avro, 2, 2),
}
