"""The graph of a pipeline file: ``from:`` references resolved, checked, and walked.

:func:`wire` runs after the sources, operators and sinks have been read. It fills each
operator's and sink's ``inputs`` (:class:`~kstream.pipeline.spec.PortRef`) and reports graph
errors with the line of the offending key: an unknown node or port, a cycle, a node whose output
goes nowhere, a missing ``from:`` where the default is ambiguous (DESIGN.md section 3).

Defaults (the version-1 form keeps its meaning): an operator without ``from:`` reads the
previous item of ``operators:``, the first one the only source; a sink without ``from:`` reads
the last operator (the only source when there is none). A ``from:`` list on a sink unions its
inputs. A sink on an ``errors`` port is the dead-letter topic of that node (shorthand for its
``on_error: dead_letter`` + ``dead_letter_topic``).

The walks (:func:`producer_chain`, :func:`result_window`, :func:`upstream_source`) answer the
schema questions of formats and codecs along single-input paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from kstream.pipeline.spec import (
    BranchSpec,
    FilterSpec,
    JoinSpec,
    KeyBySpec,
    OperatorSpec,
    PipelineSpec,
    PortRef,
    ProcessSpec,
    SinkSpec,
    SourceSpec,
    UnionSpec,
    WindowSpec,
)
from kstream.pipeline.yamlnodes import Issues, Node, describe, suggest

__all__ = [
    "node_ports",
    "producer_chain",
    "result_window",
    "upstream_source",
    "wire",
]

GraphNode = SourceSpec | OperatorSpec
FROM_HINT = "write from: <node id> or from: <node id>.<port>"


def node_ports(node: GraphNode) -> tuple[str, ...]:
    """The output ports of a node: ``main`` (not for a branch), the branch names, ``late`` on
    tumbling, sliding and session windows and on joins but lookup joins, a process function's
    declared side ports, ``errors`` on every node that can reject records."""
    if isinstance(node, ProcessSpec):
        return ("main", *node.ports, "errors")
    if isinstance(node, UnionSpec):
        return ("main",)
    if isinstance(node, JoinSpec):
        return ("main", "errors") if node.type == "lookup" else ("main", "late", "errors")
    if isinstance(node, BranchSpec):
        return (*node.ports, "errors")
    if isinstance(node, WindowSpec) and node.type in ("tumbling", "sliding", "cumulate", "session"):
        return ("main", "late", "errors")
    return ("main", "errors")


def wire(issues: Issues, root: Node, spec: PipelineSpec) -> PipelineSpec:
    """``spec`` with every ``inputs`` resolved (see the module docstring); graph errors are
    recorded in ``issues`` (the spec is then returned partly wired)."""
    nodes: dict[str, GraphNode] = {}
    _index_nodes(issues, root, spec, nodes)
    op_items = _items(root, "operators")
    sink_items = _items(root, "sinks")
    operators: list[OperatorSpec] = []
    previous: GraphNode | None = spec.sources[0] if len(spec.sources) == 1 else None
    for op, item in zip(spec.operators, op_items, strict=False):
        refs = _operator_inputs(issues, item, op, previous, nodes)
        if isinstance(op, JoinSpec) and len(refs) == 2:  # the field its right records go under
            right = refs[1]
            op = dataclasses.replace(
                op, right_name=right.node if right.port == "main" else right.port
            )
        operators.append(dataclasses.replace(op, inputs=refs))
        previous = op
    sinks = [
        dataclasses.replace(sink, inputs=_sink_inputs(issues, item, previous, nodes))
        for sink, item in zip(spec.sinks, sink_items, strict=False)
    ]
    wired = dataclasses.replace(spec, operators=tuple(operators), sinks=tuple(sinks))
    if issues.items:
        return wired
    _check_cycles(issues, op_items, wired)
    if issues.items:
        return wired
    _check_connected(issues, root, op_items, wired)
    return _dead_letter_sinks(issues, root, wired)


def _items(root: Node, key: str) -> list[Node]:
    node = root.get(key)
    return node.items() if node is not None else []


def _index_nodes(
    issues: Issues, root: Node, spec: PipelineSpec, nodes: dict[str, GraphNode]
) -> None:
    """Map every node id (sources, then operators) to its spec; ids share one namespace."""
    places = [*_items(root, "sources"), *_items(root, "operators")]
    for node, item in zip((*spec.sources, *spec.operators), places, strict=False):
        if node.id in nodes:
            other = "source" if isinstance(nodes[node.id], SourceSpec) else "operator"
            hint = f"ids are unique across sources and operators ('{node.id}' is a {other})"
            where = item.get("id") or item.get("name") or item
            issues.add(where, f"duplicate id '{node.id}'", hint)
        nodes.setdefault(node.id, node)


def _operator_inputs(
    issues: Issues,
    item: Node,
    op: OperatorSpec,
    previous: GraphNode | None,
    nodes: dict[str, GraphNode],
) -> tuple[PortRef, ...]:
    from_node = item.get("from")
    if isinstance(op, UnionSpec):
        if from_node is not None:
            hint = "a union reads the inputs it lists; remove 'from:'"
            issues.add(from_node, "a union takes no 'from:'", hint)
        where = item.get("union") or item
        refs = _refs(issues, where.items(), nodes, op.id)
    elif from_node is None:
        refs = _default_input(issues, item, previous, "operator")
        if not isinstance(op, JoinSpec):
            return refs
        where = item
    elif from_node.is_seq:
        hint = "only a sink's from: may be a list; to merge streams use a 'union' operator"
        issues.add(from_node, "an operator reads one input", hint)
        return ()
    else:
        where, refs = from_node, _refs(issues, [from_node], nodes, op.id)
    if isinstance(op, JoinSpec):
        refs = _join_inputs(issues, item, op, refs, nodes)
    for ref in refs:
        if ref.port == "errors":
            hint = (
                "an errors port carries dead letters (raw records with error headers): "
                f"write them with a sink {{topic: ..., from: {ref}}}"
            )
            issues.add(where, f"only a sink can read '{ref}'", hint)
    return refs


def _join_inputs(
    issues: Issues,
    item: Node,
    op: JoinSpec,
    left: tuple[PortRef, ...],
    nodes: dict[str, GraphNode],
) -> tuple[PortRef, ...]:
    """A join's ``(left, right)``: ``from:`` (or the previous item) and ``join.right``."""
    body = item.get("join")
    right_node = body.get("right") if body is not None else None
    if right_node is None or not left:
        return ()
    right = _ref(issues, right_node, nodes)
    if right is None:
        return ()
    return (left[0], right)


