"""A plain, JSON-able view of a :class:`~kstream.graph.plan.Plan`'s stages (``kstream plan
--output json|jsonl``; the table shows the same data)."""

from __future__ import annotations

from typing import Any

from kstream.graph.plan import Plan, Stage, task_changelog_topic
from kstream.pipeline.spec import JoinSpec, OperatorSpec
from kstream.pipeline.view import operator_kind

__all__ = ["stage_to_dict"]


def stage_to_dict(plan: Plan, stage: Stage) -> dict[str, Any]:
    """One stage as a dict (lists in graph order).

    Keys: ``id``, ``index`` (topological position), ``inputs`` (``[{"topic", "node", "kind":
    "source"|"repartition"}]``), ``operators`` (``[{"id", "kind"}]``, ``key_by`` excluded; a
    lookup join of a broadcast table also ``"broadcast_table"``: the table's source id),
    ``key_bys`` (``[{"id", "topic"}]``: each writes its repartition topic), ``sinks``
    (``[{"name", "topic"}]``), ``late_topics``, ``writes`` (every topic it writes: repartition,
    sink and late-data topics), ``stores`` (``[{"node", "store", "column_family",
    "changelog"}]``, ``store`` ``""`` for a node's default store) and ``task_changelog`` (its
    tasks' checkpoint metadata topic).
    """
    key_bys = [{"id": k.id, "topic": topic} for topic, k in plan.output_topics(stage)]
    sinks = [{"name": s.name, "topic": s.topic} for s in stage.sinks]
    late = [w.late_topic for w in stage.windows if w.late_topic]
    return {
        "id": stage.id,
        "index": stage.index,
        "inputs": [
            {"topic": i.topic, "node": i.node, "kind": "source" if i.source else "repartition"}
            for i in stage.inputs
        ],
        "operators": [_operator(op) for op in stage.operators],
        "key_bys": key_bys,
        "sinks": sinks,
        "late_topics": late,
        "writes": [k["topic"] for k in key_bys] + [s["topic"] for s in sinks] + late,
        "stores": [
            {
                "node": ref.node,
                "store": ref.store,
                "column_family": ref.column_family,
                "changelog": ref.changelog(plan.prefix),
            }
            for ref in stage.stores
        ],
        "task_changelog": task_changelog_topic(plan.prefix, stage.id),
    }


def _operator(op: OperatorSpec) -> dict[str, Any]:
    """``{"id", "kind"}`` of an operator, and ``broadcast_table`` of a join reading one."""
    row: dict[str, Any] = {"id": op.id, "kind": operator_kind(op)}
    if isinstance(op, JoinSpec) and op.broadcast_table is not None:
        row["broadcast_table"] = op.broadcast_table
    return row
