"""Group membership under broker trouble and surplus processes (issue 4: failures of the broker).

1. The broker frozen (SIGSTOP) for 8 s in the middle of a bounded flights-hourly run — longer
   than ``session.timeout.ms`` (6 s), so the group evicts the only member and its partitions are
   revoked. The run must wait for its next assignment (not mistake "nothing assigned" for "done"),
   resume from its checkpoints, exit 0, and the sink must hold exactly the truth's windows.
2. Three processes of a bounded job with two task partitions: the one assigned nothing by the
   rebalance leaves after a grace period (exit 0) while the others finish the job.

Both run on the session's broker engine (Apache Kafka by default); the frozen broker is one of
the test's own. Broker restarts and zombies are in test_kafka_faults.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clikit import hourly_pipeline_copy, kstream_argv
from flights_truth import hourly_truth
from flightskit import mismatch, produce_flights, sink_copies

from kstream.tools import BrokerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PAUSE_S = 8.0


def test_bounded_run_survives_broker_frozen_past_session_timeout(
    own_broker_factory: Callable[..., BrokerProcess], broker_engine: str, tmp_path: Path
) -> None:
    own_broker = own_broker_factory()
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
            own_broker.pause()
            time.sleep(PAUSE_S)
            own_broker.resume()
            code = job.wait(300)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert "finished: 336,776 records in" in text, text[-3000:]
    problem = mismatch(sink_copies(bootstrap, sink), hourly_truth(), broker_engine)
    assert not problem, problem


def test_surplus_member_leaves_and_others_finish(
    broker: str, broker_engine: str, tmp_path: Path
) -> None:
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
    problem = mismatch(sink_copies(broker, sink), hourly_truth(), broker_engine)
    assert not problem, problem