def _sink_inputs(
    issues: Issues, item: Node, last: GraphNode | None, nodes: dict[str, GraphNode]
) -> tuple[PortRef, ...]:
    from_node = item.get("from")
    if from_node is None:
        return _default_input(issues, item, last, "sink")
    return _refs(issues, from_node.items() if from_node.is_seq else [from_node], nodes, None)


def _default_input(
    issues: Issues, item: Node, previous: GraphNode | None, what: str
) -> tuple[PortRef, ...]:
    if previous is None:
        issues.add(item, f"this {what} needs 'from:': there are several sources", FROM_HINT)
        return ()
    if isinstance(previous, BranchSpec):
        ports = ", ".join(f"{previous.id}.{p}" for p in previous.ports)
        why = f"the item before is branch '{previous.id}', whose outputs are its ports"
        issues.add(item, f"this {what} needs 'from:': {why}", f"write from: one of {ports}")
        return ()
    return (PortRef(previous.id),)


def _refs(
    issues: Issues, items: Sequence[Node], nodes: dict[str, GraphNode], owner: str | None
) -> tuple[PortRef, ...]:
    refs: list[PortRef] = []
    for item in items:
        ref = _ref(issues, item, nodes)
        if ref is None:
            continue
        if ref.node == owner:
            issues.add(item, f"'{owner}' reads its own output", "name an earlier node")
        elif ref in refs:
            issues.add(item, f"'{ref}' is listed twice", "list each input once")
        else:
            refs.append(ref)
    return tuple(refs)


