"""What ``kstream sql`` shows: the result of a query, as rows (append) or a table (updating).

:class:`ResultView` folds the records of the result topic into the result: an append-only
query's rows in arrival order; an updating query's table, one row per key, the last write
winning and a tombstone deleting it (Flink SQL client's table mode). :meth:`ResultView.render`
draws it with rich; :meth:`ResultView.changes` gives the jsonl lines of a batch.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

__all__ = ["ResultView"]


class ResultView:
    """The result so far. ``updating``: keyed by record key (upserts); ``max_rows``: rows kept
    for display (append results keep the latest; counts cover all)."""

    def __init__(self, updating: bool, max_rows: int) -> None:
        self.updating = updating
        self.max_rows = max_rows
        self.rows: deque[dict[str, Any]] = deque(maxlen=max_rows)
        self.table: dict[Any, dict[str, Any]] = {}
        self.received = 0
        self.columns: list[str] = []

    def add(self, key: Any, value: Any) -> dict[str, Any]:
        """Fold one result record (``value`` None: a tombstone); returns its jsonl object."""
        self.received += 1
        key = _hashable(key)  # a key of several columns decodes as a JSON list
        if isinstance(value, dict):
            self.columns += [c for c in value if c not in self.columns]
        if not self.updating:
            self.rows.append(value)
            return value if isinstance(value, dict) else {"value": value}
        if value is None:
            old = self.table.pop(key, None) or {}
            return {"op": "-D", **old}
        op = "+U" if key in self.table else "+I"
        self.table[key] = value
        return {"op": op, **value}

    def render(self, title: str, status: str) -> Group:
        """The result as a rich table under ``title``, above a line counting the rows and
        saying ``status``."""
        shown = list(self.table.values())[: self.max_rows] if self.updating else list(self.rows)
        total = len(self.table) if self.updating else self.received
        what = "row" if total == 1 else "rows"
        line = f"{total:,} {what} in the table" if self.updating else f"{total:,} {what}"
        if total > len(shown):
            line += f" (showing {'the first' if self.updating else 'the last'} {len(shown)})"
        table = Table()
        for column in self.columns:
            table.add_column(column, overflow="fold")
        for row in shown:
            table.add_row(*(_cell(row.get(c)) for c in self.columns))
        return Group(Text(title, style="bold"), table, Text(f"{line} · {status}"))


def _hashable(key: Any) -> Any:
    """``key`` usable as a dict key: lists as tuples, objects as sorted item tuples."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in key.items()))
    return key


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)
