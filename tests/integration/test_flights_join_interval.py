"""examples/flights-weather-interval.yaml (an interval join of the flights with the weather at
their origin, both repartitioned by origin) through the real CLI on the session's broker,
against the independent plain-Python truth of tests/join_truth.py: exactly the 368,881 joined
rows, with source topics of 1 and of 4 partitions, and when the run is SIGKILLed half way and
restarted (join buffers, cleanup timers and outputs are checkpointed together, exactly once).

On Tansu, which does not filter aborted records for ``read_committed`` readers
(docs/fault-tolerance.md), the killed run may leave a record twice: there each copy must be a
truth record and every truth record must be there.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from clikit import kstream, kstream_raw, unique
from join_truth import interval_truth
from joinkit import EXAMPLES, canon, dataset_topics, run_args

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topics(broker: str) -> Callable[[str, int], str]:
    """A data set's topic of ``n`` partitions (each produced once per module)."""
    return dataset_topics(broker, "interval")


@pytest.fixture(scope="module")
def truth() -> Counter[bytes]:
    return Counter(map(canon, interval_truth()))


def pipeline_copy(tmp_path: Path, flights: str, weather: str) -> tuple[Path, str]:
    """The example reading ``flights`` and ``weather``, with its own name and sinks and
    checkpoints every second."""
    name = unique("interval")
    text = (EXAMPLES / "flights-weather-interval.yaml").read_text()
    text = text.replace("pipeline: flights-weather-interval", f"pipeline: {name}")
    text = text.replace("    topic: flights\n", f"    topic: {flights}\n")
    text = text.replace("    topic: weather\n", f"    topic: {weather}\n")
    text = text.replace("topic: flights-near-weather", f"topic: {name}-out")
    text += "checkpoint: {interval: 1s}\n"
    path = tmp_path / "interval.yaml"
    path.write_text(text)
    return path, name


def tail(broker: str, topic: str) -> Counter[bytes]:
    """The sink's records; the read ends after 10 s without one (368,881 rows: a pause of a few
    seconds mid-read must not end it)."""
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "10",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    records = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    for r in records:
        assert r["key"] == r["value"]["origin"]  # the join key
    return Counter(canon(r["value"]) for r in records)


def check(broker: str, name: str, truth: Counter[bytes], exact: bool) -> None:
    got = tail(broker, f"{name}-out")
    assert sum(truth.values()) == 368_881
    if exact:
        assert got == truth, f"{len(got - truth)} extra, {len(truth - got)} missing"
    else:
        assert set(got) == set(truth)
    assert tail(broker, f"{name}-out-late") == Counter()


@pytest.mark.parametrize("partitions", [1, 4])
def test_every_joined_row_matches_plain_python(
    broker: str,
    tmp_path: Path,
    topics: Callable[[str, int], str],
    truth: Counter[bytes],
    partitions: int,
) -> None:
    path, name = pipeline_copy(
        tmp_path, topics("flights", partitions), topics("weather", partitions)
    )
    stderr = kstream(*run_args(path, tmp_path, broker)).stderr
    assert re.search(r"finished: [\d,]+ records in", stderr), stderr[-2000:]
    check(broker, name, truth, exact=True)


def test_a_run_killed_and_restarted_gives_the_same_rows(
    broker: str,
    broker_engine: str,
    tmp_path: Path,
    topics: Callable[[str, int], str],
    truth: Counter[bytes],
) -> None:
    """SIGKILLed when a source batch holds offset 40,000 (a flights partition: ~84,000 each),
    then run again with the same state directory and group."""
    path, name = pipeline_copy(tmp_path, topics("flights", 4), topics("weather", 4))
    killed = kstream_raw(
        *run_args(path, tmp_path, broker),
        env={**os.environ, "KSTREAM_FAULT": "source_offset:40000"},
    )
    assert killed.returncode != 0, killed.stderr[-2000:]
    kstream(*run_args(path, tmp_path, broker))
    check(broker, name, truth, exact=broker_engine == "kafka")
