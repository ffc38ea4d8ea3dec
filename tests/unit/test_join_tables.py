"""Tables and the joins that read them (docs/joins.md): lookup joins (a table's current row,
Kafka Streams KStream-KTable) and event-time temporal joins (AS OF a versioned table, Flink
``FOR SYSTEM_TIME AS OF``), through the broker-free driver; and the errors users see."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import KeyBySpec
from kstream.testing.driver import PipelineDriver

PIPELINE = """\
pipeline: t
sources:
  - {{id: flights, topic: flights, event_time: t}}
  - id: planes
    topic: planes
    event_time: t
    table: {{key: tailnum{versioned}}}
operators:
  - id: j
    from: flights
    join: {{type: {type}, right: planes, on: tailnum, how: {how}}}
sinks:
  - {{topic: out}}
{late}"""


def driver(jtype: str, how: str = "left", versioned: str = "", late: bool = False):
    text = PIPELINE.format(
        type=jtype,
        how=how,
        versioned=f", versioned: {versioned}" if versioned else "",
        late="  - {topic: late, from: j.late}\n" if late else "",
    )
    return PipelineDriver.from_yaml(text)


def plane(tail: str, t: int, year: int) -> dict[str, Any]:
    return {"tailnum": tail, "t": t, "year": year}


def flight(tail: str | None, t: int, n: int) -> dict[str, Any]:
    return {"tailnum": tail, "t": t, "n": n}


def rows(d: PipelineDriver, sink: str = "out") -> list[tuple[Any, ...]]:
    """``(flight n, plane year or None, timestamp)`` per output record."""
    out = []
    for r in d.output(sink):
        planes = r.value["planes"]
        out.append((r.value["n"], planes["year"] if planes else None, r.timestamp_ms))
    return out


# -- lookup ------------------------------------------------------------------------------------


def test_a_lookup_join_takes_the_row_current_when_the_left_record_arrives() -> None:
    #   planes   --N1(1999)@10----------N1(2005)@30-----N1 deleted@50-------------
    #   flights  ------------F0@20-------------F1@40--------------------F2@60-----
    #   output   ------------F0+1999@20--------F1+2005@40---------------F2+null@60
    d = driver("lookup")
    d.send("planes", plane("N1", 10, 1999), key="N1")
    d.send("flights", flight("N1", 20, 0))
    d.send("planes", plane("N1", 30, 2005), key="N1")
    d.send("flights", flight("N1", 40, 1))
    d.send("planes", None, key="N1", timestamp_ms=50)  # a tombstone
    d.send("flights", flight("N1", 60, 2))
    d.send("flights", flight("N9", 70, 3))
    d.send("flights", flight(None, 80, 4))
    d.end_of_input()
    assert rows(d) == [(0, 1999, 20), (1, 2005, 40), (2, None, 60), (3, None, 70), (4, None, 80)]
    assert d.output("out")[0].key == "N1"


def test_an_inner_lookup_join_drops_a_left_record_without_a_row() -> None:
    d = driver("lookup", how="inner")
    d.send("flights", flight("N1", 5, 0))
    d.send("planes", plane("N1", 10, 1999), key="N1")
    d.send("flights", flight("N1", 20, 1))
    d.end_of_input()
    assert rows(d) == [(1, 1999, 20)]


# -- temporal ----------------------------------------------------------------------------------


def test_a_temporal_join_takes_the_version_valid_at_the_left_records_time() -> None:
    #   planes   --V(1999)@100-------------V(2005)@200---------deleted@300---------
    #   flights  --------F0@150--F1@120----------------F2@250-----------F3@350-----
    #   as of:       150 -> 1999, 120 -> 1999, 250 -> 2005, 350 -> none
    d = driver("temporal", versioned="1d")
    d.send("planes", plane("N1", 100, 1999), key="N1")
    d.send("flights", flight("N1", 150, 0))
    d.send("flights", flight("N1", 120, 1))
    d.send("planes", plane("N1", 200, 2005), key="N1")
    d.send("flights", flight("N1", 250, 2))
    d.send("planes", None, key="N1", timestamp_ms=300)
    d.send("flights", flight("N1", 350, 3))
    d.send("flights", flight("N1", 50, 4))  # before the first version
    d.end_of_input()
    assert sorted(rows(d)) == [
        (0, 1999, 150),
        (1, 1999, 120),
        (2, 2005, 250),
        (3, None, 350),
        (4, None, 50),
    ]


def test_a_left_record_waits_for_the_tables_watermark() -> None:
    #   the join's watermark is the min of both inputs: a flight at 150 waits until the
    #   planes' watermark reaches 150, so a version at 140 that arrives later still counts
    d = driver("temporal", how="inner", versioned="1d")
    d.send("flights", flight("N1", 150, 0))
    d.send("flights", flight("N1", 500, 1))
    assert rows(d) == []
    d.send("planes", plane("N1", 140, 1999), key="N1")
    assert rows(d) == []  # the planes' watermark is 139
    d.send("planes", plane("N2", 400, 2001), key="N2")  # watermark 399: F0 is answered
    assert rows(d) == [(0, 1999, 150)]
    d.end_of_input()
    assert rows(d) == [(0, 1999, 150), (1, 1999, 500)]


def test_records_before_the_history_horizon_go_to_the_late_port() -> None:
    #   versioned: 100ms: versions older than watermark - 100 ms may be gone, so a flight
    #   before that horizon (or a plane version) cannot be answered right
    d = driver("temporal", versioned="100ms", late=True)
    d.send("planes", plane("N1", 100, 1999), key="N1")
    d.send("flights", flight("N1", 1_000, 0))
    d.send("planes", plane("N1", 1_001, 2005), key="N1")  # join watermark 999
    d.send("flights", flight("N1", 950, 1))  # 950 >= 899: answered at once, as of 950
    d.send("flights", flight("N1", 800, 2))  # 800 < 899: late
    d.send("planes", plane("N1", 850, 1990), key="N1")  # late too
    d.end_of_input()
    assert rows(d) == [(1, 1999, 950), (0, 1999, 1_000)]  # F0 waited for the watermark
    late = d.output("late")
    assert [(r.headers["kstream.late.side"], r.value["t"]) for r in late] == [
        ("left", 800),
        ("right", 850),
    ]


# -- the plan and the errors -------------------------------------------------------------------


def test_a_table_is_repartitioned_by_its_key_with_its_tombstones() -> None:
    spec = load_pipeline_text(PIPELINE.format(type="lookup", how="left", versioned="", late=""))
    right = next(op for op in spec.operators if op.id == "j.right")
    assert isinstance(right, KeyBySpec)
    assert (right.expr, right.tombstones) == ("tailnum", True)


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    return str(info.value)


def test_a_lookup_joins_right_input_must_be_a_table() -> None:
    text = PIPELINE.format(type="lookup", how="left", versioned="", late="")
    shown = errors(text.replace("    table: {key: tailnum}\n", ""))
    assert "a lookup join's right input must be a table, 'planes' is not" in shown
    assert "add table: {key: EXPR}" in shown and "<string>:10:" in shown


def test_a_table_is_joined_on_its_key() -> None:
    text = PIPELINE.format(type="lookup", how="left", versioned="", late="")
    shown = errors(text.replace("on: tailnum", "on: {left: tailnum, right: model}"))
    assert "the right key is 'model', table 'planes' is keyed by 'tailnum'" in shown
    assert "write on: {left: tailnum, right: tailnum}" in shown


def test_a_temporal_join_needs_a_versioned_table() -> None:
    shown = errors(PIPELINE.format(type="temporal", how="left", versioned="", late=""))
    assert "a temporal join needs a versioned table" in shown and "add versioned: 2d" in shown


def test_a_table_feeds_only_temporal_and_lookup_joins() -> None:
    text = PIPELINE.format(type="lookup", how="left", versioned="", late="")
    shown = errors(text + "  - {topic: planes-copy, from: planes}\n")
    assert "table 'planes' is read by sink planes-copy" in shown
    assert "<string>:7:" in shown  # the source's table: key


def test_a_temporal_join_is_inner_or_left() -> None:
    shown = errors(PIPELINE.format(type="temporal", how="full", versioned="1d", late=""))
    assert "a temporal join is inner or left, not full" in shown


def test_a_keys_versions_are_kept_by_time_bucket_and_pruned_by_the_watermark() -> None:
    """A stuck watermark keeps every version (a waiting record may need it), but in entries of
    one ``versioned`` each; once the watermark moves, the versions no longer valid at
    ``watermark - versioned`` go (the one valid then stays)."""
    from kstream.operators.join.buffer import JOIN_CODEC
    from kstream.operators.join.versions import TableVersions
    from kstream.state.cache import KeyValueStore

    store = KeyValueStore(JOIN_CODEC)
    versions = TableVersions(store, 3_600_000)  # versioned: 1h
    for hour in range(48):
        assert versions.put("EWR", {"hour": hour}, hour * 3_600_000)
    buckets = [k for k in store.cache_only() if len(k) == 3]
    assert len(buckets) == 48 and versions.get("EWR", 5 * 3_600_000 + 1) == {"hour": 5}
    versions.advance(40 * 3_600_000 + 1)  # horizon: 39 h
    assert versions.put("EWR", {"hour": 48}, 48 * 3_600_000)
    kept = sorted(k[2] for k in store.cache_only() if len(k) == 3 and store.get(k) is not None)
    assert kept[0] == 39 * 3_600_000  # the version valid at the horizon stays
    assert versions.get("EWR", 39 * 3_600_000 + 5) == {"hour": 39}
    assert not versions.put("EWR", {"hour": 1}, 3_600_000)  # before the horizon: refused
