"""``kstream run --processes 2`` on the session's broker, with examples/flights-hourly.yaml over
the flights on 4 partitions (docs/cli.md, docs/metrics.md):

- bounded: the supervisor ends with exit code 0, sums both children's counts to 336,776
  records in, and the sink holds exactly the windows of a single process (the plain-Python
  truth, which the single-process tests check too), each once;
- unbounded with ``--metrics-port``: the supervisor's port shows both children's metrics, whose
  records in over the source stage sum to 336,776, with node watermarks and checkpoint
  histograms; a child killed with SIGKILL is restarted (and the supervisor says so); SIGINT then
  stops both cleanly (exit code 0), and every window written is right and written once.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clikit import hourly_pipeline_copy, kstream_argv
from flights_truth import hourly_truth
from flightskit import FLIGHTS, mismatch, produce_flights, sink_copies
from metricskit import scrape

from kstream.tools.process import free_port

pytestmark = pytest.mark.integration


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``kstream run ARGS --processes 2`` in the background; its stderr goes to a file."""
    log = tmp_path / "supervisor.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*kstream_argv(), "run", *args, "--processes", "2"],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    return proc, log


def wait_until(check: Callable[[], bool], what: str, log: Path, timeout_s: float = 240) -> None:
    """Poll ``check`` until it holds; fail with the supervisor's log after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen in {timeout_s} s\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def records_in(port: int) -> tuple[float, set[str]]:
    """``kstream_records_in_total`` (records read from the sources) summed over every task of
    every child at the supervisor's port, and the ``process`` labels of tasks that read some."""
    rows = scrape(port).get("kstream_records_in_total", [])
    return sum(v for _, v in rows), {labels["process"] for labels, v in rows if v}


def restarted(port: int) -> set[str]:
    """The ``process`` labels of the children whose metrics the supervisor's port shows."""
    return {labels["process"] for labels, _ in scrape(port).get("kstream_checkpoints_total", [])}


def sink_out(port: int, sink: str) -> float:
    """Records written by the sink node ``sink:<sink>`` over the children."""
    rows = scrape(port).get("kstream_node_records_out_total", [])
    return sum(v for labels, v in rows if labels["node"] == f"sink:{sink}")


def moved_after_finishing(log: str) -> list[str]:
    """The restores (``-v`` lines) of a task at the last position any checkpoint of it
    committed: a task handed to another member after it had read all its input, which happens
    when a member that finished leaves the group while the others still read."""
    last: dict[str, int] = {}
    for task, position in re.findall(r"task (\S+) checkpoint \d+ committed at position (\d+)", log):
        last[task] = max(last.get(task, 0), int(position))
    restores = re.findall(r"task (\S+) restored \((\w+)\) at position (\d+)", log)
    return [f"{task} at {pos}" for task, _how, pos in restores if int(pos) == last.get(task)]


def test_two_bounded_processes_give_the_windows_of_one(
    broker: str, broker_engine: str, tmp_path: Path
) -> None:
    topic = produce_flights(broker, 4, "processes")
    path, _name, sink = hourly_pipeline_copy(tmp_path, topic, "processes")
    proc, log = start(
        tmp_path, str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker, "--verbose",
    )  # fmt: skip
    assert proc.wait(300) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "process 1 started" in text and "process 2 started" in text, text
    assert f"finished: 2 processes, {FLIGHTS:,} records in" in text, text[-2000:]
    assert mismatch(sink_copies(broker, sink), hourly_truth(), broker_engine) == ""
    # the children leave the group together (kstream.runtime.siblings): none rebalances a
    # finished task onto another that is still reading
    assert "restored (" in text, "no restore logged: --verbose lost?"
    assert moved_after_finishing(text) == [], text[-3000:]


def test_metrics_of_both_children_and_a_killed_child_restarted(
    broker: str, broker_engine: str, tmp_path: Path
) -> None:
    topic = produce_flights(broker, 4, "processes-live")
    path, _name, sink = hourly_pipeline_copy(
        tmp_path, topic, "processes-live", checkpoint={"interval": "1s"}
    )
    port = free_port()
    while port + 2 > 65535:  # the children take port + 1 and port + 2
        port = free_port()
    proc, log = start(
        tmp_path, str(path), "--metrics-port", str(port),
        "--state-dir", str(tmp_path / "state"), "--bootstrap-servers", broker,
    )  # fmt: skip
    try:
        wait_until(lambda: records_in(port) == (FLIGHTS, {"1", "2"}), "336,776 in", log)
        metrics = scrape(port)
        assert {labels["process"] for labels, _ in metrics["kstream_node_watermark_seconds"]} == {
            "1",
            "2",
        }
        counts = [v for _, v in metrics["kstream_checkpoint_duration_seconds_count"]]
        assert len(counts) == 2 and all(v > 0 for v in counts), counts
        nodes = metrics["kstream_node_records_in_total"]
        assert sum(v for labels, v in nodes if labels["node"] == "hourly") > 0
        wait_until(lambda: sink_out(port, sink) > 0, "windows written", log)

        child = re.search(r"process 2 started \(pid (\d+)\)", log.read_text())
        assert child is not None
        subprocess.run(["kill", "-9", child.group(1)], check=True)
        wait_until(lambda: "died (signal SIGKILL)" in log.read_text(), "the death", log, 60)
        wait_until(lambda: log.read_text().count("process 2 started") == 2, "the restart", log, 60)
        wait_until(lambda: "2" in restarted(port), "the restarted child's metrics", log)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0, log.read_text()[-3000:]
        assert "stopping 2 processes (signal SIGINT)" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    # unbounded: windows fire as the watermarks pass them, so how many were written by the stop
    # depends on timing; each one written is right, and written once
    copies, truth = sink_copies(broker, sink), hourly_truth()
    assert copies, "no window written"
    assert mismatch(copies, {w: truth[w] for w in copies}, broker_engine) == ""
