"""Whether a savepoint can be restored into a pipeline (docs/savepoints.md, "Restore rules").

Nodes are matched by id, stages by id (then, for savepoints of format version 1, whose stage
ids are derived, by their input topics: :func:`match_stages`), sources by id (version 1: by
topic). A saved node the pipeline no longer has is refused unless
``allow_non_restored_state``; a node whose state layout changed is refused: its window
(``type``, sizes, slide, gap, offset, count size/slide), its aggregations (names, kinds,
expressions, python classes, in order), its stage, or the ``key_by`` nodes keying its stage.
Other changes (emit mode, triggers, allowed lateness, late topic, error policies) are allowed.
A saved source must still be read from the same topic (the saved offsets are its offsets);
sources new in the pipeline start at the beginning. Nodes new in the pipeline start empty.
"""

from __future__ import annotations

from typing import Any

from kstream.errors import SavepointError
from kstream.graph.plan import Plan, Stage, build_plan
from kstream.pipeline.spec import JoinSpec, PipelineSpec, ProcessSpec, WindowSpec
from kstream.pipeline.view import operator_to_dict
from kstream.savepoint.format import Manifest, NodeInfo, StageInfo

#: Window fields that determine the layout and meaning of the saved state.
STATE_FIELDS = (
    "type",
    "size_ms",
    "slide_ms",
    "gap_ms",
    "offset_ms",
    "count_size",
    "count_slide",
    "aggregations",
)
#: Process-function fields that determine the layout and meaning of the saved state.
PROCESS_STATE_FIELDS = ("python", "state")
#: The fields of a join its state depends on: what is buffered, and for how long.
JOIN_STATE_FIELDS = ("type", "lower_ms", "upper_ms", "window")
#: ``key_by`` fields that determine the keys of the next stage's state.
KEY_FIELDS = ("expr", "python")


def definition_changes(
    saved: dict[str, Any], current: WindowSpec | ProcessSpec | JoinSpec
) -> list[str]:
    """The state-relevant fields of a window that differ between its saved definition and
    ``current`` (empty when the state fits). ``accumulation`` counts for count windows only:
    their saved windows hold ``size`` or ``min(size, slide)`` elements depending on it, while a
    time window's saved contents mean the same under both modes. A process function: its class
    and declared state (:data:`PROCESS_STATE_FIELDS`); ports may change. A join: its type and
    bounds (:data:`JOIN_STATE_FIELDS`); ``how`` and ``select`` may change."""
    now = operator_to_dict(current)
    if isinstance(current, JoinSpec):
        if saved.get("kind") != "join":
            return ["kind"]
        return [name for name in JOIN_STATE_FIELDS if saved.get(name) != now.get(name)]
    if isinstance(current, ProcessSpec):
        if saved.get("kind") != "process":
            return ["kind"]
        return [name for name in PROCESS_STATE_FIELDS if saved.get(name) != now.get(name)]
    if saved.get("kind", "window") != "window":
        return ["kind"]
    fields = (*STATE_FIELDS, "accumulation") if current.type == "count" else STATE_FIELDS
    return [name for name in fields if saved.get(name) != now.get(name)]


def match_stages(manifest: Manifest, plan: Plan) -> dict[str, Stage]:
    """Saved stage id -> the pipeline's stage holding its tasks: the stage with the same id,
    else (a version-1 savepoint, whose stage ids are derived) the stage reading the same
    topics. Saved stages without a match are left out."""
    by_id = {s.id: s for s in plan.stages}
    by_inputs = {tuple(s.input_topics): s for s in plan.stages}
    out: dict[str, Stage] = {}
    for saved in manifest.stages:
        stage = by_id.get(saved.id)
        if stage is None and manifest.format_version == 1:
            stage = by_inputs.get(saved.inputs)
        if stage is not None:
            out[saved.id] = stage
    return out