def _ref(issues: Issues, item: Node, nodes: dict[str, GraphNode]) -> PortRef | None:
    """``node`` or ``node.port`` (ids may hold dots: the longest known id wins)."""
    text = item.value
    if not isinstance(text, str) or not text:
        issues.add(item, f"expected a node id, got {describe(text)}", FROM_HINT)
        return None
    if text in nodes:
        ref = PortRef(text)
    elif "." in text and text.rsplit(".", 1)[0] in nodes:
        node_id, port = text.rsplit(".", 1)
        ref = PortRef(node_id, port)
    else:
        issues.add(item, f"unknown node '{text}'", suggest(text.split(".")[0], list(nodes)))
        return None
    ports = node_ports(nodes[ref.node])
    if ref.port not in ports:
        kind = _kind(nodes[ref.node])
        what = f"{kind} '{ref.node}' has no port '{ref.port}'"
        if ref.port == "main":
            what = f"{kind} '{ref.node}' has no main output"
        issues.add(item, what, f"its ports: {', '.join(ports)}")
        return None
    return ref


def _kind(node: GraphNode) -> str:
    if isinstance(node, SourceSpec):
        return "source"
    return node.kind


def _check_cycles(issues: Issues, op_items: list[Node], spec: PipelineSpec) -> None:
    """Report each operator on a cycle of ``from:`` references, once."""
    inputs = {op.id: [ref.node for ref in op.inputs] for op in spec.operators}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    on_cycle: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for parent in inputs.get(node, ()):
            if state.get(parent) == 1:
                on_cycle.update(path[path.index(parent) :])
            elif parent not in state:
                visit(parent, [*path, parent])
        state[node] = 2

    for op in spec.operators:
        if op.id not in state:
            visit(op.id, [op.id])
    for op, item in zip(spec.operators, op_items, strict=False):
        if op.id in on_cycle:
            where = item.get("from") or item.get("union") or item
            cycle = " -> ".join(sorted(on_cycle))
            issues.add(where, f"'{op.id}' is on a cycle ({cycle})", "a pipeline is acyclic")


def _check_connected(issues: Issues, root: Node, op_items: list[Node], spec: PipelineSpec) -> None:
    """Every source and every operator output (each branch port) is read by someone."""
    read = {ref for item in (*spec.operators, *spec.sinks) for ref in item.inputs}
    read_nodes = {ref.node for ref in read}
    nodes = (*spec.sources, *spec.operators)
    places = zip(nodes, [*_items(root, "sources"), *op_items], strict=False)
    for node, item in places:
        if isinstance(node, BranchSpec):
            for port in node.ports:
                if PortRef(node.id, port) not in read:
                    hint = f"read it with from: {node.id}.{port}, or remove the port"
                    issues.add(item, f"branch port '{node.id}.{port}' goes nowhere", hint)
        elif PortRef(node.id) not in read:
            kind = _kind(node)
            hint = f"read it with from: {node.id} in an operator or sink, or remove it"
            if node.id in read_nodes:
                hint = f"only its side ports are read; {hint}"
            issues.add(item, f"{kind} '{node.id}': its output goes nowhere", hint)


def _dead_letter_sinks(issues: Issues, root: Node, spec: PipelineSpec) -> PipelineSpec:
    """Turn each sink on an ``errors`` port into its node's dead-letter topic."""
    replaced: dict[str, GraphNode] = {}
    sinks: list[SinkSpec] = []
    places = [*_items(root, "sources"), *_items(root, "operators")]
    explicit = {
        node.id
        for node, item in zip((*spec.sources, *spec.operators), places, strict=False)
        if item.get("on_error") is not None
    }
    for sink, item in zip(spec.sinks, _items(root, "sinks"), strict=False):
        errors = [ref for ref in sink.inputs if ref.port == "errors"]
        if not errors:
            sinks.append(sink)
            continue
        where = item.get("from") or item
        if len(sink.inputs) > 1:
            hint = "dead letters are raw records with error headers: give each errors port its sink"
            issues.add(where, "a sink on an errors port reads nothing else", hint)
            continue
        node = replaced.get(errors[0].node) or _node(spec, errors[0].node)
        updated = _with_dead_letters(issues, where, node, sink.topic, node.id in explicit)
        if updated is not None:
            replaced[node.id] = updated
    sources = tuple(replaced.get(s.id, s) for s in spec.sources)
    operators = tuple(replaced.get(op.id, op) for op in spec.operators)
    return dataclasses.replace(spec, sources=sources, operators=operators, sinks=tuple(sinks))  # type: ignore[arg-type]


