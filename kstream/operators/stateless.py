"""Stateless operators: filter, map, flat_map, branch, union (docs/pipeline.md).

Each is built from its spec and implements :class:`~kstream.operators.base.Operator` with a
fast :meth:`receiver`: one closure per node that applies the function and calls the next
node's receiver directly. Expressions and user functions raise
:class:`~kstream.errors.RecordError` (stage ``expression``) for a record they cannot handle;
the node executor applies the node's error policy. ``key_function`` gives a ``key_by``'s key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kstream.errors import RecordError
from kstream.expr.compiler import compile_expression
from kstream.expr.expression import Expression, explain_failure
from kstream.expr.udf import load_python_callable
from kstream.operators.base import Operator, Receiver
from kstream.pipeline.spec import (
    BranchSpec,
    FilterSpec,
    FlatMapSpec,
    KeyBySpec,
    MapSpec,
    OperatorSpec,
    PipelineSpec,
    UnionSpec,
)

Step = Callable[[Any], Any]
#: A ``flat_map``: ``value -> values`` (a list, or an empty tuple to emit nothing).
Expand = Callable[[Any], list[Any] | tuple[()]]


def search_paths(spec: PipelineSpec) -> list[str]:
    return [str(Path(spec.path).resolve().parent)] if spec.path != "<string>" else ["."]


def guarded(expr: Expression) -> Callable[[Any], Any]:
    """``expr`` as a function of a record whose failure is a bad record (:class:`RecordError`,
    stage ``expression``, with the failure explained)."""
    fn = expr.fn

    def evaluate(value: Any) -> Any:
        try:
            return fn(value)
        except Exception as exc:
            raise RecordError("expression", str(explain_failure(expr, value, exc))) from exc

    return evaluate


def _user(ref: str, spec: PipelineSpec, what: str) -> Callable[[Any], Any]:
    fn = load_python_callable(ref, search_paths=search_paths(spec))

    def call(value: Any) -> Any:
        try:
            return fn(value)
        except Exception as exc:
            raise RecordError(
                "expression", f"{what} {ref} raised {type(exc).__name__}: {exc}"
            ) from exc

    return call


def filter_test(op: FilterSpec, spec: PipelineSpec) -> Step:
    """``value -> truthy`` when the record is kept. An expression's null (SQL's unknown, e.g.
    ``dep_delay > 60`` on a null ``dep_delay``) is falsy: the record is dropped, as by a SQL
    ``WHERE``."""
    if op.python:
        return _user(op.python, spec, "filter")
    return guarded(compile_expression(op.expr or "", where=f"{op.id}.filter"))


def map_step(op: MapSpec, spec: PipelineSpec) -> Step:
    """Projection (``select``) then computed ``fields``; or a user function."""
    if op.python:
        return _user(op.python, spec, "map")
    select = op.select
    computed = [
        (name, guarded(compile_expression(text, where=f"{op.id}.map.fields.{name}")))
        for name, text in op.fields
    ]

    def step(value: Any) -> Any:
        out = {k: value[k] for k in select if k in value} if select is not None else dict(value)
        for name, evaluate in computed:
            out[name] = evaluate(value)
        return out

    return step


def flat_map_step(op: FlatMapSpec, spec: PipelineSpec) -> Expand:
    """``value -> [value, ...]``: the records a ``flat_map`` emits for one input (docs/pipeline.md).

    Every output is a new dict (``explode``: a shallow copy of the input with ``op.as_field``
    set to one element; ``python``: what the function returned). The function's result is read
    completely here, so a generator that raises fails this record and nothing of it is emitted.

    Raises (per record):
        RecordError: stage ``expression``: the expression or function failed, ``explode`` gave a
            value that is neither a list nor null, or the function returned something other
            than an iterable of dicts.

    Raises:
        ExpressionError: the expression cannot be compiled or the function cannot be loaded.
    """
    if op.python:
        return _user_expand(op.python, spec)
    where = f"{op.id}.flat_map.explode"
    evaluate = guarded(compile_expression(op.explode or "", where=where))
    name, keep_empty = op.as_field or "", op.keep_empty
    prefix = f"{where}: expression {op.explode!r}"

    def explode(value: Any) -> list[Any] | tuple[()]:
        items = evaluate(value)
        if type(items) is not list and items is not None and type(items) is not tuple:
            raise RecordError("expression", f"{prefix} gave {_shown(items)}, expected a list")
        if not items:
            return [{**value, name: None}] if keep_empty else ()
        return [{**value, name: item} for item in items]

    return explode


def _user_expand(ref: str, spec: PipelineSpec) -> Expand:
    fn = load_python_callable(ref, search_paths=search_paths(spec))

    def expand(value: Any) -> list[Any] | tuple[()]:
        try:
            result = fn(value)
        except Exception as exc:
            raise _raised(ref, exc) from exc
        if type(result) is not list:
            result = _materialize(result, ref)
        for record in result:
            if not isinstance(record, dict):
                why = f"flat_map {ref} returned {_shown(record)} as a record, expected a dict"
                raise RecordError("expression", why)
        return result

    return expand


def _materialize(result: Any, ref: str) -> list[Any]:
    """A ``python`` flat_map's result that is not a list, as a list (a generator runs here)."""
    if isinstance(result, str | bytes | dict) or not hasattr(result, "__iter__"):
        why = (
            f"flat_map {ref} returned {_shown(result)}, expected an iterable of records (dicts); "
            "return [] to emit nothing"
        )
        raise RecordError("expression", why)
    try:
        return list(result)
    except Exception as exc:
        raise _raised(ref, exc) from exc


