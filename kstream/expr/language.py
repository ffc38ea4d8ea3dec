"""The safe expression language of pipeline files (``filter``, ``map`` fields, ``key_by``).

An expression such as ``dep_delay > 10 and carrier in ["UA", "AA"]`` is parsed once with
:mod:`ast`, checked against a whitelist of node types and functions, rewritten into a
``lambda r: ...`` whose field names are dict lookups (``r["dep_delay"]``), and compiled with a
globals dict that holds only the whitelisted helpers and an empty ``__builtins__``. The result
is as fast as a hand-written lambda and cannot reach arbitrary Python. The escape hatch for
anything else is :func:`load_python_callable` (``python: module:function`` in YAML).
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from kstream.errors import ExpressionError

__all__ = ["Expression", "compile_expression", "explain_failure"]

MAX_EXPONENT = 1000
"""Largest absolute exponent ``**`` (and digits count of ``round``) accepted at run time."""
MAX_REPEAT = 1_000_000
"""Largest string/bytes/list a data-driven ``*`` repetition may build."""

Path = tuple[str | int, ...]
_REC = "_r"  # the lambda's argument; user names never stay names, so it cannot collide
_ALIASES: dict[str, Any] = {"true": True, "false": False, "null": None}
_LITERAL_TYPES = (bool, int, float, str, type(None))
_SEQUENCES = (str, bytes, list, tuple)
_NUMBERS = frozenset({int, float})


class _LimitError(ValueError):
    """A run-time safety limit was hit; its message is shown to the user as is."""


def _pow(base: Any, exp: Any) -> Any:
    if isinstance(exp, (int, float)) and abs(exp) > MAX_EXPONENT:
        raise _LimitError(f"exponent {exp} is too large (the limit is {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exp, int) and base.bit_length() * exp > 100_000:
        raise _LimitError("the result of '**' would be too large")
    return base**exp


def _mul(a: Any, b: Any) -> Any:
    if type(a) in _NUMBERS and type(b) in _NUMBERS:  # the fast, common case
        return a * b
    if isinstance(a, _SEQUENCES):
        if isinstance(b, int) and len(a) * b > MAX_REPEAT:
            raise _LimitError(f"'*' would repeat a {type(a).__name__} beyond {MAX_REPEAT} items")
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        return _mul(b, a)
    return a * b


def _mod(a: Any, b: Any) -> Any:
    if type(a) in _NUMBERS and type(b) in _NUMBERS:  # the fast, common case
        return a % b
    if isinstance(a, _SEQUENCES[:2]):
        raise _LimitError("'%' string formatting is not supported; use concat(...)")
    return a % b


def _coalesce(*args: Any) -> Any:
    for value in args:
        if value is not None:
            return value
    return None


def _round(x: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise _LimitError(f"round() digits {ndigits} out of range (the limit is {MAX_EXPONENT})")
    return round(x, ndigits)


# name -> (callable, minimum arguments, maximum arguments or None for any number)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
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
}
# functions whose None arguments fail (the others return None/False/"" for None)
_NULL_HOSTILE = {"abs", "round", "min", "max", "len", "int", "float", "floor", "ceil"}
_ALLOWED_FUNCTIONS = ", ".join(sorted(_FUNCTIONS))
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_BAD_OPS: dict[type, str] = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.MatMult: "@"}
_BAD_OPS |= {ast.LShift: "<<", ast.RShift: ">>"}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_SYNTAX_HINT = "see docs/expressions.md for the allowed syntax"
_ARITH_CONTEXT = "a comparison/arithmetic"
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


@dataclass(frozen=True)
class Expression:
    """A compiled expression.

    Attributes:
        text: the source text.
        fields: top-level record fields the expression reads by name (``a`` for ``a.b[0]``,
            ``x`` for ``record["x"]``); keys computed at run time (``record[k]``) are not listed.
        fn: the raw compiled callable ``(record: dict) -> Any``. It raises ordinary Python
            exceptions (``KeyError``, ``TypeError``, ``ZeroDivisionError``, ...); use it in hot
            loops and turn failures into messages with :func:`explain_failure`.
        where: where the expression comes from (e.g. ``operators[2].filter``), for messages.
    """

    text: str
    fields: frozenset[str]
    fn: Callable[[dict[str, Any]], Any] = field(repr=False, compare=False)
    where: str = ""
    _paths: tuple[Path, ...] = field(default=(), repr=False, compare=False)
    _null_hostile: tuple[tuple[Path, str], ...] = field(default=(), repr=False, compare=False)

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


def _prefix(text: str, where: str) -> str:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return f"{where}: expression {shown!r}" if where else f"expression {shown!r}"


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


def _path_text(path: Path) -> str:
    text = ""
    for key in path:
        if isinstance(key, str) and key.isidentifier():
            text = f"{text}.{key}" if text else key
        else:
            text = f"{text or 'record'}[{key!r}]"
    return text


def _lookup(base: ast.expr, key: str) -> ast.Subscript:
    return ast.Subscript(value=base, slice=ast.Constant(key), ctx=ast.Load())


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])


class _Rewriter(ast.NodeTransformer):
    """Validates a parsed expression and rewrites field names into lookups on ``_r``."""

    def __init__(self, prefix: str, multiline: bool) -> None:
        self.prefix, self.multiline = prefix, multiline
        self.fields: set[str] = set()
        self.paths: set[Path] = set()
        self.null_hostile: dict[Path, str] = {}

    def fail(self, node: ast.AST, what: str, hint: str = _SYNTAX_HINT) -> NoReturn:
        line = f"line {getattr(node, 'lineno', 2) - 1}, " if self.multiline else ""
        column = getattr(node, "col_offset", 0) + 1
        raise ExpressionError(f"{self.prefix}, {line}column {column}: {what}; {hint}")

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.expr_context | ast.boolop | ast.operator | ast.cmpop):
            return node
        self.fail(node, *_FORBIDDEN.get(type(node), (f"{type(node).__name__} is not allowed",)))

    visit_BoolOp = visit_IfExp = visit_List = visit_Tuple = visit_Slice = (
        ast.NodeTransformer.generic_visit
    )

    def check_name(self, node: ast.AST, name: str) -> None:
        if name.startswith("__"):
            hint = f"a field with such a name can be read as [{name!r}]"
            self.fail(node, f"name {name!r} is not allowed (names starting with '__')", hint)

    def note(self, node: ast.expr, context: str | None = None) -> None:
        """Record the static field path of ``node`` (if any) for ``fields`` and diagnostics."""
        path = _static_path(node)
        if path:
            self.paths.add(path)
            self.fields.add(str(path[0]))
            if context:
                self.null_hostile.setdefault(path, context)

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
        rec = ast.Name(_REC, ast.Load())
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
        self.note(node.left, _ARITH_CONTEXT)
        self.note(node.right, _ARITH_CONTEXT)
        left, right = self.visit(node.left), self.visit(node.right)
        if op is ast.Pow:
            return ast.copy_location(_call("_k_pow", [left, right]), node)
        if op is ast.Mult and not (_is_number(node.left) or _is_number(node.right)):
            return ast.copy_location(_call("_k_mul", [left, right]), node)
        if op is ast.Mod and not _is_number(node.left):
            return ast.copy_location(_call("_k_mod", [left, right]), node)
        return ast.copy_location(ast.BinOp(left, node.op, right), node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Invert):
            self.fail(node, "operator '~' is not allowed", "use 'not x' or -x")
        if not isinstance(node.op, ast.Not):
            self.note(node.operand, _ARITH_CONTEXT)
        return ast.copy_location(ast.UnaryOp(node.op, self.visit(node.operand)), node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if isinstance(op, ast.Is | ast.IsNot) and not (_is_none(left) or _is_none(right)):
                self.fail(node, "'is' only compares with None", "write 'x is None' or use ==")
            if isinstance(op, _ORDERING):
                self.note(left, _ARITH_CONTEXT)
                self.note(right, _ARITH_CONTEXT)
        return ast.NodeTransformer.generic_visit(self, node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        allowed = f"allowed functions: {_ALLOWED_FUNCTIONS}"
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the built-in functions can be called (e.g. lower(x))", allowed)
        name, count = node.func.id, len(node.args)
        if name not in _FUNCTIONS:
            self.fail(node, f"function {name!r} is not allowed", allowed)
        if node.keywords:
            self.fail(node, f"keyword arguments are not allowed in {name}()", "pass by position")
        _, low, high = _FUNCTIONS[name]
        if count < low or (high is not None and count > high):
            takes = (
                f"{low}" if low == high else f"at least {low}" if high is None else f"{low}-{high}"
            )
            self.fail(node, f"{name}() takes {takes} argument(s), got {count}")
        for arg in node.args:
            self.note(arg, f"a call to {name}()" if name in _NULL_HOSTILE else None)
        args = [self.visit(arg) for arg in node.args]
        return ast.copy_location(_call(name, args), node)


def _parse(text: str, prefix: str) -> ast.expr:
    """Parse ``text``; a multi-line text is wrapped in parentheses so it may span lines."""
    multiline = "\n" in text
    try:
        return ast.parse(f"(\n{text}\n)" if multiline else text, mode="eval").body
    except SyntaxError as exc:
        line = f"line {(exc.lineno or 2) - 1}, " if multiline else ""
        column = exc.offset if exc.offset and exc.offset > 0 else len(text) + 1
        raise ExpressionError(f"{prefix}, {line}column {column}: {exc.msg}") from None


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
    prefix = _prefix(text, where)
    rewriter = _Rewriter(prefix, "\n" in text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences in string literals
            body = rewriter.visit(_parse(text, prefix))
            args = ast.arguments([], [ast.arg(_REC)], None, [], [], None, [])
            tree = ast.fix_missing_locations(ast.Expression(ast.Lambda(args, body)))
            code = compile(tree, f"<expression {where or text}>", "eval")
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{prefix}: the expression is too deeply nested") from None
    scope: dict[str, Any] = {name: entry[0] for name, entry in _FUNCTIONS.items()}
    scope |= {"__builtins__": {}, "_k_pow": _pow, "_k_mul": _mul, "_k_mod": _mod}
    fn = eval(code, scope)
    paths = tuple(sorted(rewriter.paths, key=lambda p: (len(p), _path_text(p))))
    hostile = tuple(rewriter.null_hostile.items())
    return Expression(text, frozenset(rewriter.fields), fn, where, paths, hostile)


def _walk(record: Any, path: Path) -> tuple[str, int, Any]:
    """Follow ``path``; returns (``ok``/``missing``/``index``/``type``, failing step, value)."""
    cur = record
    for i, key in enumerate(path):
        if isinstance(cur, Mapping):
            if key not in cur:
                return "missing", i, cur
        elif isinstance(cur, _SEQUENCES) and type(key) is int:
            if not -len(cur) <= key < len(cur):
                return "index", i, cur
        else:
            return "type", i, cur
        cur = cur[key]
    return "ok", len(path), cur


def _structural(expr: Expression, record: Any, exc: Exception) -> str | None:
    """Explain a failed lookup (missing key, bad index, lookup into null or a scalar)."""
    for path in expr._paths:
        kind, i, cur = _walk(record, path)
        name, parent = _path_text(path[: i + 1]), _path_text(path[:i])
        if kind == "missing" and isinstance(exc, KeyError) and exc.args[:1] == (path[i],):
            return f"field {name!r} is missing from the record"
        if kind == "index" and isinstance(exc, IndexError):
            return f"index {path[i]} is out of range for field {parent!r} (length {len(cur)})"
        if kind == "type" and isinstance(exc, TypeError):
            what = "null (None)" if cur is None else f"a {type(cur).__name__}"
            return f"field {parent!r} is {what}, cannot look up {path[i]!r} in it"
    return None


_COMPARE_RE = re.compile(r"'(\S+)' not supported between instances of '(\w+)' and '(\w+)'")
_OPERAND_RE = re.compile(r"unsupported operand type\(s\) for (\S+): '(\w+)' and '(\w+)'")


def _type_reason(expr: Expression, record: Any, msg: str) -> str:
    if "NoneType" in msg:
        nulls: dict[str, str] = {}
        for path, context in expr._null_hostile:
            kind, _, value = _walk(record, path)
            if kind == "ok" and value is None:
                nulls.setdefault(_path_text(path), context)
        if len(nulls) == 1:
            (name, context), *_ = nulls.items()
            return f"field {name!r} is null (None) in {context}"
        if nulls:
            return f"fields {', '.join(map(repr, nulls))} are null (None) in {_ARITH_CONTEXT}"
        return f"a null (None) value cannot be used here ({msg})"
    if match := _COMPARE_RE.search(msg):
        return f"cannot compare {match[2]} with {match[3]} ('{match[1]}')"
    if match := _OPERAND_RE.search(msg):
        return f"cannot apply '{match[1]}' to {match[2]} and {match[3]}"
    hint = " (use concat(a, b) to join values as text)" if "concatenate" in msg else ""
    return f"type error: {msg}{hint}"


def _reason(expr: Expression, record: Any, exc: Exception) -> str:
    if isinstance(exc, _LimitError):
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
    return ExpressionError(f"{_prefix(expr.text, expr.where)}: {reason}")
