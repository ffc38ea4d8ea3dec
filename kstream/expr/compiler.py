"""Compiling the safe expression language (``filter``, ``map`` fields, ``key_by`` of pipelines).

An expression such as ``dep_delay > 10 and carrier in ["UA", "AA"]`` is parsed once with
:mod:`ast`, checked against a whitelist of node types and functions, rewritten into a
``lambda r: ...`` whose field names are dict lookups (``r["dep_delay"]``) and whose operators
follow Flink SQL's three-valued logic for nulls (:mod:`kstream.expr.syntax`,
:mod:`kstream.expr.nulls`), and compiled with a globals dict that holds only the whitelisted
helpers of :mod:`kstream.expr.functions` and an empty ``__builtins__``. The result, an
:class:`~kstream.expr.expression.Expression`, is as fast as a hand-written lambda and cannot
reach arbitrary Python. The escape hatch for anything else is
:func:`~kstream.expr.udf.load_python_callable` (``python: module:function`` in YAML).
"""

from __future__ import annotations

import ast
import warnings
from typing import Any

from kstream.errors import ExpressionError
from kstream.expr.expression import Expression, message_prefix, path_text
from kstream.expr.functions import FUNCTIONS, GUARDED_OPERATORS
from kstream.expr.syntax import RECORD_ARG, Rewriter, parse

__all__ = ["compile_expression"]


def compile_expression(text: str, *, where: str = "") -> Expression:
    """Compile an expression once into an :class:`Expression`.

    Args:
        text: the expression source, e.g. ``"dep_delay > 10 and origin == 'JFK'"``.
        where: where it comes from (e.g. ``operators[2].filter``); prefixes every message.

    Returns:
        The compiled expression; call ``.evaluate(record)`` or the raw ``.fn(record)``.

    Raises:
        ExpressionError: ``text`` is empty, not a string, not valid syntax (the message gives
            the column) or uses a construct, name or function that is not allowed (the message
            says what and how to fix it).
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"{where + ': ' if where else ''}expression must be a non-empty text")
    text = text.strip()
    prefix = message_prefix(text, where)
    rewriter = Rewriter(prefix, "\n" in text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences in string literals
            body = rewriter.visit(parse(text, prefix))
            args = ast.arguments([], [ast.arg(RECORD_ARG)], None, [], [], None, [])
            tree = ast.fix_missing_locations(ast.Expression(ast.Lambda(args, body)))
            code = compile(tree, f"<expression {where or text}>", "eval")
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{prefix}: the expression is too deeply nested") from None
    scope: dict[str, Any] = {name: entry[0] for name, entry in FUNCTIONS.items()}
    scope |= {"__builtins__": {}, **GUARDED_OPERATORS}
    fn = eval(code, scope)
    paths = tuple(sorted(rewriter.paths, key=lambda p: (len(p), path_text(p))))
    return Expression(text, frozenset(rewriter.fields), fn, where, paths)
