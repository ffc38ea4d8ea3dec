"""The ``window:`` operator of a pipeline file (see :mod:`kstream.pipeline.load` for the format).

:func:`read_window` validates a window body: its type and the keys that belong to that type,
its durations (element counts for ``type: count``), its early-firing ``trigger`` and its
``aggregate`` mapping, into a :class:`~kstream.pipeline.spec.WindowSpec`. The semantics are
described in ``docs/time-and-windows.md``.
"""

from __future__ import annotations

import re
from typing import cast, get_args

from kstream.pipeline.model_base import keys_of, merged_keys, required_of
from kstream.pipeline.model_operators import (
    AGGREGATION_KEYS,
    AGGREGATION_NAME_PATTERN,
    WINDOW_MODELS,
    Trigger,
)
from kstream.pipeline.spec import (
    Accumulation,
    AggregationSpec,
    EmitMode,
    LateRule,
    WindowSpec,
    WindowType,
)
from kstream.pipeline.yamlnodes import (
    Issues,
    Node,
    check_keys,
    describe,
    expect_map,
    read_duration,
    read_enum,
    read_expression,
    read_positive_int,
    read_python_ref,
    read_str,
    suggest,
)

__all__ = ["RESERVED_RESULT_FIELDS", "WINDOW_TYPES", "read_aggregation", "read_window"]

# The window types and the keys of each come from the file models (kstream.pipeline.model), so
# the loader and the JSON Schema of `kstream schema` cannot drift.
WINDOW_TYPES = tuple(WINDOW_MODELS)
EMIT_MODES: tuple[str, ...] = get_args(EmitMode)
ACCUMULATION_MODES: tuple[str, ...] = get_args(Accumulation)
#: Every key of a ``window:`` mapping.
WINDOW_KEYS = merged_keys(*WINDOW_MODELS.values())
#: The keys every window type requires (``type``, ``aggregate``).
_REQUIRED = tuple(
    key for key in WINDOW_KEYS if all(key in required_of(m) for m in WINDOW_MODELS.values())
)
#: The window types that take each key.
_TYPES_OF = {
    key: tuple(t for t, m in WINDOW_MODELS.items() if key in keys_of(m)) for key in WINDOW_KEYS
}
#: The keys that only some window types take -> those types.
_KEY_TYPES = {key: types for key, types in _TYPES_OF.items() if len(types) < len(WINDOW_TYPES)}
#: Per window type, the keys it requires besides :data:`_REQUIRED`.
_REQUIRED_BY_TYPE = {
    wtype: tuple(key for key in required_of(model) if key not in _REQUIRED)
    for wtype, model in WINDOW_MODELS.items()
}
TRIGGER_KEYS = keys_of(Trigger)
TRIGGER_HINT = "write trigger: {every: 10s} (processing time) or trigger: {count: 100} (elements)"
RESERVED_RESULT_FIELDS = ("key", "window_start", "window_end")
AGGREGATION_NAME = re.compile(AGGREGATION_NAME_PATTERN)


def read_aggregation(issues: Issues, name: str, node: Node) -> AggregationSpec | None:
    """One ``aggregate`` entry: ``count``, ``{kind: expression}`` or ``{python: module:Class}``.

    User-defined aggregates get ``kind="python"``. Returns None when invalid.
    """
    kinds = AGGREGATION_KEYS  # the AGGREGATION_KINDS and "python"
    hint = "write count, {avg: dep_delay} or {python: module:Class}"
    if isinstance(node.value, str):
        if node.value == "count":
            return AggregationSpec(name=name, kind="count")
        if node.value in kinds:
            issues.add(
                node, f"'{node.value}' needs an expression", f"write {{{node.value}: field}}"
            )
        else:
            issues.add(node, f"unknown aggregation '{node.value}'", suggest(node.value, kinds))
        return None
    if not node.is_map or len(node.value) != 1:
        issues.add(node, f"expected one aggregation, got {describe(node.value)}", hint)
        return None
    ((kind, child),) = node.entries()
    if kind not in kinds:
        issues.add(child, f"unknown aggregation '{kind}'", suggest(kind, kinds))
        return None
    if kind == "python":
        return AggregationSpec(name=name, kind=kind, python=read_python_ref(issues, child))
    return AggregationSpec(name=name, kind=kind, expr=read_expression(issues, child))


