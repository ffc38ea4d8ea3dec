"""A compiled :class:`Expression`, and :func:`explain_failure` for when its evaluation fails.

An expression's raw callable raises ordinary Python exceptions. :func:`explain_failure` turns
one into an :class:`~kstream.errors.ExpressionError` that names the culprit: it re-inspects the
record along the constant field paths the compiler recorded (``a.b[0]`` is
``("a", "b", 0)``) to tell a missing field, a bad index or a lookup into null apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kstream.errors import ExpressionError
from kstream.expr.functions import SEQUENCES, LimitError

__all__ = ["Expression", "Path", "explain_failure", "message_prefix", "path_text"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Expression:
    """A compiled expression. Nulls follow Flink SQL's three-valued logic (an operator or
    function given null gives null, ``and``/``or``/``not`` follow SQL; docs/expressions.md).

    Attributes:
        text: the source text.
        fields: top-level record fields the expression reads by name (``a`` for ``a.b[0]``,
            ``x`` for ``record["x"]``); keys computed at run time (``record[k]``) are not listed.
        fn: the raw compiled callable ``(record: dict) -> Any``. It raises ordinary Python
            exceptions (``KeyError`` for a missing field, ``TypeError`` for a type mismatch,
            ``ZeroDivisionError``, ...), never for a null operand; use it in hot loops and turn
            failures into messages with :func:`explain_failure`.
        where: where the expression comes from (e.g. ``operators[2].filter``), for messages.
    """

    text: str
    fields: frozenset[str]
    fn: Callable[[dict[str, Any]], Any] = field(repr=False, compare=False)
    where: str = ""
    _paths: tuple[Path, ...] = field(default=(), repr=False, compare=False)

    def evaluate(self, record: dict[str, Any]) -> Any:
        """Evaluate on ``record`` (a dict) and return the value.

        Raises:
            ExpressionError: the evaluation failed; the message names the expression and the
                cause (missing field, null operand, division by zero, type mismatch, ...).
        """
        try:
            return self.fn(record)
        except Exception as exc:
            raise explain_failure(self, record, exc) from exc


def message_prefix(text: str, where: str) -> str:
    """The start of every message about expression ``text``: ``where: expression '...'``."""
    shown = text if len(text) <= 120 else text[:117] + "..."
    return f"{where}: expression {shown!r}" if where else f"expression {shown!r}"


def path_text(path: Path) -> str:
    """``path`` as the user would write it: ``("a", "b", 0)`` -> ``a.b[0]``."""
    text = ""
    for key in path:
        if isinstance(key, str) and key.isidentifier():
            text = f"{text}.{key}" if text else key
        else:
            text = f"{text or 'record'}[{key!r}]"
    return text


def _walk(record: Any, path: Path) -> tuple[str, int, Any]:
    """Follow ``path``; returns (``ok``/``missing``/``index``/``type``, failing step, value)."""
    cur = record
    for i, key in enumerate(path):
        if isinstance(cur, Mapping):
            if key not in cur:
                return "missing", i, cur
        elif isinstance(cur, SEQUENCES) and type(key) is int:
            if not -len(cur) <= key < len(cur):
                return "index", i, cur
        else:
            return "type", i, cur
        cur = cur[key]
    return "ok", len(path), cur


# names that SQL spells as literals; an expression reads them as fields
_SQL_LITERALS = {"NULL": "null", "TRUE": "true", "FALSE": "false"}


def _structural(expr: Expression, record: Any, exc: Exception) -> str | None:
    """Explain a failed lookup (missing key, bad index, lookup into null or a scalar)."""
    for path in expr._paths:
        kind, i, cur = _walk(record, path)
        name, parent = path_text(path[: i + 1]), path_text(path[:i])
        if kind == "missing" and isinstance(exc, KeyError) and exc.args[:1] == (path[i],):
            literal = _SQL_LITERALS.get(name) if i == 0 else None
            hint = f" (write {literal} for the literal)" if literal else ""
            return f"field {name!r} is missing from the record{hint}"
        if kind == "index" and isinstance(exc, IndexError):
            return f"index {path[i]} is out of range for field {parent!r} (length {len(cur)})"
        if kind == "type" and isinstance(exc, TypeError):
            what = "null (None)" if cur is None else f"a {type(cur).__name__}"
            return f"field {parent!r} is {what}, cannot look up {path[i]!r} in it"
    return None


_COMPARE_RE = re.compile(r"'(\S+)' not supported between instances of '(\w+)' and '(\w+)'")
_OPERAND_RE = re.compile(r"unsupported operand type\(s\) for (\S+): '(\w+)' and '(\w+)'")


def _type_reason(expr: Expression, record: Any, msg: str) -> str:
    if "NoneType" in msg:  # operators and functions give null; this is e.g. a null index
        return f"a null (None) value cannot be used here ({msg})"
    if match := _COMPARE_RE.search(msg):
        return f"cannot compare {match[2]} with {match[3]} ('{match[1]}')"
    if match := _OPERAND_RE.search(msg):
        return f"cannot apply '{match[1]}' to {match[2]} and {match[3]}"
    hint = " (use concat(a, b) to join values as text)" if "concatenate" in msg else ""
    return f"type error: {msg}{hint}"


def _reason(expr: Expression, record: Any, exc: Exception) -> str:
    if isinstance(exc, LimitError):
        return str(exc)
    if not isinstance(record, Mapping):
        return f"the record is a {type(record).__name__}, not a dict"
    found = _structural(expr, record, exc)
    if found:
        return found
    if isinstance(exc, TypeError):
        return _type_reason(expr, record, str(exc))
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, KeyError) and exc.args:
        return f"key {exc.args[0]!r} is missing"
    return f"{type(exc).__name__}: {exc}"


def explain_failure(expr: Expression, record: Any, exc: Exception) -> ExpressionError:
    """Turn an exception raised by ``expr.fn(record)`` into a clear :class:`ExpressionError`.

    Args:
        expr: the expression that failed.
        record: the record it was evaluated on (re-inspected to find the culprit field).
        exc: the exception ``expr.fn`` raised.

    Returns:
        The error to raise (``raise explain_failure(expr, record, exc) from exc``); its message
        is e.g. ``expression 'dep_delay > 10': field 'dep_delay' is missing from the record``.
    """
    try:
        reason = _reason(expr, record, exc)
    except Exception:  # never let the diagnosis hide the original failure
        reason = f"{type(exc).__name__}: {exc}"
    return ExpressionError(f"{message_prefix(expr.text, expr.where)}: {reason}")
