"""A union of topics with different partition counts on a real broker: the planner repartitions
the other source into a topic of the union's stage count (kstream.pipeline.rebalance), so a YAML
union and a SQL UNION ALL of a 4-partition and a 1-partition topic give every record once, with
its key, in a bounded, exactly-once run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from clikit import kstream, unique

pytestmark = pytest.mark.integration

PIPELINE = """
pipeline: {name}
checkpoint: {{interval: 1s}}
sources:
  - {{topic: {wide}, event_time: ts, watermark: {{max_out_of_orderness: 1h}}}}
  - {{topic: {narrow}, event_time: ts, watermark: {{max_out_of_orderness: 1h}}}}
operators:
  - {{id: slow, from: {wide}, filter: "n % 2 == 0"}}
  - {{id: both, union: [slow, {narrow}]}}
sinks:
  - {{topic: {name}-out, from: both}}
"""

SQL = """
SET 'pipeline.name' = '{name}';
CREATE TABLE narrow (k STRING, n BIGINT, ts_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' HOUR
) WITH ('connector' = 'kafka', 'topic' = '{narrow}', 'format' = 'json',
  'scan.startup.mode' = 'earliest-offset');
CREATE TABLE wide (k STRING, n BIGINT, ts_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' HOUR
) WITH ('connector' = 'kafka', 'topic' = '{wide}', 'format' = 'json',
  'scan.startup.mode' = 'earliest-offset');
CREATE TABLE out (src STRING, k STRING, n BIGINT)
WITH ('connector' = 'kafka', 'topic' = '{name}-out', 'format' = 'json');
INSERT INTO out
SELECT 'narrow', k, n FROM narrow
UNION ALL SELECT 'wide', k, n FROM wide WHERE n % 2 = 0;
"""


def produce(broker: str, tmp_path: Path, topic: str, count: int, partitions: int) -> None:
    data = tmp_path / f"{topic}.jsonl"
    rows = ({"k": f"k{n % 13}", "n": n, "ts": 1_000 * n, "ts_ms": 1_000 * n} for n in range(count))
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    kstream("produce", topic, str(data), "--key", "k", "--partitions", str(partitions),
            "--bootstrap-servers", broker)  # fmt: skip


def read_out(broker: str, topic: str) -> list[tuple[str, dict[str, int | str]]]:
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "3",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    records = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    return [(r["key"], r["value"]) for r in records]


def test_a_yaml_union_of_four_and_one_partitions_gives_every_record(
    broker: str, tmp_path: Path
) -> None:
    name, wide, narrow = unique("union4x1"), unique("wide"), unique("narrow")
    produce(broker, tmp_path, wide, 2_000, partitions=4)
    produce(broker, tmp_path, narrow, 500, partitions=1)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(name=name, wide=wide, narrow=narrow))
    plan = kstream("plan", str(path), "--output", "text").stdout
    assert "both.input1: key_by (record key) <- " + narrow in plan
    kstream("run", str(path), "--bounded", "--state-dir", str(tmp_path / "s"),
            "--bootstrap-servers", broker)  # fmt: skip
    got = Counter((key, value["n"]) for key, value in read_out(broker, f"{name}-out"))
    want = Counter([(f"k{n % 13}", n) for n in range(0, 2_000, 2)])
    want.update((f"k{n % 13}", n) for n in range(500))
    assert got == want


def test_a_sql_union_all_whose_first_table_has_fewer_partitions(
    broker: str, tmp_path: Path
) -> None:
    """The union's stage takes the first table's count (1): the 4-partition table is
    repartitioned into one partition; its single partition holds more records than a task
    buffers before pausing the input (20 000)."""
    name, wide, narrow = unique("union1x4"), unique("wide"), unique("narrow")
    produce(broker, tmp_path, narrow, 30_000, partitions=1)
    produce(broker, tmp_path, wide, 2_000, partitions=4)
    path = tmp_path / "job.sql"
    path.write_text(SQL.format(name=name, wide=wide, narrow=narrow))
    kstream("run", str(path), "--bounded", "--state-dir", str(tmp_path / "s"),
            "--bootstrap-servers", broker)  # fmt: skip
    got = Counter((v["src"], v["n"]) for _, v in read_out(broker, f"{name}-out"))
    want = Counter([("narrow", n) for n in range(30_000)])
    want.update(("wide", n) for n in range(0, 2_000, 2))
    assert got == want
