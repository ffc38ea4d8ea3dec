"""The chaos suite's join workload (``--workload join``): the same deterministic input as
:mod:`workload`, split by parity of ``v`` into two keyed streams joined by an interval join
(each odd record with every even record of its key within one second either way), then the
pairs per key in 10 s tumbling windows: ``{key, window_start, n, total}``, the pairs whose time
(the later of the two records', Flink's interval join) falls in the window and the sum of
their ``odd.v + even.v``.

The join buffers both sides in its state store; a kill at any checkpoint step must neither
lose nor repeat a pair. The truth below restates the rules in plain Python (no kstream import).
The state check reuses the window workload's: the pair windows not yet fired at a task's
checkpointed watermark, over the pairs of the records it applied (none is late: the disorder,
2 s, is under the watermark bound, 3 s, so every pair of applied records has been emitted).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from workload import WINDOW, Event, pipeline_yaml
from workload import entry as entry  # the sink record: the window workload's fields
from workload import truth as window_truth

#: the window node after the join (:data:`workload.WINDOW`: its store ``op.win`` holds the pair
#: windows)
NODE = "win"
#: files the pipeline needs next to it (none)
FILES: list[Path] = []
#: what the sink holds, for the result line
UNIT = "pair windows"
#: the join's interval: ``even.ts - odd.ts`` within [-BETWEEN_MS, BETWEEN_MS], bounds included
BETWEEN_MS = 1_000

_OPERATORS = f"""  - id: odd
    from: by-key
    filter: "v % 2 == 1"
  - id: even
    from: by-key
    filter: "v % 2 == 0"
  - id: pairs
    from: odd
    join:
      type: interval
      right: even
      on: key
      between: [-{BETWEEN_MS}ms, {BETWEEN_MS}ms]
      select:
        key: key
        v: v + even.v
{WINDOW}"""


def pipeline(engine: str) -> str:
    """The pipeline's YAML for a broker ``engine`` (see :func:`workload.pipeline`)."""
    return pipeline_yaml(_OPERATORS, engine)


def pairs(evs: list[Event]) -> list[Event]:
    """Every joined pair of ``evs`` as an event ``(key, pair time, odd.v + even.v)``: an odd
    and an even record of one key (the flush key included) within BETWEEN_MS."""
    by_key: dict[str, tuple[list[Event], list[Event]]] = defaultdict(lambda: ([], []))
    for e in evs:
        by_key[e.key][e.v % 2 == 0].append(e)
    out = []
    for key, (odds, evens) in by_key.items():
        for o in odds:
            for e in evens:
                if abs(e.ts - o.ts) <= BETWEEN_MS:
                    out.append(Event(key, max(o.ts, e.ts), o.v + e.v, 0))
    return out


def truth(evs: list[Event]) -> dict[tuple[str, int], tuple[int, int]]:
    """(key, window_start) -> (pairs, sum of their values) over the real events: the window
    workload's truth over the pairs."""
    return window_truth(pairs(evs))


def state_problems(
    evs: list[Event], entries: list[tuple[bytes, bytes]], watermark: int
) -> list[str]:
    """How the pair windows in ``entries`` (the store ``op.win``) differ from the truth over
    the pairs of ``evs`` at ``watermark`` (the window workload's check)."""
    from checks import window_state_problems

    return window_state_problems(pairs(evs), entries, watermark)
