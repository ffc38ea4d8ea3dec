"""The chaos suite's process-function workload (``--workload process``): the same deterministic
input as :mod:`workload`, through a keyed process function with value, list and map state and
event-time timers (:mod:`chaos_process`), and its independent truth.

Per key, the function sums each 10 s window in map state and emits, from an event-time timer at
the window's end, ``{key, window_start, n, total, running, last3}``: the window's count and sum
of ``v``, the running sum of ``v`` over the key's windows so far (value state) and the counts
of its last three windows (list state). The truth below restates that in plain Python (no
kstream import, nothing shared with :mod:`chaos_process`), so the two cannot share a bug.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from workload import FLUSH_KEY, WINDOW_MS, Event, pipeline_yaml

#: the pipeline's process node id (its state stores are ``op.sums`` and ``op.sums.timers``)
NODE = "sums"
#: the function's module, copied next to the pipeline file
FILES = [Path(__file__).resolve().with_name("chaos_process.py")]
#: what the sink holds, for the result line
UNIT = "window sums"

_OPERATORS = f"""  - id: {NODE}
    process:
      python: chaos_process:RunningSums
      state: {{windows: map, running: value, recent: list}}
"""


def pipeline(engine: str) -> str:
    """The pipeline's YAML for a broker ``engine`` (see :func:`workload.pipeline`)."""
    return pipeline_yaml(_OPERATORS, engine)


Entry = tuple[tuple[str, int], tuple[int, int, int, tuple[int, ...]]]


def entry(row: dict[str, Any]) -> Entry:
    """A sink record as ``((key, window_start), (n, total, running, last3))``."""
    got = (row["n"], row["total"], row["running"], tuple(row["last3"]))
    return (row["key"], row["window_start"]), got


def truth(evs: list[Event]) -> dict[tuple[str, int], tuple[int, int, int, tuple[int, ...]]]:
    """(key, window_start) -> (count, sum of v, running sum of v over the key's windows up to
    this one, counts of the key's last three windows up to this one), over the real events."""
    windows: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for e in evs:
        if e.key == FLUSH_KEY:
            continue
        acc = windows[e.key].setdefault(e.ts - e.ts % WINDOW_MS, [0, 0])
        acc[0] += 1
        acc[1] += e.v
    out = {}
    for key, by_start in windows.items():
        running, counts = 0, []
        for start in sorted(by_start):
            n, total = by_start[start]
            running += total
            counts.append(n)
            out[(key, start)] = (n, total, running, tuple(counts[-3:]))
    return out


def expected_state(evs: list[Event], watermark: int) -> dict[tuple[str, str], Any]:
    """The function's state after ``evs`` (of one task, the flush events included) at
    ``watermark``, as ``{(key, state name): value}``: ``windows`` {window_start: [count, sum]}
    of the windows whose timer (at their last millisecond) has not fired, ``running`` and
    ``recent`` (last three counts) over those that have; a state never set is absent."""
    windows: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for e in evs:
        acc = windows[e.key].setdefault(e.ts - e.ts % WINDOW_MS, [0, 0])
        acc[0] += 1
        acc[1] += e.v
    out: dict[tuple[str, str], Any] = {}
    for key, by_start in windows.items():
        fired = [s for s in sorted(by_start) if s + WINDOW_MS - 1 <= watermark]
        waiting = {s: acc for s, acc in by_start.items() if s + WINDOW_MS - 1 > watermark}
        if waiting:
            out[(key, "windows")] = waiting
        if fired:
            out[(key, "running")] = sum(by_start[s][1] for s in fired)
            out[(key, "recent")] = [by_start[s][0] for s in fired][-3:]
    return out


def state_problems(
    evs: list[Event], entries: list[tuple[bytes, bytes]], watermark: int
) -> list[str]:
    """How a task's state store ``entries`` differ from :func:`expected_state`. Entries as
    docs/process-functions.md's store layout has them: key ``[record key, state name]`` (JSON),
    value the state's JSON (a map as ``[[key, value], ...]``)."""
    held: dict[tuple[str, str], Any] = {}
    for raw_key, raw_value in entries:
        key, name = json.loads(raw_key)
        value = json.loads(raw_value)
        held[(key, name)] = {k: v for k, v in value} if name == "windows" else value
    expected = expected_state(evs, watermark)
    return [
        f"{k}: {held.get(k)} != {expected.get(k)}"
        for k in sorted(set(held) | set(expected))
        if held.get(k) != expected.get(k)
    ]
