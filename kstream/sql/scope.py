"""The columns a query can name: one table's physical and computed columns, with their types.

A computed column is replaced by its expression (``ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3)``
reads ``sched_dep_ts`` as a TIMESTAMP_LTZ); a metadata column is refused for now. Types are
those of :data:`kstream.sql.exprs.ColumnRef`.
"""

from __future__ import annotations

from sqlglot import exp

from kstream.sql.catalog import Column, Table
from kstream.sql.exprs import Untranslatable, translate_typed

__all__ = ["Scope", "sink_value", "sql_type_kind"]

_KINDS = {
    "TINYINT": "int",
    "SMALLINT": "int",
    "INT": "int",
    "INTEGER": "int",
    "BIGINT": "int",
    "DOUBLE": "float",
    "FLOAT": "float",
    "STRING": "str",
    "TEXT": "str",
    "VARCHAR": "str",
    "CHAR": "str",
    "BOOLEAN": "bool",
    "TIMESTAMP": "ts",
    "TIMESTAMPLTZ": "ltz",
    "TIMESTAMP_LTZ": "ltz",
}


def sql_type_kind(sql_type: str) -> str | None:
    """``BIGINT`` -> ``int``, ``TIMESTAMP_LTZ(3)`` -> ``ltz``; None for other types."""
    return _KINDS.get(sql_type.split("(")[0].replace(" ", "_").upper())


def sink_value(sql_type: str, text: str, kind: str | None) -> str:
    """Expression ``text`` (of type ``kind``) as Flink's ``json`` format writes a column of
    ``sql_type``: a DOUBLE is a float (``2.0``), timestamps are text (``sql_timestamp``)."""
    target = sql_type_kind(sql_type)
    if target == "float":
        return f"float({text})"
    if target == "ts" and kind in ("ts", "ltz"):
        return f"sql_timestamp({text})"
    if target == "ltz" and kind in ("ts", "ltz"):
        return f"sql_timestamp_ltz({text})"
    return text


class Scope:
    """Resolves column references of a query over ``table``."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._resolving: set[str] = set()

    def expr(self, node: exp.Expression) -> tuple[str, str | None]:
        """``node`` as a kstream expression and its type.

        Raises:
            Untranslatable: an unknown column or construct.
        """
        return translate_typed(node, self.column)

    def text(self, node: exp.Expression) -> str:
        return self.expr(node)[0]

    def column(self, col: exp.Column) -> tuple[str, str | None]:
        found = self.table.column(col.name)
        if found is None:
            raise Untranslatable(col, f"column {col.name} is not in table {self.table.name}")
        if found.computed is not None:
            return self._computed(col, found)
        if found.metadata is not None:
            raise Untranslatable(col, f"metadata column {col.name} in a query: not yet")
        kind = sql_type_kind(found.type)
        if kind in ("ts", "ltz"):
            hint = "declare an epoch column and ts AS TO_TIMESTAMP_LTZ(col, 3)"
            raise Untranslatable(
                col, f"a TIMESTAMP column read from JSON is not supported yet ({hint})"
            )
        if not found.name.isidentifier():
            raise Untranslatable(col, f"column name {found.name!r} is not supported yet")
        return found.name, kind

    def _computed(self, col: exp.Column, found: Column) -> tuple[str, str | None]:
        assert found.computed is not None
        if found.name in self._resolving:
            raise Untranslatable(col, f"computed column {found.name} refers to itself")
        self._resolving.add(found.name)
        try:
            return self.expr(found.computed)
        finally:
            self._resolving.discard(found.name)
