"""Whether a savepoint can be restored into a pipeline (docs/savepoints.md, "Restore rules").

Operators are matched by id. A saved operator the pipeline no longer has is refused unless
``allow_non_restored_state``; an operator whose state layout changed is refused: its window
(``type``, sizes, slide, gap, offset, count size/slide), its aggregations (names, kinds,
expressions, python classes, in order), its stage, or the ``key_by`` keying its stage. Other
changes (emit mode, triggers, allowed lateness, late topic, error policies) are allowed. The
source topic must be the same (the saved offsets are its offsets). Operators new in the
pipeline start empty.
"""

from __future__ import annotations

from typing import Any

from kstream.errors import SavepointError
from kstream.graph.plan import Plan, build_plan
from kstream.pipeline.spec import PipelineSpec, WindowSpec
from kstream.pipeline.view import operator_to_dict
from kstream.savepoint.format import Manifest, OperatorInfo

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
#: ``key_by`` fields that determine the keys of the next stage's state.
KEY_FIELDS = ("expr", "python")


def definition_changes(saved: dict[str, Any], current: WindowSpec) -> list[str]:
    """The state-relevant fields of a window that differ between its saved definition and
    ``current`` (empty when the state fits). ``accumulation`` counts for count windows only:
    their saved windows hold ``size`` or ``min(size, slide)`` elements depending on it, while a
    time window's saved contents mean the same under both modes."""
    now = operator_to_dict(current)
    fields = (*STATE_FIELDS, "accumulation") if current.type == "count" else STATE_FIELDS
    return [name for name in fields if saved.get(name) != now.get(name)]


def check_restore(
    manifest: Manifest,
    spec: PipelineSpec,
    *,
    group: str | None = None,
    allow_non_restored_state: bool = False,
) -> list[str]:
    """Check that ``manifest``'s savepoint fits ``spec``; returns notes for the user (saved
    operators skipped with ``allow_non_restored_state``, operators that start empty).

    Raises:
        SavepointError: the source topic differs, a saved operator is missing (without
            ``allow_non_restored_state``), or an operator's state layout, stage or keying
            changed. The message names every problem found.
    """
    plan = build_plan(spec, group)
    windows = {w.id: w for s in plan.stages for w in s.windows}
    problems: list[str] = []
    notes: list[str] = []
    if manifest.source.topic != plan.source.topic:
        problems.append(
            f"the source topic changed ({manifest.source.topic} -> "
            f"{plan.source.topic}); the saved offsets belong to the old topic"
        )
    for op_id, info in manifest.operators.items():
        if op_id in windows:
            problems += _operator_problems(manifest, plan, info, windows[op_id])
        elif allow_non_restored_state:
            notes.append(f"operator {op_id}: not in the pipeline, its state is skipped")
        else:
            problems.append(
                f"operator {op_id} is in the savepoint but not in the pipeline "
                "(use --allow-non-restored-state to skip its state)"
            )
    notes += [f"operator {i}: new, starts empty" for i in windows if i not in manifest.operators]
    if problems:
        raise SavepointError("the savepoint does not fit the pipeline: " + "; ".join(problems))
    return notes


def _operator_problems(
    manifest: Manifest, plan: Plan, info: OperatorInfo, window: WindowSpec
) -> list[str]:
    """Why the saved state of one operator does not fit ``window`` (empty when it does)."""
    problems = []
    changed = definition_changes(info.definition, window)
    if changed:
        problems.append(f"operator {info.id}: its definition changed ({', '.join(changed)})")
    stage = next(s.index for s in plan.stages if window in s.windows)
    if stage != info.stage:
        problems.append(f"operator {info.id} moved from stage {info.stage} to {stage}")
    elif _keying(manifest, info.stage) != _current_keying(plan, info.stage):
        problems.append(f"operator {info.id}: the key_by before it changed")
    return problems


def _keying(manifest: Manifest, stage: int) -> dict[str, Any] | None:
    for info in manifest.stages:
        if info.index == stage:
            return _key_fields(info.keyed_by)
    return None


def _current_keying(plan: Plan, stage: int) -> dict[str, Any] | None:
    key_by = plan.stages[stage - 1].key_by if stage else None
    return _key_fields(operator_to_dict(key_by) if key_by is not None else None)


def _key_fields(definition: dict[str, Any] | None) -> dict[str, Any] | None:
    if definition is None:
        return None
    return {name: definition.get(name) for name in KEY_FIELDS}
