"""The ``join:`` operator item and a source's ``table:`` (docs/joins.md; DESIGN.md section 6).

:func:`read_join` validates a join body and builds its :class:`~kstream.pipeline.spec_joins.
JoinSpec`; the right input (``right:``) is resolved with the other edges by
:mod:`kstream.pipeline.dataflow`, and the repartitions that co-partition the two inputs are
inserted by :mod:`kstream.pipeline.copartition`.
"""

from __future__ import annotations

from typing import cast, get_args

from kstream.pipeline.model_base import keys_of
from kstream.pipeline.model_joins import JoinBody, JoinOn, JoinWindow, Table
from kstream.pipeline.spec_joins import (
    JoinHow,
    JoinSpec,
    JoinType,
    JoinWindowSpec,
    JoinWindowType,
    TableSpec,
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
    read_str,
)

JOIN_KEYS = keys_of(JoinBody)
JOIN_ON_KEYS = keys_of(JoinOn)
JOIN_WINDOW_KEYS = keys_of(JoinWindow)
TABLE_KEYS = keys_of(Table)
JOIN_TYPES: tuple[str, ...] = get_args(JoinType)
JOIN_HOWS: tuple[str, ...] = get_args(JoinHow)
JOIN_HINT = "write join: {type: interval, right: weather, on: origin, between: [-30m, 30m]}"
#: The ``how`` each join type supports (temporal and lookup joins look the right side up).
HOWS_OF = {
    "interval": JOIN_HOWS,
    "window": JOIN_HOWS,
    "temporal": ("inner", "left"),
    "lookup": ("inner", "left"),
}


def read_join(issues: Issues, node: Node, op_id: str) -> JoinSpec:
    """``{type, right, on, how, between | window, select}``."""
    if not expect_map(issues, node, JOIN_HINT):
        return JoinSpec(id=op_id, type="interval")
    check_keys(issues, node, JOIN_KEYS, ("type", "right", "on"))
    jtype = read_enum(issues, node.get("type"), JOIN_TYPES, "interval")
    how = read_enum(issues, node.get("how"), JOIN_HOWS, "inner")
    how_node = node.get("how")
    if how_node is not None and how not in HOWS_OF[jtype]:
        allowed = " or ".join(HOWS_OF[jtype])
        issues.add(how_node, f"a {jtype} join is {allowed}, not {how}", f"use how: {allowed}")
    on_left, on_right = _on(issues, node.get("on"))
    lower, upper = _between(issues, node, jtype)
    right = node.get("right")
    return JoinSpec(
        id=op_id,
        type=cast(JoinType, jtype),
        right_name=read_str(issues, right, "") or "",
        on_left=on_left,
        on_right=on_right,
        how=cast(JoinHow, how),
        lower_ms=lower,
        upper_ms=upper,
        window=_window(issues, node, jtype),
        select=_select(issues, node.get("select")),
        state_ttl_ms=_state_ttl(issues, node, jtype, how),
    )


def _state_ttl(issues: Issues, node: Node, jtype: str, how: str) -> int | None:
    """An inner interval join's ``state_ttl`` (ms, positive). The other joins' state is
    cleaned by the watermark (as Flink's window, interval and temporal joins', which the state
    TTL does not touch); an outer join releases its unmatched records at their cleanup time,
    which an expiry would skip."""
    found = node.get("state_ttl")
    if found is None:
        return None
    if jtype != "interval" or how != "inner":
        what = f"'state_ttl' is for inner interval joins, not {how} {jtype} joins"
        issues.add(found, what, "remove it: the watermark cleans this join's state")
        return None
    return read_duration(issues, found, None, minimum=1)


def _on(issues: Issues, node: Node | None) -> tuple[str, str]:
    """``on: EXPR`` (both sides) or ``on: {left: EXPR, right: EXPR}``."""
    if node is None:
        return "", ""
    if node.is_map:
        if not check_keys(issues, node, JOIN_ON_KEYS, JOIN_ON_KEYS):
            return "", ""
        sides = [node.get(side) for side in JOIN_ON_KEYS]
        left, right = (read_expression(issues, s) if s is not None else None for s in sides)
        return left or "", right or ""
    expr = read_expression(issues, node) or ""
    return expr, expr


