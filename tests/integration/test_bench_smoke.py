"""Smoke test of the benchmark harness (``make bench``): a tiny data set, one run, no Quix, no
flights, W5 on 2,000 keys. It checks that the harness starts its broker, runs every kstream job
and the floor, verifies their outputs and writes results.json; the numbers themselves are not
checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
JOBS = ("floor", "W1", "W2", "W3", "W4", "W5", "W2x2")
W5_KEYS = 2_000


@pytest.mark.timeout(170)
def test_bench_harness_smoke(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--records",
        "20000",
        "--runs",
        "1",
        "--warm-up-runs",
        "1",
        "--no-quix",
        "--no-flights",
        "--w5-keys",
        str(W5_KEYS),
        "--jobs",
        ",".join(JOBS),
        "--results",
        str(results),
        "--workdir",
        str(tmp_path / "work"),
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=160, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    doc = json.loads(results.read_text())
    assert doc["config"]["records"] == 20_000
    assert doc["data"]["records"] == 20_000
    assert sum(int(n) for n in doc["data"]["counts"].values()) == 20_000
    assert set(doc["summary"]) == set(JOBS)
    for job in JOBS:
        summary = doc["summary"][job]
        assert summary["verified_runs"] == summary["runs"] == 1, (job, summary["failures"])
        assert summary["records_per_s"] > 0
        assert summary["cpu_s"] > 0
        assert summary["peak_rss_mb"] > 0
        (run,) = doc["runs"][job]
        assert run["ok"] and run["returncodes"] == [0]  # W2x2: one kstream run --processes 2
    assert doc["runs"]["W1"][0]["outputs"] > 0
    assert doc["runs"]["W2"][0]["outputs"] == doc["runs"]["W3"][0]["outputs"]
    assert {t["target"] for t in doc["targets"]}
    w5 = doc["w5"]
    assert w5["keys"] == W5_KEYS and w5["records"] == doc["w5_data"]["records"] == 2 * W5_KEYS
    assert doc["runs"]["W5"][0]["outputs"] == 2 * W5_KEYS  # emit: update: each running count
    assert w5["state_bytes"] > 0 and w5["peak_rss_mb"] > 0 and w5["vs_w2"] > 0
    assert "results" in proc.stdout  # the table and the results path were printed
