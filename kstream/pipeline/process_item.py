"""The ``process:`` operator item: a keyed process function (docs/process-functions.md)."""

from __future__ import annotations

from kstream.pipeline.model_base import keys_of
from kstream.pipeline.model_operators import ProcessBody
from kstream.pipeline.ports import port_name
from kstream.pipeline.spec import ProcessSpec, StateKind
from kstream.pipeline.yamlnodes import (
    NAME_HINT,
    NAME_PATTERN,
    Issues,
    Node,
    check_keys,
    describe,
    expect_map,
    expect_seq,
    read_python_ref,
)

#: The keys of ``process:`` (from the file model).
PROCESS_KEYS = keys_of(ProcessBody)
STATE_KINDS: tuple[StateKind, ...] = ("value", "list", "map")

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
    return ProcessSpec(
        id=op_id,
        python=python or "",
        state=_state_declarations(issues, node.get("state")),
        ports=_process_ports(issues, node.get("ports")),
    )


def _state_declarations(issues: Issues, node: Node | None) -> tuple[tuple[str, StateKind], ...]:
    hint = "write state: {streak: value, recent: list, by_dest: map}"
    if node is None or not expect_map(issues, node, hint):
        return ()
    out: list[tuple[str, StateKind]] = []
    for name, child in node.entries():
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            issues.add(child, f"invalid state name {describe(name)}", NAME_HINT)
            continue
        kind = next((k for k in STATE_KINDS if k == child.value), None)
        if kind is None:
            issues.add(
                child,
                f"unknown state kind {child.value!r} for '{name}'",
                f"expected one of: {', '.join(STATE_KINDS)}",
            )
            continue
        out.append((name, kind))
    return tuple(out)


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
