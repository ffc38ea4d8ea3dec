"""examples/flights-delay-streak.yaml (a keyed process function with state and event-time
timers) through the real CLI on the session's broker, against the independent plain-Python
truth of tests/streak_truth.py: exactly the alerts and "streak closed" records, on all 336,776
flights, in a source topic of 1 and of 4 partitions (with 4, ``key_by`` repartitions the flights
by tail number over 4 tasks); also when the run is SIGKILLed and restarted (state, timers and
outputs are checkpointed together, exactly once), and when it is stopped with a savepoint half
way (test hook ``KSTREAM_HOLD_AT``) and the savepoint is restored into a new group: the first
run's records plus the restored run's are exactly the truth.

On Tansu, which does not filter aborted records for ``read_committed`` readers
(docs/fault-tolerance.md), the killed run may leave a record twice: there each copy must be a
truth record and every truth record must be there.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import LoggedRun, kstream, kstream_raw, unique
from streak_truth import streak_truth

from kstream.io.partitioner import partition_for
from kstream.savepoint import open_savepoint

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLIGHTS = 336_776
PARTITIONS = 4
#: the flights are keyed by origin: the source partitions that hold records
ORIGINS = ("EWR", "JFK", "LGA")


@pytest.fixture(scope="module")
def flights_topics(broker: str) -> Callable[[int], str]:
    """The flights in a source topic of ``n`` partitions (each produced once per module)."""
    topics: dict[int, str] = {}

    def topic_of(partitions: int) -> str:
        if partitions not in topics:
            topic = unique(f"streak-flights-{partitions}p")
            out = kstream(
                "produce", topic, "--dataset", "nycflights13", "--partitions", str(partitions),
                "--bootstrap-servers", broker,
            ).stdout  # fmt: skip
            assert f"produced {FLIGHTS} records to {topic}" in out, out
            topics[partitions] = topic
        return topics[partitions]

    return topic_of


@pytest.fixture(scope="module")
def flights(flights_topics: Callable[[int], str]) -> str:
    return flights_topics(PARTITIONS)


@pytest.fixture(scope="module")
def truth() -> tuple[Counter[bytes], Counter[bytes]]:
    alerts, closed = streak_truth()
    return Counter(map(_canon, alerts)), Counter(map(_canon, closed))


def _canon(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def pipeline_copy(tmp_path: Path, topic: str) -> tuple[Path, str]:
    """The example (and its module, next to it) reading ``topic``, with its own name, sinks
    and checkpoints every second."""
    name = unique("streak")
    text = (EXAMPLES / "flights-delay-streak.yaml").read_text()
    text = text.replace("pipeline: flights-delay-streak", f"pipeline: {name}")
    text = text.replace("  - topic: flights\n", f"  - topic: {topic}\n")
    text = text.replace("topic: delay-streak-", f"topic: {name}-")
    text += "checkpoint: {interval: 1s}\n"
    path = tmp_path / "streak.yaml"
    path.write_text(text)
    shutil.copy(EXAMPLES / "flights_delay_streak.py", tmp_path / "flights_delay_streak.py")
    return path, name


def run_args(path: Path, tmp_path: Path, broker: str) -> list[str]:
    return [
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    ]  # fmt: skip


def tail(broker: str, topic: str) -> Counter[bytes]:
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    records = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    for r in records:
        assert r["key"] == r["value"]["tailnum"]
    return Counter(_canon(r["value"]) for r in records)


def check(
    broker: str, name: str, truth: tuple[Counter[bytes], Counter[bytes]], exact: bool
) -> None:
    for sink, expected in zip(("alerts", "closed"), truth, strict=True):
        got = tail(broker, f"{name}-{sink}")
        assert sum(expected.values()) > 300
        if exact:
            assert got == expected, (
                f"{sink}: {len(got - expected)} extra, {len(expected - got)} missing"
            )
        else:
            assert set(got) == set(expected), sink


@pytest.mark.parametrize("partitions", [1, PARTITIONS])
def test_every_alert_and_closed_streak_matches_plain_python(
    broker: str,
    tmp_path: Path,
    flights_topics: Callable[[int], str],
    truth: tuple[Counter[bytes], Counter[bytes]],
    partitions: int,
) -> None:
    path, name = pipeline_copy(tmp_path, flights_topics(partitions))
    stderr = kstream(*run_args(path, tmp_path, broker)).stderr
    match = re.search(r"finished: ([\d,]+) records in", stderr)
    assert match and int(match.group(1).replace(",", "")) == FLIGHTS, stderr[-2000:]
    check(broker, name, truth, exact=True)


def test_a_run_killed_and_restarted_gives_the_same_records(
    broker: str,
    broker_engine: str,
    tmp_path: Path,
    flights: str,
    truth: tuple[Counter[bytes], Counter[bytes]],
) -> None:
    """SIGKILLed when a source batch holds offset 40,000 (of ~84,000 per partition), then run
    again with the same state directory and group: state and timers restore with the offsets."""
    path, name = pipeline_copy(tmp_path, flights)
    killed = kstream_raw(
        *run_args(path, tmp_path, broker),
        env={**os.environ, "KSTREAM_FAULT": "source_offset:40000"},
    )
    assert killed.returncode != 0, killed.stderr[-2000:]
    kstream(*run_args(path, tmp_path, broker))
    check(broker, name, truth, exact=broker_engine == "kafka")


@pytest.mark.parametrize("partitions", [1, PARTITIONS])
def test_stop_with_savepoint_half_way_and_restore_into_a_new_group(
    broker: str,
    tmp_path: Path,
    flights_topics: Callable[[int], str],
    truth: tuple[Counter[bytes], Counter[bytes]],
    partitions: int,
) -> None:
    """Every source partition with flights holds at offset ``at`` (half of them on 1 partition;
    on 4, where the flights are keyed by origin, about half of each origin's ~105,000 to ~121,000
    flights), ``savepoint create --stop`` stops the job there with its state (pending flights,
    streaks) and timers, and ``run --bounded --from-savepoint`` into a new group reads exactly
    the rest; both runs write the same sinks.

    On 4 partitions one source partition is empty (3 origins) and holds the watermark back (no
    ``idle_timeout``): the stopped run fires no timer and the savepoint carries every flight
    read so far in state. On 1 partition the stopped run has emitted part of the alerts."""
    flights = flights_topics(partitions)
    at = FLIGHTS // 2 if partitions == 1 else 55_000
    path, name = pipeline_copy(tmp_path, flights)
    held = {partition_for(origin.encode(), partitions) for origin in ORIGINS}
    state_dir, savepoint = tmp_path / "state", tmp_path / "savepoints" / "half"
    job = LoggedRun(
        tmp_path / "run.log", str(path), "--group", f"{name}-g1", "--state-dir",
        str(state_dir), "--bootstrap-servers", broker, env={"KSTREAM_HOLD_AT": str(at)},
    )  # fmt: skip
    try:
        pattern = rf"task {flights}:\d+ held at offset {at}\b"
        assert job.wait_for(pattern, at_least=len(held), timeout_s=240), job.text()[-3000:]
        create = kstream(
            "savepoint", "create", str(path), "--stop", "--dir", str(savepoint), "--group",
            f"{name}-g1", "--state-dir", str(state_dir), "--bootstrap-servers", broker,
            timeout=180,
        )  # fmt: skip
        assert "acknowledged the stop" in create.stderr, create.stderr
        code = job.finish(120)
        assert code == 0, f"the stopped run exited {code}:\n{job.text()[-3000:]}"
    finally:
        job.kill()  # only when the test failed: never leave a runner behind
    manifest = open_savepoint(savepoint).manifest
    offsets = {p: o for p, o in manifest.source.offsets.items() if o}
    assert offsets == dict.fromkeys(held, at), manifest.source.offsets
    assert manifest.nodes["streak"].stores["timers"].records > 0
    # the stopped run's alerts: all true, not all (the restored run owes the rest)
    first = tail(broker, f"{name}-alerts")
    assert sum(first.values()) < sum(truth[0].values()) and not first - truth[0]
    if partitions == 1:
        assert sum(first.values()) > 100, sum(first.values())
    restored = kstream(
        "run", str(path), "--bounded", "--group", f"{name}-g2", "--from-savepoint",
        str(savepoint), "--state-dir", str(state_dir), "--bootstrap-servers", broker,
    ).stderr  # fmt: skip
    match = re.search(r"finished: ([\d,]+) records in", restored)
    assert match, restored[-2000:]
    assert int(match.group(1).replace(",", "")) == FLIGHTS - at * len(held), restored[-2000:]
    check(broker, name, truth, exact=True)
