"""Parsing an expression and checking its syntax tree, then rewriting it for compilation.

:func:`parse` reads the text with :mod:`ast` (a multi-line text may span lines). A
:class:`Rewriter` walks the tree once: it refuses every node type, name and function that is not
whitelisted, with a message that gives the column and a hint, and rewrites field names into dict
lookups on the lambda's argument :data:`RECORD_ARG` (``dep_delay`` -> ``_r["dep_delay"]``) and
risky operators into calls of the guarded operators of :mod:`kstream.expr.functions`. Operators
and function calls get SQL's null semantics through :class:`~kstream.expr.nulls.NullLogic`. On
the way it records the constant field paths the expression reads. A text that does not parse
and looks like SQL (``AND``, ``=``, ``IS NULL``) gets hints from :mod:`kstream.expr.hints`.
"""

from __future__ import annotations

import ast
from typing import Any, NoReturn

from kstream.errors import ExpressionError
from kstream.expr.expression import Path
from kstream.expr.functions import FUNCTIONS, NULL_ACCEPTING
from kstream.expr.hints import sql_hints
from kstream.expr.nulls import RECORD_ARG, NullLogic

__all__ = ["RECORD_ARG", "Rewriter", "parse"]

_ALIASES: dict[str, Any] = {"true": True, "false": False, "null": None}
_LITERAL_TYPES = (bool, int, float, str, type(None))
_ALLOWED_FUNCTIONS = ", ".join(sorted(FUNCTIONS))
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_BAD_OPS: dict[type, str] = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.MatMult: "@"}
_BAD_OPS |= {ast.LShift: "<<", ast.RShift: ">>"}
_SYNTAX_HINT = "see docs/expressions.md for the allowed syntax"
_CUSTOM = "use 'python: module:function' for custom code"
_FORBIDDEN: dict[type, tuple[str, str]] = {
    ast.Lambda: ("lambda is not allowed", _CUSTOM),
    ast.NamedExpr: ("assignment (:=) is not allowed", _CUSTOM),
    ast.JoinedStr: ("f-strings are not allowed", "use concat(a, '-', b)"),
    ast.Starred: ("starred arguments (*x) are not allowed", "pass arguments one by one"),
    ast.Dict: ("dict literals are not allowed", _CUSTOM),
    ast.Set: ("set literals are not allowed", "use a list: x in [1, 2]"),
}
for _comp in (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp):
    _FORBIDDEN[_comp] = ("comprehensions are not allowed", _CUSTOM)


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _is_none(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "null"
    return isinstance(node, ast.Constant) and node.value is None


def _is_path(node: ast.expr) -> bool:
    """True when ``node`` is a chain of ``.x`` / ``[k]`` rooted at a field name or ``record``."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id not in _ALIASES


def _static_path(node: ast.expr) -> Path | None:
    """The constant key path of ``node`` (``a.b[0]`` -> ``("a", "b", 0)``), else None."""
    if isinstance(node, ast.Name):
        return None if node.id in _ALIASES else () if node.id == "record" else (node.id,)
    if isinstance(node, ast.Attribute):
        key: Any = node.attr
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        key = node.slice.value
        if type(key) not in (str, int):
            return None
    else:
        return None
    base = _static_path(node.value)
    return None if base is None else (*base, key)


def _guarded_operator(node: ast.BinOp) -> str | None:
    """The guarded operator (functions.GUARDED_OPERATORS) that must compute ``node``, if any."""
    op = type(node.op)
    if op is ast.Pow:
        return "_k_pow"
    if op is ast.Mult and not (_is_number(node.left) or _is_number(node.right)):
        return "_k_mul"
    if op is ast.Mod and not _is_number(node.left):
        return "_k_mod"
    return None


def _lookup(base: ast.expr, key: str) -> ast.Subscript:
    return ast.Subscript(value=base, slice=ast.Constant(key), ctx=ast.Load())


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])


class Rewriter(ast.NodeTransformer):
    """Validates a parsed expression and rewrites field names into lookups on ``_r``."""

    def __init__(self, prefix: str, multiline: bool) -> None:
        self.prefix, self.multiline = prefix, multiline
        self.fields: set[str] = set()
        self.paths: set[Path] = set()
        self.nulls = NullLogic()

    def fail(self, node: ast.AST, what: str, hint: str = _SYNTAX_HINT) -> NoReturn:
        line = f"line {getattr(node, 'lineno', 2) - 1}, " if self.multiline else ""
        column = getattr(node, "col_offset", 0) + 1
        raise ExpressionError(f"{self.prefix}, {line}column {column}: {what}; {hint}")

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.expr_context | ast.boolop | ast.operator | ast.cmpop):
            return node
        self.fail(node, *_FORBIDDEN.get(type(node), (f"{type(node).__name__} is not allowed",)))

    visit_IfExp = visit_List = visit_Tuple = visit_Slice = ast.NodeTransformer.generic_visit

    def check_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("__"):
            hint = f"a field with such a name can be read as [{name!r}]"
            self.fail(node, f"name {name!r} is not allowed (names starting with '__')", hint)

    def note(self, node: ast.expr) -> None:
        """Record the static field path of ``node`` (if any) for ``fields`` and diagnostics."""
        path = _static_path(node)
        if path:
            self.paths.add(path)
            self.fields.add(str(path[0]))

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if not isinstance(node.value, _LITERAL_TYPES):
            hint = "literals are numbers, strings, true/false and null"
            self.fail(node, f"literal {node.value!r} is not allowed", hint)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _ALIASES:
            return ast.copy_location(ast.Constant(_ALIASES[node.id]), node)
        self.check_name(node, node.id)
        self.note(node)
        rec = ast.Name(RECORD_ARG, ast.Load())
        return ast.copy_location(rec if node.id == "record" else _lookup(rec, node.id), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not _is_path(node.value):
            what = f"attribute access '.{node.attr}' is only allowed on record fields"
            self.fail(node, what, "write a.b.c for nested fields and lower(x) for methods")
        self.check_name(node, node.attr)
        self.note(node)
        return ast.copy_location(_lookup(self.visit(node.value), node.attr), node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.note(node)
        new = ast.Subscript(self.visit(node.value), self.visit(node.slice), ast.Load())
        return ast.copy_location(new, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        op = type(node.op)
        if op not in _ARITH:
            what = f"operator '{_BAD_OPS.get(op, op.__name__)}' is not allowed"
            self.fail(node, what, "allowed operators: + - * / // % **")
        if op is ast.Mod and isinstance(getattr(node.left, "value", None), str):  # "%d" % x
            self.fail(node, "'%' string formatting is not allowed", "use concat(...)")
        operands = [self.visit(node.left), self.visit(node.right)]
        guarded = _guarded_operator(node)
        if guarded:
            new = self.nulls.strict(operands, lambda a: _call(guarded, a))
        else:
            new = self.nulls.strict(operands, lambda a: ast.BinOp(a[0], node.op, a[1]))
        return ast.copy_location(new, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Invert):
            self.fail(node, "operator '~' is not allowed", "use 'not x' or -x")
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(self.nulls.negate(operand), node)
        new = self.nulls.strict([operand], lambda a: ast.UnaryOp(node.op, a[0]))
        return ast.copy_location(new, node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        values = [self.visit(value) for value in node.values]
        return ast.copy_location(self.nulls.logic(node.op, values), node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        operands = [node.left, *node.comparators]
        ops: list[ast.cmpop] = []
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            is_test = _is_none(left) or _is_none(right)
            if isinstance(op, ast.Is | ast.IsNot) and not is_test:
                self.fail(node, "'is' only compares with None", "write 'x is None' or use ==")
            if is_test and isinstance(op, ast.Eq | ast.NotEq):  # x == null is a null test
                op = ast.Is() if isinstance(op, ast.Eq) else ast.IsNot()
            ops.append(op)
        new = self.nulls.compare(ops, [self.visit(operand) for operand in operands])
        return ast.copy_location(new, node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        allowed = f"allowed functions: {_ALLOWED_FUNCTIONS}"
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the built-in functions can be called (e.g. lower(x))", allowed)
        name, count = node.func.id, len(node.args)
        if name not in FUNCTIONS:
            self.fail(node, f"function {name!r} is not allowed", allowed)
        if node.keywords:
            self.fail(node, f"keyword arguments are not allowed in {name}()", "pass by position")
        _, low, high = FUNCTIONS[name]
        if count < low or (high is not None and count > high):
            takes = (
                f"{low}" if low == high else f"at least {low}" if high is None else f"{low}-{high}"
            )
            self.fail(node, f"{name}() takes {takes} argument(s), got {count}")
        args = [self.visit(arg) for arg in node.args]
        if name in NULL_ACCEPTING:
            return ast.copy_location(_call(name, args), node)
        return ast.copy_location(self.nulls.strict(args, lambda a: _call(name, a)), node)


def parse(text: str, prefix: str) -> ast.expr:
    """Parse ``text``; a multi-line text is wrapped in parentheses so it may span lines."""
    multiline = "\n" in text
    try:
        return ast.parse(f"(\n{text}\n)" if multiline else text, mode="eval").body
    except SyntaxError as exc:
        line = f"line {(exc.lineno or 2) - 1}, " if multiline else ""
        column = exc.offset if exc.offset and exc.offset > 0 else len(text) + 1
        msg, hints = exc.msg, sql_hints(text)
        if hints:  # Python's own guess ("Maybe you meant '==' ...") is replaced by ours
            msg = msg.split(". Maybe you meant")[0] + "; " + "; ".join(hints)
        raise ExpressionError(f"{prefix}, {line}column {column}: {msg}") from None
