"""Faults only Apache Kafka can show (issue 17, part 3), each checked exactly against the truth.

(a) The broker SIGKILLed and restarted on its data dir in the middle of a bounded flights-hourly
    run: the job rides through (its transactions fail, it rewinds to its checkpoints), exits 0,
    and the sink holds every window once with the truth's values.
(b) A zombie: one of two workers (each with a state directory of its own, as on two machines)
    SIGSTOPped, while it holds an open transaction, until the other has restored one of its
    tasks from the changelog (past the 6 s session timeout), then SIGCONTed. Whatever it tries
    to commit then must be refused (the new owner's ``init_transactions`` bumped the producer
    epoch; KIP-447 checks the generation of its offset commit): nothing duplicated, nothing
    lost. (Workers sharing a state directory hand a task over through RocksDB's lock instead:
    the chaos suite on Tansu runs that way.)
(c) A transaction left open by a SIGKILLed worker that nobody restarts expires after
    ``transaction.timeout.ms``: read_committed readers of its output are held at the last stable
    offset until then, and move on after; a restarted job still produces the exact truth.

In all three the group's committed offsets never go backwards (polled every 0.5 s).
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clikit import LoggedRun, hourly_pipeline_copy
from confluent_kafka import Consumer, TopicPartition
from flights_truth import hourly_truth
from flightskit import mismatch, produce_flights, sink_copies

from kstream.tools import BrokerProcess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))
from checks import OffsetMonitor, assignment_counts, recently_committed_tasks

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only, pytest.mark.timeout(900)]

RESTORED = r"task \S+ restored \("
COMMITTED = r"checkpoint \d+ committed at position"
#: a job's last line ("records in" counts records of committed checkpoints; a commit whose
#: outcome the killed broker never reported may be left out of it, so only its presence is checked)
FINISHED = "finished: "


def job_args(path: Path, state_dir: Path, bootstrap: str) -> list[str]:
    return [str(path), "--bounded", "--state-dir", str(state_dir), "--bootstrap-servers", bootstrap]


def offsets_monitor(bootstrap: str, name: str, source: str) -> OffsetMonitor:
    return OffsetMonitor(bootstrap, [source, f"{name}.by-origin.repartition"], group=name)


def test_bounded_run_survives_broker_restart(
    own_broker_factory: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    broker = own_broker_factory(persistent=True)
    source = produce_flights(broker.bootstrap, 4)
    path, name, sink = hourly_pipeline_copy(
        tmp_path, source, "restart", checkpoint={"interval": "1s"}
    )
    with offsets_monitor(broker.bootstrap, name, source) as monitor:
        job = LoggedRun(tmp_path / "run.log", *job_args(path, tmp_path / "s", broker.bootstrap))
        try:
            assert job.wait_for(COMMITTED, at_least=2), job.text()[-3000:]
            broker.kill()
            time.sleep(1.0)  # the broker stays down a moment: clients see refused connections
            broker.restart()
            code = job.finish()
        finally:
            job.kill()
    text = job.text()
    assert code == 0 and FINISHED in text, text[-3000:]
    problem = mismatch(sink_copies(broker.bootstrap, sink), hourly_truth(), "kafka")
    assert not problem, problem
    assert not monitor.regressions, monitor.described()


def test_zombie_worker_is_fenced(broker: str, tmp_path: Path) -> None:
    source = produce_flights(broker, 4)
    path, name, sink = hourly_pipeline_copy(
        tmp_path, source, "zombie", checkpoint={"interval": "1s"}
    )
    with offsets_monitor(broker, name, source) as monitor:
        zombie = LoggedRun(tmp_path / "zombie.log", *job_args(path, tmp_path / "s1", broker))
        other = LoggedRun(tmp_path / "other.log", *job_args(path, tmp_path / "s2", broker))
        try:
            # both members working in a stable group: each has committed a few checkpoints
            assert zombie.wait_for(COMMITTED, at_least=6), zombie.text()[-3000:]
            assert other.wait_for(COMMITTED, at_least=6), other.text()[-3000:]
            owned = recently_committed_tasks(zombie.text().encode(), lines=6)
            before = assignment_counts([other.text().encode()], owned)
            paused_at = time.strftime("%Y-%m-%d %H:%M:%S")
            zombie.proc.send_signal(signal.SIGSTOP)  # its open transaction stays open
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and other.proc.poll() is None:
                if assignment_counts([other.text().encode()], owned) != before:
                    break
                time.sleep(0.2)
            moved = assignment_counts([other.text().encode()], owned) != before
            paused_log = len(zombie.text())
            zombie.proc.send_signal(signal.SIGCONT)
            assert moved, (owned, other.text()[-3000:])
            codes = (zombie.finish(), other.finish())
        finally:
            zombie.kill()
            other.kill()
    after_resume = zombie.text()[paused_log:]
    assert codes == (0, 0), (zombie.text()[-3000:], other.text()[-3000:])
    assert FINISHED in zombie.text() and FINISHED in other.text()
    # what it had open when it woke up was refused, never committed once the other worker had
    # taken the task over (a commit it finishes before that is its last legitimate one)
    assert REFUSED.search(after_resume), after_resume
    late = zombie_commits_after_takeover(zombie.text(), other.text(), paused_at)
    assert not late, late
    problem = mismatch(sink_copies(broker, sink), hourly_truth(), "kafka")
    assert not problem, problem
    assert not monitor.regressions, monitor.described()


REFUSED = re.compile(r"fenced by a newer owner|checkpoint on release failed")


def _events(log: str, what: str) -> list[tuple[str, str]]:
    """``(timestamp, task)`` of every line of ``log`` where a task was ``restored`` or
    ``committed`` (a checkpoint); timestamps sort as text (same day, same format)."""
    pattern = {
        "restored": r"^(\S+ \S+) INFO \S+ task ([A-Za-z0-9._-]+:\d+) restored \(",
        "committed": r"^(\S+ \S+) INFO \S+ task ([A-Za-z0-9._-]+:\d+) checkpoint \d+ committed",
    }[what]
    return re.findall(pattern, log, re.MULTILINE)


def zombie_commits_after_takeover(zombie_log: str, other_log: str, paused_at: str) -> list[str]:
    """Checkpoints the zombie committed for a task after the other worker had restored it (its
    new producer fenced the zombie's) and before the zombie restored it again: each would be a
    commit by a fenced owner. ``paused_at``: when the zombie was stopped (log time format)."""
    taken: dict[str, str] = {}
    for when, task in _events(other_log, "restored"):
        if when >= paused_at:
            taken.setdefault(task, when)
    regained = [(when, task) for when, task in _events(zombie_log, "restored") if when >= paused_at]
    return [
        f"{when} {task}"
        for when, task in _events(zombie_log, "committed")
        if task in taken
        and when > taken[task]
        and not any(t == task and taken[task] < w <= when for w, t in regained)
    ]


def read_committed_ends(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """Per partition ``(last stable offset, high watermark)``: where a read_committed reader
    stops, and the log's end. The first is below the second while a transaction is open."""
    ends: dict[int, list[int]] = {p: [] for p in range(partitions)}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "lso", "isolation.level": isolation}
        )
        try:
            for p in range(partitions):
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends[p].append(high)
        finally:
            consumer.close()
    return {p: (stable, high) for p, (stable, high) in ends.items()}