def read_window(issues: Issues, node: Node, op_id: str) -> WindowSpec | None:
    """A ``window:`` body; type-specific keys are checked against ``type``."""
    if not check_keys(issues, node, WINDOW_KEYS, _REQUIRED):
        return None
    type_node = node.get("type")
    wtype = read_enum(issues, type_node, WINDOW_TYPES, "") if type_node is not None else ""
    if wtype:
        _check_type_keys(issues, node, wtype)
    if wtype == "count":
        size, slide = None, None
        count_size, count_slide = _counts(issues, node)
    else:
        size = read_duration(issues, node.get("size"), None, minimum=1)
        slide = read_duration(issues, node.get("slide"), None, minimum=1)
        count_size, count_slide = None, None
    step = read_duration(issues, node.get("step"), None, minimum=1)
    offset = read_duration(issues, node.get("offset"), 0, minimum=None) or 0
    _check_sizes(issues, node, wtype, size, slide, offset)
    _check_step(issues, node, size, step)
    every, count = _trigger(issues, node.get("trigger"))
    aggregations = _aggregations(issues, node.get("aggregate"))
    if wtype == "session":
        _check_arrival_order(issues, node, aggregations)
    default_emit = "update" if wtype == "global" else "final"
    return WindowSpec(
        id=op_id,
        type=cast(WindowType, wtype or "tumbling"),
        aggregations=aggregations,
        size_ms=size,
        slide_ms=slide,
        step_ms=step,
        late_rule=cast(
            LateRule, read_enum(issues, node.get("late_rule"), get_args(LateRule), "datastream")
        ),
        gap_ms=read_duration(issues, node.get("gap"), None, minimum=1),
        offset_ms=offset,
        allowed_lateness_ms=read_duration(issues, node.get("allowed_lateness"), 0) or 0,
        late_topic=read_str(issues, node.get("late_topic"), name=True),
        emit=cast(EmitMode, read_enum(issues, node.get("emit"), EMIT_MODES, default_emit)),
        accumulation=cast(
            Accumulation,
            read_enum(issues, node.get("accumulation"), ACCUMULATION_MODES, "accumulating"),
        ),
        count_size=count_size,
        count_slide=count_slide,
        trigger_every_ms=every,
        trigger_count=count,
        state_ttl_ms=read_duration(issues, node.get("state_ttl"), None, minimum=1),
    )


def _element_count(issues: Issues, node: Node | None) -> int | None:
    """A count window's ``size``/``slide``: a positive integer number of elements."""
    if node is None:
        return None
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return int(value)
    issues.add(
        node,
        f"a count window's {node.path.rsplit('.', 1)[-1]} is a number of elements, "
        f"got {describe(value)}",
        "write e.g. size: 100 (elements, not a duration)",
    )
    return None


def _counts(issues: Issues, node: Node) -> tuple[int | None, int | None]:
    """``size`` and ``slide`` (default: ``size``) of a count window. A slide larger than the
    size is allowed, as in Flink: the elements between two windows belong to none."""
    size = _element_count(issues, node.get("size"))
    slide = _element_count(issues, node.get("slide"))
    return size, slide if slide is not None else size


def _trigger(issues: Issues, node: Node | None) -> tuple[int | None, int | None]:
    """``trigger: {every: <duration>}`` or ``trigger: {count: <elements>}``: early firing.

    Returns ``(every_ms, count)``, at most one of them set.
    """
    if node is None:
        return None, None
    if not check_keys(issues, node, TRIGGER_KEYS) or len(node.value) != 1:
        if node.is_map:
            issues.add(node, "a trigger needs exactly one of 'every' and 'count'", TRIGGER_HINT)
        return None, None
    every = read_duration(issues, node.get("every"), None, minimum=1)
    return every, read_positive_int(issues, node.get("count"), None)