def _between(issues: Issues, node: Node, jtype: str) -> tuple[int, int]:
    """An interval join's ``between: [lo, hi]`` (durations, lo <= hi); other types: none."""
    between = node.get("between")
    hint = "write between: [-30m, 30m]: right.ts - left.ts from -30 to +30 minutes"
    if jtype != "interval":
        if between is not None:
            issues.add(between, f"'between' is for interval joins, not {jtype}", "remove it")
        return 0, 0
    if between is None:
        issues.add(node, "an interval join needs 'between: [lo, hi]'", hint)
        return 0, 0
    items = between.items() if between.is_seq else []
    if len(items) != 2:
        issues.add(between, f"expected [lo, hi], got {describe(between.value)}", hint)
        return 0, 0
    lower = read_duration(issues, items[0], None, minimum=None)
    upper = read_duration(issues, items[1], None, minimum=None)
    if lower is None or upper is None:
        return 0, 0
    if lower > upper:
        issues.add(between, f"lo ({items[0].value}) is after hi ({items[1].value})", hint)
    return lower, upper


def _window(issues: Issues, node: Node, jtype: str) -> JoinWindowSpec | None:
    """A window join's ``window: {type, size, slide, gap, offset}``."""
    window = node.get("window")
    if jtype != "window":
        if window is not None:
            issues.add(window, f"'window' is for window joins, not {jtype}", "remove it")
        return None
    hint = "write window: {type: tumbling, size: 1h}"
    if window is None:
        issues.add(node, "a window join needs 'window: {type, size}'", hint)
        return None
    if not check_keys(issues, window, JOIN_WINDOW_KEYS, ("type",)):
        return None
    wtype = read_enum(issues, window.get("type"), get_args(JoinWindowType), "tumbling")
    needed = {"tumbling": ("size",), "sliding": ("size", "slide"), "session": ("gap",)}[wtype]
    allowed = needed if wtype == "session" else (*needed, "offset")
    for key in ("size", "slide", "gap", "offset"):
        child = window.get(key)
        if key in needed and child is None:
            issues.add(window, f"a {wtype} window needs '{key}'", hint)
        elif child is not None and key not in allowed:
            issues.add(child, f"'{key}' is not for {wtype} windows", "remove it")

    def duration(key: str, minimum: int | None = 1) -> int | None:
        return read_duration(issues, window.get(key), None, minimum=minimum)

    size, slide = duration("size"), duration("slide")
    if size and slide and slide > size:
        what = f"slide ({slide} ms) is larger than size ({size} ms)"
        issues.add(window, what, "use slide <= size")
    return JoinWindowSpec(
        type=cast(JoinWindowType, wtype),
        size_ms=size,
        slide_ms=slide,
        gap_ms=duration("gap"),
        offset_ms=duration("offset", None) or 0,
    )


def _select(issues: Issues, node: Node | None) -> tuple[tuple[str, str], ...]:
    """``select: {name: EXPR}`` over the joined record."""
    if node is None or not expect_map(issues, node, "write select: {name: expression}"):
        return ()
    fields: list[tuple[str, str]] = []
    for name, child in node.entries():
        expr = read_expression(issues, child)
        if expr is not None:
            fields.append((name, expr))
    return tuple(fields)


def read_table(issues: Issues, node: Node | None) -> TableSpec | None:
    """A source's ``table: {key: EXPR, versioned: DURATION, broadcast: BOOL}``."""
    if node is None:
        return None
    hint = "write table: {key: origin} (add versioned: 2d for temporal joins)"
    if not expect_map(issues, node, hint) or not check_keys(issues, node, TABLE_KEYS, ("key",)):
        return None
    key_node = node.get("key")
    key = read_expression(issues, key_node) if key_node is not None else None
    broadcast = node.get("broadcast")
    if broadcast is not None and not isinstance(broadcast.value, bool):
        issues.add(broadcast, f"expected true or false, got {describe(broadcast.value)}", hint)
    return TableSpec(
        key=key or "",
        versioned_ms=read_duration(issues, node.get("versioned"), None, minimum=1),
        broadcast=broadcast is not None and broadcast.value is True,
    )
