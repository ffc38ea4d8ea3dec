"""The ``operators:`` section of a pipeline file (see :mod:`kstream.pipeline.load` for the format).

:func:`read_operators` validates the list and builds the operator dataclasses of
:mod:`kstream.pipeline.spec`, recording every problem in an
:class:`~kstream.pipeline.yamlnodes.Issues` collector. Windows are read by
:mod:`kstream.pipeline.windows`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Literal

from kstream.pipeline.formats import read_policy
from kstream.pipeline.join_item import read_join
from kstream.pipeline.model_base import keys_of, required_of
from kstream.pipeline.model_operators import (
    ITEM_KEYS,
    ITEM_MODELS,
    OPERATOR_KINDS,
    FilterBody,
    FlatMapBody,
    KeyByBody,
    MapBody,
)
from kstream.pipeline.ports import RESERVED_PORTS, port_name
from kstream.pipeline.process_item import PROCESS_KEYS, read_dedup, read_process, read_top_n
from kstream.pipeline.spec import (
    BranchSpec,
    FilterSpec,
    FlatMapSpec,
    KeyBySpec,
    MapSpec,
    OperatorSpec,
    UnionSpec,
)
from kstream.pipeline.windows import read_window
from kstream.pipeline.yamlnodes import (
    NAME_HINT,
    NAME_PATTERN,
    Issues,
    Node,
    check_keys,
    describe,
    expect_map,
    expect_seq,
    read_enum,
    read_expression,
    read_positive_int,
    read_python_ref,
    suggest,
)

# OPERATOR_KINDS (the operator keys) and ITEM_KEYS (the keys an operator item may hold besides
# its one operator key; ``from`` is read by :mod:`kstream.pipeline.dataflow`) come from the file
# models, as do the keys of each operator's mapping form:
FILTER_KEYS = keys_of(FilterBody)
KEY_BY_KEYS = keys_of(KeyByBody)
MAP_KEYS = keys_of(MapBody)
FLAT_MAP_KEYS = keys_of(FlatMapBody)
#: Kinds whose item requires an explicit ``id`` (it names their state): ``window``.
STATEFUL_KINDS = tuple(kind for kind, item in ITEM_MODELS.items() if "id" in required_of(item))

__all__ = ["ITEM_KEYS", "OPERATOR_KINDS", "PROCESS_KEYS", "RESERVED_PORTS", "read_operators"]


def read_operators(issues: Issues, node: Node | None) -> tuple[OperatorSpec, ...]:
    """Validate the ``operators`` list and build its specs (absent -> no operators).

    Operator ids default to ``<kind>-<index>``, a ``key_by``'s to :func:`key_by_id` (it names
    a topic); a window needs an explicit id. Ids must be unique and match ``[a-zA-Z0-9._-]+``.
    """
    if node is None or node.value is None:
        return ()
    if not expect_seq(issues, node, "write a list of '- filter: ...' items"):
        return ()
    specs: list[OperatorSpec] = []
    first_line: dict[str, int] = {}
    for index, item in enumerate(node.items()):
        spec = _operator(issues, item, index)
        if spec is None:
            continue
        if spec.id in first_line:
            id_node = item.get("id") or item
            derived = "" if item.get("id") is not None else " (derived from its key)"
            issues.add(
                id_node,
                f"duplicate operator id '{spec.id}'{derived}",
                f"operator ids must be unique; '{spec.id}' is already used at line "
                f"{first_line[spec.id]}" + ("; add an explicit 'id: ...'" if derived else ""),
            )
        else:
            first_line[spec.id] = (item.get("id") or item).line
        specs.append(spec)
    return tuple(specs)


def _operator(issues: Issues, item: Node, index: int) -> OperatorSpec | None:
    """One operator item: exactly one operator key plus optional ``id``, ``on_error`` and
    ``dead_letter_topic`` (the error policy of the operator; default: the source's)."""
    if not item.is_map:
        issues.add(
            item,
            f"an operator must be a mapping, got {describe(item.value)}",
            f"write e.g. '- filter: \"x > 0\"'; expected one of: {', '.join(OPERATOR_KINDS)}",
        )
        return None
    kinds = [(key, child) for key, child in item.entries() if key not in ITEM_KEYS]
    for key, child in kinds:
        if key not in OPERATOR_KINDS:
            hint = suggest(key, OPERATOR_KINDS)
            if not hint.startswith("expected"):
                hint = f"{hint} expected one of: {', '.join(OPERATOR_KINDS)}"
            issues.add(child, f"unknown operator '{key}'", hint)
    known = [(key, child) for key, child in kinds if key in OPERATOR_KINDS]
    if len(known) > 1:
        names = " and ".join(key for key, _ in known)
        issues.add(
            known[1][1], f"one operator item holds {names}", "split them into two '- ' items"
        )
    if len(kinds) == 0:
        issues.add(item, "operator has no kind", f"add one of: {', '.join(OPERATOR_KINDS)}")
    if len(known) != 1:
        return None
    kind, body = known[0]
    op_id = _operator_id(issues, item, kind, index)
    spec = _BUILDERS[kind](issues, body, op_id or "")  # validate the body even without an id
    if isinstance(spec, KeyBySpec) and item.get("id") is None:
        op_id = key_by_id(spec)  # it names a repartition topic: by what it keys, not where
        spec = dataclasses.replace(spec, id=op_id)
    on_error, dead_letter_topic = read_policy(issues, item, None)
    if spec is not None and on_error is not None:
        spec = dataclasses.replace(spec, on_error=on_error, dead_letter_topic=dead_letter_topic)
    return spec if op_id is not None else None


def key_by_id(spec: KeyBySpec) -> str:
    """The id of a ``key_by`` written without one, derived from what it keys by (never from its
    position, since it names the repartition topic ``<group>.<id>.repartition``):
    ``key_by-<expression or function, as a slug>``, e.g. ``key_by: origin`` -> ``key_by-origin``,
    ``key_by: "origin + '-' + dest"`` -> ``key_by-origin-dest``. Two ``key_by`` with the same
    key then need an explicit id (the duplicate id is reported)."""
    text = spec.expr if spec.expr is not None else (spec.python or "").replace(":", ".")
    slug = re.sub(r"[^a-zA-Z0-9._]+", "-", text).strip("-.")[:60].rstrip("-.")
    return f"key_by-{slug or 'key'}"


def _operator_id(issues: Issues, item: Node, kind: str, index: int) -> str | None:
    """The explicit ``id`` or ``<kind>-<index>``; stateful operators require an explicit id."""
    id_node = item.get("id")
    if id_node is None:
        if kind in STATEFUL_KINDS:
            issues.add(
                item,
                f"a {kind} operator needs an 'id'",
                "add e.g. 'id: hourly': stateful operators need a stable id that names their "
                "state across restarts",
            )
            return None
        return f"{kind}-{index}"
    value = id_node.value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        issues.add(id_node, f"invalid operator id {describe(value)}", NAME_HINT)
        return None
    return value


def _code_or_python(issues: Issues, node: Node) -> tuple[Node, str]:
    """For ``{expr: ...}`` / ``{python: ...}`` forms: the single chosen child and its key."""
    present = [(key, child) for key, child in node.entries() if key in ("expr", "python")]
    if len(present) != 1:
        hint = "write {expr: <expression>} or {python: module:function}"
        issues.add(node, "expected exactly one of 'expr' and 'python'", hint)
        return node, ""
    return present[0][1], present[0][0]


def _filter(issues: Issues, node: Node, op_id: str) -> FilterSpec:
    if not node.is_map:
        return FilterSpec(id=op_id, expr=read_expression(issues, node))
    check_keys(issues, node, FILTER_KEYS)
    chosen = read_enum(issues, node.get("otherwise"), ("drop", "delete"), "drop")
    otherwise: Literal["drop", "delete"] = "delete" if chosen == "delete" else "drop"
    child, key = _code_or_python(issues, node)
    if key == "python":
        return FilterSpec(id=op_id, python=read_python_ref(issues, child), otherwise=otherwise)
    if key == "expr":
        return FilterSpec(id=op_id, expr=read_expression(issues, child), otherwise=otherwise)
    return FilterSpec(id=op_id)


def _key_by(issues: Issues, node: Node, op_id: str) -> KeyBySpec:
    if not node.is_map:
        return KeyBySpec(id=op_id, expr=read_expression(issues, node))
    check_keys(issues, node, KEY_BY_KEYS)
    partitions = read_positive_int(issues, node.get("partitions"), None)
    child, key = _code_or_python(issues, node)
    if key == "python":
        return KeyBySpec(id=op_id, python=read_python_ref(issues, child), partitions=partitions)
    expr = read_expression(issues, child) if key == "expr" else None
    return KeyBySpec(id=op_id, expr=expr, partitions=partitions)


def _map(issues: Issues, node: Node, op_id: str) -> MapSpec:
    hint = "write map: {select: [a, b], fields: {c: 'a + b'}} or map: {python: module:function}"
    if not check_keys(issues, node, MAP_KEYS):
        return MapSpec(id=op_id)
    python_node = node.get("python")
    if python_node is not None:
        if node.get("select") is not None or node.get("fields") is not None:
            issues.add(python_node, "'python' cannot be combined with 'select' or 'fields'", hint)
        return MapSpec(id=op_id, python=read_python_ref(issues, python_node))
    if node.get("select") is None and node.get("fields") is None:
        issues.add(node, "map needs 'select', 'fields' or 'python'", hint)
    select = _select(issues, node.get("select"))
    return MapSpec(id=op_id, select=select, fields=_fields(issues, node.get("fields")))


def _select(issues: Issues, node: Node | None) -> tuple[str, ...] | None:
    if node is None or not expect_seq(issues, node, "write select: [field_a, field_b]"):
        return None
    names: list[str] = []
    for item in node.items():
        if not isinstance(item.value, str) or not item.value:
            issues.add(item, f"expected a field name, got {describe(item.value)}", "write a name")
        elif item.value in names:
            issues.add(item, f"field '{item.value}' is selected twice", "remove the duplicate")
        else:
            names.append(str(item.value))
    return tuple(names)


def _fields(issues: Issues, node: Node | None) -> tuple[tuple[str, str], ...]:
    if node is None or not node.is_map:
        if node is not None:
            issues.add(
                node,
                f"expected a mapping, got {describe(node.value)}",
                "write fields: {new_field: 'expression'}",
            )
        return ()
    pairs: list[tuple[str, str]] = []
    for name, child in node.entries():
        expr = read_expression(issues, child)
        if expr is not None:
            pairs.append((name, expr))
    return tuple(pairs)


FLAT_MAP_HINT = (
    "write flat_map: {python: module:function} or flat_map: {explode: <expression>, as: <field>}"
)


def _flat_map(issues: Issues, node: Node, op_id: str) -> FlatMapSpec:
    """``{python: module:function}`` or ``{explode: EXPR, as: NAME, keep_empty: false}``."""
    if not expect_map(issues, node, FLAT_MAP_HINT):
        return FlatMapSpec(id=op_id)
    check_keys(issues, node, FLAT_MAP_KEYS)
    python_node, explode_node = node.get("python"), node.get("explode")
    if python_node is not None and explode_node is not None:
        issues.add(explode_node, "'python' and 'explode' cannot be combined", FLAT_MAP_HINT)
        return FlatMapSpec(id=op_id)
    if python_node is not None:
        for key in ("as", "keep_empty"):
            extra = node.get(key)
            if extra is not None:
                hint = "remove it: a python flat_map returns whole records"
                issues.add(extra, f"'{key}' goes only with 'explode'", hint)
        return FlatMapSpec(id=op_id, python=read_python_ref(issues, python_node))
    if explode_node is None:
        issues.add(node, "flat_map needs 'python' or 'explode'", FLAT_MAP_HINT)
        return FlatMapSpec(id=op_id)
    as_node = node.get("as")
    if as_node is None:
        hint = "add e.g. 'as: reason': each output record gets one element in that field"
        issues.add(node, "'explode' needs 'as', the field that receives each element", hint)
    return FlatMapSpec(
        id=op_id,
        explode=read_expression(issues, explode_node),
        as_field=_field_name(issues, as_node),
        keep_empty=_flag(issues, node.get("keep_empty")),
    )


def _field_name(issues: Issues, node: Node | None) -> str | None:
    """A top-level field name (no ``.``: nested fields are not set); None when absent/invalid."""
    if node is None:
        return None
    value = node.value
    hint = "write one top-level field name, e.g. 'as: reason'"
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        issues.add(node, f"expected a field name, got {describe(value)}", hint)
        return None
    if "." in value:
        issues.add(node, f"'{value}' is a nested path; 'as' names a top-level field", hint)
        return None
    return str(value)


def _flag(issues: Issues, node: Node | None) -> bool:
    """A boolean (absent -> False)."""
    if node is None:
        return False
    if not isinstance(node.value, bool):
        issues.add(node, f"expected true or false, got {describe(node.value)}", "write true")
        return False
    return node.value


UNION_HINT = "write union: [node_a, node_b.port], two or more inputs"
BRANCH_HINT = "write branch: {delayed: 'dep_delay > 60', default: on-time}"


def _union(issues: Issues, node: Node, op_id: str) -> UnionSpec:
    """``union: [ref, ref, ...]``: checked for shape here; the refs are resolved with the rest
    of the graph (:mod:`kstream.pipeline.dataflow`)."""
    if expect_seq(issues, node, UNION_HINT):
        if len(node.items()) < 2:
            issues.add(node, "a union needs at least two inputs", UNION_HINT)
        for item in node.items():
            if not isinstance(item.value, str) or not item.value:
                issues.add(item, f"expected a node id, got {describe(item.value)}", UNION_HINT)
    return UnionSpec(id=op_id)


def _branch(issues: Issues, node: Node, op_id: str) -> BranchSpec:
    """``branch: {port: condition, ..., default: port}``: named ports in declaration order,
    the first whose condition is true takes the record."""
    if not expect_map(issues, node, BRANCH_HINT):
        return BranchSpec(id=op_id)
    branches: list[tuple[str, str]] = []
    default: str | None = None
    for name, child in node.entries():
        if name == "default":
            default = port_name(issues, child, child.value)
            continue
        if port_name(issues, child, name) is None:
            continue
        expr = read_expression(issues, child)
        if expr is not None:
            branches.append((name, expr))
    if not branches:
        issues.add(node, "a branch needs at least one 'port: condition'", BRANCH_HINT)
    if default is not None and any(name == default for name, _ in branches):
        hint = "the default port takes the records no condition matched; give it its own name"
        issues.add(node.get("default") or node, f"default port '{default}' is also a branch", hint)
    return BranchSpec(id=op_id, branches=tuple(branches), default=default)


_BUILDERS: dict[str, Callable[[Issues, Node, str], OperatorSpec | None]] = {
    "filter": _filter,
    "map": _map,
    "flat_map": _flat_map,
    "key_by": _key_by,
    "window": read_window,
    "union": _union,
    "branch": _branch,
    "process": read_process,
    "dedup": read_dedup,
    "top_n": read_top_n,
    "join": read_join,
}
