"""``kstream reset`` without a broker: the offsets file and ``--to-datetime`` parsing, the topics
and directories a reset of the example pipelines covers, the plan, the refusals, and the order of
the changes (against :class:`resetkit.FakeBroker`, a stand-in for the Kafka side only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from resetkit import FakeBroker, locked_by_another_process

from kstream.errors import BrokerError, UsageError
from kstream.graph.plan import Plan, build_plan
from kstream.io.kafka import GroupDeletion, GroupMember
from kstream.pipeline.load import load_pipeline
from kstream.runtime.reset import (
    ResetTarget,
    delete_topics,
    execute_reset,
    internal_topics,
    local_state,
    plan_reset,
    source_topics,
)
from kstream.runtime.reset_plan import (
    OffsetChange,
    parse_datetime_ms,
    parse_offsets,
    read_offsets_file,
)

REPO = Path(__file__).resolve().parents[2]
JAN_1_5AM_MS = 1_357_016_400_000  # 2013-01-01T05:00:00Z


def example(name: str, group: str | None = None) -> Plan:
    return build_plan(load_pipeline(REPO / "examples" / f"{name}.yaml"), group)


# -- the offsets file ----------------------------------------------------------------------------

SOURCES = {"flights": 2, "weather": 1}


def test_offsets_file_with_comments_blank_lines_and_spaces() -> None:
    text = (
        "# exported by kafka-consumer-groups\n"
        "flights,0,120\n"
        "\n"
        "  flights , 1 , 7   # the second partition\n"
        "weather,0,0\n"
    )
    assert parse_offsets(text, "o.csv", SOURCES) == {
        ("flights", 0): 120,
        ("flights", 1): 7,
        ("weather", 0): 0,
    }


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ("flights,0", ["o.csv:2:", "expected topic,partition,offset", "e.g. flights,0,1234"]),
        ("flights,0,1,2", ["o.csv:2:", "expected topic,partition,offset"]),
        ("flights,one,5", ["o.csv:2:", "partition 'one' is not a whole number"]),
        ("flights,1,-5", ["o.csv:2:", "offset '-5' is not a whole number >= 0"]),
        ("flights,1,", ["o.csv:2:", "offset '' is not a whole number"]),
        ("flights,1,5.0", ["o.csv:2:", "offset '5.0'"]),
        ("flight,1,5", ["o.csv:2:", "'flight' is not a source topic", "(flights, weather)"]),
        ("flights,2,5", ["o.csv:2:", "flights has 2 partitions (0 to 1), not partition 2"]),
        ("flights,0,9", ["o.csv:2:", "listed again (first at line 1)", "one line per partition"]),
    ],
)
def test_each_wrong_line_is_named_with_what_is_wrong_and_the_fix(
    line: str, fragments: list[str]
) -> None:
    text = f"flights,0,1\n{line}\nflights,1,1\nweather,0,1\n"
    with pytest.raises(UsageError) as err:
        parse_offsets(text, "o.csv", SOURCES)
    message = str(err.value)
    assert "\n" not in message and " — " in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_a_broadcast_table_has_no_offsets() -> None:
    with pytest.raises(UsageError, match=r"o.csv:1: topic 'planes' is a broadcast table"):
        parse_offsets("planes,0,3\n", "o.csv", {"flights": 1}, broadcast=("planes",))


def test_partitions_left_out_are_an_error_naming_them() -> None:
    with pytest.raises(UsageError) as err:
        parse_offsets("flights,1,5\n", "o.csv", {"flights": 4, "weather": 1})
    message = str(err.value)
    assert message.startswith(
        "o.csv: no offset for flights partitions 0, 2, 3; weather partition 0"
    )
    assert "every partition of every source topic" in message


def test_an_empty_file_misses_every_partition() -> None:
    with pytest.raises(UsageError, match="no offset for flights partition 0"):
        parse_offsets("# nothing\n\n", "o.csv", {"flights": 1})


def test_an_unreadable_offsets_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read the offsets file .*missing.csv"):
        read_offsets_file(tmp_path / "missing.csv", SOURCES)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="cannot read the offsets file"):
        read_offsets_file(binary, SOURCES)


def test_an_offsets_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("flights,0,3\nflights,1,4\nweather,0,5\n", encoding="utf-8")
    assert read_offsets_file(path, SOURCES)[("weather", 0)] == 5


# -- --to-datetime -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2013-01-01T05:00:00Z", JAN_1_5AM_MS),
        ("2013-01-01T05:00:00", JAN_1_5AM_MS),  # naive: UTC
        ("2013-01-01 05:00:00+00:00", JAN_1_5AM_MS),
        ("2013-01-01T06:00:00+01:00", JAN_1_5AM_MS),
        ("2013-01-01T05:00:00.250Z", JAN_1_5AM_MS + 250),
        ("2013-01-01", JAN_1_5AM_MS - 5 * 3_600_000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_datetimes_are_iso_8601_and_utc_without_an_offset(text: str, ms: int) -> None:
    assert parse_datetime_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("yesterday", "is not an ISO 8601 date-time"),
        ("2013-13-01T00:00:00Z", "is not an ISO 8601 date-time"),
        ("1969-12-31T23:59:59Z", "is before 1970-01-01T00:00:00Z"),
    ],
)
def test_a_wrong_datetime_says_how_to_write_one(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_datetime_ms(text)
    assert fragment in str(err.value) and " — " in str(err.value)


def test_targets_from_the_options() -> None:
    assert ResetTarget.from_options(False, None, None) == ResetTarget("earliest")
    assert ResetTarget.from_options(True, None, None) == ResetTarget("earliest")
    at = ResetTarget.from_options(False, "2013-01-01T05:00:00Z", None)
    assert at == ResetTarget("time", time_ms=JAN_1_5AM_MS)
    assert "2013-01-01T05:00:00.000Z" in at.describe()
    assert ResetTarget.from_options(False, None, Path("o.csv")).describe() == "the offsets in o.csv"
    with pytest.raises(UsageError, match="exclude each other"):
        ResetTarget.from_options(True, "2013-01-01", None)
    with pytest.raises(UsageError, match="exclude each other"):
        ResetTarget.from_options(False, "2013-01-01", Path("o.csv"))


# -- what a reset of the examples covers ---------------------------------------------------------


def test_flights_hourly_topics() -> None:
    plan = example("flights-hourly")
    assert source_topics(plan) == ["flights"]
    assert internal_topics(plan) == [
        "flights-hourly.by-origin.repartition",
        "flights-hourly.flights.task.changelog",
        "flights-hourly.by-origin.task.changelog",
        "flights-hourly.hourly.changelog",
        "flights-hourly.hourly.timers.changelog",
        "flights-hourly.control",
        "flights-hourly.status",
    ]


def test_another_group_names_other_internal_topics() -> None:
    plan = example("flights-hourly", "hourly-v2")
    assert source_topics(plan) == ["flights"]
    assert all(t.startswith("hourly-v2.") for t in internal_topics(plan))
    assert "hourly-v2.hourly.changelog" in internal_topics(plan)


def test_flights_graph_two_sources_in_one_stage() -> None:
    plan = example("flights-graph")
    assert source_topics(plan) == ["ewr-flights", "nyc-flights"]
    assert internal_topics(plan) == [
        "flights-graph.by-carrier.repartition",
        "flights-graph.ewr.task.changelog",
        "flights-graph.delay-hours-hourly.changelog",
        "flights-graph.delay-hours-hourly.timers.changelog",
        "flights-graph.by-carrier.task.changelog",
        "flights-graph.on-time-daily.changelog",
        "flights-graph.on-time-daily.timers.changelog",
        "flights-graph.control",
        "flights-graph.status",
    ]


def test_a_temporal_join_both_sides_repartitioned() -> None:
    plan = example("flights-weather")
    assert source_topics(plan) == ["flights", "weather"]
    topics = internal_topics(plan)
    assert [t for t in topics if t.endswith(".repartition")] == [
        "flights-weather.with-weather.left.repartition",
        "flights-weather.with-weather.right.repartition",
        "flights-weather.by-visibility.repartition",
    ]
    assert {
        "flights-weather.with-weather.changelog",
        "flights-weather.with-weather.timers.changelog",
        "flights-weather.with-weather.left.task.changelog",
        "flights-weather.daily.changelog",
    } <= set(topics)
    assert len(topics) == len(set(topics))


def test_a_broadcast_table_is_no_source_of_the_reset() -> None:
    plan = example("flights-planes")
    assert source_topics(plan) == ["flights"]  # planes: read whole, without the group
    assert "flights-planes.with-plane.changelog" in internal_topics(plan)
    assert not any("planes." in t and "flights-planes" not in t for t in internal_topics(plan))


def test_a_process_function_ttl_store_changelog() -> None:
    assert "flights-origin-pulse.pulse.ttl.changelog" in internal_topics(
        example("flights-origin-pulse")
    )


# -- the plan ------------------------------------------------------------------------------------


def hourly_broker(**kwargs: object) -> FakeBroker:
    """The broker after a run of flights-hourly on 2 partitions (the status topic not there)."""
    topics = {"flights": 2, "flights-hourly": 2, "unrelated": 1}
    topics.update({t: 2 for t in internal_topics(example("flights-hourly"))})
    del topics["flights-hourly.status"]
    topics["flights-hourly.control"] = 1
    broker = FakeBroker(
        topics_=topics,
        committed_={("flights", 0): 900, ("flights", 1): 1000},
        ranges={("flights", 0): (0, 900), ("flights", 1): (10, 1000)},
    )
    for name, value in kwargs.items():
        setattr(broker, name, value)
    return broker


def task_dirs(state_dir: Path, group: str = "flights-hourly") -> list[Path]:
    out = []
    for name in ("flights.p0", "flights.p1", "by-origin.p0", "broadcast"):
        path = state_dir / group / name
        (path / "db").mkdir(parents=True)
        (path / "db" / "000001.sst").write_bytes(b"x" * 1000)
        out.append(path)
    return sorted(out)


def test_plan_to_earliest(tmp_path: Path) -> None:
    dirs = task_dirs(tmp_path)
    broker = hourly_broker()
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget(), tmp_path)
    assert rp.group == "flights-hourly" and rp.pipeline == "flights-hourly"
    assert rp.offsets == (
        OffsetChange("flights", 0, 900, 0, 0, 900),
        OffsetChange("flights", 1, 1000, 10, 10, 1000),
    )
    assert rp.new_offsets() == {("flights", 0): 0, ("flights", 1): 10}
    assert "flights-hourly.status" not in rp.topics  # only those that exist
    assert set(rp.topics) == set(internal_topics(example("flights-hourly"))) - {
        "flights-hourly.status"
    }
    assert rp.state_root == tmp_path / "flights-hourly"
    assert list(rp.state_dirs) == dirs and rp.state_bytes == 4000
    assert broker.changes == []  # a plan changes nothing


def test_plan_to_a_time_and_to_a_file(tmp_path: Path) -> None:
    broker = hourly_broker(at_time={("flights", 0): 450})
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget("time", JAN_1_5AM_MS), tmp_path)
    assert rp.new_offsets() == {("flights", 0): 450, ("flights", 1): 1000}  # 1: no record after
    assert rp.state_dirs == () and rp.state_bytes == 0
    path = tmp_path / "o.csv"
    path.write_text("flights,0,5\nflights,1,2000\n", encoding="utf-8")
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget("file", path=path), tmp_path)
    assert rp.new_offsets() == {("flights", 0): 5, ("flights", 1): 2000}
    assert [c.outside_log for c in rp.offsets] == [False, True]


def test_plan_checks_the_file_against_the_partitions_on_the_broker(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("flights,0,5\nflights,1,6\nflights,2,7\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"o.csv:3: flights has 2 partitions"):
        plan_reset(example("flights-hourly"), hourly_broker(), ResetTarget("file", path=path), ".")


def test_a_missing_source_topic(tmp_path: Path) -> None:
    broker = FakeBroker(topics_={"other": 1})
    with pytest.raises(BrokerError, match="source topic 'flights' does not exist"):
        plan_reset(example("flights-hourly"), broker, ResetTarget(), tmp_path)


def test_refused_while_the_group_has_members(tmp_path: Path) -> None:
    members = [
        GroupMember("m-2", "rdkafka", "/10.0.0.7"),
        GroupMember("m-1", "kstream", "/10.0.0.5"),
    ]
    with pytest.raises(UsageError) as err:
        plan_reset(
            example("flights-hourly"), hourly_broker(members_=members), ResetTarget(), tmp_path
        )
    message = str(err.value)
    assert "consumer group flights-hourly has live members" in message
    assert "(kstream@/10.0.0.5, rdkafka@/10.0.0.7)" in message
    assert "stop every `kstream run` of it" in message and "\n" not in message


def test_refused_while_a_process_here_holds_a_task_directory(tmp_path: Path) -> None:
    dirs = task_dirs(tmp_path)
    with locked_by_another_process(dirs[1]), pytest.raises(UsageError) as err:
        plan_reset(example("flights-hourly"), hourly_broker(), ResetTarget(), tmp_path)
    assert "in use by a running process on this machine" in str(err.value)
    assert str(dirs[1]) in str(err.value) and str(dirs[0]) not in str(err.value)
    # once the process is gone, the same directory is no obstacle
    rp = plan_reset(example("flights-hourly"), hourly_broker(), ResetTarget(), tmp_path)
    assert dirs[1] in rp.state_dirs


# -- carrying it out -----------------------------------------------------------------------------


def test_execute_in_order(tmp_path: Path) -> None:
    task_dirs(tmp_path)
    (tmp_path / "other-group" / "flights.p0").mkdir(parents=True)
    broker = hourly_broker()
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget(), tmp_path)
    execute_reset(rp, broker)
    assert [kind for kind, _ in broker.changes] == ["delete_group", "commit", "delete_topics"]
    assert broker.changes[1][1] == {("flights", 0): 0, ("flights", 1): 10}
    assert broker.changes[2][1] == list(rp.topics)
    assert broker.committed_ == {("flights", 0): 0, ("flights", 1): 10}
    assert set(broker.topics()) == {"flights", "flights-hourly", "unrelated"}
    assert not (tmp_path / "flights-hourly").exists()
    assert (tmp_path / "other-group" / "flights.p0").is_dir()  # another group's state stays


def test_a_member_that_joined_after_the_plan_stops_the_reset(tmp_path: Path) -> None:
    broker = hourly_broker()
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget(), tmp_path)
    broker.members_ = [GroupMember("m-1", "kstream", "/10.0.0.5")]
    with pytest.raises(UsageError, match=r"has live members \(kstream@/10.0.0.5\)"):
        execute_reset(rp, broker)
    assert broker.changes == []


def test_kafka_refusing_to_delete_a_group_with_members_is_the_same_refusal(tmp_path: Path) -> None:
    broker = hourly_broker(deletion=GroupDeletion.NOT_EMPTY)
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget(), tmp_path)
    with pytest.raises(UsageError, match="consumer group flights-hourly has live members: a reset"):
        execute_reset(rp, broker)
    assert broker.changes == []  # nothing committed, nothing deleted


def test_a_group_the_broker_does_not_know_is_reset_too(tmp_path: Path) -> None:
    broker = hourly_broker(deletion=GroupDeletion.ABSENT, committed_={})
    rp = plan_reset(example("flights-hourly"), broker, ResetTarget(), tmp_path)
    assert [c.committed for c in rp.offsets] == [None, None]
    execute_reset(rp, broker)
    assert [kind for kind, _ in broker.changes] == ["commit", "delete_topics"]


def test_deleted_topics_are_awaited(tmp_path: Path) -> None:
    broker = hourly_broker(slow_deletes=3)
    delete_topics(broker, ["flights-hourly.control"], wait_s=10)
    assert broker.slow_deletes == 0
    broker = hourly_broker(slow_deletes=1000)
    with pytest.raises(BrokerError, match=r"still lists flights-hourly.control 0 s after"):
        delete_topics(broker, ["flights-hourly.control"], wait_s=0)


def test_local_state_of_a_group(tmp_path: Path) -> None:
    assert local_state(tmp_path, "g") == (tmp_path / "g", [])
    (tmp_path / "g" / "b.p0").mkdir(parents=True)
    (tmp_path / "g" / "a.p1").mkdir()
    (tmp_path / "g" / "stray-file").write_text("x")
    assert local_state(tmp_path, "g")[1] == [tmp_path / "g" / "a.p1", tmp_path / "g" / "b.p0"]