def _check_type_keys(issues: Issues, node: Node, wtype: str) -> None:
    """Keys that belong to other window types are errors; the type's own keys are required."""
    for key, types in _KEY_TYPES.items():
        child = node.get(key)
        if child is not None and wtype not in types:
            kinds = ", ".join(types[:-1]) + " and " + types[-1] if len(types) > 1 else types[0]
            issues.add(
                child,
                f"'{key}' is for {kinds} windows, not {wtype} windows",
                f"remove '{key}', or use type: {types[0]}",
            )
    for key in _REQUIRED_BY_TYPE[wtype]:
        if node.get(key) is None:
            issues.add(node, f"a {wtype} window needs '{key}'", f"add e.g. '{key}: 10m'")


def _check_sizes(
    issues: Issues, node: Node, wtype: str, size: int | None, slide: int | None, offset: int
) -> None:
    """Sliding: slide <= size. Tumbling/sliding: |offset| < size (tumbling) or slide (sliding)."""
    slide_node = node.get("slide")
    if wtype == "sliding" and size and slide and slide > size and slide_node is not None:
        issues.add(
            slide_node, f"slide ({slide_node.value}) is larger than size", "use slide <= size"
        )
    period = size if wtype in ("tumbling", "cumulate") else slide if wtype == "sliding" else None
    offset_node = node.get("offset")
    if period and offset_node is not None and abs(offset) >= period:
        unit = "slide" if wtype == "sliding" else "size"
        issues.add(
            offset_node,
            f"offset ({offset_node.value}) must be smaller than the window {unit} in magnitude",
            f"use an offset between -{unit} and {unit}",
        )


def _check_arrival_order(
    issues: Issues, node: Node, aggregations: tuple[AggregationSpec, ...]
) -> None:
    """first_arrived/last_arrived need an arrival order, which merged sessions do not have."""
    for agg in aggregations:
        if agg.kind in ("first_arrived", "last_arrived"):
            where = node.get("aggregate")
            child = where.get(agg.name) if where is not None else None
            issues.add(
                child or node,
                f"'{agg.kind}' is not for session windows (merged sessions have no arrival order)",
                "use first or last (by event time)",
            )


def _check_step(issues: Issues, node: Node, size: int | None, step: int | None) -> None:
    """Cumulate: the size is a whole number of steps (Flink requires it)."""
    step_node = node.get("step")
    if size and step and step_node is not None and (step > size or size % step):
        issues.add(
            step_node,
            f"size ({size} ms) is not a multiple of step ({step} ms)",
            "use a step that divides the size, e.g. size: 1d, step: 1h",
        )


def _aggregations(issues: Issues, node: Node | None) -> tuple[AggregationSpec, ...]:
    """The ``aggregate`` mapping: result field name -> aggregation (at least one)."""
    hint = "write e.g. aggregate: {flights: count, avg_delay: {avg: dep_delay}}"
    if node is None:
        return ()  # reported as a missing required key
    if node.value is None or (node.is_map and not node.value):
        issues.add(node, "a window needs at least one aggregation", hint)
        return ()
    if not expect_map(issues, node, hint):
        return ()
    specs: list[AggregationSpec] = []
    for name, child in node.entries():
        if not AGGREGATION_NAME.match(name):
            issues.add(
                child,
                f"invalid aggregation name '{name}'",
                "start with a letter or '_', then letters, digits or '_'",
            )
        elif name in RESERVED_RESULT_FIELDS:
            issues.add(
                child,
                f"aggregation name '{name}' collides with a window result field",
                f"rename it: {', '.join(RESERVED_RESULT_FIELDS)} are set by the window",
            )
        spec = read_aggregation(issues, name, child)
        if spec is not None:
            specs.append(spec)
    return tuple(specs)
