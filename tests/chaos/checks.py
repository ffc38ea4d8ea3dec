"""The chaos suite's checks, independent of kstream's own bookkeeping: the sink against the
truth, committed offsets never going backwards, each window task's state against the source
records its checkpoint says it applied, and (when windows are missing) why.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType

import orjson
import workload
from confluent_kafka import Consumer, KafkaError, TopicPartition
from result import ChaosResult

PARTITIONS = 4
#: the chaos pipeline's stage ids (``workload._PIPELINE``): the source ``chaos-in``, then the
#: stage reading the repartition topic of ``key_by`` ``by-key``; task ids are ``<stage id>:<p>``
SOURCE_STAGE = "chaos-in"
WINDOW_STAGE = "by-key"


class OffsetMonitor(threading.Thread):
    """Polls the group's committed offsets and records any that go backwards, as
    ``(topic, partition, highest seen, lower value, when the highest was first seen)``."""

    def __init__(
        self, bootstrap: str, topics: list[str], group: str = "chaos", partitions: int = PARTITIONS
    ) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0}
        )
        self.tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self.last: dict[tuple[str, int], tuple[int, float]] = {}
        self.regressions: dict[tuple[str, int, int, int], float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                for tp in self.consumer.committed(self.tps, timeout=5):
                    key = (tp.topic, tp.partition)
                    high, since = self.last.get(key, (-1, 0.0))
                    if 0 <= tp.offset < high:
                        self.regressions.setdefault((*key, high, tp.offset), since)
                    elif tp.offset > high:
                        self.last[key] = (tp.offset, time.time())
            except Exception:  # broker busy: try again
                pass
            self.stopped.wait(0.5)
        self.consumer.close()

    def __enter__(self) -> OffsetMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(10)

    def described(self) -> list[str]:
        """Each regression as ``topic[partition]: high -> low``."""
        return [f"{t}[{p}]: {high} -> {low}" for t, p, high, low in sorted(self.regressions)]


_COMMITTED = re.compile(
    rb"^(\S+ \S+) INFO kstream.checkpoint.steps: task ([A-Za-z0-9._-]+):(\d+) checkpoint \d+ "
    rb"committed at "
    rb"position (\d+)$",
    re.MULTILINE,
)


def classify_regressions(
    monitor: OffsetMonitor, logs: Path, result: ChaosResult, broker_may_reapply: bool
) -> None:
    """A committed offset that went from H back to L is a kstream bug, except on a broker that
    can apply a transaction's offsets late (Tansu, ``broker_may_reapply``): there, a regression
    to an L that a worker committed before H was first seen is the broker re-applying a stale
    commit. On Apache Kafka every regression is a bug."""
    committed: dict[tuple[str, int, int], float] = {}  # (stage id, partition, position) -> first
    for log in logs.glob("*.log"):
        for m in _COMMITTED.finditer(log.read_bytes()):
            when = datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            key = (m.group(2).decode(), int(m.group(3)), int(m.group(4)))
            committed[key] = min(when, committed.get(key, when))
    for (topic, partition, high, low), high_seen in sorted(monitor.regressions.items()):
        stage = SOURCE_STAGE if topic == "chaos-in" else WINDOW_STAGE
        low_committed = committed.get((stage, partition, low))
        line = f"{topic}[{partition}]: {high} -> {low}"
        if broker_may_reapply and low_committed is not None and low_committed < high_seen:
            result.stale_offset_applies.append(line)
        else:
            result.offset_regressions.append(line)


def read_topic(bootstrap: str, topic: str, upto: dict[int, int] | None = None) -> list[tuple]:
    """Every record of ``topic`` (partition, offset, key, value, headers), optionally only below
    ``upto[partition]``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "chaos-reader",
            "enable.partition.eof": True,
            "fetch.queue.backoff.ms": 10,
        }
    )
    parts = range(PARTITIONS)
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out, eof = [], set()
    deadline = time.monotonic() + 60
    quiet_since = time.monotonic()
    # Tansu can signal end-of-partition at a reported high watermark below the last
    # batch: read on until every partition signalled it and nothing came for 2 s
    while time.monotonic() < deadline and (
        len(eof) < PARTITIONS or time.monotonic() - quiet_since < 2.0
    ):
        for m in consumer.consume(10_000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                continue
            quiet_since = time.monotonic()
            if upto is None or m.offset() < upto.get(m.partition(), 0):
                out.append((m.partition(), m.offset(), m.key(), m.value(), m.headers() or []))
    consumer.close()
    return out


def read_until_quiet(
    bootstrap: str, topic: str, partition: int, isolation: str, settle_s: float
) -> dict[int, list]:
    """Every record a reader with ``isolation`` (``read_committed`` or ``read_uncommitted``)
    gets from ``topic[partition]``, as ``{offset: headers}``, reading until nothing new has
    come for ``settle_s`` seconds."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "chaos-diag",
            "isolation.level": isolation,
            "fetch.queue.backoff.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, partition, 0)])
    records: dict[int, list] = {}
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle_s:
        msgs = [m for m in consumer.consume(10_000, 0.3) if m.error() is None]
        if msgs:
            quiet_since = time.monotonic()
        for m in msgs:
            records[m.offset()] = m.headers() or []
    consumer.close()
    return records


def stable_offsets(bootstrap: str, topic: str, settle_s: float = 3.0) -> list[str]:
    """Per partition: how far a read_committed reader gets against the high watermark, and the
    origin (``kstream.seq`` header) of the first record it cannot see. A stall there means an
    open transaction holds the partition's last stable offset."""
    lines = []
    for p in range(PARTITIONS):
        committed = read_until_quiet(bootstrap, topic, p, "read_committed", settle_s)
        records = read_until_quiet(bootstrap, topic, p, "read_uncommitted", settle_s)
        stable, high = max(committed, default=-1) + 1, max(records, default=-1) + 1
        if stable < high:
            lines.append(
                f"{topic}[{p}]: read_committed stops at {stable} of {high}; next record "
                f"headers {records.get(stable)}"
            )
    return lines


def verify_sink(
    bootstrap: str, expected: dict, result: ChaosResult, load: ModuleType = workload
) -> int:
    """Compare every sink record with the truth; returns how many truth windows are present.
    ``load`` is the workload module (:mod:`workload` or :mod:`process_workload`): its ``entry``
    turns a sink record into ``(key, value)``, a value's first two fields being a count and a
    sum.

    A second copy of a window counts as duplicated (a different copy also as wrong): under
    exactly-once a read_committed reader sees each window once. Tansu shows the records of
    aborted transactions too, so its identical copies are counted but tolerated
    (:attr:`ChaosResult.ok`)."""
    seen: dict[tuple[str, int], tuple[int, int]] = {}
    result.inflated = result.wrong = result.duplicated = 0
    for _p, _o, _k, value, _h in read_topic(bootstrap, "chaos-out"):
        row = orjson.loads(value)
        if row["key"] == workload.FLUSH_KEY:
            continue
        key, got = load.entry(row)
        if key in seen:
            result.duplicated += 1
            if seen[key] != got:
                result.wrong += 1
            continue
        want = expected.get(key)
        if want is None or got != want:
            if want is not None and (got[0] > want[0] or got[1] > want[1]):
                result.inflated += 1
            else:
                result.wrong += 1
        seen[key] = got
    result.windows = len(expected)
    result.lost = sum(1 for k in expected if k not in seen)
    return len(expected) - result.lost


def verify_state(
    feed: list[workload.Event],
    state_dirs: list[Path],
    result: ChaosResult,
    load: ModuleType = workload,
) -> None:
    """Each task of the keyed stage must hold exactly the state of the truth over the input
    records its checkpoint says it applied: its deduplication table holds, per upstream task,
    the sequence ``input offset << 24 | n`` of the last record applied, and key_by writes one
    record per input offset, so the truth is over the source events up to those offsets that
    key_by routes to the task, at the checkpoint's watermark (the window workload: the windows
    not yet fired; the process workload, ``load`` = :mod:`process_workload`: its
    ``state_problems``). Independent of the repartition log as the broker returns it
    afterwards (on Tansu that need not be the log the task read: clean-clone CI, 2026-11-21).
    Every copy of a task's state is checked: with a state directory per worker, a worker that
    lost a task keeps its last checkpoint of it, which must be exact too."""
    from kstream.io.partitioner import partition_for
    from kstream.state.store import read_task_state, task_dir

    offsets = dict.fromkeys(range(PARTITIONS), 0)
    sourced = []  # (event, its offset in its source partition), in produce order
    for e in feed:
        sourced.append((e, offsets[e.partition]))
        offsets[e.partition] += 1
    checked = 0
    for state_dir, p in ((d, p) for d in state_dirs for p in range(PARTITIONS)):
        meta, stores = read_task_state(task_dir(state_dir, "chaos", WINDOW_STAGE, p))
        if meta is None:
            continue
        checked += 1
        applied = {origin: seq >> 24 for origin, seq in (meta.get("seen") or {}).items()}
        evs = [
            e
            for e, offset in sourced
            if offset <= applied.get(f"{SOURCE_STAGE}:{e.partition}", -1)
            and partition_for(orjson.dumps(e.key), PARTITIONS) == p
        ]
        if load is workload:
            problems = window_state_problems(evs, stores.get("op.win", []), meta["watermark"])
        else:
            entries = stores.get(f"op.{load.NODE}", [])
            problems = load.state_problems(evs, entries, meta["watermark"])
        result.state_mismatches += [f"task {WINDOW_STAGE}:{p} {x}" for x in problems]
    if not checked:  # a check that found nothing to check must not pass
        result.state_mismatches.append(f"no keyed task state found under {state_dirs}")


def window_state_problems(
    evs: list[workload.Event], entries: list[tuple[bytes, bytes]], watermark: int
) -> list[str]:
    """How the window store's ``entries`` differ from the truth over ``evs``: every window
    held must equal it, every window not fired at ``watermark`` must be held."""
    from kstream.operators.window.operator import decode_window_key

    truth: dict[tuple[str, int], list[int]] = {}
    for e in evs:
        acc = truth.setdefault((e.key, e.ts - e.ts % workload.WINDOW_MS), [0, 0])
        acc[0] += 1
        acc[1] += e.v
    held = {}
    for raw_key, raw_value in entries:
        key, start, _end = decode_window_key(raw_key)
        held[(key, start)] = orjson.loads(raw_value)[0]
    problems = [
        f"{window}: {acc} != {truth.get(window)}"
        for window, acc in held.items()
        if truth.get(window) != acc
    ]
    for window in truth:
        end = window[1] + workload.WINDOW_MS
        if end - 1 + workload.LATENESS_MS > watermark and window not in held:
            problems.append(f"{window}: missing from state")
    return problems


_COMMITTED_TASK = re.compile(rb"task ([A-Za-z0-9._-]+:\d+) checkpoint \d+ committed at position")
#: a worker took a task: restored it, or waits for its state lock (a zombie on this machine)
_ASSIGNED_TASK = re.compile(
    rb"task ([A-Za-z0-9._-]+:\d+) (?:restored \(|waits for its local state)"
)


def recently_committed_tasks(log: bytes, lines: int = 20) -> set[str]:
    """The tasks (``<stage id>:<partition>``) of the last ``lines`` checkpoint commits a worker
    logged: the tasks it owns now (with 1 s checkpoints, the last ~2 s)."""
    return {t.decode() for t in _COMMITTED_TASK.findall(log)[-lines:]}


def assignment_counts(logs: list[bytes], tasks: set[str]) -> dict[str, int]:
    """How many times each of ``tasks`` was assigned to the workers of ``logs`` (restored, or
    waiting for the state lock another local process holds)."""
    counts = dict.fromkeys(tasks, 0)
    for log in logs:
        for task in _ASSIGNED_TASK.findall(log):
            if task.decode() in counts:
                counts[task.decode()] += 1
    return counts


def restore_times(logs: Path) -> list[float]:
    pattern = re.compile(rb"restored \(([\w-]+)\) at position \S+ in ([0-9.]+) s")
    times = []
    for log in logs.glob("*.log"):
        for match in pattern.finditer(log.read_bytes()):
            times.append(float(match.group(2)))
    return times
