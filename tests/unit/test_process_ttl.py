"""State TTL of process functions (``state: {name: {kind, ttl, time}}``): event-time and
processing-time expiry on the driver, reads that never return an expired entry, writes that
restamp (reads do not), the sweep's deletes in the checkpoint change set, and stamps across a
checkpoint restore (kept, added, removed, domain changed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from process_kit import KEYS, write_process_savepoint
from process_kit import PIPELINE as PROCESS_KIT

from kstream.errors import ConfigError
from kstream.graph.plan import build_plan
from kstream.io.partitioner import partition_for
from kstream.operators.process_state import KeyedStateBackend
from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import open_savepoint
from kstream.savepoint.reshard import SavepointSeed
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: ttl
sources:
  - {topic: events, event_time: {field: ts}}
operators:
  - key_by: k
  - id: fn
    process:
      python: ttl_udfs:Remember
      state:
        last: {kind: value, ttl: 10s}
        seen: {kind: map, ttl: 10s, time: event}
        wall: {kind: value, ttl: 5s, time: processing}
sinks:
  - {topic: out, from: fn}
"""


def send(d: PipelineDriver, k: str, ts: int, **fields: Any) -> dict[str, Any]:
    d.send("events", {"k": k, "ts": ts, **fields}, key=k)
    return d.output("out")[-1].value


def test_event_time_ttl_expires_when_the_watermark_reaches_stamp_plus_ttl() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    assert send(d, "a", 1_000, put=1)["last"] == 1
    d.watermark("events", 10_999)
    got = send(d, "a", 10_999)
    assert got["last"] == 1 and got["seen"] == {"1": 1_000}  # a read does not restamp
    d.watermark("events", 11_000)
    node = next(t.executor.nodes["fn"] for t in d.tasks.values() if "fn" in t.executor.nodes)
    assert node.state.tables["last"] == {} and node.state.tables["seen"] == {}  # swept
    got = send(d, "a", 11_000)
    assert got["last"] is None and got["seen"] == {}
    assert got["wall"] == 1  # processing time has not moved


def test_a_write_restamps_with_the_record_timestamp_and_a_map_per_entry() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    send(d, "a", 1_000, put=1)
    send(d, "a", 8_000, put=2)
    d.watermark("events", 10_999)
    assert send(d, "a", 10_999)["seen"] == {"1": 1_000, "2": 8_000}
    d.watermark("events", 11_000)
    got = send(d, "a", 11_000)
    assert got["seen"] == {"2": 8_000} and got["last"] == 2  # map entry "1" expired alone
    d.watermark("events", 18_000)
    got = send(d, "a", 18_000)
    assert got["last"] is None and got["seen"] == {}


def test_a_write_in_on_timer_is_stamped_with_the_timer_time() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    send(d, "a", 1_000, timer=5_000)
    d.watermark("events", 5_000)
    assert send(d, "a", 5_000)["last"] == "timer@5000"
    d.watermark("events", 14_999)
    assert send(d, "a", 14_999)["last"] == "timer@5000"
    d.watermark("events", 15_000)
    assert send(d, "a", 15_000)["last"] is None


def test_processing_time_ttl_follows_the_clock() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    send(d, "a", 1_000, put=1)
    d.advance_processing_time(4_999)
    assert send(d, "a", 1_001)["wall"] == 1
    d.advance_processing_time(1)
    node = next(t.executor.nodes["fn"] for t in d.tasks.values() if "fn" in t.executor.nodes)
    assert node.state.tables["wall"] == {}  # swept when the clock moved, before any read
    got = send(d, "a", 1_002)
    assert got["wall"] is None and got["last"] == 1  # event time has not moved


def at(backend: KeyedStateBackend, key: object, ts: int = 0) -> KeyedStateBackend:
    backend.current_key, backend.timestamp, backend.active = key, ts, True
    return backend


