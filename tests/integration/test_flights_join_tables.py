"""examples/flights-weather.yaml (a temporal join AS OF the versioned weather table, then daily
windows by visibility), examples/flights-planes.yaml (a lookup join on the planes table, then a
global aggregation per manufacturer and month), examples/flights-window-join.yaml (a window
join of the JFK and LGA flights by carrier, then the pairs per carrier and day) and
examples/flights-session-join.yaml (the same in session windows) through the
real CLI on the session's broker, against the independent plain-Python truth of
tests/join_truth.py: exactly, with source topics of 1 and of 4 partitions, and when the run is
SIGKILLed half way and restarted (the table's versions or rows, the waiting or buffered
flights, timers and outputs are checkpointed together, exactly once).

On Tansu, which does not filter aborted records for ``read_committed`` readers
(docs/fault-tolerance.md), the killed run may leave a record twice: there each copy must be a
truth record and every truth record must be there.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from clikit import LoggedRun, kstream, kstream_raw, unique
from join_truth import lookup_truth, session_truth, temporal_truth, window_truth
from joinkit import EXAMPLES, canon, dataset_topics, run_args

pytestmark = pytest.mark.integration

#: example -> the table it reads besides the flights
EXAMPLE_TABLE = {"flights-weather": "weather", "flights-planes": "planes"}
SINKS = {
    "flights-weather": "flights-weather-daily",
    "flights-planes": "flights-planes-monthly",
    "flights-window-join": "flights-same-hour-daily",
    "flights-session-join": "flights-same-burst-daily",
}
EXAMPLES_RUN = list(SINKS)


@pytest.fixture(scope="module")
def topics(broker: str) -> Callable[[str, int], str]:
    """A data set's topic of ``n`` partitions (each produced once per module)."""
    return dataset_topics(broker, "tables")


def truth_of(example: str) -> Counter[bytes]:
    """The example's result rows as the sink holds them (JSON, keys sorted)."""
    if example == "flights-weather":
        rows = [
            {
                "key": [origin, visibility],
                "window_start": day,
                "window_end": day + 86_400_000,
                "flights": n,
                "avg_dep_delay": avg,
            }
            for (origin, visibility, day), (n, avg) in temporal_truth().items()
        ]
    elif example == "flights-planes":
        rows = [
            {"key": [maker, month], "flights": n, "avg_dep_delay": avg}
            for (maker, month), (n, avg) in lookup_truth().items()
        ]
    else:
        pairs = session_truth() if example == "flights-session-join" else window_truth()
        rows = [
            {"key": carrier, "window_start": day, "window_end": day + 86_400_000, "pairs": n}
            for (carrier, day), n in pairs.items()
        ]
    return Counter(map(canon, rows))


def pipeline_copy(
    tmp_path: Path,
    example: str,
    topics: Callable[[str, int], str],
    partitions: int,
    table_partitions: int | None = None,
) -> tuple[Path, str]:
    """The example reading its own topics (the table's of ``table_partitions``, default
    ``partitions``), with its own name and sink and checkpoints every second."""
    name = unique(example.split("-")[-1])
    text = (EXAMPLES / f"{example}.yaml").read_text()
    text = text.replace(f"pipeline: {example}", f"pipeline: {name}")
    text = text.replace("    topic: flights\n", f"    topic: {topics('flights', partitions)}\n")
    table = EXAMPLE_TABLE.get(example)
    if table is not None:
        table_topic = topics(table, table_partitions or partitions)
        text = text.replace(f"    topic: {table}\n", f"    topic: {table_topic}\n")
    text = text.replace(f"topic: {SINKS[example]}", f"topic: {name}-out")
    text += "checkpoint: {interval: 1s}\n"
    path = tmp_path / f"{example}.yaml"
    path.write_text(text)
    return path, name


def results(broker: str, topic: str) -> Counter[bytes]:
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    return Counter(canon(orjson.loads(line)["value"]) for line in out.splitlines() if line.strip())


@pytest.mark.parametrize("example", EXAMPLES_RUN)
@pytest.mark.parametrize("partitions", [1, 4])
def test_every_result_matches_plain_python(
    broker: str,
    tmp_path: Path,
    topics: Callable[[str, int], str],
    example: str,
    partitions: int,
) -> None:
    path, name = pipeline_copy(tmp_path, example, topics, partitions)
    kstream(*run_args(path, tmp_path, broker))
    got, truth = results(broker, f"{name}-out"), truth_of(example)
    assert sum(truth.values()) > 300
    assert got == truth, f"{len(got - truth)} extra, {len(truth - got)} missing"


@pytest.mark.parametrize("example", EXAMPLES_RUN)
def test_a_run_killed_and_restarted_gives_the_same_results(
    broker: str,
    broker_engine: str,
    tmp_path: Path,
    topics: Callable[[str, int], str],
    example: str,
) -> None:
    """SIGKILLed when a source batch holds offset 40,000 (a flights partition of ~84,000),
    then run again with the same state directory and group."""
    path, name = pipeline_copy(tmp_path, example, topics, 4)
    killed = kstream_raw(
        *run_args(path, tmp_path, broker),
        env={**os.environ, "KSTREAM_FAULT": "source_offset:40000"},
    )
    assert killed.returncode != 0, killed.stderr[-2000:]
    kstream(*run_args(path, tmp_path, broker))
    got, truth = results(broker, f"{name}-out"), truth_of(example)
    if broker_engine == "kafka":
        assert got == truth, f"{len(got - truth)} extra, {len(truth - got)} missing"
    else:
        assert set(got) == set(truth)


def test_a_broadcast_table_is_whole_in_every_process_of_the_group(
    broker: str, tmp_path: Path, topics: Callable[[str, int], str]
) -> None:
    """examples/flights-planes.yaml's planes table is broadcast: with 4 flights partitions and
    a planes topic of 1 (a co-partitioned join refuses different counts), two processes of the
    group each load the whole table, join the flights of their own partitions where they
    are (no repartition of either side), and together give the plain-Python truth."""
    path, name = pipeline_copy(tmp_path, "flights-planes", topics, 4, table_partitions=1)
    plan = kstream("plan", str(path), "--output", "json", "--bootstrap-servers", broker).stdout
    stages = orjson.loads(plan)["stages"]
    assert [i["kind"] for s in stages for i in s["inputs"]] == ["source", "repartition"]
    # run_args' argv begins with "run", which LoggedRun adds itself
    runs = [
        LoggedRun(tmp_path / f"run{n}.log", *run_args(path, tmp_path / f"p{n}", broker)[1:])
        for n in range(2)
    ]
    assert [run.finish() for run in runs] == [0, 0], [r.text()[-2000:] for r in runs]
    for run in runs:
        assert run.count(r"broadcast table planes loaded: 3322 records") == 1, run.text()[-2000:]
    got, truth = results(broker, f"{name}-out"), truth_of("flights-planes")
    assert got == truth, f"{len(got - truth)} extra, {len(truth - got)} missing"
