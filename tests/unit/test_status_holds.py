"""``kstream status``'s pure parts: rows from offsets and local state, and what holds a task's
watermark back (fabricated checkpoint metadata of examples/flights-hourly.yaml, 4 partitions;
the example's ``idle_timeout`` removed, as in the tour's first unbounded run without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kstream.graph.plan import Plan, build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.holds import watermark_holds
from kstream.runtime.status import COMMITTED_PAST_END, LocalTask, status_row
from kstream.time.watermarks import MIN_WATERMARK

HOURLY = Path(__file__).resolve().parents[2] / "examples" / "flights-hourly.yaml"
REPARTITION = "flights-hourly.by-origin.repartition"
COUNTS = {"flights": 4, "by-origin": 4}
T = 1_357_016_400_000  # 2013-01-01 05:00:00 UTC


def hourly_plan(tmp_path: Path, idle_timeout: str | None) -> Plan:
    """examples/flights-hourly.yaml with the source's ``idle_timeout`` set to ``idle_timeout``
    (None: without one)."""
    lines = [line for line in HOURLY.read_text().splitlines() if "idle_timeout:" not in line]
    text = "\n".join(lines) + "\n"
    if idle_timeout:
        text = text.replace(
            "max_out_of_orderness: 1d",
            f"max_out_of_orderness: 1d\n      idle_timeout: {idle_timeout}",
        )
    path = tmp_path / "hourly.yaml"
    path.write_text(text)
    return build_plan(load_pipeline(path))


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return hourly_plan(tmp_path, None)


def source_meta(max_ts: int) -> dict[str, Any]:
    watermark = MIN_WATERMARK if max_ts == MIN_WATERMARK else max_ts - 86_400_001
    source = {"max_ts": max_ts, "watermark": watermark}
    return {
        "watermark": watermark,
        "source": source,
        "inputs": {"flights": {"position": 5, "finished": False, "source": source}},
    }


def downstream_meta(latest: dict[str, list[Any]]) -> dict[str, Any]:
    upstream = {"watermark": MIN_WATERMARK, "latest": latest}
    return {
        "watermark": MIN_WATERMARK,
        "inputs": {REPARTITION: {"position": 9, "finished": False, "upstream": upstream}},
    }


def job(latest3: list[Any] | None, flights3: dict[str, Any] | None) -> dict[str, Any]:
    """Partitions 0-2 of flights had records; partition 3 as given (None: no checkpoint
    here); every by-origin task saw ``latest3`` from flights:3 (None: no marker)."""
    metas: dict[str, Any] = {f"flights:{p}": source_meta(T + p) for p in range(3)}
    metas["flights:3"] = flights3
    latest = {f"flights:{p}": [T + p - 86_400_001, "active", True] for p in range(3)}
    if latest3 is not None:
        latest["flights:3"] = latest3
    for p in range(4):
        metas[f"by-origin:{p}"] = downstream_meta(latest)
    return metas


def test_an_empty_source_partition_holds_its_task_and_every_downstream_task(plan: Plan) -> None:
    metas = job([MIN_WATERMARK, "active", True], source_meta(MIN_WATERMARK))
    holds = watermark_holds(plan, metas, COUNTS)
    assert sorted(holds) == [
        "by-origin:0",
        "by-origin:1",
        "by-origin:2",
        "by-origin:3",
        "flights:3",
    ]
    assert holds["flights:3"].held_back_by == "flights partition 3"
    assert holds["by-origin:2"].held_back_by == "upstream task flights:3"
    assert holds["by-origin:2"].hint == (
        "task by-origin:2: watermark held at -inf by upstream task flights:3 (flights partition "
        "3 has no records read); add `idle_timeout` to the watermark of source flights "
        "(docs/time-and-windows.md)"
    )


def test_an_upstream_task_that_sent_no_marker_and_has_no_local_state(plan: Plan) -> None:
    holds = watermark_holds(plan, job(None, None), COUNTS)
    assert sorted(holds) == [f"by-origin:{p}" for p in range(4)]
    assert holds["by-origin:0"].reasons == ("no watermark from flights:3 yet",)


def test_origins_named_by_stage_index_in_older_checkpoints(plan: Plan) -> None:
    """Checkpoints of older versions name upstream tasks ``<stage index>:<partition>``."""
    metas = job([MIN_WATERMARK, "active", True], source_meta(MIN_WATERMARK))
    for p in range(4):
        state = metas[f"by-origin:{p}"]["inputs"][REPARTITION]["upstream"]
        state["latest"] = {f"0:{q}": entry for q, entry in enumerate(state["latest"].values())}
    holds = watermark_holds(plan, metas, COUNTS)
    assert holds["by-origin:0"].held_back_by == "upstream task flights:3"


@pytest.mark.parametrize("status", ["idle", "end"])
def test_an_idle_or_ended_upstream_task_holds_nothing_back(plan: Plan, status: str) -> None:
    metas = job([MIN_WATERMARK, status, False], source_meta(MIN_WATERMARK))
    holds = watermark_holds(plan, metas, COUNTS)
    assert "by-origin:0" not in holds
    assert "flights:3" in holds  # its own partition is still empty


def test_no_hint_before_anything_advanced(plan: Plan) -> None:
    metas = {f"flights:{p}": source_meta(MIN_WATERMARK) for p in range(4)}
    metas |= {f"by-origin:{p}": downstream_meta({}) for p in range(4)}
    assert watermark_holds(plan, metas, COUNTS) == {}


def test_advanced_tasks_are_not_held(plan: Plan) -> None:
    metas: dict[str, Any] = {f"flights:{p}": source_meta(T) for p in range(4)}
    assert watermark_holds(plan, metas, COUNTS) == {}


def test_the_hint_with_an_idle_timeout_already_set(tmp_path: Path) -> None:
    plan = hourly_plan(tmp_path, "30s")
    unknown = watermark_holds(plan, job([MIN_WATERMARK, "active", True], None), COUNTS)
    assert unknown["by-origin:1"].reasons == ("flights:3 has not advanced its watermark",)
    assert unknown["by-origin:1"].hint.endswith(
        "add `idle_timeout` to the source's watermark (docs/time-and-windows.md)"
    )
    flights3 = source_meta(MIN_WATERMARK)
    hint = watermark_holds(plan, job([MIN_WATERMARK, "active", True], flights3), COUNTS)
    assert hint["by-origin:1"].hint.endswith(
        "the partition goes idle once the job has run for the source's idle_timeout "
        "(flights 30 s) without records from it (docs/time-and-windows.md)"
    )


def test_status_row_from_offsets_and_local_state() -> None:
    meta = {"checkpoint_id": 3, "time_ms": T, "watermark": T - 1}
    row = status_row("flights:0", "flights", 0, (10, 15), LocalTask(meta, 4096, True), "m-1")
    assert (row.committed, row.end, row.lag, row.end_note) == (10, 15, 5, None)
    assert (row.checkpoint_id, row.checkpoint_time_ms, row.watermark_ms) == (3, T, T - 1)
    assert row.owner == "m-1, locked here" and row.state_bytes == 4096
    assert row.held_back_by is None and row.hint is None


def test_status_row_without_commit_or_checkpoint() -> None:
    row = status_row("flights:3", "flights", 3, (None, 0), LocalTask())
    assert row.lag is None and row.end_note is None and row.owner == "-"
    assert row.watermark_ms is None and row.checkpoint_id is None


def test_status_row_committed_past_the_reported_end_has_no_lag_and_says_why() -> None:
    row = status_row("flights:1", "flights", 1, (120, 100), LocalTask())
    assert row.lag is None and row.end_note == COMMITTED_PAST_END
    assert "Tansu reports the base offset of a partition's last record batch" in row.end_note