def backend(ttl: Any = (("v", 100, "event"),)) -> tuple[KeyedStateBackend, dict[str, int]]:
    times = {"wm": -(2**63), "clock": 0}
    b = KeyedStateBackend("fn", (("v", "value"), ("l", "list"), ("m", "map")), ttl)
    b.watermark = lambda: times["wm"]
    b.clock = lambda: times["clock"]
    return b, times


def test_an_expired_entry_is_never_read_even_before_a_sweep() -> None:
    b, times = backend()
    at(b, "a", 1_000).handle("v").update("x")
    times["wm"] = 1_100
    assert b.handle("v").value() is None
    assert b.tables["v"] == {}


def test_the_sweep_deletes_expired_entries_and_their_stamps_from_the_change_set() -> None:
    b, times = backend()
    for i, key in enumerate("abc"):
        at(b, key, 1_000 + i * 50).handle("v").update(key)
    at(b, "a").handle("l").add(1)  # no ttl: never expires
    written = dict(b.changes())
    assert orjson.loads(written[orjson.dumps(["a", "v", "ttl"])]) == [1_000, "event"]
    times["wm"] = 1_150
    b.active = False
    assert b.sweep("event") == 2  # a (1_000 + 100) and b (1_050 + 100)
    gone = dict(b.changes())
    assert gone == {
        orjson.dumps(["a", "v"]): None,
        orjson.dumps(["a", "v", "ttl"]): None,
        orjson.dumps(["b", "v"]): None,
        orjson.dumps(["b", "v", "ttl"]): None,
    }
    assert set(b.tables["v"]) == {"c"} and b.tables["l"] == {"a": [b"1"]}


def test_rewrites_leave_one_live_stamp_per_entry() -> None:
    b, times = backend()
    for ts in range(0, 5_000, 10):
        at(b, "a", ts).handle("v").update(ts)
    times["wm"] = 4_989
    b.active = False
    assert b.sweep("event") == 0
    times["wm"] = 5_090
    assert b.sweep("event") == 1 and b.tables["v"] == {}


def test_restore_keeps_stamps_and_restamps_added_or_changed_ttls() -> None:
    b, _ = backend()
    at(b, "a", 1_000).handle("v").update("x")
    at(b, "b", 1_000).handle("l").add("y")
    at(b, "c", 1_000).handle("m").put_all({"p": 1, "q": 2})
    entries = [(k, v) for k, v in b.changes() if v is not None]
    again, t2 = backend()
    t2["wm"] = 1_050
    again.restore(entries)
    t2["wm"] = 1_100
    assert again.sweep("event") == 1  # the saved stamp 1_000, not the restore's time
    added, t3 = backend((("v", 100, "event"), ("l", 100, "processing"), ("m", 9, "processing")))
    t3["clock"] = 7_000
    added.restore(entries)
    assert added.ttl.stored("l") == {"b": 7_000}  # a ttl added: stamped at the restore
    assert added.ttl.stored("m") == {"c": {"p": 7_000, "q": 7_000}}  # each map entry
    assert added.ttl.stored("v") == {"a": 1_000}
    removed, _ = backend(())
    removed.restore(entries)
    changes = dict(removed.changes())
    assert changes[orjson.dumps(["a", "v", "ttl"])] is None  # the stamp is deleted
    assert changes.get(orjson.dumps(["a", "v"]), b'"x"') == b'"x"'  # the entry stays


def test_map_entries_expire_one_by_one_and_keep_their_stamps_across_a_restore() -> None:
    b, times = backend((("m", 100, "processing"),))
    m = at(b, "a").handle("m")
    m.put("x", 1)
    times["clock"] = 50
    m.put_all({"y": 2, "z": 3})
    m.remove("z")
    written = dict(b.changes())
    stamp = orjson.loads(written[orjson.dumps(["a", "m", "ttl"])])
    assert stamp == [[["x", 0], ["y", 50]], "processing"]
    again, t2 = backend((("m", 100, "processing"),))
    again.restore([(k, v) for k, v in written.items() if v is not None])
    t2["clock"] = 100
    b.active = False
    assert again.sweep("processing") == 1
    assert again.tables["m"] == {"a": {"y": b"2"}}
    changed = dict(again.changes())
    assert orjson.loads(changed[orjson.dumps(["a", "m", "ttl"])]) == [[["y", 50]], "processing"]
    t2["clock"] = 150
    assert at(again, "a").handle("m").is_empty()  # read: expired before any sweep
    assert dict(again.changes()) == {
        orjson.dumps(["a", "m"]): None,
        orjson.dumps(["a", "m", "ttl"]): None,
    }


