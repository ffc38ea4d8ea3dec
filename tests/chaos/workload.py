"""The chaos workload: deterministic input, its pipeline, and the independent truth.

Plain Python (no kstream imports) so the truth cannot share a bug with the engine.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WINDOW_MS = 10_000
LATENESS_MS = 2_000
BOUND_MS = 3_000
BASE_TS = 1_700_000_000_000
FLUSH_KEY = "__flush__"
#: files the pipeline needs next to it (none: no ``python:`` reference)
FILES: list[Path] = []
#: what the sink holds, for the result line
UNIT = "windows"

#: every workload's pipeline up to its ``key_by`` (``@KAFKA@``: see :func:`pipeline_yaml`)
HEAD = f"""
pipeline: chaos
checkpoint: {{interval: 1s, guarantee: exactly_once}}
@KAFKA@sources:
  - topic: chaos-in
    event_time: ts
    watermark: {{max_out_of_orderness: {BOUND_MS}ms}}
operators:
  - id: by-key
    key_by: key
"""
#: 10 s tumbling windows counting and summing ``v`` (an item of ``operators``)
WINDOW = f"""  - id: win
    window:
      type: tumbling
      size: {WINDOW_MS}ms
      allowed_lateness: {LATENESS_MS}ms
      emit: final
      aggregate:
        n: count
        total: {{sum: v}}
"""
SINK = "sinks:\n  - topic: chaos-out\n"

#: Tansu can leave a partition's last stable offset stuck for good after a SIGKILL
#: (docs/fault-tolerance.md); there, the sequence dedupe keeps the stages exact without
#: read_committed. Apache Kafka runs the pipeline as a user would: read_committed.
_TANSU_KAFKA = "kafka: {isolation.level: read_uncommitted}\n"


def pipeline_yaml(operators: str, engine: str) -> str:
    """A workload's YAML: :data:`HEAD`, its ``operators`` items after the ``key_by``, the sink,
    for a broker ``engine`` (``kafka`` or ``tansu``)."""
    text = HEAD + operators + SINK
    return text.replace("@KAFKA@", _TANSU_KAFKA if engine == "tansu" else "")


def pipeline(engine: str) -> str:
    """The chaos pipeline's YAML for a broker ``engine`` (``kafka`` or ``tansu``)."""
    return pipeline_yaml(WINDOW, engine)


@dataclass(frozen=True)
class Event:
    """One input record: ``partition`` is the source partition it is produced to."""

    key: str
    ts: int
    v: int
    partition: int


def events(keys: int = 200, per_key: int = 500, partitions: int = 4, seed: int = 7) -> list[Event]:
    """``keys * per_key`` events, 5 ms apart, with up to 2 s of event-time disorder (less than
    the 3 s watermark bound, so no event is late and the truth does not depend on timing)."""
    rng = random.Random(seed)
    names = [f"k{n}" for n in range(keys) for _ in range(per_key)]
    rng.shuffle(names)
    return [
        Event(name, BASE_TS + i * 5 + rng.randint(0, 2_000), i % 97, i % partitions)
        for i, name in enumerate(names)
    ]


def flush_events(evs: list[Event], partitions: int) -> list[Event]:
    """One far-future event per partition so every real window fires in a streaming run."""
    top = max(e.ts for e in evs) + 10 * WINDOW_MS
    return [Event(FLUSH_KEY, top, 0, p) for p in range(partitions)]


def truth(evs: list[Event]) -> dict[tuple[str, int], tuple[int, int]]:
    """(key, window_start) -> (count, sum of v) over the real events."""
    out: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for e in evs:
        if e.key == FLUSH_KEY:
            continue
        acc = out[(e.key, e.ts - e.ts % WINDOW_MS)]
        acc[0] += 1
        acc[1] += e.v
    return {k: (a[0], a[1]) for k, a in out.items()}


def entry(row: dict[str, Any]) -> tuple[tuple[str, int], tuple[int, int]]:
    """A sink record as ``((key, window_start), (count, sum of v))``."""
    return (row["key"], row["window_start"]), (row["n"], row["total"])
