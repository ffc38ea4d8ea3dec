"""Why a task's watermark is held back: the source partition or upstream task that keeps it at
its minimum while others advanced (``kstream status``'s hints).

A task's watermark is the minimum over its inputs (DESIGN.md section 2): a source partition that
never had a record stays at -infinity, and so does every downstream task reading markers from the
task of that partition, until the partition goes idle (the source's ``idle_timeout``). This
module reads the checkpoint metadata of the tasks (:mod:`kstream.checkpoint.meta`: ``watermark``,
``inputs`` by topic with ``source`` = ``{"max_ts", "watermark"}`` or ``upstream`` =
``{"watermark", "latest": {origin: [watermark, status, aligned]}}``) and names the culprit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kstream.graph.plan import Plan, Stage, task_id
from kstream.runtime.inputs import renamed_origin
from kstream.time.watermarks import END, IDLE, MIN_WATERMARK

#: Where the idle_timeout and the watermark rules are documented.
DOC = "docs/time-and-windows.md"


@dataclass(frozen=True)
class WatermarkHold:
    """Task ``task``'s watermark is at -infinity because of ``by`` (e.g. ``upstream task
    flights:3``, ``flights partition 3``), whose root causes are ``reasons`` (e.g. ``flights
    partition 3 has no records read``); ``sources`` are the sources of those partitions with
    their ``idle_timeout`` in ms (None: not set)."""

    task: str
    by: tuple[str, ...]
    reasons: tuple[str, ...]
    sources: tuple[tuple[str, int | None], ...]

    @property
    def held_back_by(self) -> str:
        """What holds it, as one text (``"upstream task flights:3"``)."""
        return ", ".join(self.by)

    @property
    def hint(self) -> str:
        """One line: what holds the task back, why, and what to do."""
        why = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        unset = [name for name, idle in self.sources if idle is None]
        if not self.sources:
            todo = f"add `idle_timeout` to the source's watermark ({DOC})"
        elif unset:
            todo = f"add `idle_timeout` to the watermark of source {', '.join(unset)} ({DOC})"
        else:
            timeouts = ", ".join(f"{n} {(idle or 0) / 1000:g} s" for n, idle in self.sources)
            todo = (
                f"the partition goes idle once the job has run for the source's idle_timeout "
                f"({timeouts}) without records from it ({DOC})"
            )
        return f"task {self.task}: watermark held at -inf by {self.held_back_by}{why}; {todo}"


#: (what holds, root causes, sources with their idle_timeout ms)
_Stuck = tuple[str, list[str], list[tuple[str, int | None]]]


def watermark_holds(
    plan: Plan, metas: Mapping[str, dict[str, Any] | None], partitions: Mapping[str, int]
) -> dict[str, WatermarkHold]:
    """The tasks whose watermark is held at -infinity by a source partition without records or
    an upstream task stuck there, while other tasks of the stage (or other channels of the task)
    advanced; keyed by task id.

    Args:
        metas: checkpoint metadata per task id (None or missing: no checkpoint here).
        partitions: number of tasks per stage id.
    """
    out: dict[str, WatermarkHold] = {}
    for stage in plan.stages:
        tasks = [task_id(stage, p) for p in range(partitions.get(stage.id, 0))]
        advanced = any(_watermark(metas.get(t)) > MIN_WATERMARK for t in tasks)
        for p, task in enumerate(tasks):
            meta = metas.get(task)
            if meta is None or _watermark(meta) > MIN_WATERMARK:
                continue
            stuck, moving = _stuck_inputs(plan, stage, p, meta, metas, partitions)
            if stuck and (advanced or moving):
                out[task] = WatermarkHold(
                    task,
                    tuple(by for by, _, _ in stuck),
                    tuple(dict.fromkeys(r for _, reasons, _ in stuck for r in reasons)),
                    tuple(dict.fromkeys(s for _, _, sources in stuck for s in sources)),
                )
    return out


def _watermark(meta: dict[str, Any] | None) -> int:
    return MIN_WATERMARK if meta is None else int(meta.get("watermark", MIN_WATERMARK))


def _input_state(meta: dict[str, Any], topic: str, first: bool) -> dict[str, Any]:
    """An input's checkpointed state; the first input's may be in the older top-level shape."""
    state = dict((meta.get("inputs") or {}).get(topic) or {})
    if first:
        for name in ("source", "upstream", "finished"):
            state.setdefault(name, meta.get(name))
    return state


def _stuck_inputs(
    plan: Plan,
    stage: Stage,
    partition: int,
    meta: dict[str, Any],
    metas: Mapping[str, dict[str, Any] | None],
    partitions: Mapping[str, int],
    depth: int = 0,
) -> tuple[list[_Stuck], bool]:
    """The inputs and upstream channels of a task stuck at -infinity, and whether any of its
    inputs or channels advanced."""
    stuck: list[_Stuck] = []
    moving = False
    for index, inp in enumerate(stage.inputs):
        state = _input_state(meta, inp.topic, index == 0)
        if state.get("finished"):
            continue
        if inp.source is not None:
            seen = int((state.get("source") or {}).get("max_ts", MIN_WATERMARK))
            if seen > MIN_WATERMARK:
                moving = True
                continue
            where = f"{inp.topic} partition {partition}"
            source = (inp.source.id, inp.source.watermark.idle_timeout_ms)
            stuck.append((where, [f"{where} has no records read"], [source]))
            continue
        writer = plan.stage_of_key_by(inp.node)
        named = (state.get("upstream") or {}).get("latest") or {}
        latest = {renamed_origin(origin, writer): entry for origin, entry in named.items()}
        for q in range(partitions.get(writer.id, 0)):
            origin = task_id(writer, q)
            entry = latest.get(origin)
            if entry is not None and (
                str(entry[1]) in (IDLE, END) or int(entry[0]) > MIN_WATERMARK
            ):
                moving = moving or int(entry[0]) > MIN_WATERMARK
                continue
            reasons, sources = _causes(plan, writer, q, metas, partitions, depth + 1)
            if not reasons:
                reasons = [
                    f"no watermark from {origin} yet"
                    if entry is None
                    else f"{origin} has not advanced its watermark"
                ]
            stuck.append((f"upstream task {origin}", reasons, sources))
    return stuck, moving


def _causes(
    plan: Plan,
    stage: Stage,
    partition: int,
    metas: Mapping[str, dict[str, Any] | None],
    partitions: Mapping[str, int],
    depth: int,
) -> tuple[list[str], list[tuple[str, int | None]]]:
    """The root causes of an upstream task stuck at -infinity (empty when unknown: no
    checkpoint of it here)."""
    meta = metas.get(task_id(stage, partition))
    if meta is None or depth > len(plan.stages):
        return [], []
    stuck, _ = _stuck_inputs(plan, stage, partition, meta, metas, partitions, depth)
    reasons = [r for _, rs, _ in stuck for r in rs]
    sources = [s for _, _, ss in stuck for s in ss]
    return reasons, sources
