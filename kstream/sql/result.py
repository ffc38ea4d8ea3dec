"""The result table of ``kstream sql``: a bare ``SELECT`` written to a topic as its columns.

The table has the SELECT's output names (``alias``, a column's name, else ``EXPR$n`` as Flink
names them) and no declared types: each value is written as Flink's ``json`` format writes the
type it has (timestamps as text). It takes the updates of an updating query too (written as
upserts under the GROUP BY or PARTITION BY key), since the shell shows the table they make.
"""

from __future__ import annotations

from sqlglot import exp

from kstream.sql.catalog import Column, Table, table_of
from kstream.sql.exprs import Untranslatable

__all__ = ["RESULT_TYPE", "result_table"]

#: the column type of a result table: written as the value's own type
RESULT_TYPE = "AUTO"


def result_table(query: exp.Expression, tables: dict[str, Table], topic: str) -> Table:
    """The result table of the shell's ``query``, writing to ``topic``.

    Raises:
        Untranslatable: ``SELECT *`` over something else than one table or view.
    """
    first = query
    while isinstance(first, exp.Union):
        first = first.this
    if not isinstance(first, exp.Select):
        raise Untranslatable(query, "the shell runs a SELECT")
    names: list[str] = []
    for i, item in enumerate(first.expressions):
        if isinstance(item, exp.Star):
            source = table_of(tables, first.args["from_"].this)
            names += [c.name for c in source.columns if c.metadata is None]
        else:
            names.append(item.alias_or_name or f"EXPR${i}")
    table = Table(name="__result", options={"connector": "kafka", "topic": topic})
    table.columns = [Column(_unique(name, names[:i]), RESULT_TYPE) for i, name in enumerate(names)]
    table.is_result = True
    return table


def _unique(name: str, before: list[str]) -> str:
    """``name``, or ``name0``, ``name1``, ... when an earlier column has it (Flink's rule)."""
    if name not in before:
        return name
    n = 0
    while f"{name}{n}" in before:
        n += 1
    return f"{name}{n}"