def _with_dead_letters(
    issues: Issues, where: Node, node: GraphNode, topic: str, explicit: bool
) -> GraphNode | None:
    """``node`` writing its dead letters to ``topic``; an ``on_error`` written in the file
    (``explicit``) must agree."""
    if explicit and node.on_error != "dead_letter":
        hint = f"remove its on_error: {node.on_error}, or this sink"
        issues.add(where, f"'{node.id}' has on_error: {node.on_error}, not dead letters", hint)
        return None
    if node.dead_letter_topic not in (None, topic):
        hint = "a node has one dead-letter topic; remove its dead_letter_topic or this sink"
        what = f"'{node.id}' already writes dead letters to {node.dead_letter_topic}"
        issues.add(where, what, hint)
        return None
    return dataclasses.replace(node, on_error="dead_letter", dead_letter_topic=topic)


def _node(spec: PipelineSpec, node_id: str) -> GraphNode:
    for node in (*spec.sources, *spec.operators):
        if node.id == node_id:
            return node
    raise KeyError(node_id)


# -- walks ------------------------------------------------------------------------------------


def producer_chain(spec: PipelineSpec, ref: PortRef) -> list[GraphNode] | None:
    """The nodes whose output reaches ``ref``, from its source on, when the path has one input
    all along and passes only main and branch ports (records unchanged by the port); None
    otherwise (a union, a late or errors port on the way)."""
    chain: list[GraphNode] = []
    current: PortRef | None = ref
    while current is not None:
        node = _node(spec, current.node)
        if current.port in ("late", "errors"):
            return None
        chain.append(node)
        if isinstance(node, SourceSpec):
            return chain[::-1]
        if len(node.inputs) != 1:
            return None
        current = node.inputs[0]
    return None


def result_window(spec: PipelineSpec, sink: SinkSpec) -> WindowSpec | None:
    """The window whose results reach ``sink`` unchanged (only filters, branches and
    ``key_by`` after it, one input), or None."""
    if len(sink.inputs) != 1:
        return None
    chain = producer_chain(spec, sink.inputs[0])
    for node in reversed(chain or []):
        if isinstance(node, WindowSpec):
            return node
        if not isinstance(node, FilterSpec | KeyBySpec | BranchSpec):
            return None
    return None


def unkeyed_sources(refs: Iterable[PortRef], producers: Mapping[str, OperatorSpec]) -> list[str]:
    """The ids of the sources whose records reach ``refs`` without a ``key_by`` on the way, in
    the order a depth-first walk of the inputs (each node's in order) finds them, once each.
    ``producers``: the operators by id (any other id is a source)."""
    found: list[str] = []
    todo, seen = [ref.node for ref in refs], set()
    while todo:
        node_id = todo.pop(0)
        if node_id in seen:
            continue
        seen.add(node_id)
        node = producers.get(node_id)
        if node is None:
            found.append(node_id)
        elif not isinstance(node, KeyBySpec):
            todo[:0] = [ref.node for ref in node.inputs]
    return found


def upstream_source(spec: PipelineSpec, node_id: str) -> SourceSpec:
    """The first source (in declaration order) whose records can reach ``node_id``."""
    producers = {op.id: [ref.node for ref in op.inputs] for op in spec.operators}
    seen: set[str] = set()
    todo = [node_id]
    found: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current not in producers:
            found.add(current)
        todo.extend(producers.get(current, ()))
    for source in spec.sources:
        if source.id in found:
            return source
    return spec.sources[0]
