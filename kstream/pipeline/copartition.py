"""Co-partitioning of joins (DESIGN.md section 3: "the planner inserts the repartition itself").

A join matches the records of its two inputs by key, so the records of one key must reach the
same task from both sides: both inputs must be partitioned by the join key, with the same
partition count. An input is already partitioned by side's key expression when it comes (through
filters only, which keep the records as they are) from a ``key_by`` on the same expression;
otherwise :func:`co_partition` inserts a ``key_by`` node ``<join id>.<side>`` keying by the
side's ``on`` expression, whose repartition topic ``<group>.<join id>.<side>.repartition`` is
created with the partition count of the other inputs of the join's stage
(:func:`kstream.runtime.topology.wanted_topics`). A source is always repartitioned: its Kafka
keys were written by another producer, whose key bytes need not hash as kstream's JSON keys
do. A table (a source with ``table:``, the right input of a temporal or lookup join) is
repartitioned by its own ``key`` (the join's right key, :func:`kstream.pipeline.checks.
check_joins`), its tombstones by their Kafka key. ``kstream plan`` shows the inserted nodes like
any ``key_by``.

A lookup join of a broadcast table (``table: {broadcast: true}``) needs no co-partitioning:
every process holds the whole table, so the join looks up its left key wherever the left record
is. Its right input leaves the graph (``inputs`` is the left input only, ``broadcast_table``
names the table) and the left input stays partitioned as it comes (Kafka Streams' KStream-
GlobalKTable join).
"""

from __future__ import annotations

import dataclasses

from kstream.pipeline.spec import (
    FilterSpec,
    JoinSpec,
    KeyBySpec,
    OperatorSpec,
    PipelineSpec,
    PortRef,
)
from kstream.pipeline.spec_joins import SIDES, TableSpec

__all__ = ["co_partition", "inserted_key_by_id", "keyed_by"]


def inserted_key_by_id(join_id: str, side: str) -> str:
    """The id of the ``key_by`` the planner inserts before ``side`` of join ``join_id``."""
    return f"{join_id}.{side}"


def keyed_by(spec: PipelineSpec, ref: PortRef) -> str | None:
    """The expression the records at ``ref`` are partitioned by: the ``key_by`` reached through
    filters only (its ``expr``; a Python key function: None), else None."""
    ops = {op.id: op for op in spec.operators}
    node: OperatorSpec | None = ops.get(ref.node)
    while isinstance(node, FilterSpec) and len(node.inputs) == 1:
        node = ops.get(node.inputs[0].node)
    if isinstance(node, KeyBySpec) and node.python is None:
        return node.expr
    return None


def co_partition(spec: PipelineSpec) -> PipelineSpec:
    """``spec`` (wired) with a ``key_by`` inserted before each join input that is not
    partitioned by that side's join key (see the module docstring); the inserted node comes
    right before its join in ``operators``."""
    operators: list[OperatorSpec] = []
    for op in spec.operators:
        if isinstance(op, JoinSpec) and _broadcast_table(spec, op):
            op = dataclasses.replace(op, inputs=op.inputs[:1], broadcast_table=op.inputs[1].node)
        elif isinstance(op, JoinSpec) and len(op.inputs) == 2:
            inputs: list[PortRef] = []
            for side, ref in zip(SIDES, op.inputs, strict=True):
                on = op.on(side)
                if _same_expression(keyed_by(spec, ref), on):
                    inputs.append(ref)
                    continue
                table = _table_of(spec, ref)
                key_by = KeyBySpec(
                    id=inserted_key_by_id(op.id, side),
                    expr=table.key if table is not None else on,
                    inputs=(ref,),
                    tombstones=table is not None,
                )
                operators.append(key_by)
                inputs.append(PortRef(key_by.id))
            op = dataclasses.replace(op, inputs=tuple(inputs))
        operators.append(op)
    return dataclasses.replace(spec, operators=tuple(operators))


def _broadcast_table(spec: PipelineSpec, op: JoinSpec) -> bool:
    """Whether ``op`` is a lookup join whose right input is a broadcast table."""
    table = _table_of(spec, op.inputs[1]) if len(op.inputs) == 2 else None
    return op.type == "lookup" and table is not None and table.broadcast


def _table_of(spec: PipelineSpec, ref: PortRef) -> TableSpec | None:
    """The table a join input reads directly (a source with ``table:``), or None."""
    source = next((s for s in spec.sources if s.id == ref.node), None)
    return None if source is None else source.table


def _same_expression(a: str | None, b: str) -> bool:
    """Whether two expression texts are the same, surrounding blanks aside."""
    return a is not None and a.strip() == b.strip()
