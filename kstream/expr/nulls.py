"""Null semantics of compiled expressions: Flink SQL's three-valued logic, as specialised AST.

The :class:`~kstream.expr.syntax.Rewriter` builds every operator through a :class:`NullLogic`,
which emits plain Python for operands that can never be null (literals, lists, null tests) and
guards the others inline with assignment expressions, so no helper is called per record::

    dep_delay > 60   ->   None if (_t0 := _r["dep_delay"]) is None else _t0 > 60

The rules (docs/expressions.md, "Nulls"):

- comparisons, arithmetic, ``in``/``not in`` and the functions marked strict give null when an
  operand is null; ``x == null`` / ``x != null`` are null tests (``x is None``);
- ``and``/``or``/``not`` follow SQL's truth tables (``false and null`` is false, ``true or null``
  is true, ``not null`` is null); non-null operands keep Python's values (``0 or 5`` is 5);
- a chained comparison ``a < b < c`` is ``a < b and b < c`` with ``b`` evaluated once.

Temporaries are locals of the compiled lambda named ``_t<n>``; user names never stay names
(they become lookups on :data:`RECORD_ARG`), so they cannot collide.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Sequence

__all__ = ["RECORD_ARG", "NullLogic"]

RECORD_ARG = "_r"  # the lambda's argument; user names never stay names, so it cannot collide
_NULL_TESTS = (ast.Is, ast.IsNot)
_SMALL = 24  # AST nodes
#: functions that never return null when one of their arguments is not null
_NON_NULL_IF_ANY = {"coalesce"}


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _small(node: ast.expr) -> bool:
    """True when ``node`` is small enough to be emitted twice (fused ``and``/``or``)."""
    return sum(1 for _ in ast.walk(node)) <= _SMALL


def _fresh(node: ast.expr) -> ast.expr:
    return _load(node.id) if isinstance(node, ast.Name) else node


def _is(node: ast.expr, negate: bool = False) -> ast.Compare:
    op: ast.cmpop = ast.IsNot() if negate else ast.Is()
    return ast.Compare(node, [op], [ast.Constant(None)])


def _choose(test: ast.expr, body: ast.expr, orelse: ast.expr) -> ast.IfExp:
    return ast.IfExp(test, body, orelse)


def _none() -> ast.Constant:
    return ast.Constant(None)


class NullLogic:
    """Builds the null-aware AST of one expression (one instance per compilation)."""

    def __init__(self) -> None:
        self.count = 0
        self.nullable_temps: set[str] = set()  # bound to a value that may be null
        self.safe_temps: set[str] = set()  # bound to a value that is never null
        self.booleans: set[int] = set()  # ids of built nodes whose value is true, false or null
        self.comparisons: dict[int, tuple[ast.expr, ast.expr]] = {}  # id -> (null test, compare)

    def bind(self, node: ast.expr) -> tuple[ast.NamedExpr, str]:
        """``(_tN := node)`` and the name ``_tN``."""
        name = f"_t{self.count}"
        self.count += 1
        (self.safe_temps if self.never_null(node) else self.nullable_temps).add(name)
        return ast.NamedExpr(ast.Name(name, ast.Store()), node), name

    def never_null(self, node: ast.expr) -> bool:
        """True when the (rewritten) ``node`` cannot evaluate to null; False when unsure."""
        if isinstance(node, ast.Constant):
            return node.value is not None
        if isinstance(node, ast.List | ast.Tuple):
            return True
        if isinstance(node, ast.Name):
            return node.id == RECORD_ARG or node.id in self.safe_temps
        if isinstance(node, ast.Compare):
            return all(isinstance(op, _NULL_TESTS) for op in node.ops)
        if isinstance(node, ast.UnaryOp):
            return self.never_null(node.operand)
        if isinstance(node, ast.BinOp):
            return self.never_null(node.left) and self.never_null(node.right)
        if isinstance(node, ast.BoolOp):
            return all(self.never_null(value) for value in node.values)
        if isinstance(node, ast.IfExp):
            return self.never_null(node.body) and self.never_null(node.orelse)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id in _NON_NULL_IF_ANY and any(map(self.never_null, node.args))
        return False

    def strict(
        self, operands: Sequence[ast.expr], build: Callable[[list[ast.expr]], ast.expr]
    ) -> ast.expr:
        """``build(operands)``, or null when one of ``operands`` is null (SQL's strict
        operators). Each operand is evaluated once, left to right, until the first null."""
        tests: list[ast.expr] = []
        args: list[ast.expr] = []
        for node in operands:
            if isinstance(node, ast.Name) and node.id in self.nullable_temps:
                tests.append(_is(_load(node.id)))  # already bound (chained comparisons)
                args.append(_load(node.id))
            elif self.never_null(node):
                args.append(node)
            else:
                store, name = self.bind(node)
                tests.append(_is(store))
                args.append(_load(name))
        if not tests:
            return build(args)
        test = tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)
        return _choose(test, _none(), build(args))

    def compare(self, ops: Sequence[ast.cmpop], operands: Sequence[ast.expr]) -> ast.expr:
        """A comparison; a chain ``a < b < c`` is the SQL ``and`` of its pairs."""
        if len(ops) == 1:
            return self._pair(ops[0], operands[0], operands[1])
        nulls: list[ast.expr] = []  # (_tN := operand) is None, for each nullable operand
        binds: list[ast.expr] = []
        loads: list[ast.expr] = []
        for node in operands:
            if isinstance(node, ast.Constant):
                loads.append(node)
                continue
            store, name = self.bind(node)
            loads.append(_load(name))
            (binds if self.never_null(node) else nulls).append(store)
        if not nulls:  # no operand can be null: Python's own chain
            return self._boolean(ast.Compare(loads[0], list(ops), loads[1:]))
        pairs = [
            self._pair(op, _fresh(a), _fresh(b))
            for op, a, b in zip(ops, loads, loads[1:], strict=False)
        ]
        # every operand is evaluated (bound) first, '|' does not stop early; with no null
        # operand, Python's chain; otherwise the SQL 'and' of the pairs
        nulls = [_is(store) for store in nulls]
        test: ast.expr = nulls[0]
        for other in nulls[1:]:
            test = ast.BinOp(test, ast.BitOr(), other)
        if binds:  # a non-empty tuple is true
            test = ast.BoolOp(ast.And(), [ast.Tuple(binds, ast.Load()), test])
        chain = ast.Compare(_fresh(loads[0]), list(ops), [_fresh(x) for x in loads[1:]])
        return self._boolean(_choose(test, self.logic(ast.And(), pairs), chain))

    def _boolean(self, node: ast.expr) -> ast.expr:
        self.booleans.add(id(node))
        return node

    def _pair(self, op: ast.cmpop, left: ast.expr, right: ast.expr) -> ast.expr:
        if isinstance(op, _NULL_TESTS):
            return self._boolean(ast.Compare(left, [op], [right]))
        node = self.strict([left, right], lambda a: ast.Compare(a[0], [op], [a[1]]))
        if isinstance(node, ast.IfExp):  # None if <null test> else <comparison>
            self.comparisons[id(node)] = (node.test, node.orelse)
        return self._boolean(node)

    def logic(self, op: ast.boolop, values: Sequence[ast.expr]) -> ast.expr:
        """SQL ``and``/``or`` of ``values``, folded from the left."""
        combine = self._and if isinstance(op, ast.And) else self._or
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        if all(id(value) in self.booleans for value in values):
            self.booleans.add(id(result))
        return result

    def _and(self, a: ast.expr, b: ast.expr) -> ast.expr:
        # a false (non-null falsy) -> a; otherwise b, except null when either is null and b is
        # not false: null and true = null, null and false = false
        if self.never_null(a):
            return ast.BoolOp(ast.And(), [a, b])
        if id(a) in self.comparisons and _small(b):
            # fused: (null-and-b) if <a's operand is null> else (b if <comparison> else False)
            null_test, comparison = self.comparisons[id(a)]
            b_false, tb = self._is_false(copy.deepcopy(b))
            null_and_b = _choose(b_false, _load(tb), _none())
            return _choose(null_test, null_and_b, _choose(comparison, b, ast.Constant(False)))
        a_false, ta = self._is_false(a)
        b_false, tb = self._is_false(b)
        # a is not false here: b when a is true (or b is false), else (a null) null
        known = ast.BoolOp(ast.Or(), [b_false, _load(ta)])
        return _choose(a_false, _load(ta), _choose(known, _load(tb), _none()))

    def _is_false(self, node: ast.expr) -> tuple[ast.expr, str]:
        """A test binding ``node`` to a temporary that is true when ``node`` is false (not
        null), and the temporary's name."""
        store, name = self.bind(node)
        if id(node) in self.booleans:
            return ast.Compare(store, [ast.Is()], [ast.Constant(False)]), name
        not_node = ast.UnaryOp(ast.Not(), store)
        return ast.BoolOp(ast.And(), [not_node, _is(_load(name), negate=True)]), name

    def _or(self, a: ast.expr, b: ast.expr) -> ast.expr:
        # a true -> a; otherwise b, except null when a is null and b is not true
        if self.never_null(a):
            return ast.BoolOp(ast.Or(), [a, b])
        if id(a) in self.comparisons and _small(b):
            # fused: (null-or-b) if <a's operand is null> else (True if <comparison> else b)
            null_test, comparison = self.comparisons[id(a)]
            store_b, tb = self.bind(copy.deepcopy(b))
            null_or_b = _choose(store_b, _load(tb), _none())
            return _choose(null_test, null_or_b, _choose(comparison, ast.Constant(True), b))
        store_a, ta = self.bind(a)
        store_b, tb = self.bind(b)
        known = ast.BoolOp(ast.Or(), [store_b, _is(_load(ta), negate=True)])
        return _choose(store_a, _load(ta), _choose(known, _load(tb), _none()))

    def negate(self, operand: ast.expr) -> ast.expr:
        """SQL ``not``: null stays null."""
        return self._boolean(self.strict([operand], lambda a: ast.UnaryOp(ast.Not(), a[0])))
