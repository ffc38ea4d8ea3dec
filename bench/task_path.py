"""CPU time of the task path alone: ``Task.process`` over 300,000 synthetic page views in
batches of 1,000, for bench pipelines, without a broker (no decode of Kafka messages beyond
the value, no produce: outputs go to a list). A quick check of the engine's per-record cost
between two versions of the code; ``make bench`` remains the measure of throughput.

    python -m bench.task_path [PIPELINE ...]     # default: w1-stateless w2-window

Prints records/s per pipeline (best of 3 runs, process CPU time).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.task import Task

PIPELINES = Path(__file__).resolve().parent / "pipelines"
COUNT = 300_000
BATCH = 1_000


class _Message:
    """A consumed record, as confluent-kafka's ``Message`` is read by a task."""

    __slots__ = ("_key", "_offset", "_ts", "_value")

    def __init__(self, key: bytes, value: bytes, ts: int, offset: int) -> None:
        self._key, self._value, self._ts, self._offset = key, value, ts, offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)

    def offset(self) -> int:
        return self._offset

    def headers(self) -> None:
        return None

    def topic(self) -> str:
        return "bench-events"

    def partition(self) -> int:
        return 0


def events(count: int = COUNT, seed: int = 1) -> list[_Message]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ts = 1_700_000_000_000 + i * 3
        user = f"u{rng.randint(0, 999)}"
        value = {"user_id": user, "page": f"/p/{rng.randint(0, 50)}", "ts": ts,
                 "latency_ms": rng.randint(1, 300)}  # fmt: skip
        out.append(_Message(user.encode(), orjson.dumps(value), ts, i))
    return out


def _collector(out: list[Any]) -> Any:
    def emit(*record: Any) -> None:
        out.append(record)

    return emit


def measure(name: str, msgs: list[_Message]) -> tuple[float, int]:
    """``(records/s, outputs)`` of pipeline ``name``, best of 3."""
    plan = build_plan(load_pipeline(PIPELINES / f"{name}.yaml"))
    best = float("inf")
    outputs = 0
    for _ in range(3):
        out: list[Any] = []
        task = Task(plan, plan.stages[0], 0, _collector(out))
        started = time.process_time()
        for i in range(0, len(msgs), BATCH):
            task.process(msgs[i : i + BATCH])
        best = min(best, time.process_time() - started)
        outputs = len(out)
    return len(msgs) / best, outputs


def main(names: list[str]) -> None:
    msgs = events()
    for name in names or ["w1-stateless", "w2-window"]:
        rate, outputs = measure(name, msgs)
        print(f"{name}: {rate / 1000:.1f}k records/s (best of 3), {outputs:,} outputs")


if __name__ == "__main__":
    main(sys.argv[1:])
