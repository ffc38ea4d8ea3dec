"""Chaos suite: kill kstream workers at random instants and at every named checkpoint/restore
step, restart them, add and remove a worker, freeze and (on Apache Kafka) kill and restart the
broker, make a zombie of a worker, then verify exactly-once results.

    python tests/chaos/harness.py --kills 30                 # `make chaos` (Apache Kafka)
    python tests/chaos/harness.py --kills 30 --broker tansu  # on the embedded Tansu broker
    python tests/chaos/harness.py --workload process         # a process function with timers
    python tests/chaos/harness.py --workload join            # an interval join, then windows
    run_chaos(ChaosConfig(kills=6, ...))                      # the subset inside `make test`

Workloads (same input, same stage layout ``chaos-in`` -> ``key_by`` ``by-key``): ``window``
(tests/chaos/workload.py, the default), 10 s tumbling windows; ``process``
(tests/chaos/process_workload.py), a keyed process function with map, value and list state whose
event-time timers emit each window's count, sum and running sum; ``join``
(tests/chaos/join_workload.py), an interval join of the odd and the even records of a key, then
10 s windows of the pairs.

Checks (tests/chaos/checks.py): every (key, window) result equals the independent truth (none
missing, none inflated, none duplicated on Apache Kafka, where every reader is read_committed);
no worker commits an offset below one committed before; the state of every keyed task (the
windows, or the process function's states) equals the truth at its checkpointed position.
Prints e.g. ``kafka: 38 kills (6 during commit; ...); 1 broker restarts, 1 zombies (1 fenced), 1
broker pauses: 0 lost, 0 inflated, 0 duplicated, 0 wrong of 10124 windows, 0 offset
regressions, 0 state mismatches, restore p95 0.5 s``.

A zombie is a worker SIGSTOPped while it holds an open transaction, past its session timeout,
until another worker has taken one of its tasks over; then it is SIGCONTed: its late commit must
be fenced (the new owner's ``init_transactions`` bumped the producer epoch; KIP-447 checks the
consumer generation of its offsets). On Apache Kafka every worker has a state directory of its
own (machines of their own: a moved task is restored from its changelog); on Tansu they share
one (its changelogs can hold aborted entries). Tansu keeps data in memory only and has no
fencing, so it is frozen rather than restarted and gets no zombie.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import join_workload
import process_workload
import workload
from checks import (
    PARTITIONS,
    OffsetMonitor,
    assignment_counts,
    classify_regressions,
    recently_committed_tasks,
    restore_times,
    stable_offsets,
    verify_sink,
    verify_state,
)
from result import ChaosConfig, ChaosResult

from kstream.io.kafka import Admin, TopicConfig
from kstream.tools import BrokerProcess, new_broker

CHECKPOINT_STEPS = [
    "flush_outputs",
    "produce_changelog",
    "send_offsets",
    "write_prepared",
    "commit",
    "apply_local",
]
RESTORE_STEPS = ["restore_start"]
#: ``--workload``: a tumbling window (the default), or a keyed process function with state and
#: event-time timers; both read the same input and name their repartition stage ``by-key``
WORKLOADS = {"window": workload, "process": process_workload, "join": join_workload}
KSTREAM = str(Path(sys.executable).with_name("kstream"))
#: what a zombie's log shows once it learnt it lost its tasks or was fenced
_FENCED = re.compile(rb"fenced by a newer owner|checkpoint on release failed")


class Worker:
    """One ``kstream run`` process."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        pipeline: Path,
        state_dir: Path,
        logs: Path,
        fault: str | None = None,
    ) -> None:
        self.name, self.fault = name, fault
        env = dict(os.environ)
        env.pop("KSTREAM_FAULT", None)
        if fault:
            env["KSTREAM_FAULT"] = fault
        self.log = logs / f"{name}-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen(
            [
                KSTREAM,
                "run",
                str(pipeline),
                "--bootstrap-servers",
                bootstrap,
                "--state-dir",
                str(state_dir),
                "-v",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115 - the child owns it until exit
            env=env,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def _produce_gradually(
    bootstrap: str, evs: list[workload.Event], duration_s: float, done: threading.Event
) -> None:
    # idempotent: a broker restart must not duplicate input records through client retries
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
            "log_level": 0,  # quiet while the broker restarts
        }
    )
    step = max(1, len(evs) // max(1, int(duration_s * 20)))
    for start in range(0, len(evs), step):
        for e in evs[start : start + step]:
            value = orjson.dumps({"key": e.key, "ts": e.ts, "v": e.v})
            producer.produce("chaos-in", value, e.key.encode(), e.partition, timestamp=e.ts)
        producer.poll(0)
        time.sleep(0.05)
    producer.flush(30)
    done.set()


class Chaos:
    """Runs the workers, the kill schedule and the broker faults."""

    def __init__(self, cfg: ChaosConfig, broker: BrokerProcess, workdir: Path) -> None:
        self.cfg, self.broker, self.bootstrap = cfg, broker, broker.bootstrap
        self.rng = random.Random(cfg.seed)
        self.logs, self.state = workdir / "logs", workdir / "state"
        shared = cfg.shared_state if cfg.shared_state is not None else cfg.engine == "tansu"
        self.shared_state = shared
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pipeline = workdir / "chaos.yaml"
        load = WORKLOADS[cfg.workload]
        self.pipeline.write_text(load.pipeline(cfg.engine))
        for file in load.FILES:
            shutil.copy(file, workdir / file.name)
        self.workers: dict[str, Worker] = {}
        self.result = ChaosResult(engine=cfg.engine)
        #: (zombie's log, its size when it was SIGCONTed)
        self.zombie_logs: list[tuple[Path, int]] = []

    def start(self, name: str, fault: str | None = None) -> None:
        state = self.state if self.shared_state else self.state / name
        self.workers[name] = Worker(name, self.bootstrap, self.pipeline, state, self.logs, fault)

    def state_dirs(self) -> list[Path]:
        """Every state directory the workers used."""
        return [self.state] if self.shared_state else sorted(self.state.glob("w*"))

    def reap(self) -> None:
        """Count workers that killed themselves at a fault point and restart them normally."""
        for name, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is None:
                continue
            if code == -signal.SIGKILL and worker.fault:
                self.result.kills += 1
                step = worker.fault.split(":")[0]
                self.result.fault_hits[step] = self.result.fault_hits.get(step, 0) + 1
                if step in CHECKPOINT_STEPS:
                    self.result.during_commit += 1
            elif code not in (0, -signal.SIGKILL, -signal.SIGTERM):
                print(f"worker {name} exited {code}; log {worker.log}", file=sys.stderr)
            if name != "w3":
                self.start(name)
            else:
                del self.workers[name]

    def actions(self) -> list[str]:
        faults = [f"fault:{s}" for s in CHECKPOINT_STEPS + RESTORE_STEPS]
        random_kills = max(0, self.cfg.kills - len(faults))
        # fault points first, while input still flows (a checkpoint with nothing new to commit
        # runs no step), then random kills; a worker is added and later removed
        armed = faults[: self.cfg.kills]
        self.rng.shuffle(armed)
        plan = armed + ["kill"] * random_kills
        if not self.cfg.faults_first:
            self.rng.shuffle(plan)
        plan.insert(len(plan) // 3, "add")
        plan.insert(2 * len(plan) // 3, "remove")
        # the zombie first, while input still flows (a zombie with nothing left to commit proves
        # nothing), then the broker's faults
        broker_faults = []
        if self.cfg.engine == "kafka":
            broker_faults += ["zombie"] * self.cfg.zombies
            broker_faults += ["restart"] * self.cfg.broker_restarts
        broker_faults += ["pause"] * self.cfg.broker_pauses
        for n, fault in enumerate(broker_faults):
            plan.insert((n + 1) * len(plan) // (len(broker_faults) + 1), fault)
        return plan

    def act(self, action: str) -> None:
        if action == "add":
            self.start("w3")
        elif action == "pause":
            # the broker keeps its connections and data while frozen: members are evicted
            self.broker.pause()
            time.sleep(self.cfg.pause_s)
            self.broker.resume()
            self.result.broker_pauses += 1
        elif action == "restart":
            self.broker.kill()
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.broker.restart()
            self.result.broker_restarts += 1
        elif action == "zombie":
            self.zombie()
        elif action == "remove":
            # removed with SIGKILL: a graceful leave (SIGTERM -> LeaveGroup) in the middle of a
            # kill storm has left Tansu's group without assignments (three times out of ~12
            # runs); see docs/fault-tolerance.md
            if "w3" in self.workers and self.cfg.kill_on_remove:
                self.workers.pop("w3").kill()
                self.result.kills += 1
            elif "w3" in self.workers:
                self.workers.pop("w3").stop()
        else:
            self.kill_one(action)

    def unarmed(self) -> list[str]:
        """The steady workers not armed with a fault point (spared, so they get to reach it)."""
        return [n for n in ("w1", "w2") if n in self.workers and not self.workers[n].fault]

    def kill_one(self, action: str) -> None:
        # both steady workers may still be armed (restoring, or not yet at their fault point):
        # wait up to cfg.unarmed_wait_s for one to hit it and come back unarmed
        deadline = time.monotonic() + self.cfg.unarmed_wait_s
        while not self.unarmed() and time.monotonic() < deadline:
            self.wait(0.2)
        unarmed = self.unarmed()
        if not unarmed:
            return
        name = self.rng.choice(unarmed)
        self.workers[name].kill()
        self.result.kills += 1
        fault = None
        if action.startswith("fault:"):
            nth = 1 if self.cfg.faults_first else self.rng.randint(1, 2)
            fault = f"{action.split(':')[1]}:{nth}"
            step = action.split(":")[1]
            self.result.faults_armed[step] = self.result.faults_armed.get(step, 0) + 1
        time.sleep(self.rng.uniform(0.1, 1.0))
        self.start(name, fault)

    def assignments_elsewhere(self, zombie: Worker, tasks: set[str]) -> dict[str, int]:
        """How often each of ``tasks`` was assigned in every log but the zombie's."""
        logs = [log.read_bytes() for log in self.logs.glob("*.log") if log != zombie.log]
        return assignment_counts(logs, tasks)

    def working(self) -> list[Worker]:
        """Alive steady workers committing checkpoints right now (their log's last commits name
        tasks and it was written in the last 2 s), unarmed ones first."""
        now = time.time()
        found = [
            w
            for n in ("w1", "w2")
            if (w := self.workers.get(n)) is not None
            and w.alive()
            and now - w.log.stat().st_mtime < 2.0
            and recently_committed_tasks(w.log.read_bytes(), lines=8)
        ]
        return sorted(found, key=lambda w: w.fault is not None)

    def zombie(self) -> None:
        """SIGSTOP a working worker (it holds open transactions with outputs) until another
        has taken one of its tasks over, then SIGCONT it: what it then tries to commit must be
        fenced. Waits up to 60 s for a working worker (one may be restoring); a worker that
        dies before it is frozen (its armed fault point killed it) is restarted by the main
        loop like any other, and another one is tried."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            candidates = self.working()
            if candidates and self._freeze(candidates[0]):
                return
            self.reap()
            time.sleep(0.5)
        print("no working worker to make a zombie of", file=sys.stderr)

    def _freeze(self, worker: Worker) -> bool:
        """Make ``worker`` a zombie; False when it exited before it could be frozen."""
        # freeze it half a checkpoint interval after a commit: its open transaction then holds
        # the outputs of the records it read since (frozen right after a commit, it would have
        # nothing to commit, and nothing to be refused)
        size = worker.log.stat().st_size
        deadline = time.monotonic() + 5
        while worker.log.stat().st_size == size and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        tasks = recently_committed_tasks(worker.log.read_bytes(), lines=8)
        before = self.assignments_elsewhere(worker, tasks)
        if worker.proc.poll() is not None:
            print("the chosen worker exited before it could be frozen", file=sys.stderr)
            return False
        os.kill(worker.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + self.cfg.zombie_wait_s
        while time.monotonic() < deadline:
            self.reap()
            if self.assignments_elsewhere(worker, tasks) != before:
                break
            time.sleep(0.5)
        try:
            os.kill(worker.proc.pid, signal.SIGCONT)
        except ProcessLookupError:  # it exited before the SIGSTOP landed and was reaped
            print("the frozen worker had already exited", file=sys.stderr)
            return False
        self.zombie_logs.append((worker.log, worker.log.stat().st_size))
        self.result.zombies += 1
        return True

    def count_fenced_zombies(self) -> None:
        for log, offset in self.zombie_logs:
            if _FENCED.search(log.read_bytes()[offset:]):
                self.result.zombies_fenced += 1

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.reap()
            time.sleep(0.2)

    def stop_all(self) -> None:
        for worker in self.workers.values():
            worker.stop()


def run_chaos(cfg: ChaosConfig) -> ChaosResult:
    """Run the whole suite against a fresh local broker of ``cfg.engine``; returns the verified
    result."""
    workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="kstream-chaos-"))
    data_dir = workdir / "broker-data" if cfg.engine == "kafka" else None
    broker = new_broker(cfg.engine, log_path=workdir / "broker.log", data_dir=data_dir).start()
    try:
        return _run(cfg, broker, workdir)
    finally:
        broker.stop()


def _run(cfg: ChaosConfig, broker: BrokerProcess, workdir: Path) -> ChaosResult:
    bootstrap = broker.bootstrap
    Admin(bootstrap).ensure_topics([TopicConfig("chaos-in", PARTITIONS)])
    load = WORKLOADS[cfg.workload]
    evs = workload.events(cfg.keys, cfg.per_key, PARTITIONS, cfg.seed)
    expected = load.truth(evs)
    chaos = Chaos(cfg, broker, workdir)
    chaos.start("w1")
    chaos.start("w2")
    monitor = OffsetMonitor(bootstrap, ["chaos-in", "chaos.by-key.repartition"])
    monitor.start()
    done = threading.Event()
    feed = evs + workload.flush_events(evs, PARTITIONS)
    threading.Thread(
        target=_produce_gradually, args=(bootstrap, feed, cfg.duration_s, done), daemon=True
    ).start()
    plan = chaos.actions()
    for action in plan:
        chaos.wait(cfg.duration_s / (len(plan) + 1))
        chaos.act(action)
    done.wait()
    deadline = time.monotonic() + cfg.finish_timeout_s
    while time.monotonic() < deadline:
        chaos.wait(5)
        if verify_sink(bootstrap, expected, ChaosResult(), load) == len(expected):
            break
    chaos.stop_all()
    monitor.stopped.set()
    monitor.join(10)
    result = chaos.result
    result.unit = load.UNIT
    verify_sink(bootstrap, expected, result, load)
    verify_state(feed, chaos.state_dirs(), result, load)
    classify_regressions(monitor, chaos.logs, result, broker_may_reapply=cfg.engine == "tansu")
    chaos.count_fenced_zombies()
    result.restore_times = restore_times(chaos.logs)
    result.workdir = str(workdir)
    if result.lost:
        for topic in ("chaos.by-key.repartition", "chaos-out"):
            result.diagnosis += stable_offsets(bootstrap, topic)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        default="window",
        help="window: a tumbling window; process: a keyed process function with timers; "
        "join: an interval join of the records by parity, then windows of the pairs",
    )
    parser.add_argument(
        "--unarmed-wait",
        type=float,
        default=None,
        help="seconds a planned kill waits for a worker not armed with a fault point "
        "(default: 0 for window, as before; 10 for process and join, so every step is hit)",
    )
    parser.add_argument(
        "--broker",
        choices=("kafka", "tansu"),
        default=os.environ.get("KSTREAM_TEST_BROKER", "kafka"),
    )
    args = parser.parse_args()
    cfg = ChaosConfig(
        kills=args.kills,
        duration_s=args.duration,
        seed=args.seed,
        engine=args.broker,
        workload=args.workload,
        unarmed_wait_s=(
            args.unarmed_wait
            if args.unarmed_wait is not None
            else (0.0 if args.workload == "window" else 10.0)
        ),
    )
    result = run_chaos(cfg)
    print(result.line())
    problems = result.offset_regressions + result.state_mismatches + result.diagnosis
    for problem in problems[:30] + [f"broker: {x}" for x in result.stale_offset_applies]:
        print("  " + problem)
    if not result.ok:
        print(f"  worker and broker logs: {result.workdir}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
