"""Two ``kstream run`` processes of one group share the work and produce the result of one.

Both run ``examples/flights-hourly.yaml`` (a copy with its own pipeline, source and sink names)
with ``--bounded``, the same ``--group`` and the same ``--state-dir``, started together on the
4-partition flights topic. The consumer group spreads the 8 task partitions (4 source, 4
repartition) over them; tasks may move between them while they join. Each must exit 0, and the
sink topic must hold every hourly window of ``hourly_truth()`` exactly once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import hourly_pipeline_copy
from flights_truth import HOUR_MS, hourly_truth

pytestmark = pytest.mark.integration

FLIGHTS = 336_776
RUN_TIMEOUT_S = 300
_FINISHED = re.compile(r"finished: ([\d,]+) records in, ([\d,]+) out")


def kstream_argv() -> list[str]:
    script = Path(sys.executable).with_name("kstream")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from kstream_cli.main import main; main()"]


def kstream(*args: str) -> str:
    proc = subprocess.run(
        [*kstream_argv(), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, (
        f"kstream {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    )
    return proc.stdout


@pytest.fixture(scope="module")
def flights_4p(broker: str) -> str:
    topic = f"flights-4p-{uuid.uuid4().hex[:8]}"
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", "4",
        "--bootstrap-servers", broker,
    )  # fmt: skip
    assert f"produced {FLIGHTS} records to {topic} (4 partitions)" in out, out
    return topic


def test_two_processes_same_group_match_truth(broker: str, flights_4p: str, tmp_path: Path) -> None:
    path, name, sink = hourly_pipeline_copy(tmp_path, flights_4p, "two-procs")
    argv = [
        *kstream_argv(), "run", str(path), "--bounded", "--group", f"{name}-group",
        "--state-dir", str(tmp_path / "state"), "--bootstrap-servers", broker,
    ]  # fmt: skip
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results: list[tuple[int, str]] = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
            results.append((proc.returncode, err))
    finally:
        for proc in procs:  # only on a timeout: do not leave a runner behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for i, (code, err) in enumerate(results):
        assert code == 0, f"process {i} exited {code}:\n{err[-4000:]}"
    counters = []
    for _, err in results:
        match = _FINISHED.search(err)
        assert match, err[-2000:]
        counters.append(tuple(int(g.replace(",", "")) for g in match.groups()))
    # Every source record was counted by exactly one of them: a task handed over mid-run
    # resumes from the committed position of the process that gave it up, and that process
    # counts only the records of its committed checkpoints.
    assert sum(c[0] for c in counters) == FLIGHTS, f"(records in, out) per process: {counters}"
    # ... and the work was shared: each process ran tasks that read or wrote records.
    assert all(records_in + out > 0 for records_in, out in counters), counters

    out = kstream(
        "tail", sink, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", broker,
    )  # fmt: skip
    got: dict[tuple[str, int], dict[str, Any]] = {}
    duplicates = []
    for line in out.splitlines():
        value = orjson.loads(line)["value"]
        window = (value["key"], value["window_start"])
        assert value["window_end"] == value["window_start"] + HOUR_MS
        if window in got:
            duplicates.append(window)
        got[window] = {f: value[f] for f in ("flights", "avg_dep_delay", "max_dep_delay")}
    truth = hourly_truth()
    assert not duplicates, f"{len(duplicates)} windows emitted twice, e.g. {duplicates[:3]}"
    missing = sorted(set(truth) - set(got))
    extra = sorted(set(got) - set(truth))
    wrong = sorted(w for w in set(got) & set(truth) if got[w] != truth[w])
    assert not (missing or extra or wrong), (
        f"{len(missing)} windows missing (e.g. {missing[:3]}), {len(extra)} unexpected, "
        f"{len(wrong)} differ (e.g. {[(w, got[w], truth[w]) for w in wrong[:3]]}); counters "
        f"(in, out) per process: {counters}"
    )
