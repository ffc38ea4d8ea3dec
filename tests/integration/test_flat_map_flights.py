"""A ``flat_map: {python: ...}`` on the real broker: the 336,776 flights, one record per started
hour of departure delay, keyed by origin and counted in hourly tumbling windows by ``kstream run
--bounded``; every window read back with ``kstream tail`` equals a plain-Python count over the
same flights (``tests/flights_truth.py``)."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import kstream, unique
from flights_truth import HOUR_MS, load_flights, window_start
from flightskit import FLIGHTS, produce_flights

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]

PIPELINE = """\
pipeline: {name}
sources:
  - topic: {source}
    event_time: {{field: sched_dep_ts, unit: ms}}
    watermark: {{max_out_of_orderness: 1d}}   # above the ~22 h disorder: nothing is late
operators:
  - id: delay-hours
    flat_map: {{python: "flat_map_udfs:delay_hours"}}
  - id: by-origin
    key_by: origin
  - id: hourly
    window:
      type: tumbling
      size: 1h
      aggregate: {{delay_hours: count, longest: {{max: delay_hour}}}}
sinks:
  - topic: {name}-out
"""

Window = tuple[str, int]


def truth() -> dict[Window, dict[str, int]]:
    """Per (origin, hour of scheduled departure): the started delay hours of its flights and
    the longest delay in started hours, over the flights that left late."""
    out: dict[Window, dict[str, int]] = {}
    for f in load_flights():
        if f.dep_delay is None or f.dep_delay <= 0:
            continue
        hours = math.ceil(f.dep_delay / 60)
        slot = out.setdefault((f.origin, window_start(f.sched_dep_ts)), {"n": 0, "max": 0})
        slot["n"] += hours
        slot["max"] = max(slot["max"], hours)
    return {w: {"delay_hours": s["n"], "longest": s["max"]} for w, s in out.items()}


def windows(bootstrap: str, sink: str) -> tuple[dict[Window, dict[str, Any]], list[Window]]:
    """The sink's windows by (origin, window_start), and the windows seen more than once."""
    out = kstream(
        "tail", sink, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    got: dict[Window, dict[str, Any]] = {}
    twice = []
    for line in out.splitlines():
        if not line.strip():
            continue
        record = orjson.loads(line)
        value = record["value"]
        assert record["key"] == value["key"], record
        assert value["window_end"] == value["window_start"] + HOUR_MS, record
        window = (value["key"], value["window_start"])
        if window in got:
            twice.append(window)
        got[window] = {"delay_hours": value["delay_hours"], "longest": value["longest"]}
    return got, twice


def test_one_record_per_started_delay_hour_counted_per_origin_and_hour(
    broker: str, tmp_path: Path
) -> None:
    source = produce_flights(broker, 4)
    name = unique("flat-map")
    path = tmp_path / f"{name}.yaml"
    path.write_text(PIPELINE.format(name=name, source=source))
    shutil.copy(TESTS / "flat_map_udfs.py", tmp_path / "flat_map_udfs.py")  # next to the file
    run = kstream(
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    )  # fmt: skip
    match = re.search(r"finished: ([\d,]+) records in, ([\d,]+) out, ([\d,]+) late", run.stderr)
    assert match, run.stderr[-2000:]
    records_in, records_out, late = (int(g.replace(",", "")) for g in match.groups())
    expected = truth()
    assert (records_in, late) == (FLIGHTS, 0)
    got, twice = windows(broker, f"{name}-out")
    assert not twice, f"{len(twice)} windows emitted more than once, e.g. {twice[:3]}"
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    wrong = sorted(w for w in set(got) & set(expected) if got[w] != expected[w])
    assert not (missing or extra or wrong), (
        f"{len(missing)} windows missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. "
        f"{extra[:3]}), {len(wrong)} differ (e.g. {[(w, got[w], expected[w]) for w in wrong[:3]]})"
    )
    assert records_out == len(expected)
    assert sum(v["delay_hours"] for v in expected.values()) > FLIGHTS // 3  # many fan out
