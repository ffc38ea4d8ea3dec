"""What a compiled expression may call at run time: the whitelisted functions and guarded operators.

:data:`FUNCTIONS` is the whitelist of callable names (``lower(x)``, ``coalesce(a, b)``, ...) with
their argument counts; a compiled expression's globals hold exactly these, plus the guarded
operators of :data:`GUARDED_OPERATORS`. The rewritten lambda routes ``**`` and data-driven ``*``
and ``%`` through the guarded operators, which raise :class:`LimitError` instead of building
huge values or formatting strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "ARITH_CONTEXT",
    "FUNCTIONS",
    "GUARDED_OPERATORS",
    "MAX_EXPONENT",
    "MAX_REPEAT",
    "NULL_HOSTILE",
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


#: Longest list ``range()`` builds (an expression must stay cheap per record).
MAX_RANGE = 10_000


def _range(*args: Any) -> list[int]:
    """``range(stop)`` / ``range(start, stop)`` / ``range(start, stop, step)`` as a list of at
    most :data:`MAX_RANGE` integers; ``null`` bounds give an empty list."""
    if any(a is None for a in args):
        return []
    for a in args:
        if type(a) is not int:
            raise TypeError(f"range() takes integers, got {type(a).__name__}")
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(f"range() of {len(numbers)} elements (the limit is {MAX_RANGE})")
    return list(numbers)


# name -> (callable, minimum arguments, maximum arguments or None for any number)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, None),
    "max": (max, 1, None),
    "len": (len, 1, 1),
    "str": (str, 1, 1),
    "int": (int, 1, 2),
    "float": (float, 1, 1),
    "bool": (bool, 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "lower": (lambda s: None if s is None else str.lower(s), 1, 1),
    "upper": (lambda s: None if s is None else str.upper(s), 1, 1),
    "strip": (lambda s: None if s is None else str.strip(s), 1, 1),
    "startswith": (lambda s, p: s is not None and str.startswith(s, p), 2, 2),
    "endswith": (lambda s, p: s is not None and str.endswith(s, p), 2, 2),
    "contains": (lambda s, sub: s is not None and sub in s, 2, 2),
    "substr": (
        lambda s, i, n=None: None if s is None else s[i : None if n is None else i + n],
        2,
        3,
    ),
    "concat": (lambda *a: "".join("" if v is None else str(v) for v in a), 0, None),
    "coalesce": (_coalesce, 1, None),
    "range": (_range, 1, 3),
}
# functions whose None arguments fail (the others return None/False/"" for None)
NULL_HOSTILE = {"abs", "round", "min", "max", "len", "int", "float", "floor", "ceil"}
ARITH_CONTEXT = "a comparison/arithmetic"
"""Where a null operand of an operator fails, as named in messages (a function is named as
``a call to f()``)."""
