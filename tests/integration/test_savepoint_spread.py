"""Stop-with-savepoint of a job whose processes keep their state in different places (issue 13:
a job on several machines), taken from a third place that holds none of it.

Two ``kstream run`` processes of one group run a key_by + global aggregation over a generated
2-partition topic, each with its own ``--state-dir`` (as two machines would). Once both have
tasks and the job has read records, ``kstream savepoint create --stop --state-dir <an empty
dir>`` must stop them and, its state dir holding no task, read the savepoint from the changelog
topics and the group's committed offsets. The savepoint must hold all 4 tasks, and per user the
count and sum of exactly the records before its source offsets (computed here from the topic's
records).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from clikit import LoggedRun, kstream, unique

from kstream.pipeline.load import load_pipeline
from kstream.savepoint import local_checkpoints, open_savepoint

# kafka_only: finding the job's processes on other machines needs the group's members
# (DescribeGroups), which the embedded Tansu does not report
pytestmark = [pytest.mark.integration, pytest.mark.kafka_only, pytest.mark.timeout(240)]

RECORDS = 4_000
USERS = 7
PIPELINE = """\
pipeline: {name}
sources:
  - topic: {source}
    event_time: {{field: ts}}
checkpoint: {{interval: 1s}}
operators:
  - id: by-user
    key_by: user
  - id: totals
    window:
      type: global
      emit: update
      aggregate: {{n: count, amount: {{sum: amount}}}}
sinks:
  - topic: {name}-out
"""


def produce_input(broker: str, directory: Path, topic: str) -> None:
    data = directory / "in.jsonl"
    rows = [{"user": f"u{i % USERS}", "amount": i, "ts": 1_000 * i} for i in range(RECORDS)]
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    out = kstream(
        "produce", topic, str(data), "--key", "user", "--partitions", "2",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {RECORDS} records to {topic} (2 partitions)" in out, out


def totals_before(broker: str, topic: str, offsets: dict[int, int]) -> dict[str, tuple[int, int]]:
    """Per user ``(count, sum of amount)`` of the records of ``topic`` before ``offsets``
    (partition -> next offset), read back with ``kstream tail``."""
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "3",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    records = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == RECORDS
    totals: dict[str, tuple[int, int]] = {}
    for rec in records:
        if rec["offset"] < offsets.get(rec["partition"], 0):
            n, amount = totals.get(rec["value"]["user"], (0, 0))
            totals[rec["value"]["user"]] = (n + 1, amount + rec["value"]["amount"])
    return totals


def start(broker: str, pipeline: Path, group: str, directory: Path, name: str) -> LoggedRun:
    """``kstream run PIPELINE`` in ``group`` with its own state dir ``state-<name>``."""
    args = ["--group", group, "--state-dir", str(directory / f"state-{name}")]
    return LoggedRun(
        directory / f"run-{name}.log", str(pipeline), *args, "--bootstrap-servers", broker
    )


def any_logged(runs: list[LoggedRun], pattern: str, timeout_s: float) -> bool:
    """Wait until the log of any of ``runs`` matches ``pattern`` (False after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(run.count(pattern) for run in runs):
            return True
        time.sleep(0.1)
    return False


def test_stop_with_savepoint_of_a_job_in_two_state_dirs(broker: str, tmp_path: Path) -> None:
    name = unique("sp-spread")
    source, group = f"{name}-in", f"{name}-g"
    produce_input(broker, tmp_path, source)
    pipeline = tmp_path / f"{name}.yaml"
    pipeline.write_text(PIPELINE.format(name=name, source=source))
    runs = [start(broker, pipeline, group, tmp_path, x) for x in "ab"]
    savepoint = tmp_path / "savepoint"
    try:
        for run in runs:  # each process has tasks ...
            assert run.wait_for(r"task \S+ restored", timeout_s=60), run.text()[-3000:]
        # ... and the job has read records (a stop before that saves nothing)
        read = rf"task {source}:\d checkpoint \d+ committed at position \d+"
        assert any_logged(runs, read, timeout_s=60), runs[0].text()[-2000:]
        create = kstream(
            "savepoint", "create", str(pipeline), "--stop", "--dir", str(savepoint), "--group",
            group, "--state-dir", str(tmp_path / "state-c"), "--bootstrap-servers", broker,
            timeout=120,
        )  # fmt: skip
        for run in runs:
            assert run.finish(60) == 0, run.text()[-3000:]
    finally:
        for run in runs:
            run.kill()  # only when the test failed: never leave a runner behind
    assert "acknowledged the stop" in create.stderr, create.stderr
    assert "reading the state from the changelog topics: " in create.stderr, create.stderr
    spec = load_pipeline(pipeline)
    held = [local_checkpoints(spec, tmp_path / f"state-{x}", group=group) for x in "abc"]
    assert held[0] and held[1] and not held[2], held  # each process had tasks; state-c none
    # the snapshots the processes wrote for the request (on this machine) were deleted
    assert not list(tmp_path.glob(f"state-*/{group}/.snapshots/*")), create.stderr
    saved = open_savepoint(savepoint)
    tasks = [t.task_id for t in saved.tasks()]
    assert tasks == [f"{source}:0", f"{source}:1", "by-user:0", "by-user:1"]
    offsets = saved.manifest.source.offsets
    assert sum(offsets.values()) > 0, offsets
    got = {row["key"]: (row["n"], row["amount"]) for row in saved.windows("totals")}
    assert got == totals_before(broker, source, offsets)
