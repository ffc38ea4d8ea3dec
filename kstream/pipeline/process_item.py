"""The ``process:`` operator item: a keyed process function (docs/process-functions.md)."""

from __future__ import annotations

from kstream.expr.sql_rank import parse_order
from kstream.pipeline.model_base import keys_of
from kstream.pipeline.model_operators import DedupBody, ProcessBody, StateDeclaration, TopNBody
from kstream.pipeline.ports import port_name
from kstream.pipeline.spec import ProcessSpec, StateKind, TopNSpec, TtlTime
from kstream.pipeline.yamlnodes import (
    NAME_HINT,
    NAME_PATTERN,
    Issues,
    Node,
    check_keys,
    describe,
    expect_map,
    expect_seq,
    read_duration,
    read_expression,
    read_positive_int,
    read_python_ref,
    read_str,
)

#: The keys of ``process:`` (from the file model).
PROCESS_KEYS = keys_of(ProcessBody)
STATE_KINDS: tuple[StateKind, ...] = ("value", "list", "map")
TTL_TIMES: tuple[TtlTime, ...] = ("event", "processing")
STATE_KEYS = keys_of(StateDeclaration)
DEDUP_KEYS = keys_of(DedupBody)
#: The ``python`` a ``dedup`` node's spec carries (its built-in function; shown by tools).
DEDUP_PYTHON = "kstream.operators.process_dedup:Dedup"
#: The state of a ``dedup`` node: the timestamp of the key's last kept record.
DEDUP_STATE = "kept"
TOP_N_KEYS = keys_of(TopNBody)
#: The ``python`` a ``top_n`` node's spec carries, and its states: the latest record of each
#: row (a map: row key -> record) and the rows it emitted last (a value: ranked records).
TOP_N_PYTHON = "kstream.operators.process_top_n:TopN"
TOP_N_ROWS, TOP_N_EMITTED = "rows", "emitted"
#: ``(name, kind)`` and ``(name, ttl ms, time)`` declarations.
Declarations = tuple[tuple[tuple[str, StateKind], ...], tuple[tuple[str, int, TtlTime], ...]]

PROCESS_HINT = (
    "write process: {python: module:Class, state: {streak: value, recent: list}, ports: [closed]}"
)


def read_process(issues: Issues, node: Node, op_id: str) -> ProcessSpec:
    """``{python: module:Class, state: {name: value|list|map}, ports: [port, ...]}``."""
    if not expect_map(issues, node, PROCESS_HINT):
        return ProcessSpec(id=op_id)
    check_keys(issues, node, PROCESS_KEYS)
    python_node = node.get("python")
    python = None
    if python_node is None:
        issues.add(node, "process needs 'python: module:Class'", PROCESS_HINT)
    else:
        python = read_python_ref(issues, python_node)
    state, ttl = _state_declarations(issues, node.get("state"))
    return ProcessSpec(
        id=op_id,
        python=python or "",
        state=state,
        ttl=ttl,
        ports=_process_ports(issues, node.get("ports")),
    )


DEDUP_HINT = "write dedup: {within: 1h} after a key_by: the key's first record per hour is kept"


def read_dedup(issues: Issues, node: Node, op_id: str) -> ProcessSpec:
    """``{within: DURATION}``: a process node running the built-in
    :class:`~kstream.operators.process_dedup.Dedup`, with port ``late``."""
    within = None
    if expect_map(issues, node, DEDUP_HINT):
        key = node.get("key")
        if key is not None:  # the issue's {key: EXPR} form: the key comes from a key_by
            issues.add(
                key,
                "dedup keeps a record per record key, which a key_by sets (it also routes each "
                "key to one task)",
                f"put '- key_by: {key.value}' before this dedup and remove 'key:'",
            )
        check_keys(issues, node, (*DEDUP_KEYS, "key"))
        if node.get("within") is None:
            issues.add(node, "dedup needs 'within: DURATION'", DEDUP_HINT)
        within = read_duration(issues, node.get("within"), None, minimum=1)
    return ProcessSpec(
        id=op_id,
        python=DEDUP_PYTHON,
        state=((DEDUP_STATE, "value"),),
        ttl=((DEDUP_STATE, within or 1, "event"),),
        ports=("late",),
        dedup_within_ms=within or 1,
    )


TOP_N_HINT = "write top_n: {n: 3, row_key: dest, order: [flights DESC, dest]} after a key_by"


