"""A bounded run of a topic written with transactions ends (a real broker).

A transactional producer ends each transaction with a commit or abort marker: an offset that
holds no record, so a bounded run's last record is at ``end offset - 2`` or earlier and its
position never reaches the end offset by records alone. The consumer's partition EOF says the
input was delivered to the end (:meth:`kstream.runtime.task.Task.reached_partition_end`); the
input ends once every delivered record was taken. Without it a bounded job reading another
kstream job's exactly-once output waited forever; a union of such a topic with another one
must also end without losing the records the task still buffered when the EOF came.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from clikit import kstream, unique
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration

#: a bounded run that hangs is killed after this long (and the test fails)
RUN_TIMEOUT_S = 180
FINISHED = re.compile(r"finished: ([\d,]+) records in, ([\d,]+) out")
PIPELINE = """
pipeline: {name}
checkpoint: {{interval: 1s}}
sources:
  - {{topic: {source}, event_time: ts, watermark: {{max_out_of_orderness: 1h}}}}
operators:
  - {{id: even, filter: "n % 2 == 0"}}
sinks:
  - {{topic: {sink}, from: even}}
"""


UNION = """
pipeline: {name}
checkpoint: {{interval: 1s}}
sources:
  - {{topic: {first}, event_time: ts, watermark: {{max_out_of_orderness: 1h}}}}
  - {{topic: {second}, event_time: ts, watermark: {{max_out_of_orderness: 1h}}}}
operators:
  - {{id: both, union: [{first}, {second}]}}
sinks:
  - {{topic: {sink}, from: both}}
"""


def bounded_run(
    broker: str, tmp_path: Path, source: str, sink: str, pipeline: str = PIPELINE, **names: str
) -> tuple[int, int]:
    """Run the job ``pipeline`` (by default the filter over ``source``) into ``sink`` with
    ``--bounded``: (records in, out)."""
    name = unique("bounded-txn")
    path = tmp_path / f"{name}.yaml"
    path.write_text(pipeline.format(name=name, source=source, sink=sink, **names))
    done = kstream(
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / name),
        "--bootstrap-servers", broker, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    match = FINISHED.search(done.stderr)
    assert match, done.stderr[-2000:]
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def read_values(broker: str, topic: str) -> list[dict[str, int]]:
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "3",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    return [orjson.loads(line)["value"] for line in out.splitlines() if line.strip()]


def test_a_bounded_job_reads_another_jobs_exactly_once_output_to_its_end(
    broker: str, tmp_path: Path
) -> None:
    source, middle, last = unique("txn-src"), unique("txn-mid"), unique("txn-out")
    data = tmp_path / "rows.jsonl"
    data.write_bytes(
        b"".join(orjson.dumps({"k": f"k{n % 7}", "n": n, "ts": 1_000 * n}) + b"\n"
                 for n in range(1_000))
    )  # fmt: skip
    kstream("produce", source, str(data), "--key", "k", "--partitions", "2",
            "--bootstrap-servers", broker)  # fmt: skip
    assert bounded_run(broker, tmp_path, source, middle) == (1_000, 500)
    # the middle topic ends with commit markers: the second job must end all the same
    assert bounded_run(broker, tmp_path, middle, last) == (500, 500)
    assert Counter(v["n"] for v in read_values(broker, last)) == Counter(range(0, 1_000, 2))


def produce_rows(broker: str, tmp_path: Path, topic: str, numbers: range) -> None:
    data = tmp_path / f"{topic}.jsonl"
    data.write_bytes(
        b"".join(orjson.dumps({"k": f"k{n % 7}", "n": n, "ts": 1_000 * n}) + b"\n"
                 for n in numbers)
    )  # fmt: skip
    kstream("produce", topic, str(data), "--key", "k", "--partitions", "2",
            "--bootstrap-servers", broker)  # fmt: skip


def test_a_union_with_an_exactly_once_output_ends_with_every_record(
    broker: str, tmp_path: Path
) -> None:
    """A task of two source inputs buffers each one's records and takes them lowest timestamp
    first: the transactional input's EOF can come while its records wait in that buffer, and
    they must still all be taken before the input ends (earlier, wrong fix: a lost partition)."""
    source, middle, plain, last = (unique(n) for n in ("u-src", "u-mid", "u-plain", "u-out"))
    produce_rows(broker, tmp_path, source, range(2_000))
    produce_rows(broker, tmp_path, plain, range(10_000, 13_000))
    assert bounded_run(broker, tmp_path, source, middle) == (2_000, 1_000)
    got = bounded_run(broker, tmp_path, "", last, UNION, first=middle, second=plain)
    assert got == (4_000, 4_000)
    want = Counter([*range(0, 2_000, 2), *range(10_000, 13_000)])
    assert Counter(v["n"] for v in read_values(broker, last)) == want


def test_a_bounded_run_ends_after_an_aborted_transaction(broker: str, tmp_path: Path) -> None:
    """Committed records, then an aborted transaction: the end offset is past the aborted
    records and their marker; the run reads the committed ones and ends."""
    source, sink = unique("txn-aborted"), unique("txn-aborted-out")
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics([NewTopic(source, num_partitions=1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": broker, "transactional.id": unique("txn")})
    producer.init_transactions(30)
    for n, commit in ((0, True), (10, False)):
        producer.begin_transaction()
        for i in range(n, n + 10):
            producer.produce(source, orjson.dumps({"n": i, "ts": 1_000 * i}), key=b"k")
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(30)
            producer.abort_transaction(30)
    assert bounded_run(broker, tmp_path, source, sink) == (10, 5)
    assert sorted(v["n"] for v in read_values(broker, sink)) == [0, 2, 4, 6, 8]
