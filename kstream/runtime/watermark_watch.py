"""Watching each stage's watermark: which input holds it back, and a warning when one has held it
for too long while the others advanced (docs/time-and-windows.md, "A watermark held back").

A stage's watermark is held back by one of its *channels*, the inputs whose watermarks are
combined:

- a stage reading repartition topics: each upstream task (the origin of the watermark markers;
  one not heard from yet counts at the minimum, as in the valve);
- a source stage: each task's source partition (several per task when it reads several topics).

A channel *holds* while it counts in the minimum (active and aligned; not idle, not ended). When
the lowest holding channel is behind another channel, it holds the stage back. Once the same
channel has held the stage at the same watermark for ``threshold_ms`` of processing time, the
:class:`WatermarkWatch` logs one warning for that episode (a stage and a holder); the episode ends
when the channel's watermark moves or it no longer holds. A source stage whose single-input tasks
feed no repartition topic combines nothing (each task fires its own windows): it is shown, never
warned about.

The watch reads the tasks' inputs and valves; it is pure otherwise (``now`` is passed in, epoch
ms of the tasks' clock) and runs on the runner's tick (at most every ``interval_ms``), never per
record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kstream.graph.plan import Plan, Stage
from kstream.runtime.inputs import RepartitionInput, SourceInput
from kstream.runtime.lifecycle import StageWatermark
from kstream.runtime.task import Task
from kstream.time.timestamps import format_watermark

log = logging.getLogger("kstream.runtime.watermark")

#: default ms a channel may hold a stage's watermark back before the warning
HELD_WARNING_MS = 30_000
#: a source partition without records for this long (ms) is said to get none
NO_RECORDS_MS = 2_000
DOCS = "docs/time-and-windows.md"


@dataclass(frozen=True)
class Channel:
    """One input of a stage's watermark.

    Attributes:
        key: unique within the stage (an upstream task id; a source task id, with ``/<topic>``
            when the task reads several topics).
        task: the task holding it, e.g. ``flights:2``.
        where: what that task reads, e.g. ``topic flights partition 2``.
        watermark: epoch ms.
        holding: counts in the minimum (active and aligned).
        detail: why it may be behind, e.g. ``no records for 60 s`` (empty when unknown).
        needs_idle: its partition gets no records and its source has no ``idle_timeout``.
    """

    key: str
    task: str
    where: str
    watermark: int
    holding: bool
    detail: str = ""
    needs_idle: bool = False


@dataclass(frozen=True)
class Held:
    """A stage held back: ``low`` (epoch ms) by the holding ``channels`` at it, while another
    channel is at ``ahead`` (epoch ms)."""

    low: int
    ahead: int
    channels: tuple[Channel, ...]


def held_back(channels: Iterable[Channel]) -> Held | None:
    """The channels holding the stage at the lowest watermark while another is ahead, or None."""
    channels = list(channels)
    holding = [c for c in channels if c.holding]
    if not holding:
        return None
    low = min(c.watermark for c in holding)
    ahead = max(c.watermark for c in channels)
    if ahead <= low:
        return None
    return Held(low, ahead, tuple(c for c in holding if c.watermark == low))


def source_channels(task: Task, now: int) -> list[Channel]:
    """A task's source inputs that have not ended, as channels (``now``: epoch ms)."""
    several = len(task.inputs) > 1
    out = []
    for i in task.inputs:
        if not isinstance(i, SourceInput) or i.finished:
            continue
        quiet_ms = now - i.last_record_at
        no_records = quiet_ms >= NO_RECORDS_MS
        if not no_records:
            detail = "its latest records are behind in event time"
        elif i.idle_after is None:
            detail = f"no records for {quiet_ms // 1000} s"
        else:
            detail = f"no records for {quiet_ms // 1000} s, idle after {i.idle_after / 1000:g} s"
        out.append(
            Channel(
                f"{task.id}/{i.topic}" if several else task.id,
                task.id,
                f"topic {i.topic} partition {task.partition}",
                i.watermark,
                not i.idle,
                detail,
                no_records and i.idle_after is None,
            )
        )
    return out


def upstream_channels(task: Task, local: dict[str, Task], now: int) -> dict[str, Channel]:
    """The upstream tasks of a task's repartition inputs, as channels by key; an upstream task
    running here is described by its own lowest source input. One not heard from yet (it never
    sent a marker: it read no record) needs ``idle_timeout`` when its sources have none."""
    out: dict[str, Channel] = {}
    for i in task.inputs:
        if not isinstance(i, RepartitionInput):
            continue
        writer, valve = i.writer, i.upstream.valve
        sources = [si.source for si in writer.inputs if si.source is not None]
        no_idle = bool(sources) and all(s.watermark.idle_timeout_ms is None for s in sources)
        for p in range(i.upstream.upstream_tasks):
            origin = f"{writer.id}:{p}"
            status = valve.channel(origin)
            if status.finished:
                continue
            heard = origin in valve.channels
            topics = writer.input_topics
            where = f"topic{'s' if len(topics) > 1 else ''} {', '.join(topics)} partition {p}"
            channel = Channel(
                origin,
                origin,
                where,
                status.watermark,
                status.active and status.aligned,
                "" if heard else "no watermark from it yet",
                not heard and no_idle,
            )
            upstream = local.get(origin)
            if upstream is not None:
                own = source_channels(upstream, now)
                if own:
                    low = min(own, key=lambda c: (c.watermark, c.key))
                    channel = Channel(
                        origin, origin, low.where, channel.watermark, channel.holding,
                        low.detail, low.needs_idle,
                    )  # fmt: skip
            known = out.get(origin)
            if known is None or channel.watermark > known.watermark:
                out[origin] = channel
    return out


