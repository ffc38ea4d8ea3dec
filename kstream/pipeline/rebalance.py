"""Unions of inputs that need not be co-partitioned: the planner repartitions them.

A stage's task *p* reads partition *p* of every topic the stage reads, so records of different
topics can meet in one stage only when the topics have the same partition count
(:mod:`kstream.runtime.topology` refuses a stage whose input topics differ). That protects keyed
state: a window or a process function after a union of two sources keeps its state per key,
and sees every record of a key only when both topics are partitioned alike.

A union whose records go on, through stateless operators only, to sinks (no window, process
function, join or ``key_by`` reached from it in its stage) needs no co-partitioning: Flink's
``union`` merges streams of any parallelism. For such a union, :func:`rebalance_unions` inserts
a ``key_by`` ``<union id>.input<n>`` that keeps the record key (``keep_key``) before each input
``n`` that reads a source topic other than the union's first one (the first source topic any
input reaches, in input order). Its repartition topic ``<group>.<union id>.input<n>.repartition``
is created with the partition count of the union's stage input (:func:`kstream.runtime.topology.
wanted_topics` gives a repartition topic read with a source that source's count), so the stage
reads topics of one count whatever the sources' counts. Records keep their key, value and event
time (partition: the murmur2 hash of the key, as any ``key_by``: records without a key all go
to one partition); the union's watermark stays the
min of its inputs' (Flink): the repartition carries its writers' watermarks and the stage's valve
takes the min. ``kstream plan`` shows the inserted nodes like any ``key_by``. A SQL ``UNION ALL``
compiles to such a union.

A union followed in its stage by keyed state or a ``key_by`` is left as written: the stage reads
its inputs co-partitioned, as before (same partition count; a window or process function after
it sees every record of a key only when the topics are keyed alike). A ``key_by`` with
``partitions: N`` before an input gives it that count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from kstream.pipeline.dataflow import unkeyed_sources
from kstream.pipeline.spec import (
    JoinSpec,
    KeyBySpec,
    OperatorSpec,
    PipelineSpec,
    PortRef,
    ProcessSpec,
    UnionSpec,
    WindowSpec,
)

__all__ = ["inserted_rebalance_id", "rebalance_unions"]


def inserted_rebalance_id(union_id: str, index: int) -> str:
    """The id of the ``key_by`` the planner inserts before input ``index`` (0-based) of union
    ``union_id``: ``<union id>.input<index>``."""
    return f"{union_id}.input{index}"


def rebalance_unions(spec: PipelineSpec) -> PipelineSpec:
    """``spec`` (wired) with a key-keeping ``key_by`` inserted before each input of a union
    that reads another source topic than the union's first, when only stateless operators and
    sinks follow the union in its stage (see the module docstring); an inserted node comes
    right before its union in ``operators``."""
    topics = {s.id: s.topic for s in spec.sources}
    producers: dict[str, OperatorSpec] = {op.id: op for op in spec.operators}
    operators: list[OperatorSpec] = []
    for op in spec.operators:
        if isinstance(op, UnionSpec) and not _keyed_after(spec, op.id):
            reached = [_source_topics(ref, producers, topics) for ref in op.inputs]
            first = next((t[0] for t in reached if t), None)
            inputs: list[PortRef] = []
            for index, (ref, found) in enumerate(zip(op.inputs, reached, strict=True)):
                if first is None or set(found) <= {first}:
                    inputs.append(ref)
                    continue
                key_by = KeyBySpec(
                    id=inserted_rebalance_id(op.id, index), keep_key=True, inputs=(ref,)
                )
                operators.append(key_by)
                producers[key_by.id] = key_by
                inputs.append(PortRef(key_by.id))
            op = dataclasses.replace(op, inputs=tuple(inputs))
            producers[op.id] = op
        operators.append(op)
    return dataclasses.replace(spec, operators=tuple(operators))


def _source_topics(
    ref: PortRef, producers: Mapping[str, OperatorSpec], topics: Mapping[str, str]
) -> list[str]:
    """The source topics whose records reach ``ref`` without a ``key_by`` on the way, in the
    order found (depth first, inputs in order)."""
    return list(dict.fromkeys(topics[s] for s in unkeyed_sources([ref], producers) if s in topics))


def _keyed_after(spec: PipelineSpec, node_id: str) -> bool:
    """Whether a ``key_by``, window, process function or join reads ``node_id``'s records,
    directly or through stateless operators (keyed state or a repartition in its stage)."""
    todo, seen = [node_id], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for op in spec.operators:
            if not any(ref.node == current for ref in op.inputs):
                continue
            if isinstance(op, KeyBySpec | WindowSpec | ProcessSpec | JoinSpec):
                return True
            todo.append(op.id)
    return False
