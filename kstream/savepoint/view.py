"""Decoding saved operator state into windows, with the operator's aggregations rebuilt from the
definition stored in the manifest (no pipeline file needed).

Stored values by window type (see :mod:`kstream.operators.window.operator`,
:mod:`kstream.operators.window.count` and :mod:`kstream.operators.window.global_agg`):

- tumbling, sliding, session: ``[accumulator, last emitted or null, elements since]``, then
  ``true`` when a discarding firing emptied the window; a session window also has one entry per
  key listing its open sessions (:mod:`kstream.operators.window.sessions`), not a window;
- global: ``[accumulator, last emitted or null, elements since, max event ts]``, then under
  ``state_ttl`` the processing time of its last write;
- count: ``{"n": elements seen, "open": [[start, accumulator, min ts, max ts], ...]}``; a window
  holds positions ``[max(0, start), start + span)`` (``start`` is negative for the first,
  partial windows of a sliding count window; ``span`` is ``count_size``, or ``min(count_size,
  count_slide)`` with ``accumulation: discarding``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kstream.errors import ExpressionError, SavepointError
from kstream.expr.udf import load_python_callable
from kstream.keys import hashable
from kstream.operators.aggregations import Aggregator, from_storable
from kstream.operators.window.base import decode_window_key
from kstream.operators.window.sessions import is_index_key
from kstream.pipeline.spec import AggregationSpec
from kstream.savepoint.format import KEY_PREFIX, SavedEntry


class _RawAccumulator:
    """Stands in for a ``python`` aggregate that cannot be imported: its result is the raw
    accumulator as stored."""

    def result(self, acc: Any) -> Any:
        return acc


def aggregator_for(definition: dict[str, Any], search_paths: Sequence[str] = (".",)) -> Aggregator:
    """The :class:`Aggregator` of a window from its stored definition (only ``result`` and
    the accumulator layout are usable: expressions are not compiled).

    Args:
        definition: the window's ``specview.operator_to_dict`` value.
        search_paths: where to import ``python`` aggregates from.

    Raises:
        SavepointError: the definition has no usable ``aggregations``.
    """
    try:
        specs = [
            AggregationSpec(str(a["name"]), str(a["kind"]), a.get("expr"), a.get("python"))
            for a in definition["aggregations"]
        ]
    except (KeyError, TypeError) as exc:
        raise SavepointError(f"operator {definition.get('id')}: bad stored definition") from exc
    users = [_user(spec, search_paths) if spec.python else None for spec in specs]
    has_user = any(u is not None for u in users)
    return Aggregator(specs, [None] * len(specs), users if has_user else ())


def _user(spec: AggregationSpec, search_paths: Sequence[str]) -> Any:
    try:
        factory = load_python_callable(spec.python or "", search_paths=search_paths)
        instance = factory() if isinstance(factory, type) else factory
    except Exception:  # not importable here, or its constructor fails: show the raw value
        return _RawAccumulator()
    return instance if callable(getattr(instance, "result", None)) else _RawAccumulator()


def decode_windows(
    definition: dict[str, Any],
    entries: Iterable[SavedEntry],
    key: Any = None,
    search_paths: Sequence[str] = (".",),
) -> Iterator[dict[str, Any]]:
    """The windows held in ``entries`` of the window defined by ``definition`` (see
    :meth:`kstream.savepoint.read.Savepoint.windows`); only those of ``key`` unless None.

    Raises:
        SavepointError: an entry does not fit the definition.
    """
    agg = aggregator_for(definition, search_paths)
    kind = definition.get("type")
    wanted = None if key is None else hashable(key)
    for entry in entries:
        if is_index_key(entry.key):
            continue
        ident, start, end = decode_window_key(entry.key)
        if wanted is not None and ident != wanted:
            continue
        shown = orjson.loads(entry.key[KEY_PREFIX:])
        try:
            yield from _rows(kind, definition, agg, shown, start, end, orjson.loads(entry.value))
        except (ExpressionError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise SavepointError(
                f"operator {definition.get('id')}: an entry of task {entry.stage}:"
                f"{entry.partition} does not fit the stored definition ({exc})"
            ) from exc


#: The end of the store key of a process state's TTL stamp (``[key, state name, "ttl"]``).
TTL_SUFFIX = b',"ttl"]'


def decode_process_state(
    definition: dict[str, Any], entries: Iterable[SavedEntry], key: Any = None
) -> Iterator[dict[str, Any]]:
    """The state held in ``entries`` of a process function: one ``{"key", "state", "kind",
    "value"}`` per (record key, declared state), a map's value as a JSON object when its keys
    are strings (else a list of ``[key, value]`` pairs); only ``key``'s unless None
    (:mod:`kstream.operators.process_state` gives the store format). The TTL stamps of states
    declared with a ``ttl`` (keys ``[key, state name, "ttl"]``) are not rows.

    Raises:
        SavepointError: an entry is not a process state entry.
    """
    kinds = {str(n): str(k) for n, k in definition.get("state") or ()}
    wanted = None if key is None else hashable(key)
    for entry in entries:
        if entry.key.endswith(TTL_SUFFIX):
            continue
        try:
            ident, name = orjson.loads(entry.key)
            value = orjson.loads(entry.value)
        except (ValueError, TypeError) as exc:
            raise SavepointError(
                f"operator {definition.get('id')}: an entry of task {entry.stage}:"
                f"{entry.partition} is not process state ({exc})"
            ) from exc
        if wanted is not None and hashable(ident) != wanted:
            continue
        kind = kinds.get(name, "?")
        if kind == "map" and all(isinstance(k, str) for k, _ in value):
            value = dict(value)
        yield {"key": ident, "state": name, "kind": kind, "value": value}


def decode_join_state(
    definition: dict[str, Any], entries: Iterable[SavedEntry], key: Any = None
) -> Iterator[dict[str, Any]]:
    """The state held in ``entries`` of a join (:mod:`kstream.operators.join`): a buffered
    record ``{"key", "side", "ts", "value"}`` (``side``: ``left``/``right``), a table row
    ``{"key", "side": "table", "value"}``, a key's versions ``{"key", "side": "versions",
    "versions": [[ts, value or null], ...]}``, a session join's open sessions of a key
    ``{"key", "side": "sessions", "value": [[start, end], ...]}``; the buffers' time indexes
    are left out. Only the
    state of ``key`` unless None.

    Raises:
        SavepointError: an entry is not a join's.
    """
    wanted = None if key is None else hashable(key)
    for entry in entries:
        try:
            ident, *rest = orjson.loads(entry.key)
            value = orjson.loads(entry.value)
        except (ValueError, TypeError) as exc:
            raise SavepointError(
                f"operator {definition.get('id')}: an entry of task {entry.stage}:"
                f"{entry.partition} is not join state ({exc})"
            ) from exc
        if (wanted is not None and hashable(ident) != wanted) or len(rest) == 2:
            continue  # another key, or a time index
        if len(rest) == 3:
            yield {"key": ident, "side": rest[0], "ts": rest[1], "value": value}
        elif rest == ["versions"]:
            yield {"key": ident, "side": "versions", "versions": value}
        else:
            yield {"key": ident, "side": str(rest[0]), "value": value}


def is_join_record(raw_key: bytes) -> bool:
    """Whether a join's store key is a record, a table row or versions (not a time index)."""
    return len(orjson.loads(raw_key)) != 3


