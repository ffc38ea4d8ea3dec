"""Flink SQL's Top-N ranking, for the expressions SQL jobs compile to (docs/sql.md).

``sql_top_n(rows, n, order)`` ranks ``rows`` (a list of records, dicts, in arrival order) by
``order`` and returns the first ``n``, each a copy with its rank under ``"__rn"`` (1, 2, ...):
Flink's ``ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) <= n`` of one partition. ``order``
is text, ``"field DESC NULLS LAST, other ASC NULLS FIRST"`` (every direction and null placement
written out); rows equal in every order field keep their arrival order (Python's sort is
stable), so ties go to the earlier row, as Flink's rank keeps the first of equal sort keys.
"""

from __future__ import annotations

from functools import lru_cache
from operator import itemgetter
from typing import Any

__all__ = ["RANK_FIELD", "SQL_RANK_FUNCTIONS"]

#: the field of a ranked row that holds its row number
RANK_FIELD = "__rn"


@lru_cache(maxsize=64)
def _order(order: str) -> tuple[tuple[str, bool, bool], ...]:
    """``order`` as ``(field, descending, nulls_first)`` triples.

    Raises:
        ValueError: an item that is not ``field ASC|DESC NULLS FIRST|LAST``.
    """
    items = []
    for item in order.split(","):
        words = item.split()
        if len(words) != 4 or words[1] not in ("ASC", "DESC") or words[2] != "NULLS":
            raise ValueError(f"sql_top_n: order item {item.strip()!r} is not 'f ASC NULLS FIRST'")
        items.append((words[0], words[1] == "DESC", words[3] == "FIRST"))
    return tuple(items)


def _sql_top_n(rows: Any, n: Any, order: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or type(n) is not int or not isinstance(order, str):
        raise TypeError("sql_top_n() takes a list of records, a count and an order text")
    ranked = list(rows)
    for field, descending, nulls_first in reversed(_order(order)):  # least significant first
        present = [r for r in ranked if r.get(field) is not None]
        absent = [r for r in ranked if r.get(field) is None]
        present.sort(key=itemgetter(field), reverse=descending)
        ranked = absent + present if nulls_first else present + absent
    return [{**row, RANK_FIELD: i + 1} for i, row in enumerate(ranked[:n])]


SQL_RANK_FUNCTIONS: dict[str, tuple[Any, int, int | None]] = {
    "sql_top_n": (_sql_top_n, 3, 3),
}