def test_restored_event_time_entries_without_a_stamp_take_the_first_watermark() -> None:
    b, _ = backend(())
    at(b, "a", 1_000).handle("v").update("x")
    entries = [(k, v) for k, v in b.changes() if v is not None]
    again, times = backend()
    again.restore(entries)
    times["wm"] = 5_000
    assert again.sweep("event") == 0
    assert again.ttl.stored("v") == {"a": 5_000}
    times["wm"] = 5_100
    assert again.sweep("event") == 1


def test_ttl_stamps_go_through_a_savepoint_and_a_rescale(tmp_path: Path) -> None:
    text = PROCESS_KIT.replace(
        "state: {count: value, seen: list, parity: map, flags: value}",
        "state: {count: {kind: value, ttl: 1h}, seen: list, parity: map, flags: value}",
    )
    saved = write_process_savepoint(tmp_path, text)
    sp = open_savepoint(saved)
    rows = list(sp.windows("fn", key="k1"))
    assert {r["state"] for r in rows} == {"count", "seen", "parity"}  # stamps are no rows
    stamps = [e for e in sp.entries("fn") if e.key.endswith(b',"ttl"]')]
    assert len(stamps) == len(KEYS)
    assert all(orjson.loads(e.value)[1] == "event" for e in stamps)
    spec = load_pipeline_text(text, "p.yaml")
    plan = build_plan(spec)
    partitions = {"events": 2, plan.output_topic_of(plan.stages[0].key_bys[0]): 3}
    seed = SavepointSeed(saved, plan, partitions, allow_non_restored=False)
    for p in range(3):
        _meta, stores = seed.seed(plan.stages[1].id, p)
        entries = stores.get("op.fn", [])
        b = KeyedStateBackend("fn", (("count", "value"),), (("count", 3_600_000, "event"),))
        b.restore(entries)
        for key, stamp in b.ttl.stored("count").items():
            assert partition_for(orjson.dumps(key), 3) == p
            n = KEYS.index(key)
            assert stamp == 1_000 + max(i for i in range(30) if i % len(KEYS) == n)


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        ("{kind: value, ttl: 12 hours}", "invalid duration"),
        ("{kind: value, ttl: 0}", "duration must be positive"),
        ("{kind: value, ttl: 1h, time: wall}", "unknown ttl time"),
        ("{kind: value, time: processing}", "'time' without 'ttl'"),
        ("{ttl: 1h}", "state 'last' needs 'kind: value|list|map'"),
        ("{kind: set, ttl: 1h}", "unknown state kind 'set'"),
        ("{kind: value, ttl: 1h, update: on_read}", "unknown key 'update'"),
    ],
)
def test_bad_ttl_declarations_name_the_line(decl: str, message: str) -> None:
    text = PIPELINE.replace("last: {kind: value, ttl: 10s}", f"last: {decl}")
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    error = str(info.value)
    assert message in error and "<string>:10:" in error, error


def test_a_restored_unstamped_map_entry_is_stamped_by_a_write_before_any_watermark() -> None:
    b, _ = backend(())
    at(b, "a").handle("m").put("p", 1)
    entries = [(k, v) for k, v in b.changes() if v is not None]
    again, times = backend((("m", 100, "event"),))
    again.restore(entries)
    at(again, "a", 2_000).handle("m").put("q", 2)  # before any watermark
    assert again.ttl.stored("m") == {"a": {"p": 2_000, "q": 2_000}}
    times["wm"] = 2_100
    again.active = False
    assert again.sweep("event") == 2 and again.tables["m"] == {}