def _rows(
    kind: Any,
    definition: dict[str, Any],
    agg: Aggregator,
    key: Any,
    start: int,
    end: int,
    stored: Any,
) -> list[dict[str, Any]]:
    if kind == "count":
        span = int(definition.get("count_size") or 0)
        if definition.get("accumulation") == "discarding":
            span = min(span, int(definition.get("count_slide") or span))
        return [
            {
                "key": key,
                "window_start": max(0, int(s)),
                "window_end": int(s) + span,
                **agg.result(from_storable(agg, acc)),
            }
            for s, acc, _lo, _hi in stored["open"]
        ]
    result = agg.result(from_storable(agg, stored[0]))
    if kind == "global":
        return [{"key": key, **result}]
    return [{"key": key, "window_start": start, "window_end": end, **result}]


@dataclass(frozen=True)
class OperatorSummary:
    """What one operator holds: raw ``entries``, ``windows`` (count windows: open windows;
    global: keys), distinct ``keys``, ``timers`` (event- and processing-time) and its files'
    ``bytes``; ``stage`` is its stage id."""

    id: str
    type: str
    stage: str
    entries: int
    windows: int
    keys: int
    bytes: int
    timers: int = 0


def summarize(
    definition: dict[str, Any],
    stage: str,
    file_bytes: int,
    entries: Iterable[SavedEntry],
    timers: Iterable[SavedEntry] = (),
) -> OperatorSummary:
    """Count an operator's entries, windows, distinct keys and timers (reads every entry)."""
    count_type = definition.get("type") == "count"
    join = definition.get("kind") == "join"
    kind = definition.get("type") or definition.get("kind")
    n = windows = 0
    keys: set[bytes] = set()
    for entry in entries:
        n += 1
        keys.add(entry.routing)
        if count_type:
            windows += len(orjson.loads(entry.value)["open"])
        elif join:
            windows += is_join_record(entry.key)  # buffered records, table rows, versions
        elif not entry.key.endswith(TTL_SUFFIX) and not is_index_key(entry.key):
            windows += 1  # a process state's TTL stamp, a session index entry: no window
    return OperatorSummary(
        str(definition.get("id")),
        str(kind),
        stage,
        n,
        windows,
        len(keys),
        file_bytes,
        sum(1 for _ in timers),
    )
