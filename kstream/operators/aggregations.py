"""Window aggregations compiled into one accumulator per window.

An accumulator is a flat Python list with one or two slots per aggregation. Adding a record has
two steps, each generated once per window operator as straight-line code (no per-aggregation
dispatch in the hot path): ``extract(record) -> values`` evaluates every aggregation's expression
and checks its type, and may raise :class:`~kstream.errors.RecordError` before any state is
touched; ``apply(acc, values, ts, record)`` updates one accumulator (a record that belongs to
several sliding windows is extracted once). ``merge`` (session windows), ``result`` and the
(de)serialisation are plain functions.

Null semantics follow SQL: null values are ignored by every aggregation except ``count`` without
an argument (which counts records) and ``collect``. ``sum``/``min``/``max``/``avg``/``first``/
``last`` of no non-null value is null. ``first``/``last`` pick the value with the smallest /
largest event timestamp (ties: the earlier / later arrival); ``first_arrived``/``last_arrived``
the first / last non-null value in arrival order (Flink SQL's ``FIRST_VALUE``/``LAST_VALUE``;
not for session windows, whose merges have no arrival order). ``sum`` and ``avg`` need numbers
(a string or list is a bad record, stage ``aggregate``).

User-defined aggregates (``{python: module:Class}``) implement ``initialize() -> acc``,
``add(acc, record) -> acc``, ``merge(acc_a, acc_b) -> acc`` (session windows) and
``result(acc) -> value``; ``acc`` must survive a JSON round trip (dicts with string keys,
lists, numbers, strings, booleans, None), because it is checkpointed as JSON. An exception in
``add`` makes the record bad (stage ``aggregate``, routed by the source's ``on_error``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kstream.errors import ExpressionError, RecordError
from kstream.pipeline.spec import AggregationSpec

Getter = Callable[[dict[str, Any]], Any]

#: slots used by each kind, and their initial values
_INIT: dict[str, tuple[Any, ...]] = {
    "count": (0,),
    "sum": (None,),
    "min": (None,),
    "max": (None,),
    "avg": (0, 0),
    "first": (None, None),
    "last": (None, None),
    "first_arrived": (None,),
    "last_arrived": (None,),
    "count_distinct": (None,),
    "collect": (None,),
}


@dataclass(frozen=True)
class Slot:
    """Where one aggregation lives in the accumulator list."""

    name: str
    kind: str
    index: int
    getter: Getter | None
    user: Any = None


class UserAggregate:
    """Guards a user aggregate's ``add``: any exception becomes a bad record.

    Args:
        name: the aggregation's result field (for messages).
        user: an object with ``initialize() -> acc``, ``add(acc, record) -> acc``,
            ``merge(a, b) -> acc`` and ``result(acc) -> value``.
    """

    def __init__(self, name: str, user: Any) -> None:
        self.name = name
        self.user = user

    def add(self, acc: Any, record: Any) -> Any:
        """``user.add(acc, record)``.

        Raises:
            RecordError: (stage ``aggregate``) whatever ``user.add`` raised.
        """
        try:
            return self.user.add(acc, record)
        except Exception as exc:
            reason = f"aggregate {self.name}: add() raised {type(exc).__name__}: {exc}"
            raise RecordError("aggregate", reason) from exc


def _bad_value(name: str, kind: str, value: Any) -> RecordError:
    shown = repr(value)[:80]
    return RecordError("aggregate", f"{kind} {name}: expected a number, got {shown}")


class Aggregator:
    """All aggregations of one window operator.

    Args:
        specs: the window's aggregations in YAML order.
        getters: per aggregation, a callable ``record -> value`` (None for plain ``count``).
        users: per aggregation, a user aggregate instance for ``python`` aggregations.

    ``extract(record) -> tuple`` evaluates the expressions (raises
    :class:`~kstream.errors.RecordError` on a bad value, before any state changes);
    ``apply(acc, values, ts, record)`` updates ``acc`` in place (``ts``: event time in ms, for
    ``first``/``last``); ``add(acc, record, ts)`` does both; ``result(acc) -> dict`` names each
    value as in the YAML.
    """

    def __init__(
        self,
        specs: Sequence[AggregationSpec],
        getters: Sequence[Getter | None],
        users: Sequence[Any] = (),
    ) -> None:
        users = list(users) or [None] * len(specs)
        self.slots: list[Slot] = []
        index = 0
        for spec, getter, user in zip(specs, getters, users, strict=True):
            self.slots.append(Slot(spec.name, spec.kind, index, getter, user))
            index += 1 if user is not None else len(_INIT[spec.kind])
        self.width = index
        self.extract: Callable[[Any], tuple[Any, ...]] = self._compile_extract()
        self.apply: Callable[[list[Any], tuple[Any, ...], int, Any], None] = self._compile_apply()

    def add(self, acc: list[Any], record: Any, ts: int) -> None:
        """Extract then apply one record (``ts``: its event time in ms).

        Raises:
            RecordError: a value is bad (stage ``aggregate`` or ``expression``).
        """
        self.apply(acc, self.extract(record), ts, record)

    def new(self) -> list[Any]:
        """A fresh accumulator."""
        acc: list[Any] = []
        for slot in self.slots:
            if slot.user is not None:
                acc.append(slot.user.initialize())
            else:
                acc.extend(_INIT[slot.kind])
        return acc

    def _compile(self, name: str, lines: list[str]) -> Any:
        namespace: dict[str, Any] = {"__builtins__": {}, "isinstance": isinstance, "set": set}
        namespace["NUMBER"] = (int, float)
        namespace["bad"] = _bad_value
        namespace["TypeError"] = TypeError
        namespace["RecordError"] = RecordError
        for n, slot in enumerate(self.slots):
            namespace[f"g{n}"] = slot.getter
            namespace[f"u{n}"] = UserAggregate(slot.name, slot.user) if slot.user else None
        exec("\n".join(lines), namespace)  # generated from our own templates only
        return namespace[name]

    def _compile_extract(self) -> Callable[[Any], tuple[Any, ...]]:
        lines = ["def extract(r):"]
        names = []
        for n, slot in enumerate(self.slots):
            if slot.user is not None or slot.getter is None:
                names.append("None")
                continue
            lines.append(f"    v{n} = g{n}(r)")
            if slot.kind in ("sum", "avg"):
                lines.append(f"    if v{n} is not None and not isinstance(v{n}, NUMBER):")
                lines.append(f"        raise bad({slot.name!r}, {slot.kind!r}, v{n})")
            names.append(f"v{n}")
        lines.append(f"    return ({', '.join(names)}{',' if names else ''})")
        return self._compile("extract", lines)

    def _compile_apply(self) -> Callable[[list[Any], tuple[Any, ...], int, Any], None]:
        body: list[str] = []
        # user adds first: if one raises, the built-in aggregations are untouched
        order = sorted(enumerate(self.slots), key=lambda item: item[1].user is None)
        for n, slot in order:
            body.extend(_apply_lines(slot, n))
        lines = ["def apply(a, vs, ts, r):", "    try:"]
        lines.extend("        " + line for line in body or ["pass"])
        lines.append("    except TypeError as exc:")
        lines.append("        raise RecordError('aggregate', f'cannot aggregate: {exc}') from exc")
        return self._compile("apply", lines)

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        """Merge two accumulators (session windows); returns a new accumulator."""
        out: list[Any] = []
        for slot in self.slots:
            i = slot.index
            if slot.user is not None:
                out.append(slot.user.merge(a[i], b[i]))
            else:
                out.extend(_merge_slot(slot.kind, a, b, i))
        return out

    def result(self, acc: list[Any]) -> dict[str, Any]:
        """The named aggregation values of ``acc``."""
        out: dict[str, Any] = {}
        for slot in self.slots:
            out[slot.name] = _result(slot, acc)
        return out


def _apply_lines(slot: Slot, n: int) -> list[str]:
    """Statements applying value ``vs[n]`` of ``slot`` to accumulator ``a``."""
    i = slot.index
    if slot.user is not None:
        return [f"a[{i}] = u{n}.add(a[{i}], r)"]
    if slot.kind == "count" and slot.getter is None:
        return [f"a[{i}] += 1"]
    body = {
        "count": [f"a[{i}] += 1"],
        "sum": [f"a[{i}] = v if a[{i}] is None else a[{i}] + v"],
        "min": [f"if a[{i}] is None or v < a[{i}]: a[{i}] = v"],
        "max": [f"if a[{i}] is None or v > a[{i}]: a[{i}] = v"],
        "avg": [f"a[{i}] += v", f"a[{i + 1}] += 1"],
        "first": [f"if a[{i}] is None or ts < a[{i}]: a[{i}] = ts; a[{i + 1}] = v"],
        "last": [f"if a[{i}] is None or ts >= a[{i}]: a[{i}] = ts; a[{i + 1}] = v"],
        "first_arrived": [f"if a[{i}] is None: a[{i}] = v"],
        "last_arrived": [f"a[{i}] = v"],
        "count_distinct": [f"if a[{i}] is None: a[{i}] = set()", f"a[{i}].add(v)"],
        "collect": [],
    }[slot.kind]
    if slot.kind == "collect":
        return [f"v = vs[{n}]", f"if a[{i}] is None: a[{i}] = []", f"a[{i}].append(v)"]
    return [f"v = vs[{n}]", "if v is not None:"] + ["    " + line for line in body]


def _merge_slot(kind: str, a: list[Any], b: list[Any], i: int) -> list[Any]:
    x, y = a[i], b[i]
    if kind == "count":
        return [x + y]
    if kind == "avg":
        return [x + y, a[i + 1] + b[i + 1]]
    if kind in ("first", "last"):
        if x is None:
            return [y, b[i + 1]]
        if y is None:
            return [x, a[i + 1]]
        take_b = y < x if kind == "first" else y >= x
        return [y, b[i + 1]] if take_b else [x, a[i + 1]]
    if x is None or y is None:
        return [y if x is None else x]
    if kind in ("first_arrived", "last_arrived"):  # not in sessions: the loader refuses it
        return [x if kind == "first_arrived" else y]
    if kind == "sum":
        return [x + y]
    if kind == "min":
        return [min(x, y)]
    if kind == "max":
        return [max(x, y)]
    if kind == "count_distinct":
        return [x | y]
    return [x + y]  # collect


def _result(slot: Slot, acc: list[Any]) -> Any:
    i = slot.index
    if slot.user is not None:
        return slot.user.result(acc[i])
    kind = slot.kind
    if kind == "avg":
        return acc[i] / acc[i + 1] if acc[i + 1] else None
    if kind in ("first", "last"):
        return acc[i + 1]
    if kind == "count_distinct":
        return len(acc[i]) if acc[i] else 0
    if kind == "collect":
        return list(acc[i]) if acc[i] else []
    return acc[i]


def to_storable(aggregator: Aggregator, acc: list[Any]) -> list[Any]:
    """A JSON-able copy of ``acc`` (sets become sorted lists when sortable)."""
    out = list(acc)
    for slot in aggregator.slots:
        if slot.kind == "count_distinct" and slot.user is None and out[slot.index] is not None:
            values = list(out[slot.index])
            try:
                values.sort()
            except TypeError:
                values.sort(key=repr)
            out[slot.index] = values
    return out


def from_storable(aggregator: Aggregator, stored: list[Any]) -> list[Any]:
    """The inverse of :func:`to_storable`.

    Raises:
        ExpressionError: when the stored accumulator does not fit the aggregations (a changed
            pipeline reading old state).
    """
    if len(stored) != aggregator.width:
        raise ExpressionError(
            f"stored accumulator has {len(stored)} slots, the aggregations need {aggregator.width}"
        )
    acc = list(stored)
    for slot in aggregator.slots:
        if slot.kind == "count_distinct" and slot.user is None and acc[slot.index] is not None:
            acc[slot.index] = set(_hashable(v) for v in acc[slot.index])
    return acc


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value
