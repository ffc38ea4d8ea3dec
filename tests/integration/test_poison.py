"""Bad input end to end, through ``kstream run`` against the session's broker.

``dead_letter``: 100,000 readings of which 1,000 are poison of every kind (poisonkit.POISON);
the dead-letter topic must hold exactly those 1,000, as produced, with headers naming the
error and the record's origin, and the window results must equal a plain-Python computation
over the 99,000 good records.

``fail``: the job stops at the first bad record, naming it, without committing past it; after
the policy is fixed, a restart continues from that record.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from poisonkit import (
    POISON,
    headers,
    kstream,
    kstream_argv,
    make_stream,
    pipeline_yaml,
    produce_raw,
    read_topic,
    records_in,
    results,
    truth,
    unique,
)

from kstream.io import kafka

pytestmark = pytest.mark.integration


def test_dead_letter_holds_exactly_the_poison_and_results_match(
    broker: str, tmp_path: Path
) -> None:
    name, source = unique("poison"), unique("readings")
    records, bad, goods = make_stream(100_000, 1_000)
    assert len(goods) == 99_000 and set(bad.values()) == set(POISON)
    produce_raw(broker, source, records)
    policy = f"on_error: dead_letter\n    dead_letter_topic: {source}-dlq"
    path = tmp_path / "p.yaml"
    path.write_text(pipeline_yaml(name, source, f"{name}-out", policy))
    run = kstream(
        "run",
        str(path),
        "--bounded",
        "--state-dir",
        str(tmp_path / "state"),
        "--bootstrap-servers",
        broker,
    )
    assert records_in(run.stderr) == 100_000
    assert "1,000 dead-lettered" in run.stderr, run.stderr

    letters = read_topic(broker, f"{source}-dlq")
    by_offset = {int(headers(m)["kstream.source.offset"]): m for m in letters}
    assert len(letters) == len(by_offset) == 1_000
    assert sorted(by_offset) == sorted(bad)
    for offset, msg in by_offset.items():
        raw_key, raw_value, ts = records[offset]
        _, stage, cls, operator = POISON[bad[offset]]
        h = headers(msg)
        assert (msg.key(), msg.value()) == (raw_key, raw_value), bad[offset]
        assert (h["kstream.error.stage"], h["kstream.error.class"]) == (stage, cls), bad[offset]
        assert h["kstream.error.operator"] == operator, bad[offset]
        assert (h["kstream.source.topic"], h["kstream.source.partition"]) == (source, "0")
        assert h["kstream.source.timestamp"] == str(ts) and h["kstream.error.message"]
    assert Counter(headers(m)["kstream.error.stage"] for m in letters) == Counter(
        POISON[kind][1] for kind in bad.values()
    )
    assert results(read_topic(broker, f"{name}-out")) == truth(goods)

    tail = kstream(
        "tail",
        f"{source}-dlq",
        "--from-beginning",
        "--max",
        "3",
        "--output",
        "jsonl",
        "--bootstrap-servers",
        broker,
    )
    for line in tail.stdout.splitlines():
        error = orjson.loads(line)["error"]
        assert error["source"].startswith(f"{source}[0]@") and error["stage"] in (
            "deserialize",
            "timestamp",
            "expression",
            "produce",
        )


def _committed(broker: str, group: str, topic: str) -> int | None:
    consumer = kafka.new_consumer(kafka.consumer_config(broker, group, {}))
    try:
        return kafka.committed_offsets(consumer, topic, [0])[0]
    finally:
        consumer.close()


def _wait_committed(
    broker: str, group: str, topic: str, offset: int, proc: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + 60
    while _committed(broker, group, topic) != offset:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{group} never committed {topic}@{offset}"
        time.sleep(0.3)


def test_fail_stops_at_the_bad_record_and_a_restart_continues_from_it(
    broker: str, tmp_path: Path
) -> None:
    name, source = unique("failing"), unique("readings")
    records, _, goods = make_stream(3_000, 0, seed=9)
    first, rest = records[:1_500], records[1_500:]
    poison = (b"s01", orjson.dumps({**goods[1_500], "scale": 0}), rest[0][2])
    produce_raw(broker, source, first)
    path, state = tmp_path / "p.yaml", str(tmp_path / "state")
    path.write_text(pipeline_yaml(name, source, f"{name}-out", "on_error: fail", "200ms"))
    argv = [*kstream_argv(), "run", str(path), "--state-dir", state, "--bootstrap-servers", broker]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_committed(broker, name, source, 1_500, proc)
        time.sleep(2)  # the second stage checkpoints what the first one sent it
        produce_raw(broker, source, [poison, *rest])
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(
        f"error: bad record at {source}[0]@1500 (expression): operator 'enrich': "
    )
    assert "division by zero" in line
    assert _committed(broker, name, source) == 1_500  # not past the bad record

    fixed = f"on_error: dead_letter\n    dead_letter_topic: {source}-dlq"
    path.write_text(pipeline_yaml(name, source, f"{name}-out", fixed, "200ms"))
    run = kstream(
        "run", str(path), "--bounded", "--state-dir", state, "--bootstrap-servers", broker
    )
    assert records_in(run.stderr) == 1_501  # from the bad record on
    (letter,) = read_topic(broker, f"{source}-dlq")
    assert headers(letter)["kstream.source.offset"] == "1500" and letter.value() == poison[1]
    assert results(read_topic(broker, f"{name}-out")) == truth(goods)
