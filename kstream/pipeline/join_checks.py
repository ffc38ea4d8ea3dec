"""Checks of joins and tables on the wired graph (docs/joins.md): what a table may feed and what
a join's inputs must be. Run by the loader after :func:`~kstream.pipeline.dataflow.wire` and
before the planner's co-partitioning (:mod:`kstream.pipeline.copartition`), so the inputs are
still the nodes the file names.
"""

from __future__ import annotations

from kstream.pipeline.spec import JoinSpec, PipelineSpec, SourceSpec
from kstream.pipeline.yamlnodes import Issues, Node

#: The join types whose right input is a table.
TABLE_JOINS = ("temporal", "lookup")


def check_joins(issues: Issues, root: Node, spec: PipelineSpec) -> None:
    """Record an issue for each join whose inputs do not fit its type and for each table read
    by anything but the right input of a temporal or lookup join."""
    sources = {s.id: s for s in spec.sources}
    ops = root.get("operators")
    items = dict(zip((op.id for op in spec.operators), ops.items() if ops else [], strict=False))
    allowed: set[str] = set()
    for op in spec.operators:
        if isinstance(op, JoinSpec) and len(op.inputs) == 2:
            item = items.get(op.id, root)
            body = item.get("join") or item
            right = sources.get(op.inputs[1].node)
            if op.type in TABLE_JOINS and _table_input(issues, body, op, right):
                allowed.add(f"{op.id}:1")
    _check_table_readers(issues, root, spec, allowed)
    _check_broadcast(issues, root, spec)


def _table_input(issues: Issues, body: Node, op: JoinSpec, right: SourceSpec | None) -> bool:
    """A temporal or lookup join's right input: a table, joined on its key (versioned for a
    temporal join). Returns whether it is a table."""
    where = body.get("right") or body
    if right is None or right.table is None:
        issues.add(
            where,
            f"a {op.type} join's right input must be a table, '{op.inputs[1]}' is not",
            "read a source as a table: add table: {key: EXPR} to it (docs/joins.md)",
        )
        return False
    table = right.table
    if op.on_right.strip() != table.key.strip():
        issues.add(
            body.get("on") or body,
            f"a table is joined on its key: the right key is '{op.on_right}', table "
            f"'{right.id}' is keyed by '{table.key}'",
            f"write on: {{left: {op.on_left}, right: {table.key}}}",
        )
    if op.type == "temporal" and table.versioned_ms is None:
        issues.add(
            where,
            f"a temporal join needs a versioned table: '{right.id}' keeps no versions",
            f"add versioned: 2d to the table: of source '{right.id}' (how far back AS OF looks)",
        )
    return True


def _check_broadcast(issues: Issues, root: Node, spec: PipelineSpec) -> None:
    """A broadcast table serves lookup joins only (Kafka Streams' ``GlobalKTable``): it has
    no versions and no watermark of its own, and is read outside the job's transactions."""
    places = root.get("sources")
    items = dict(zip((s.id for s in spec.sources), places.items() if places else [], strict=False))
    for source in spec.sources:
        if source.table is None or not source.table.broadcast:
            continue
        table = (items.get(source.id) or root).get("table") or root
        where = table.get("broadcast") or table
        if source.table.versioned_ms is not None:
            issues.add(
                table.get("versioned") or table,
                f"broadcast table '{source.id}' cannot keep versions: temporal joins wait for "
                "a table's watermark per partition, which a broadcast table does not have",
                "remove versioned:, or remove broadcast: true (the planner then repartitions "
                "the table by its key)",
            )
        if source.on_error == "dead_letter":
            issues.add(
                (items.get(source.id) or root).get("on_error") or where,
                f"broadcast table '{source.id}' is read outside the job's transactions, so its "
                "bad records cannot go to a dead-letter topic exactly once",
                "use on_error: skip (counted and logged) or fail",
            )
        for op in spec.operators:
            if isinstance(op, JoinSpec) and op.type != "lookup" and op.right_name == source.id:
                issues.add(
                    where,
                    f"broadcast table '{source.id}' is read by {op.type} join '{op.id}'",
                    "a broadcast table serves lookup joins only; remove broadcast: true",
                )


def _check_table_readers(issues: Issues, root: Node, spec: PipelineSpec, allowed: set[str]) -> None:
    """A table feeds the right input of temporal and lookup joins only."""
    tables = {s.id for s in spec.sources if s.table is not None}
    places = root.get("sources")
    source_items = dict(
        zip((s.id for s in spec.sources), places.items() if places else [], strict=False)
    )
    readers = [(op.id, i, ref) for op in spec.operators for i, ref in enumerate(op.inputs)]
    readers += [(f"sink {s.name}", 0, ref) for s in spec.sinks for ref in s.inputs]
    for reader, index, ref in readers:
        if ref.node in tables and f"{reader}:{index}" not in allowed:
            issues.add(
                (source_items.get(ref.node) or root).get("table") or root,
                f"table '{ref.node}' is read by {reader}",
                "a table is the right input (right:) of temporal and lookup joins; read the "
                "topic as a stream in another source (without table:) for anything else",
            )