def test_open_transaction_expires(broker: str, tmp_path: Path) -> None:
    source = produce_flights(broker, 4)
    timeout_ms = 31_000  # the least kstream accepts with a 1 s checkpoint interval
    path, name, sink = hourly_pipeline_copy(
        tmp_path,
        source,
        "expiry",
        checkpoint={"interval": "1s"},
        kafka={"transaction.timeout.ms": timeout_ms},
    )
    # every transaction writes its task's metadata to the stage's task changelog, some also
    # repartition records (stage 0) or results (stage 1)
    topics = [
        f"{name}.by-origin.repartition",
        sink,
        f"{name}.{source}.task.changelog",
        f"{name}.by-origin.task.changelog",
    ]
    args = job_args(path, tmp_path / "s", broker)
    # the process dies just before its 3rd commit (of any task), that transaction open, after
    # its records were delivered (commit_flushed: the fault point after the producer's flush;
    # at the commit step itself, records could still be in the client's buffer)
    job = LoggedRun(tmp_path / "killed.log", *args, env={"KSTREAM_FAULT": "commit_flushed:3"})
    job.finish()
    killed_at = time.monotonic()

    def ends_now() -> dict[tuple[str, int], tuple[int, int]]:
        return {
            (topic, p): e
            for topic in topics
            for p, e in read_committed_ends(broker, topic, 4).items()
        }

    held = {tp: e for tp, e in ends_now().items() if e[0] < e[1]}
    assert held, "no partition held back by the open transaction"
    while time.monotonic() - killed_at < timeout_ms / 1000 + 30:
        ends = ends_now()
        if all(stable == high for stable, high in ends.values()):
            break
        time.sleep(1.0)
    expired_after = time.monotonic() - killed_at
    assert all(stable == high for stable, high in ends.values()), f"after {expired_after} s: {ends}"
    print(f"open transaction held {held}; readers moved on after {expired_after:.1f} s")
    with offsets_monitor(broker, name, source) as monitor:
        rerun = LoggedRun(tmp_path / "rerun.log", *args)
        code = rerun.finish()
    assert code == 0, rerun.text()[-3000:]
    problem = mismatch(sink_copies(broker, sink), hourly_truth(), "kafka")
    assert not problem, problem
    assert not monitor.regressions, monitor.described()
