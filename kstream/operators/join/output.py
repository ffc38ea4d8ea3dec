"""What a join emits: the left record with the right record under the right input's id, or the
``select:`` fields computed over that joined record (docs/joins.md, "Output").

A side without a match in an outer join is null: ``{**left, right_name: None}`` for an
unmatched left record, ``{right_name: right}`` for an unmatched right one. ``select``
expressions read every field of a missing side as null, as SQL pads an outer join's rows
(``weather.temp`` is null when no weather matched; so is a left field of an unmatched right
record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.errors import RecordError
from kstream.expr.compiler import compile_expression
from kstream.operators.stateless import guarded
from kstream.pipeline.spec_joins import JoinSpec


class _NullRow(dict[str, Any]):
    """A missing side, for ``select``: every field reads as null."""

    def __missing__(self, key: str) -> None:
        return None


def _null_to_none(value: Any) -> Any:
    return None if isinstance(value, _NullRow) else value


class JoinOutput:
    """Builds the joined values of join ``op``.

    Raises:
        ExpressionError: a ``select`` expression cannot be compiled.
    """

    def __init__(self, op: JoinSpec) -> None:
        self.right_name = op.right_name
        self._select: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
            (name, guarded(compile_expression(expr, where=f"{op.id}.join.select.{name}")))
            for name, expr in op.select
        ]

    def joined(self, left: Any, right: Any) -> dict[str, Any]:
        """The output value of ``left`` with ``right`` (either may be None: unmatched).

        Raises:
            RecordError: the left value is not a mapping (a record of a structured format), or
                a ``select`` expression fails on it.
        """
        if left is not None and not isinstance(left, dict):
            kind = type(left).__name__
            raise RecordError("expression", f"a join's left record must be an object, got {kind}")
        if not self._select:
            return {self.right_name: right} if left is None else {**left, self.right_name: right}
        record = _NullRow() if left is None else dict(left)
        record[self.right_name] = _NullRow() if right is None else right
        return {name: _null_to_none(evaluate(record)) for name, evaluate in self._select}
