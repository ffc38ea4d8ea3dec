"""Broadcast tables (``table: {broadcast: true}``, Kafka Streams' GlobalKTable; docs/joins.md):
the plan takes them out of the stages, lookup joins read them without repartitions (through the
broker-free driver), the process's copy lives in RocksDB beyond the cache, and what validation
refuses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.errors import ConfigError
from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import JoinSpec, KeyBySpec
from kstream.runtime.broadcast import TABLE_CF, BroadcastTable, _remove_abandoned
from kstream.runtime.policy import BadRecordFailure
from kstream.state.cache import CacheBudget
from kstream.state.store import TaskStore
from kstream.testing.driver import PipelineDriver, _Message

PIPELINE = """\
pipeline: t
sources:
  - {{id: flights, topic: flights, event_time: t}}
  - id: planes
    topic: planes
    table: {{key: {key}, broadcast: true}}
operators:
  - id: j
    from: flights
    join: {{type: lookup, right: planes, on: {on}, how: {how}}}
sinks:
  - {{topic: out}}
"""


def pipeline(how: str = "left", key: str = "tailnum", on: str = "tailnum") -> str:
    return PIPELINE.format(how=how, key=key, on=on)


def years(d: PipelineDriver) -> list[tuple[Any, int, int | None]]:
    """``(record key, flight n, plane year or None)`` per output record."""
    out = []
    for r in d.output("out"):
        plane = r.value["planes"]
        out.append((r.key, r.value["n"], plane["year"] if plane else None))
    return out


def test_a_broadcast_table_is_in_no_stage_and_nothing_is_repartitioned() -> None:
    spec = load_pipeline_text(pipeline())
    assert not [op for op in spec.operators if isinstance(op, KeyBySpec)]
    join = next(op for op in spec.operators if isinstance(op, JoinSpec))
    assert (len(join.inputs), join.broadcast_table) == (1, "planes")
    plan = build_plan(spec)
    assert [[i.topic for i in s.inputs] for s in plan.stages] == [["flights"]]
    assert [s.id for s in plan.broadcast_tables] == ["planes"]


def test_each_left_record_finds_its_row_on_any_partition_and_keeps_its_key() -> None:
    """Flights on two partitions, keyed by flight number: each finds the whole table."""
    d = PipelineDriver.from_yaml(pipeline(), partitions=2)
    d.send("planes", {"tailnum": "N1", "year": 2001}, key="N1")
    d.send("planes", {"tailnum": "N2", "year": 2002}, key="N2", partition=1)
    for n, (tail, part) in enumerate([("N1", 0), ("N2", 0), ("N1", 1), ("N9", 1), (None, 0)]):
        d.send("flights", {"tailnum": tail, "t": n, "n": n}, key=f"f{n}", partition=part)
    assert sorted(years(d)) == [
        ("f0", 0, 2001),
        ("f1", 1, 2002),
        ("f2", 2, 2001),
        ("f3", 3, None),  # no such plane: how: left keeps it
        ("f4", 4, None),  # no tail number
    ]


def test_a_row_changed_or_deleted_is_seen_by_the_next_lookup() -> None:
    d = PipelineDriver.from_yaml(pipeline(how="inner"))
    d.send("planes", {"tailnum": "N1", "year": 2001}, key="N1")
    d.send("flights", {"tailnum": "N1", "t": 1, "n": 1})
    d.send("planes", {"tailnum": "N1", "year": 1999}, key="N1")
    d.send("flights", {"tailnum": "N1", "t": 2, "n": 2})
    d.send("planes", None, key="N1")  # a tombstone: the row of its Kafka key
    d.send("flights", {"tailnum": "N1", "t": 3, "n": 3})  # inner: no row, dropped
    assert [(n, year) for _, n, year in years(d)] == [(1, 2001), (2, 1999)]


def test_a_composite_key_is_looked_up_as_the_table_keys_it() -> None:
    d = PipelineDriver.from_yaml(pipeline(key='"[carrier, tailnum]"', on='"[carrier, tailnum]"'))
    d.send("planes", {"carrier": "UA", "tailnum": "N1", "year": 2001})
    d.send("flights", {"carrier": "UA", "tailnum": "N1", "t": 1, "n": 1})
    d.send("flights", {"carrier": "AA", "tailnum": "N1", "t": 2, "n": 2})
    assert [(n, year) for _, n, year in years(d)] == [(1, 2001), (2, None)]


def test_a_bad_table_record_follows_the_sources_policy() -> None:
    skip = pipeline().replace("    topic: planes\n", "    topic: planes\n    on_error: skip\n")
    d = PipelineDriver.from_yaml(skip)
    d.send("planes", b"{not json", key="N1")
    d.send("planes", {"tailnum": "N1", "year": 2001}, key="N1")
    d.send("flights", {"tailnum": "N1", "t": 1, "n": 1})
    assert [year for _, _, year in years(d)] == [2001]
    assert d.broadcast["planes"].counters["skipped"] == 1
    with pytest.raises(BadRecordFailure, match=r"bad record at planes\[0\]@0"):
        PipelineDriver.from_yaml(pipeline()).send("planes", b"{not json", key="N1")


def test_the_processs_copy_lives_in_rocksdb_beyond_its_cache(tmp_path: Path) -> None:
    """3,000 rows through a 20 KB cache: every row read back from RocksDB."""
    spec = load_pipeline_text(pipeline())
    source = build_plan(spec).broadcast_tables[0]
    db = TaskStore(tmp_path / "planes", [TABLE_CF])
    table = BroadcastTable(source, spec, db, CacheBudget(20_000))
    batch = [
        _Message(None, orjson.dumps({"tailnum": f"N{i}", "year": i}), 0, i, None, "planes", 0)
        for i in range(3_000)
    ]
    table.apply(batch[:1_500])
    table.apply(batch[1_500:])
    assert table.store.cached() < 3_000 * 0.5
    assert all(table.get(f"N{i}") == {"tailnum": f"N{i}", "year": i} for i in range(3_000))
    assert sum(1 for _ in db.items(TABLE_CF)) == 3_000
    table.close()


def test_directories_of_dead_processes_are_removed(tmp_path: Path) -> None:
    mine = tmp_path / f"p{os.getpid()}.abc"
    dead = tmp_path / "p999999999.abc"  # above any pid_max
    for path in (mine, dead):
        (path / "planes" / "db").mkdir(parents=True)
    _remove_abandoned(tmp_path)
    assert mine.exists() and not dead.exists()


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    return str(info.value)


def test_a_broadcast_table_serves_lookup_joins_only() -> None:
    text = pipeline().replace("broadcast: true", "broadcast: true, versioned: 1d")
    shown = errors(text.replace("type: lookup", "type: temporal"))
    assert "broadcast table 'planes' is read by temporal join 'j'" in shown
    assert "broadcast table 'planes' cannot keep versions" in shown and "<string>:6:" in shown


def test_a_broadcast_table_has_no_dead_letter_topic() -> None:
    text = pipeline().replace(
        "    topic: planes\n",
        "    topic: planes\n    on_error: dead_letter\n    dead_letter_topic: bad\n",
    )
    shown = errors(text)
    assert "read outside the job's transactions" in shown and "use on_error: skip" in shown
