"""Baseline: the benchmark's W1, W2 and W3 written idiomatically with Quix Streams (3.x).

Run as its own process by the harness:

    python bench/quix_jobs.py JOB BOOTSTRAP INPUT OUTPUT GROUP STATE_DIR END_OFFSETS_JSON RESULT

- W1: ``filter`` latency_ms > 100, ``update`` adds latency_s, ``to_topic``.
- W2: ``tumbling_window(10 s, grace 3 s).agg(count=Count(), sum=Sum("latency_ms"))
  .final(closing_strategy="partition")``: windows close on the partition's event time, as a
  watermark does. RocksDB state with changelog topics, at-least-once, commit every 5 s.
- W3: W2 with ``processing_guarantee="exactly-once"``.
- W2-key: W2 with Quix's default ``closing_strategy="key"`` (a window closes when its own key
  moves past it; every key's last window stays open). Measured slower and bigger than
  "partition" on this data (job ``quix W2 key``, not run by default), so "partition" is the
  baseline.

Event time is the record's ``ts`` field (``timestamp_extractor``), as in the kstream pipelines.
The consumer gets the settings that make the local broker's group joins fast (the same values
kstream uses by default). Quix has no end-of-input mode: the job stops itself (``app.stop()``
from ``on_message_processed``) once every partition's last record has been processed; windows
still open at that point are not emitted (the verifier expects exactly the closed ones).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

CONSUMER_EXTRA = {
    "max.poll.interval.ms": 10_000,
    "session.timeout.ms": 6_000,
    "heartbeat.interval.ms": 1_000,
    "fetch.queue.backoff.ms": 10,
}
WINDOW_MS = 10_000
GRACE_MS = 3_000


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    return int(value["ts"])


def add_latency_s(value: dict[str, Any]) -> None:
    value["latency_s"] = value["latency_ms"] / 1000


def main(argv: list[str]) -> int:
    job, bootstrap, source, sink, group, state_dir, ends_json, result_file = argv
    closing = "key" if job.endswith("-key") else "partition"
    job = job.removesuffix("-key")
    from quixstreams import Application
    from quixstreams.dataframe.windows import Count, Sum

    ends = {int(p): int(o) for p, o in json.loads(ends_json).items()}
    pending = {p for p, end in ends.items() if end > 0}
    first: list[float] = []
    app: Any = None

    def processed(topic: str, partition: int, offset: int) -> None:
        if not first:
            first.append(time.time())
        if partition in pending and offset + 1 >= ends[partition]:
            pending.discard(partition)
            if not pending:
                app.stop()

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=5.0,
        consumer_extra_config=CONSUMER_EXTRA,
        state_dir=state_dir,
        processing_guarantee="exactly-once" if job == "w3" else "at-least-once",
        on_message_processed=processed,
        loglevel="WARNING",
    )
    events = app.topic(
        source, key_deserializer="str", value_deserializer="json", timestamp_extractor=event_time
    )
    output = app.topic(sink, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(events)
    if job == "w1":
        sdf = sdf.filter(lambda value: value["latency_ms"] > 100).update(add_latency_s)
    elif job in ("w2", "w3"):
        sdf = (
            sdf.tumbling_window(WINDOW_MS, grace_ms=GRACE_MS)
            .agg(count=Count(), sum=Sum("latency_ms"))
            .final(closing_strategy=closing)
        )
    else:
        raise SystemExit(f"unknown job {job}")
    sdf.to_topic(output)
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    app.run()
    with open(result_file, "w") as handle:
        json.dump({"first_record": first[0] if first else None, "pending": sorted(pending)}, handle)
    return 0 if not pending else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
