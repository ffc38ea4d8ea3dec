"""Window state survives a checkpoint: a pipeline stopped at any point and restored from its
tasks' state (``Task.state_changes`` + ``Task.meta``) produces exactly the output an
uninterrupted run produces from that point on, for every window type, emit mode, trigger and
accumulation."""

from __future__ import annotations

import random
from typing import Any

import pytest
from windowkit import pipeline_yaml

from kstream.testing import OutputRecord, PipelineDriver

AGG = "aggregate: {n: count, s: {sum: v}, f: {first: v}, d: {count_distinct: v}}"
WINDOWS = [
    f"{{type: tumbling, size: 10, offset: 3, allowed_lateness: 15, emit: changelog, {AGG}}}",
    f"{{type: tumbling, size: 10, trigger: {{count: 3}}, emit: update, {AGG}}}",
    f"{{type: sliding, size: 20, slide: 5, allowed_lateness: 5, {AGG}}}",
    f"{{type: session, gap: 4, allowed_lateness: 10, emit: changelog, {AGG}}}",
    f"{{type: session, gap: 4, allowed_lateness: 10, emit: update, trigger: {{every: 1s}}, {AGG}}}",
    f"{{type: count, size: 4, slide: 2, {AGG}}}",
    f"{{type: count, size: 3, slide: 2, {AGG}}}",
    f"{{type: count, size: 5, slide: 2, accumulation: discarding, {AGG}}}",
    f"{{type: tumbling, size: 10, allowed_lateness: 15, trigger: {{count: 3}}, emit: changelog,"
    f" accumulation: discarding, {AGG}}}",
    f"{{type: session, gap: 4, allowed_lateness: 10, emit: update, trigger: {{every: 1s}},"
    f" accumulation: discarding, {AGG}}}",
    f"{{type: global, emit: changelog, trigger: {{every: 1s}}, {AGG}}}",
    f"{{type: global, emit: final, {AGG}}}",
]

Event = tuple[str, Any]


def events(seed: int, n: int = 300) -> list[Event]:
    rng = random.Random(seed)
    out: list[Event] = []
    wm = -50
    for _ in range(n):
        roll = rng.random()
        if roll < 0.75:
            ts = wm + rng.randint(-20, 30)
            out.append(("send", (ts, rng.choice("abc"), rng.randint(0, 5))))
        elif roll < 0.9:
            wm += rng.randint(1, 12)
            out.append(("watermark", wm))
        else:
            out.append(("time", rng.randint(100, 900)))
    return out


def play(driver: PipelineDriver, evs: list[Event]) -> None:
    for kind, arg in evs:
        if kind == "send":
            ts, key, v = arg
            driver.send("in", {"ts": ts, "v": v}, key=key)
        elif kind == "watermark":
            driver.watermark("in", arg)
        else:
            driver.advance_time(arg)


def snapshot(driver: PipelineDriver) -> dict[Any, Any]:
    """Per task: its meta and its stores as RocksDB would hold them (deletions applied, sorted
    by key)."""
    state = {}
    for name, task in driver.tasks.items():
        stores = {
            store: sorted((k, v) for k, v in changes if v is not None)
            for store, changes in task.state_changes().items()
        }
        state[name] = (task.meta(), stores)
    return state


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("timers", ["stored", "derived"])
def test_restored_pipeline_continues_exactly_like_an_uninterrupted_one(
    window: str, seed: int, timers: str
) -> None:
    """``derived``: state written before timers were stored (no ``timers`` store) restores
    with each window's timers registered again."""
    text = pipeline_yaml(window)
    evs = events(seed)
    split = len(evs) // 2
    whole = PipelineDriver.from_yaml(text)
    play(whole, evs[:split])
    before = len(whole.output("out"))
    state = snapshot(whole)
    play(whole, evs[split:])
    whole.end_of_input()

    clock = sum(arg for kind, arg in evs[:split] if kind == "time")
    resumed = PipelineDriver.from_yaml(text, start_time_ms=clock)
    for name, (meta, stores) in state.items():
        timed = "type: count" not in window and "type: global" not in window
        assert ("op.w.timers" in stores) == timed
        if timers == "derived":
            stores = {k: v for k, v in stores.items() if not k.endswith(".timers")}
        resumed.tasks[name].restore(meta, stores)
    play(resumed, evs[split:])
    resumed.end_of_input()

    expected = whole.output("out")[before:]
    assert per_key(resumed.output("out")) == per_key(expected)
    assert len(expected) > 0


def per_key(records: list[OutputRecord]) -> dict[Any, list[OutputRecord]]:
    """Records by key, in order: the order between different keys (windows) firing at the same
    watermark is not part of the semantics."""
    out: dict[Any, list[OutputRecord]] = {}
    for record in records:
        out.setdefault(record.key, []).append(record)
    return out
