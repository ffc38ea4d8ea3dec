"""Reproduces the local broker's stuck last stable offset without kstream (docs/fault-tolerance.md).

    python tests/chaos/broker_lso_repro.py --producers 2 --kills 25

Starts a fresh local broker, runs ``--producers`` processes that each commit transactions of 200
records over a 4-partition topic in a loop, SIGKILLs and restarts one of them at random every
0.3-2 s, then stops them all and calls ``init_transactions`` for every transactional id (which
must abort anything left open). It prints, per partition, how far a ``read_committed`` reader
gets against a ``read_uncommitted`` one. Measured on Tansu 0.6.0: with 2 or 3 producers every
partition stops hundreds of thousands of records short; with 1 producer, or without kills, none.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checks import read_until_quiet

from kstream.io.kafka import Admin, TopicConfig
from kstream.tools.tansu import TansuBroker

PARTITIONS = 4
PRODUCER = r"""
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": sys.argv[2], "linger.ms": 5})
p.init_transactions(30)
while True:
    p.begin_transaction()
    for i in range(200):
        p.produce("t", b"x", partition=i % 4)
    p.commit_transaction(30)
"""


def readable(bootstrap: str, partition: int, isolation: str, settle_s: float = 2.0) -> int:
    """The next offset after the last record a reader with ``isolation`` gets."""
    return max(read_until_quiet(bootstrap, "t", partition, isolation, settle_s), default=-1) + 1


def run(bootstrap: str, producers: int, kills: int, seed: int) -> list[tuple[int, int, int]]:
    """Returns (partition, read_committed end, read_uncommitted end) per partition."""
    Admin(bootstrap).ensure_topics([TopicConfig("t", PARTITIONS)])
    rng = random.Random(seed)

    def start(tid: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", PRODUCER, bootstrap, tid])

    procs = {f"p{n}": start(f"p{n}") for n in range(producers)}
    for _ in range(kills):
        time.sleep(rng.uniform(0.3, 2.0))
        tid = rng.choice(sorted(procs))
        procs[tid].send_signal(signal.SIGKILL)
        procs[tid].wait()
        procs[tid] = start(tid)
    time.sleep(5)
    for proc in procs.values():
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for tid in procs:  # aborts whatever each id left open
        Producer({"bootstrap.servers": bootstrap, "transactional.id": tid}).init_transactions(30)
    return [
        (p, readable(bootstrap, p, "read_committed"), readable(bootstrap, p, "read_uncommitted"))
        for p in range(PARTITIONS)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp(prefix="lso-repro-")) / "broker.log"
    broker = TansuBroker(log_path=log).start()
    try:
        rows = run(broker.bootstrap, args.producers, args.kills, args.seed)
    finally:
        broker.stop()
    stuck = 0
    for p, committed, uncommitted in rows:
        stuck += committed < uncommitted
        print(f"partition {p}: read_committed reads to {committed:,} of {uncommitted:,}")
    print(f"{stuck} of {PARTITIONS} partitions stuck")
    return 1 if stuck else 0


if __name__ == "__main__":
    sys.exit(main())