def check_restore(
    manifest: Manifest,
    spec: PipelineSpec,
    *,
    group: str | None = None,
    allow_non_restored_state: bool = False,
) -> list[str]:
    """Check that ``manifest``'s savepoint fits ``spec``; returns notes for the user (saved
    nodes skipped with ``allow_non_restored_state``, nodes and sources that start empty).

    Raises:
        SavepointError: a saved source is gone or reads another topic, a saved node is
            missing (without ``allow_non_restored_state``), or a node's state layout, stage or
            keying changed. The message names every problem found.
    """
    plan = build_plan(spec, group)
    windows = {w.id: w for s in plan.stages for w in s.stateful}
    stages = match_stages(manifest, plan)
    problems = _source_problems(manifest, spec)
    notes: list[str] = []
    for op_id, info in manifest.nodes.items():
        if op_id in windows:
            problems += _node_problems(manifest, plan, stages, info, windows[op_id])
        elif allow_non_restored_state:
            notes.append(f"operator {op_id}: not in the pipeline, its state is skipped")
        else:
            problems.append(
                f"operator {op_id} is in the savepoint but not in the pipeline "
                "(use --allow-non-restored-state to skip its state)"
            )
    notes += [f"operator {i}: new, starts empty" for i in windows if i not in manifest.nodes]
    saved_topics = {s.topic for s in manifest.sources.values()}
    notes += [
        f"source {s.id}: new, starts at the beginning of {s.topic}"
        for s in spec.sources
        if s.topic not in saved_topics
    ]
    if problems:
        raise SavepointError("the savepoint does not fit the pipeline: " + "; ".join(problems))
    return notes


def _source_problems(manifest: Manifest, spec: PipelineSpec) -> list[str]:
    """Saved sources the pipeline no longer reads from the same topic."""
    if manifest.format_version == 1:
        saved = manifest.source
        if any(s.topic == saved.topic for s in spec.sources):
            return []
        now = spec.sources[0].topic
        return [
            f"the source topic changed ({saved.topic} -> {now}); the saved offsets belong "
            "to the old topic"
        ]
    sources = {s.id: s for s in spec.sources}
    problems = []
    for saved in manifest.sources.values():
        current = sources.get(saved.id)
        if current is None:
            problems.append(
                f"source {saved.id} (topic {saved.topic}) is in the savepoint but not in the "
                f"pipeline (a source's id defaults to its topic: to keep its state and offsets, "
                f"give the source `id: {saved.id}`)"
            )
        elif current.topic != saved.topic:
            problems.append(
                f"the source topic changed ({saved.topic} -> {current.topic}) for source "
                f"{saved.id}; the saved offsets belong to the old topic"
            )
    return problems


def _node_problems(
    manifest: Manifest,
    plan: Plan,
    stages: dict[str, Stage],
    info: NodeInfo,
    window: WindowSpec | ProcessSpec | JoinSpec,
) -> list[str]:
    """Why the saved state of one node does not fit ``window`` (empty when it does)."""
    problems = []
    changed = definition_changes(info.definition, window)
    if changed:
        problems.append(f"operator {info.id}: its definition changed ({', '.join(changed)})")
    current = next(s for s in plan.stages if window in s.stateful)
    saved_stage = manifest.stage(info.stage)
    if stages.get(info.stage) is not current or saved_stage is None:
        problems.append(f"operator {info.id} moved from stage {info.stage} to {current.id}")
    elif _keying(saved_stage) != _current_keying(current):
        problems.append(f"operator {info.id}: the key_by before it changed")
    return problems


def _keying(stage: StageInfo) -> list[dict[str, Any]]:
    return [_key_fields(d) for d in stage.keyed_by]


def _current_keying(stage: Stage) -> list[dict[str, Any]]:
    return [_key_fields(operator_to_dict(k)) for k in stage.keyed_by]


def _key_fields(definition: dict[str, Any]) -> dict[str, Any]:
    return {name: definition.get(name) for name in KEY_FIELDS}
