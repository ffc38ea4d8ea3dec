"""The committed format-v1 savepoint fixture restores into a real job and finishes it correctly.

``tests/fixtures/savepoint-v1/`` holds the state of ``tests/fixtures/savepoint-v1.yaml`` after
the first ``SAVED`` of the ``TOTAL`` events of ``make_savepoint_v1.records()`` (event ``i`` on
partition ``i % 2`` of ``savepoint-v1-events``), taken as with ``--stop``. This test produces
all ``TOTAL`` events to that topic exactly so, runs the committed pipeline with
``kstream run --bounded --from-savepoint`` the fixture in a new group, and compares the sink
topic with an in-memory run (``kstream.testing.PipelineDriver``) over every event minus what
that run had emitted when the savepoint was taken — the same stop the fixture script performs.

The fixture's topic names are fixed (the source topic is part of the savepoint); the test's
broker is fresh per session, so they are free unless ``KSTREAM_TEST_BOOTSTRAP_SERVERS`` points
at a broker where they were used before (then the test skips).
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kstream.pipeline.load import load_pipeline
from kstream.testing import PipelineDriver

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

import make_savepoint_v1 as v1  # noqa: E402

SOURCE = "savepoint-v1-events"
SINK = "savepoint-v1-out"
_FINISHED = re.compile(r"finished: ([\d,]+) records in, ([\d,]+) out")


def kstream_argv() -> list[str]:
    script = Path(sys.executable).with_name("kstream")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from kstream_cli.main import main; main()"]


def kstream(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*kstream_argv(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"kstream {' '.join(args)} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
    return proc


def produce_fixture_input(broker: str) -> None:
    """Every event of ``v1.records()``, in order, to its partition, key = the user."""
    admin = AdminClient({"bootstrap.servers": broker})
    existing = admin.list_topics(timeout=10).topics
    used = [t for t in (SOURCE, SINK) if t in existing]
    if used:
        pytest.skip(f"topic(s) {used} already exist on this broker; the fixture's names are fixed")
    futures = admin.create_topics([NewTopic(SOURCE, num_partitions=v1.PARTITIONS)])
    futures[SOURCE].result(timeout=30)
    producer = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
    failures: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    for key, value, partition in v1.records():
        producer.produce(
            SOURCE,
            key=key.encode(),
            value=orjson.dumps(value),
            partition=partition,
            timestamp=value["ts"],
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0, "not every fixture event was delivered"
    assert not failures, failures


def expected_after_restore() -> Counter[bytes]:
    """Sink records (key, value, timestamp) of a run over every event, minus those a run had
    emitted at the savepoint (after ``SAVED`` events and the stop)."""
    spec = load_pipeline(v1.PIPELINE)
    before = PipelineDriver(spec, partitions=v1.PARTITIONS)
    for key, value, partition in v1.records()[: v1.SAVED]:
        before.send(SOURCE, value, key=key, partition=partition)
    v1.stop_with_savepoint(before)
    full = PipelineDriver(load_pipeline(v1.PIPELINE), partitions=v1.PARTITIONS)
    for key, value, partition in v1.records():
        full.send(SOURCE, value, key=key, partition=partition)
    full.end_of_input()

    def canon(records: list[Any]) -> Counter[bytes]:
        return Counter(
            orjson.dumps([r.key, r.value, r.timestamp_ms], option=orjson.OPT_SORT_KEYS)
            for r in records
        )

    want = canon(full.output(SINK))
    want.subtract(canon(before.output(SINK)))
    assert all(n >= 0 for n in want.values()), "the pre-savepoint output is not a prefix"
    return +want


def test_v1_fixture_restores_and_finishes_the_job(broker: str, tmp_path: Path) -> None:
    produce_fixture_input(broker)
    group = f"sp-v1-restore-{uuid.uuid4().hex[:8]}"
    proc = kstream(
        "run", str(v1.PIPELINE), "--bounded", "--from-savepoint", str(v1.TARGET),
        "--group", group, "--state-dir", str(tmp_path / "state"), "--bootstrap-servers", broker,
    )  # fmt: skip
    match = _FINISHED.search(proc.stderr)
    assert match, proc.stderr[-2000:]
    # The source resumed at the saved offsets {0: SAVED // 2, 1: SAVED // 2}.
    assert int(match.group(1).replace(",", "")) == v1.TOTAL - v1.SAVED, proc.stderr[-2000:]

    out = kstream(
        "tail", SINK, "--from-beginning", "--output", "jsonl", "--timeout", "3",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    got = Counter(
        orjson.dumps([r["key"], r["value"], r["timestamp"]], option=orjson.OPT_SORT_KEYS)
        for r in map(orjson.loads, filter(str.strip, out.splitlines()))
    )
    want = expected_after_restore()
    assert want, "the in-memory run expects no output after the savepoint"
    assert got == want, (
        f"missing: {sorted((want - got).elements())}\nunexpected: {sorted((got - want).elements())}"
    )
    # The totals cover every event, the ones before the savepoint included (restored state).
    amounts = [orjson.loads(line)[1]["amount"] for line in got]
    assert sum(amounts) == sum(value["amount"] for _, value, _ in v1.records())
