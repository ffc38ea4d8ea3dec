"""Flink SQL's Top-N ranking: rows ordered by fields, the first ``n`` numbered (docs/sql.md).

An order is a tuple of ``(field, descending, nulls_first)``, written as text ``"flights DESC,
dest"`` (:func:`parse_order`: ``ASC`` by default; nulls first in ``ASC`` and last in ``DESC``
unless ``NULLS FIRST | LAST`` says otherwise, Flink's default ``NullCollation.LOW``). Rows
equal in every order field keep their order in the input (Python's sort is stable), so ties go
to the earlier row, as Flink's rank keeps the first of equal sort keys.

- ``rank_rows(rows, n, order)``: the first ``n`` of ``rows`` (dicts) in that order;
- ``sql_top_n(rows, n, order_text)``, an expression function: the same, each row a copy with
  its row number (1, 2, ...) under ``"__rn"`` (:data:`RANK_FIELD`); used by window Top-N.
"""

from __future__ import annotations

import re
from functools import lru_cache
from operator import itemgetter
from typing import Any

__all__ = ["RANK_FIELD", "SQL_RANK_FUNCTIONS", "Order", "parse_order", "rank_rows"]

#: the field of a ranked row that holds its row number (``sql_top_n``)
RANK_FIELD = "__rn"
#: ``(field, descending, nulls_first)`` per order item, most significant first
Order = tuple[tuple[str, bool, bool], ...]
_ITEM = re.compile(
    r"\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)(?:\s+(?P<dir>ASC|DESC))?"
    r"(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*",
    re.IGNORECASE,
)


@lru_cache(maxsize=64)
def parse_order(text: str) -> Order:
    """``"f DESC, g ASC NULLS FIRST"`` as an :data:`Order`.

    Raises:
        ValueError: an item that is not ``field [ASC | DESC] [NULLS FIRST | LAST]``.
    """
    items = []
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValueError(
                f"order item {item.strip()!r} is not 'field [ASC|DESC] [NULLS FIRST|LAST]'"
            )
        descending = (match["dir"] or "ASC").upper() == "DESC"
        nulls = match["nulls"]
        nulls_first = not descending if nulls is None else nulls.upper() == "FIRST"
        items.append((match["field"], descending, nulls_first))
    return tuple(items)


def rank_rows(rows: list[dict[str, Any]], n: int, order: Order) -> list[dict[str, Any]]:
    """The first ``n`` of ``rows`` by ``order`` (ties in input order); a row without an order
    field sorts as null."""
    ranked = list(rows)
    for field, descending, nulls_first in reversed(order):  # least significant first
        present = [r for r in ranked if r.get(field) is not None]
        absent = [r for r in ranked if r.get(field) is None]
        present.sort(key=itemgetter(field), reverse=descending)
        ranked = absent + present if nulls_first else present + absent
    return ranked[:n]


def _sql_top_n(rows: Any, n: Any, order: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or type(n) is not int or not isinstance(order, str):
        raise TypeError("sql_top_n() takes a list of records, a count and an order text")
    ranked = rank_rows(rows, n, parse_order(order))
    return [{**row, RANK_FIELD: i + 1} for i, row in enumerate(ranked)]


SQL_RANK_FUNCTIONS: dict[str, tuple[Any, int, int | None]] = {
    "sql_top_n": (_sql_top_n, 3, 3),
}
