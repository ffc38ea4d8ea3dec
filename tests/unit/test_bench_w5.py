"""The benchmark's W5 pieces that need no broker: its data, its verifier, the state size and
its figures (bench/data.py, bench/verify.py, bench/measure.py, bench/summary.py)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the bench package

from bench import data
from bench.measure import state_bytes
from bench.summary import (
    RunResult,
    markdown,
    summarize,
    targets,
    w5_rows,
    w5_section,
)
from bench.verify import check_w5


@pytest.mark.parametrize("keys", [1, 2, 3, 10, 1_000, 4_096])
def test_w5_events_hold_every_key_exactly_passes_times(keys: int) -> None:
    events = list(data.w5_events(keys))
    assert len(events) == keys * data.W5_PASSES
    counts = Counter(key for key, _value, _ts in events)
    assert set(counts) == {f"k{n}" for n in range(keys)}
    assert set(counts.values()) == {data.W5_PASSES}
    assert all(value["n"] == int(key[1:]) for key, value, _ts in events)
    assert [ts for _k, _v, ts in events] == list(range(data.T0_MS, data.T0_MS + len(events)))


def test_w5_events_are_scattered_and_deterministic() -> None:
    keys = 10_000
    events = list(data.w5_events(keys))
    assert events == list(data.w5_events(keys))
    first = [value["n"] for _k, value, _ts in events[:keys]]
    assert first != sorted(first)
    second = [value["n"] for _k, value, _ts in events[keys:]]
    assert first != second  # each pass has its own order
    position = {n: i for i, n in enumerate(first)}
    gaps = [keys + i - position[n] for i, n in enumerate(second)]
    assert min(gaps) > 0 and sum(gaps) / keys > keys / 4


def _result(n: int, count: int) -> tuple[bytes | None, bytes]:
    return b"k%d" % n, orjson.dumps({"key": f"k{n}", "count": count})


def _updates(*keys: int) -> list[tuple[bytes | None, bytes]]:
    """Each key's two updates (running counts 1 then 2), keys interleaved."""
    return [_result(n, 1) for n in keys] + [_result(n, 2) for n in keys]


def test_check_w5_accepts_every_running_count_in_order() -> None:
    verdict = check_w5(iter(_updates(2, 0, 1)), keys=3, passes=2)
    assert verdict.ok and verdict.outputs == 6


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        (_updates(0, 1), "2 missing"),
        ([*_updates(0, 1), _result(2, 1)], "1 missing"),
        ([*_updates(0, 1, 2), _result(2, 2)], "1 extra"),
        ([_result(0, 2), _result(0, 1), *_updates(1, 2)], "2 wrong"),
        ([*_updates(0, 1), _result(2, 1), _result(2, 3)], "1 wrong"),
        ([*_updates(0, 1, 2), _result(3, 1)], "1 malformed"),
        ([*_updates(0, 1, 2), (b"k02", orjson.dumps({"key": "k2", "count": 2}))], "malformed"),
        ([*_updates(0, 1, 2), (b"k2", orjson.dumps({"key": "k1", "count": 2}))], "malformed"),
        ([*_updates(0, 1, 2), (b"k2", b"[2]")], "1 malformed"),
        ([*_updates(0, 1, 2), (None, b"{}")], "1 malformed"),
    ],
)
def test_check_w5_fails_on_any_wrong_result(
    records: list[tuple[bytes | None, bytes]], problem: str
) -> None:
    verdict = check_w5(records, keys=3, passes=2)
    assert not verdict.ok
    assert problem in verdict.detail


def test_state_bytes_sums_the_files_of_the_state_directories(tmp_path: Path) -> None:
    assert state_bytes(tmp_path) is None
    (tmp_path / "state-0" / "db").mkdir(parents=True)
    (tmp_path / "state-0" / "db" / "000010.sst").write_bytes(b"x" * 1000)
    (tmp_path / "state-1").mkdir()
    (tmp_path / "state-1" / "LOG").write_bytes(b"y" * 24)
    (tmp_path / "kstream-0.log").write_bytes(b"z" * 500)  # not state
    assert state_bytes(tmp_path) == 1024


def _run(job: str, records: int, wall_s: float, rss: float, state: int | None) -> RunResult:
    return RunResult(
        job=job, run=1, records=records, wall_s=wall_s, cpu_s=wall_s, peak_rss_mb=rss,
        first_record_s=1.0, ok=True, detail="ok", state_bytes=state,
    )  # fmt: skip


def test_w5_figures_rss_target_and_report() -> None:
    summary = summarize(
        {
            "W2": [_run("W2", 1_000_000, 10.0, 100.0, 5_000_000)],
            "W5": [_run("W5", 10_000_000, 500.0, 450.0, 300 * 2**20)],
        }
    )
    w5 = w5_section(summary, 5_000_000)
    assert w5 is not None
    assert w5["records_per_s"] == 20_000 and w5["w2_records_per_s"] == 100_000
    assert w5["vs_w2"] == pytest.approx(0.2)
    assert w5["rss_met"] is False and w5["state_bytes"] == 300 * 2**20
    (target,) = [t for t in targets(summary) if t["target"].startswith("W5")]
    assert target["value"] == 450.0 and target["met"] is False
    header, row = w5_rows(w5)
    assert dict(zip(header, row, strict=True))["state on disk MB"] == "300.0"
    assert w5_section(summarize({"W2": [_run("W2", 10, 1.0, 50.0, None)]}), 5) is None
    doc = {
        "summary": summary, "w5": w5, "config": {"records": 1, "runs": 1, "broker": "b"},
        "created": "now", "host": {"cpus": 2},
    }  # fmt: skip
    assert "| W5 | 5,000,000 | 10,000,000 | 20.0k | 100.0k | 0.20x | 450 | not met |" in (
        markdown(doc)
    )