def read_top_n(issues: Issues, node: Node, op_id: str) -> ProcessSpec:
    """``{n: N, [row_key: EXPR,] order: [FIELD [ASC|DESC] [NULLS FIRST|LAST], ...], rank:
    NAME[, state_ttl: DURATION]}``: a process node running the built-in
    :class:`~kstream.operators.process_top_n.TopN` (``state_ttl``: :func:`top_n_ttl`)."""
    top = TopNSpec(n=1, row_key=None, order=())
    ttl = None
    if expect_map(issues, node, TOP_N_HINT):
        check_keys(issues, node, TOP_N_KEYS)
        for key in ("n", "order"):
            if node.get(key) is None:
                issues.add(node, f"top_n needs '{key}'", TOP_N_HINT)
        row_key = node.get("row_key")
        top = TopNSpec(
            n=read_positive_int(issues, node.get("n"), 1) or 1,
            row_key=read_expression(issues, row_key) if row_key is not None else None,
            order=_order(issues, node.get("order")),
            rank=read_str(issues, node.get("rank"), "rn", name=True) or "rn",
        )
        ttl = read_duration(issues, node.get("state_ttl"), None, minimum=1)
    return ProcessSpec(
        id=op_id,
        python=TOP_N_PYTHON,
        state=((TOP_N_ROWS, "map"), (TOP_N_EMITTED, "value")),
        ttl=top_n_ttl(ttl),
        top_n=top,
    )


def top_n_ttl(ttl_ms: int | None) -> tuple[tuple[str, int, TtlTime], ...]:
    """The TTL declarations of a ``top_n`` with ``state_ttl: ttl_ms`` (None: none): each row
    of ``rows`` and the ``emitted`` ranks expire ``ttl_ms`` of processing time after they were
    last written (Flink's rank functions under ``table.exec.state.ttl``)."""
    if ttl_ms is None:
        return ()
    return ((TOP_N_ROWS, ttl_ms, "processing"), (TOP_N_EMITTED, ttl_ms, "processing"))


def _order(issues: Issues, node: Node | None) -> tuple[tuple[str, bool, bool], ...]:
    hint = "write order: [flights DESC, dest ASC NULLS LAST] (fields, most significant first)"
    if node is None or not expect_seq(issues, node, hint):
        return ()
    order: list[tuple[str, bool, bool]] = []
    for item in node.items():
        if not isinstance(item.value, str):
            issues.add(item, f"expected an order item, got {describe(item.value)}", hint)
            continue
        try:
            order += parse_order(item.value)
        except ValueError as exc:
            issues.add(item, str(exc), hint)
    if not order and not node.items():
        issues.add(node, "top_n needs at least one order field", hint)
    return tuple(order)


def _state_declarations(issues: Issues, node: Node | None) -> Declarations:
    hint = "write state: {streak: value, recent: list, by_dest: {kind: map, ttl: 1d}}"
    if node is None or not expect_map(issues, node, hint):
        return (), ()
    kinds: list[tuple[str, StateKind]] = []
    ttls: list[tuple[str, int, TtlTime]] = []
    for name, child in node.entries():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            issues.add(child, f"invalid state name {describe(name)}", NAME_HINT)
            continue
        kind_node = child
        if child.is_map:
            check_keys(issues, child, STATE_KEYS)
            kind_node = child.get("kind") or child
            if child.get("kind") is None:
                issues.add(child, f"state '{name}' needs 'kind: value|list|map'", hint)
                continue
            ttl = _ttl(issues, child)
            if ttl is not None:
                ttls.append((name, *ttl))
        kind = next((k for k in STATE_KINDS if k == kind_node.value), None)
        if kind is None:
            issues.add(
                kind_node,
                f"unknown state kind {kind_node.value!r} for '{name}'",
                f"expected one of: {', '.join(STATE_KINDS)}",
            )
            continue
        kinds.append((name, kind))
    return tuple(kinds), tuple(ttls)


def _ttl(issues: Issues, node: Node) -> tuple[int, TtlTime] | None:
    """The ``ttl`` (ms, positive) and ``time`` of a long-form state declaration."""
    time_node = node.get("time")
    time: TtlTime = "event"
    if time_node is not None:
        found = next((t for t in TTL_TIMES if t == time_node.value), None)
        if found is None:
            issues.add(
                time_node,
                f"unknown ttl time {describe(time_node.value)}",
                "write time: event (the watermark, the default) or time: processing",
            )
        time = found or "event"
        if node.get("ttl") is None:
            issues.add(time_node, "'time' without 'ttl'", "add e.g. ttl: 1d, or remove time")
    ttl = read_duration(issues, node.get("ttl"), None, minimum=1)
    return None if ttl is None else (ttl, time)


def _process_ports(issues: Issues, node: Node | None) -> tuple[str, ...]:
    hint = "write ports: [closed, alerts]: side outputs read with from: <id>.<port>"
    if node is None or not expect_seq(issues, node, hint):
        return ()
    ports: list[str] = []
    for item in node.items():
        name = port_name(issues, item, item.value)
        if name is None:
            continue
        if name in ports:
            issues.add(item, f"port '{name}' is listed twice", "list each port once")
            continue
        ports.append(name)
    return tuple(ports)
