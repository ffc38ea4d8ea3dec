"""Twenty stop-with-savepoint + restore cycles of flights-hourly at deterministic stop points.

Issue 11: a stop-with-savepoint once wrote a task at position 28,491 with 0 window entries while
its RocksDB held 1,537 (the job acknowledged the stop before its stores were closed, and the CLI
read them while they were still being flushed); the restored run then lost data. Now each
process snapshots the committed state of its tasks itself (a RocksDB checkpoint) before it
acknowledges, and ``savepoint create`` accepts a snapshot only when it holds the acknowledged
checkpoint.

Cycle i (i = 1..20) runs the job from savepoint i-1 (none for the first) in a new group with
the test hook ``KSTREAM_HOLD_AT=15,000 * i``: the source task processes the flights up to that
offset and holds, and ``kstream savepoint create --stop`` stops it there. After every cycle, the
windows the sink holds plus the windows the savepoint holds must equal an independent
aggregation of the first ``15,000 * i`` flights (in arrival order, as the 1-partition topic holds
them), and after a final bounded run from the last savepoint the sink must equal the truth:
every window exactly once, with the truth's values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clikit import LoggedRun, kstream, unique
from flights_truth import arrival_order
from test_savepoints import (
    FLIGHTS,
    RESULT_FIELDS,
    Window,
    aggregate,
    assert_matches,
    flights_1p,
    tail_jsonl,
    truth,
    windows_of,
    write_pipeline,
)

from kstream.savepoint import open_savepoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

CYCLES = 20
STEP = 15_000

__all__ = ["flights_1p", "truth"]  # module fixtures shared with test_savepoints


def held_windows(savepoint: Path) -> dict[Window, dict[str, Any]]:
    """The hourly windows a savepoint holds (not fired yet), as ``windows_of`` shapes them."""
    out: dict[Window, dict[str, Any]] = {}
    for row in open_savepoint(savepoint).windows("hourly"):
        window = (row["key"], row["window_start"])
        assert window not in out, f"window held twice in {savepoint}: {row}"
        out[window] = {field: row[field] for field in RESULT_FIELDS}
    return out


def run_cycle(
    broker: str, pipeline: Path, state_dir: Path, group: str, at: int, previous: Path | None
) -> Path:
    """Run from ``previous`` (or from the start), hold at offset ``at``, stop with a savepoint;
    returns the savepoint."""
    savepoint = state_dir.parent / "savepoints" / group
    restore = ["--from-savepoint", str(previous)] if previous else []
    job = LoggedRun(
        state_dir.parent / f"{group}.log", str(pipeline), "--group", group, "--state-dir",
        str(state_dir), "--bootstrap-servers", broker, *restore, env={"KSTREAM_HOLD_AT": str(at)},
    )  # fmt: skip
    try:
        assert job.wait_for(rf"task \S+:0 held at offset {at}\b"), job.text()[-3000:]
        create = kstream(
            "savepoint", "create", str(pipeline), "--stop", "--dir", str(savepoint), "--group",
            group, "--state-dir", str(state_dir), "--bootstrap-servers", broker, timeout=180,
        )  # fmt: skip
        assert "acknowledged the stop" in create.stderr, create.stderr
        assert job.finish(120) == 0, job.text()[-3000:]
    finally:
        job.kill()
    return savepoint


def test_twenty_stop_with_savepoint_and_restore_cycles(
    broker: str, flights_1p: str, truth: dict[Window, dict[str, Any]], tmp_path: Path
) -> None:
    name = unique("sp-cycles")
    sink = f"{name}-out"
    pipeline = write_pipeline(tmp_path / f"{name}.yaml", name, flights_1p, sink, None)
    state_dir = tmp_path / "state"
    flights = arrival_order()
    previous: Path | None = None
    for cycle in range(1, CYCLES + 1):
        at = STEP * cycle
        savepoint = run_cycle(broker, pipeline, state_dir, f"{name}-c{cycle}", at, previous)
        offsets = open_savepoint(savepoint).manifest.source.offsets
        assert offsets == {0: at}, f"cycle {cycle}: savepoint offsets {offsets}, held at {at}"
        emitted = windows_of(tail_jsonl(broker, sink))
        held = held_windows(savepoint)
        both = set(emitted) & set(held)
        assert not both, f"cycle {cycle}: windows both emitted and held: {sorted(both)[:3]}"
        assert_matches(
            {**emitted, **held}, aggregate(flights[:at]), f"cycle {cycle}: the first {at} flights"
        )
        previous = savepoint
    assert previous is not None
    final = kstream(
        "run", str(pipeline), "--bounded", "--group", f"{name}-final", "--from-savepoint",
        str(previous), "--state-dir", str(state_dir), "--bootstrap-servers", broker,
    )  # fmt: skip
    assert f"finished: {FLIGHTS - STEP * CYCLES:,} records in" in final.stderr, final.stderr[-2000:]
    assert_matches(windows_of(tail_jsonl(broker, sink)), truth)