def _raised(ref: str, exc: Exception) -> RecordError:
    return RecordError("expression", f"flat_map {ref} raised {type(exc).__name__}: {exc}")


def _shown(value: Any) -> str:
    """A value for messages: ``null``, or its type and a short repr (``str 'x'``)."""
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def key_function(op: KeyBySpec, spec: PipelineSpec) -> Callable[[Any], Any]:
    """``value -> new key`` for a ``key_by`` (one that keeps the record key: None always; the
    repartition writer keeps the key instead)."""
    if op.keep_key:
        return lambda value: None
    if op.python:
        return _user(op.python, spec, "key_by")
    return guarded(compile_expression(op.expr or "", where=f"{op.id}.key_by"))


class _StatelessOperator(Operator):
    """One input, one function per record; subclasses give :meth:`receiver`."""

    def process(self, port: str, key: Any, value: Any, ts: int) -> None:
        self.receiver(port)(key, value, ts)


class FilterOperator(_StatelessOperator):
    """Keeps the records whose condition is true (``filter``); false and null drop them, or,
    with ``otherwise: delete``, turn them into tombstones (value None, same key and time). A
    tombstone that reaches a filter passes unchanged."""

    def __init__(self, op: FilterSpec, spec: PipelineSpec) -> None:
        self.test = filter_test(op, spec)
        self.delete = op.otherwise == "delete"

    def receiver(self, port: str = "main") -> Receiver:
        test, out, delete = self.test, self.ctx.out.emitter(), self.delete

        def receive(key: Any, value: Any, ts: int) -> None:
            if value is None and delete:
                out(key, None, ts)
            elif test(value):
                out(key, value, ts)
            elif delete:
                out(key, None, ts)

        return receive


class MapOperator(_StatelessOperator):
    """Replaces each value (``map``); a tombstone (value None) passes unchanged."""

    def __init__(self, op: MapSpec, spec: PipelineSpec) -> None:
        self.step = map_step(op, spec)

    def receiver(self, port: str = "main") -> Receiver:
        step, out = self.step, self.ctx.out.emitter()

        def receive(key: Any, value: Any, ts: int) -> None:
            if value is None:  # a tombstone (a filter's delete) stays one
                out(key, None, ts)
                return
            value = step(value)
            if value is not None:
                out(key, value, ts)

        return receive


class FlatMapOperator(_StatelessOperator):
    """Zero or more records per record, each with the input's key and time (``flat_map``). The
    outputs are computed completely before the first is emitted, so a failing function emits
    nothing for its record."""

    def __init__(self, op: FlatMapSpec, spec: PipelineSpec) -> None:
        self.expand = flat_map_step(op, spec)

    def receiver(self, port: str = "main") -> Receiver:
        expand, out = self.expand, self.ctx.out.emitter()

        def receive(key: Any, value: Any, ts: int) -> None:
            for item in expand(value):
                out(key, item, ts)

        return receive


class BranchOperator(_StatelessOperator):
    """Routes each record to the first port whose condition holds; the rest go to the
    ``default`` port (dropped without one). A condition that raises follows the error policy
    and routes the record nowhere."""

    def __init__(self, op: BranchSpec, spec: PipelineSpec) -> None:
        self.spec = op
        self.tests = [
            (name, guarded(compile_expression(text, where=f"{op.id}.branch.{name}")))
            for name, text in op.branches
        ]

    def receiver(self, port: str = "main") -> Receiver:
        out = self.ctx.out
        routes = [(test, out.emitter(name)) for name, test in self.tests]
        default = out.emitter(self.spec.default) if self.spec.default else None

        def receive(key: Any, value: Any, ts: int) -> None:
            for test, emit in routes:
                if test(value):
                    emit(key, value, ts)
                    return
            if default is not None:
                default(key, value, ts)

        return receive


class UnionOperator(_StatelessOperator):
    """Forwards the records of every input unchanged (Flink ``union``)."""

    def receiver(self, port: str = "main") -> Receiver:
        return self.ctx.out.emitter()


def build_stateless(op: OperatorSpec, spec: PipelineSpec) -> Operator:
    """The operator of a stateless spec (``filter``, ``map``, ``flat_map``, ``branch``,
    ``union``).

    Raises:
        ExpressionError: an expression cannot be compiled or a function cannot be loaded.
        TypeError: ``op`` is not a stateless kind.
    """
    if isinstance(op, FilterSpec):
        return FilterOperator(op, spec)
    if isinstance(op, MapSpec):
        return MapOperator(op, spec)
    if isinstance(op, FlatMapSpec):
        return FlatMapOperator(op, spec)
    if isinstance(op, BranchSpec):
        return BranchOperator(op, spec)
    if isinstance(op, UnionSpec):
        return UnionOperator()
    raise TypeError(f"{type(op).__name__} is not a stateless operator")