def stage_channels(tasks: list[Task], local: dict[str, Task], now: int) -> list[Channel]:
    """Every channel of a stage seen by its ``tasks`` here (``local``: every task here by id)."""
    out: dict[str, Channel] = {}
    for task in tasks:
        for c in source_channels(task, now):
            out[c.key] = c
        for key, c in upstream_channels(task, local, now).items():
            known = out.get(key)
            if known is None or c.watermark > known.watermark:
                out[key] = c
    return list(out.values())


def combines(stage: Stage) -> bool:
    """Whether the stage's watermark is combined from several inputs somewhere: it reads a
    repartition topic or several topics, or its tasks write markers to a repartition topic."""
    return not stage.is_source or len(stage.inputs) > 1 or bool(stage.key_bys)


def stage_watermark(tasks: list[Task]) -> int:
    """The min (epoch ms) over the tasks, leaving out a task whose every input is an idle source
    partition (left out downstream too); when all are, the max (what downstream valves take:
    Flink StatusWatermarkValve, every channel idle)."""
    counted = [
        t.watermark
        for t in tasks
        if not all(isinstance(i, SourceInput) and (i.idle or i.finished) for i in t.inputs)
        or t.finished
    ]
    return min(counted) if counted else max(t.watermark for t in tasks)


def held_message(stage: str, held: Held, holder: Channel, held_ms: int) -> str:
    """The warning for ``holder`` holding ``stage`` for ``held_ms``."""
    detail = f": {holder.detail}" if holder.detail else ""
    more = len(held.channels) - 1
    others = f" ({more} more input{'s' if more > 1 else ''} at the same watermark)" if more else ""
    hint = (
        "a partition that gets no records needs `idle_timeout` on its source watermark"
        if holder.needs_idle
        else "a partition behind the others holds every window back"
    )
    return (
        f"stage {stage}: watermark held at {format_watermark(held.low)} for {held_ms // 1000} s "
        f"by task {holder.task} ({holder.where}{detail}){others} while others advanced to "
        f"{format_watermark(held.ahead)}; {hint}, see {DOCS}"
    )


class WatermarkWatch:
    """Per stage: its watermark here, the channel holding it back, and the held-back warning
    (logged once per episode).

    Args:
        plan: the job graph.
        threshold_ms: how long (processing-time ms) a channel may hold a stage back.
        interval_ms: least time between two checks of :meth:`tick`.
    """

    def __init__(
        self, plan: Plan, threshold_ms: int = HELD_WARNING_MS, interval_ms: int = 1_000
    ) -> None:
        self.plan, self.threshold_ms, self.interval_ms = plan, threshold_ms, interval_ms
        #: the latest result of :meth:`check`
        self.stages: list[StageWatermark] = []
        #: (stage id, channel key) -> (its watermark, since when it holds there), epoch ms
        self._since: dict[tuple[str, str], tuple[int, int]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._last: int | None = None

    def tick(self, tasks: Iterable[Task], now: int) -> list[StageWatermark]:
        """:meth:`check` unless the last check was less than ``interval_ms`` ago."""
        if self._last is None or now - self._last >= self.interval_ms:
            self._last = now
            self.check(tasks, now)
        return self.stages

    def check(self, tasks: Iterable[Task], now: int) -> list[StageWatermark]:
        """Each stage with tasks here, in plan order (also kept in :attr:`stages`); logs a new
        held-back warning."""
        local = {t.id: t for t in tasks}
        by_stage: dict[str, list[Task]] = {}
        for t in local.values():
            by_stage.setdefault(t.stage.id, []).append(t)
        out: list[StageWatermark] = []
        seen: set[tuple[str, str]] = set()
        for stage in self.plan.stages:
            mine = by_stage.get(stage.id)
            if not mine:
                continue
            channels = stage_channels(mine, local, now)
            out.append(self._judge(stage, stage_watermark(mine), channels, now, seen))
        for key in set(self._since) - seen:  # episodes that ended
            del self._since[key]
            self._warned.discard(key)
        self.stages = out
        return out

    def _judge(
        self,
        stage: Stage,
        watermark: int,
        channels: list[Channel],
        now: int,
        seen: set[tuple[str, str]],
    ) -> StageWatermark:
        held = held_back(channels)
        if held is None:
            return StageWatermark(stage.id, watermark)
        for c in held.channels:
            key = (stage.id, c.key)
            seen.add(key)
            since = self._since.get(key)
            if since is None or since[0] != c.watermark:  # a new episode
                self._since[key] = (c.watermark, now)
                self._warned.discard(key)
        holder = min(held.channels, key=lambda c: (self._since[(stage.id, c.key)][1], c.key))
        key = (stage.id, holder.key)
        held_ms = now - self._since[key][1]
        text = f"task {holder.task} ({holder.where})"
        if held_ms < self.threshold_ms or not combines(stage):
            return StageWatermark(stage.id, watermark, text)
        warning = held_message(stage.id, held, holder, held_ms)
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", warning)
        return StageWatermark(stage.id, watermark, text, warning)
