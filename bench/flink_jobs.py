"""Peer: the benchmark's W1 and W2 as Apache Flink SQL jobs (PyFlink Table API, streaming mode).

Run by the harness with the Flink venv's python (``bench/peers.py``), by path, so it imports
neither kstream nor the rest of ``bench``:

    python bench/flink_jobs.py JOB BOOTSTRAP INPUT OUTPUT GROUP CONNECTOR_JAR PARALLELISM RESULT

PyFlink starts a JVM (its gateway, holding a local MiniCluster that runs the job) as a child of
this process. The job reads ``INPUT`` from the earliest offset to the offsets that were the
latest when it started (``'scan.bounded.mode' = 'latest-offset'``), so it ends by itself at the
end of the input; at that end Flink advances the watermark to +infinity and fires every window
still open, as kstream's ``--bounded`` does. After the job has finished this process stops the
JVM (SIGTERM, its shutdown hooks stop the MiniCluster) and reaps it, so the harness's
``os.wait4`` of this process counts the JVM's CPU time too.

Both jobs mirror the kstream pipelines (``bench/pipelines/w1-stateless.yaml`` and
``w2-window.yaml``):

- source: the record key as ``k`` (raw UTF-8), the JSON value's fields, event time from the
  ``ts`` field (epoch ms), watermark ``rowtime - 3 s`` (the YAMLs' ``max_out_of_orderness``);
- W1: ``WHERE latency_ms > 100``, ``latency_s = latency_ms / 1000.0`` (DOUBLE), same key;
- W2: ``TUMBLE`` 10 s per ``k``, ``COUNT(*)`` and ``SUM(latency_ms)``, written as kstream writes
  its window results: record key = window key, value
  ``{"key", "window_start", "window_end", "count", "sum"}`` with the bounds in epoch ms;
- checkpoints every 5 s, at-least-once (the YAMLs' ``checkpoint``), Flink's default state
  backend (heap); the Kafka sink delivers at-least-once (flushes on checkpoints and at the end).

The result file gets ``{"first_record": T, "status": ..., "jvm_pids": [...]}``. Flink does not
tell Python when its first record arrived; ``T`` (epoch seconds, ``null`` when not found) is the
time of the first ``Resetting offset for partition`` line of Flink's log (``$FLINK_LOG_DIR``):
the moment its Kafka source had set its start offsets, right before its first fetch. Exit code
0 once the job has FINISHED.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

WINDOW = "INTERVAL '10' SECOND"
BOUND = "INTERVAL '3' SECOND"
CHECKPOINT_INTERVAL = "5 s"
#: Seconds the JVM may take to shut down after the job before it is killed.
JVM_STOP_GRACE_S = 30.0
#: Flink's Kafka consumer logs this (INFO) once per partition just before its first fetch.
FIRST_FETCH_MARK = "Resetting offset for partition"


def _kafka(topic: str, bootstrap: str, key: str, value_fields: str, extra: str = "") -> str:
    """The WITH clause of a Kafka table: raw UTF-8 key column ``key``, JSON value."""
    return f"""WITH (
        'connector' = 'kafka',
        'topic' = '{topic}',
        'properties.bootstrap.servers' = '{bootstrap}',
        'key.format' = 'raw',
        'key.fields' = '{key}',
        'value.format' = 'json',
        'value.fields-include' = '{value_fields}'{extra}
    )"""


def source_ddl(topic: str, bootstrap: str, group: str) -> str:
    """The events: bounded at the latest offsets of when the job starts."""
    bounded = f""",
        'properties.group.id' = '{group}',
        'scan.startup.mode' = 'earliest-offset',
        'scan.bounded.mode' = 'latest-offset'"""
    return f"""CREATE TABLE events (
        k STRING,
        user_id STRING,
        page STRING,
        ts BIGINT,
        latency_ms INT,
        rowtime AS TO_TIMESTAMP_LTZ(ts, 3),
        WATERMARK FOR rowtime AS rowtime - {BOUND}
    ) {_kafka(topic, bootstrap, "k", "EXCEPT_KEY", bounded)}"""


def w1_statements(topic: str, bootstrap: str) -> tuple[str, str]:
    """W1's sink DDL and its INSERT."""
    sink = f"""CREATE TABLE sink (
        k STRING, user_id STRING, page STRING, ts BIGINT, latency_ms INT, latency_s DOUBLE
    ) {_kafka(topic, bootstrap, "k", "EXCEPT_KEY", _AT_LEAST_ONCE)}"""
    insert = """INSERT INTO sink
        SELECT k, user_id, page, ts, latency_ms, CAST(latency_ms AS DOUBLE) / 1000
        FROM events WHERE latency_ms > 100"""
    return sink, insert


