"""What a compiled expression may call at run time: the whitelisted functions and guarded operators.

:data:`FUNCTIONS` is the whitelist of callable names (``lower(x)``, ``coalesce(a, b)``, ...) with
their argument counts; a compiled expression's globals hold exactly these, plus the guarded
operators of :data:`GUARDED_OPERATORS`. The rewritten lambda routes ``**`` and data-driven ``*``
and ``%`` through the guarded operators, which raise :class:`LimitError` instead of building
huge values or formatting strings.

Null arguments follow SQL: every function except ``coalesce`` gives null when an argument is
null; the compiled code checks this inline (:mod:`kstream.expr.nulls`) before calling, so the
functions and guarded operators here never receive null.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from kstream.expr.sql_changelog import CHANGELOG_FUNCTIONS
from kstream.expr.sql_functions import SQL_FUNCTIONS
from kstream.expr.sql_rank import SQL_RANK_FUNCTIONS

__all__ = [
    "FUNCTIONS",
    "GUARDED_OPERATORS",
    "MAX_EXPONENT",
    "MAX_RANGE",
    "MAX_REPEAT",
    "NULL_ACCEPTING",
    "SEQUENCES",
    "LimitError",
    "guarded_mod",
    "guarded_mul",
    "guarded_pow",
]

MAX_EXPONENT = 1000
"""Largest absolute exponent ``**`` (and digits count of ``round``) accepted at run time."""
MAX_REPEAT = 1_000_000
"""Largest string/bytes/list a data-driven ``*`` repetition may build."""

SEQUENCES = (str, bytes, list, tuple)
_NUMBERS = frozenset({int, float})


class LimitError(ValueError):
    """A run-time safety limit was hit; its message is shown to the user as is."""


def guarded_pow(base: Any, exp: Any) -> Any:
    if isinstance(exp, (int, float)) and abs(exp) > MAX_EXPONENT:
        raise LimitError(f"exponent {exp} is too large (the limit is {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exp, int) and base.bit_length() * exp > 100_000:
        raise LimitError("the result of '**' would be too large")
    return base**exp


def guarded_mul(a: Any, b: Any) -> Any:
    if type(a) in _NUMBERS and type(b) in _NUMBERS:  # the fast, common case
        return a * b
    if isinstance(a, SEQUENCES):
        if isinstance(b, int) and len(a) * b > MAX_REPEAT:
            raise LimitError(f"'*' would repeat a {type(a).__name__} beyond {MAX_REPEAT} items")
    elif isinstance(b, SEQUENCES) and isinstance(a, int):
        return guarded_mul(b, a)
    return a * b


def guarded_mod(a: Any, b: Any) -> Any:
    if type(a) in _NUMBERS and type(b) in _NUMBERS:  # the fast, common case
        return a % b
    if isinstance(a, SEQUENCES[:2]):
        raise LimitError("'%' string formatting is not supported; use concat(...)")
    return a % b


# the names under which the rewritten lambda calls them (see kstream.expr.syntax)
GUARDED_OPERATORS: dict[str, Callable[..., Any]] = {
    "_k_pow": guarded_pow,
    "_k_mul": guarded_mul,
    "_k_mod": guarded_mod,
}


def _coalesce(*args: Any) -> Any:
    for value in args:
        if value is not None:
            return value
    return None


def _round(x: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise LimitError(f"round() digits {ndigits} out of range (the limit is {MAX_EXPONENT})")
    return round(x, ndigits)


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    """``min``/``max``: of several values (SQL ``LEAST``/``GREATEST``), or of one list, whose
    null elements are skipped (null when none is left), like the SQL aggregates."""

    def extreme(*args: Any) -> Any:
        if len(args) > 1:
            return pick(args)
        values = [v for v in args[0] if v is not None]
        return pick(values) if values else None

    return extreme


def _substr(s: Any, start: Any, length: Any = None) -> Any:
    return s[start : None if length is None else start + length]


def _concat(*args: Any) -> str:
    return "".join(map(str, args))


#: Longest list ``range()`` builds (an expression must stay cheap per record).
MAX_RANGE = 10_000


def _range(*args: Any) -> list[int]:
    """``range(stop)`` / ``range(start, stop)`` / ``range(start, stop, step)`` as a list of at
    most :data:`MAX_RANGE` integers."""
    for a in args:
        if type(a) is not int:
            raise TypeError(f"range() takes integers, got {type(a).__name__}")
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(f"range() of {len(numbers)} elements (the limit is {MAX_RANGE})")
    return list(numbers)


# name -> (callable, minimum arguments, maximum arguments or None for any number). Every
# function but those of NULL_ACCEPTING is strict: the compiled code returns null without
# calling it when an argument is null (SQL), so the callables never see a null argument.
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (_extreme(min), 1, None),
    "max": (_extreme(max), 1, None),
    "len": (len, 1, 1),
    "str": (str, 1, 1),
    "int": (int, 1, 2),
    "float": (float, 1, 1),
    "bool": (bool, 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "lower": (str.lower, 1, 1),
    "upper": (str.upper, 1, 1),
    "strip": (str.strip, 1, 1),
    "startswith": (str.startswith, 2, 2),
    "endswith": (str.endswith, 2, 2),
    "contains": (operator.contains, 2, 2),
    "substr": (_substr, 2, 3),
    "concat": (_concat, 0, None),
    "coalesce": (_coalesce, 1, None),
    "range": (_range, 1, 3),
    **SQL_FUNCTIONS,
    **SQL_RANK_FUNCTIONS,
    **CHANGELOG_FUNCTIONS,
}
NULL_ACCEPTING = frozenset({"coalesce"})
"""The functions called with null arguments (all others give null for a null argument)."""
