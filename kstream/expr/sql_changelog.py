"""Rows of an updating SQL query as Flink's ``debezium-json`` format writes them (docs/sql.md).

A SQL job's row carries its kind in the field ``"__op"`` (:data:`ROW_KIND_FIELD`: ``+I``,
``-U``, ``+U``, ``-D``; absent: ``+I``, a row of an append-only query). Flink's
``DebeziumJsonSerializationSchema`` writes an insert or update-after as ``{"before": null,
"after": row, "op": "c"}`` and an update-before or delete as ``{"before": row, "after": null,
"op": "d"}``:

- ``debezium_image(record, side)``: the row without its kind when the kind belongs to ``side``
  (``'+'``: ``+I``/``+U``, ``'-'``: ``-U``/``-D``), else null;
- ``debezium_op(record)``: ``'c'`` or ``'d'``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHANGELOG_FUNCTIONS", "ROW_KIND_FIELD"]

#: the field of a SQL row that holds its row kind
ROW_KIND_FIELD = "__op"
_RETRACTING = ("-U", "-D")


def _kind(record: Any) -> str:
    if not isinstance(record, dict):
        raise TypeError(f"a changelog row is an object, got {type(record).__name__}")
    return str(record.get(ROW_KIND_FIELD, "+I"))


def _debezium_image(record: Any, side: Any) -> dict[str, Any] | None:
    if side not in ("+", "-"):
        raise ValueError(f"debezium_image() takes side '+' or '-', got {side!r}")
    if (_kind(record) in _RETRACTING) != (side == "-"):
        return None
    return {k: v for k, v in record.items() if k != ROW_KIND_FIELD}


def _debezium_op(record: Any) -> str:
    return "d" if _kind(record) in _RETRACTING else "c"


CHANGELOG_FUNCTIONS: dict[str, tuple[Any, int, int | None]] = {
    "debezium_image": (_debezium_image, 2, 2),
    "debezium_op": (_debezium_op, 1, 1),
}