def _epoch_ms(column: str) -> str:
    """Epoch milliseconds of a window bound (a TIMESTAMP in the session time zone, UTC here;
    window bounds are whole seconds)."""
    return (
        f"CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {column}) AS BIGINT) * 1000"
    )


def w2_statements(topic: str, bootstrap: str) -> tuple[str, str]:
    """W2's sink DDL and its INSERT."""
    sink = f"""CREATE TABLE sink (
        `key` STRING, window_start BIGINT, window_end BIGINT, `count` BIGINT, `sum` INT
    ) {_kafka(topic, bootstrap, "key", "ALL", _AT_LEAST_ONCE)}"""
    insert = f"""INSERT INTO sink
        SELECT k, {_epoch_ms("window_start")}, {_epoch_ms("window_end")},
            COUNT(*), SUM(latency_ms)
        FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), {WINDOW}))
        GROUP BY k, window_start, window_end"""
    return sink, insert


_AT_LEAST_ONCE = """,
        'sink.delivery-guarantee' = 'at-least-once'"""

STATEMENTS = {"w1": w1_statements, "w2": w2_statements}


def table_environment(connector_jar: str, parallelism: int, name: str) -> Any:
    """A streaming TableEnvironment on a local MiniCluster with the Kafka connector."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in {
        "pipeline.jars": Path(connector_jar).resolve().as_uri(),
        "pipeline.name": name,
        "parallelism.default": str(parallelism),
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
        "execution.checkpointing.mode": "AT_LEAST_ONCE",
    }.items():
        config.set_string(key, value)
    settings = EnvironmentSettings.new_instance().in_streaming_mode()
    return TableEnvironment.create(settings.with_configuration(config).build())


def _children() -> list[int]:
    """PIDs of this process's children (``/proc/self/task/*/children``)."""
    out: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def stop_jvm(pids: list[int], grace_s: float = JVM_STOP_GRACE_S) -> None:
    """SIGTERM the gateway JVM(s), reap them (SIGKILL after ``grace_s`` seconds)."""
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    pending = set(pids)
    while pending:
        for pid in list(pending):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                pending.discard(pid)
        if pending and time.monotonic() > deadline:
            for pid in pending:
                os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def first_fetch_time(log_dir: str | None) -> float | None:
    """Epoch seconds of the first :data:`FIRST_FETCH_MARK` line in Flink's logs (timestamps
    ``2026-01-01 12:00:00,123`` in local time); ``None`` when there is none."""
    if not log_dir:
        return None
    for path in sorted(Path(log_dir).glob("*.log")):
        with open(path, errors="replace") as handle:
            for line in handle:
                if FIRST_FETCH_MARK in line:
                    try:
                        stamp = time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
                        return time.mktime(stamp) + int(line[20:23]) / 1000
                    except ValueError:
                        return None
    return None


def main(argv: list[str]) -> int:
    """Run one job to its end; 0 when it FINISHED. The JVM is stopped and reaped in any case.

    Raises:
        SystemExit: unknown job.
        Exception: PyFlink's (py4j) error when a statement or the job fails.
    """
    job, bootstrap, source, sink, group, connector_jar, parallelism, result_file = argv
    if job not in STATEMENTS:
        raise SystemExit(f"unknown job {job}; known: {', '.join(STATEMENTS)}")
    status = "FAILED"
    try:
        t_env: Any = table_environment(connector_jar, int(parallelism), f"bench {job} {group}")
        sink_ddl, insert = STATEMENTS[job](sink, bootstrap)
        t_env.execute_sql(source_ddl(source, bootstrap, group))
        t_env.execute_sql(sink_ddl)
        result = t_env.execute_sql(insert)
        result.wait()  # raises when the job fails
        status = "FINISHED"
        with contextlib.suppress(Exception):
            status = result.get_job_client().get_job_status().result().name
    finally:
        jvms = _children()
        stop_jvm(jvms)
        first = first_fetch_time(os.environ.get("FLINK_LOG_DIR"))
        with open(result_file, "w") as handle:
            json.dump({"first_record": first, "status": status, "jvm_pids": jvms}, handle)
    return 0 if status == "FINISHED" else 1


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip py4j's clean-up, which would call the stopped JVM
