"""Tests of the pipeline YAML loader (kstream.pipeline.load) and its dict/fingerprint views."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kstream.errors import ConfigError, ConfigIssue
from kstream.pipeline.load import fingerprint, load_pipeline, load_pipeline_text, spec_to_dict
from kstream.pipeline.spec import (
    AggregationSpec,
    CheckpointSpec,
    FilterSpec,
    KeyBySpec,
    MapSpec,
    PipelineSpec,
    PortRef,
    SinkSpec,
    SourceSpec,
    TimeSpec,
    WatermarkSpec,
    WindowSpec,
)

DURATION_HINT = (
    "write an integer with a unit ms, s, m, h or d (500ms, 10s, 5m, 1h, 1d), or an integer of ms"
)

FULL = """\
pipeline: flights-hourly
group: flights-group
kafka:
  bootstrap.servers: 127.0.0.1:9092
  enable.idempotence: true
  linger.ms: 5
checkpoint: {interval: 10s, guarantee: at_least_once}
sources:
  - topic: flights
    name: flights-in
    format: json
    key_format: bytes
    time: event
    event_time: {field: sched_dep_ts, unit: s}
    watermark: {max_out_of_orderness: 1h, idle_timeout: 30s, strategy: bounded, max_future_skew: 2d}
    on_error: dead_letter
    dead_letter_topic: flights-dlq
operators:
  - filter: "dep_time is not None"
  - map: {select: [origin, dep_delay], fields: {delay_h: "dep_delay / 60"}}
  - key_by: {expr: origin, partitions: 4}
    id: by-origin
  - id: hourly
    window:
      type: tumbling
      size: 1h
      offset: -15m
      allowed_lateness: 5m
      late_topic: flights-late
      emit: update
      aggregate:
        flights: count
        delayed: {count: dep_delay}
        avg_dep_delay: {avg: dep_delay}
        custom: {python: "my_udfs:Median"}
  - filter: {python: "my_udfs:keep"}
sinks:
  - topic: flights-hourly
    name: out
    format: string
    key_format: json
    partitions: 3
"""

MINIMAL = """\
pipeline: p
sources:
  - topic: in
sinks:
  - topic: out
"""


def issues_of(text: str) -> list[ConfigIssue]:
    """The issues of an invalid pipeline text (fails if it loads)."""
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(textwrap.dedent(text), "p.yaml")
    return info.value.issues


def only_issue(text: str) -> ConfigIssue:
    issues = issues_of(text)
    assert len(issues) == 1, [i.render() for i in issues]
    return issues[0]


def with_operators(ops: str) -> str:
    """MINIMAL plus an ``operators:`` block (``ops`` starts on line 7)."""
    return MINIMAL + "operators:\n" + textwrap.dedent(ops)


# --- valid files ------------------------------------------------------------------------------


def test_full_example_loads_into_the_expected_dataclasses() -> None:
    spec = load_pipeline_text(FULL, "full.yaml")
    assert spec == PipelineSpec(
        name="flights-hourly",
        path="full.yaml",
        group="flights-group",
        kafka={
            "bootstrap.servers": "127.0.0.1:9092",
            "enable.idempotence": "true",
            "linger.ms": "5",
        },
        checkpoint=CheckpointSpec(interval_ms=10_000, guarantee="at_least_once"),
        sources=(
            SourceSpec(
                name="flights-in",
                topic="flights",
                format="json",
                key_format="bytes",
                time=TimeSpec(kind="event", field="sched_dep_ts", unit="s"),
                watermark=WatermarkSpec(
                    strategy="bounded",
                    max_out_of_orderness_ms=3_600_000,
                    idle_timeout_ms=30_000,
                    max_future_skew_ms=172_800_000,
                ),
                on_error="dead_letter",
                dead_letter_topic="flights-dlq",
            ),
        ),
        operators=(
            FilterSpec(id="filter-0", expr="dep_time is not None", inputs=(PortRef("flights-in"),)),
            MapSpec(
                id="map-1",
                select=("origin", "dep_delay"),
                fields=(("delay_h", "dep_delay / 60"),),
                inputs=(PortRef("filter-0"),),
            ),
            KeyBySpec(id="by-origin", expr="origin", partitions=4, inputs=(PortRef("map-1"),)),
            WindowSpec(
                id="hourly",
                type="tumbling",
                size_ms=3_600_000,
                offset_ms=-900_000,
                allowed_lateness_ms=300_000,
                late_topic="flights-late",
                emit="update",
                aggregations=(
                    AggregationSpec(name="flights", kind="count"),
                    AggregationSpec(name="delayed", kind="count", expr="dep_delay"),
                    AggregationSpec(name="avg_dep_delay", kind="avg", expr="dep_delay"),
                    AggregationSpec(name="custom", kind="python", python="my_udfs:Median"),
                ),
                inputs=(PortRef("by-origin"),),
            ),
            FilterSpec(id="filter-4", python="my_udfs:keep", inputs=(PortRef("hourly"),)),
        ),
        sinks=(
            SinkSpec(
                name="out",
                topic="flights-hourly",
                format="string",
                key_format="json",
                partitions=3,
                inputs=(PortRef("filter-4"),),
            ),
        ),
    )
    assert spec.group_id == "flights-group"
    assert spec.stateful_ids() == ["hourly"]


def test_minimal_file_gets_the_defaults() -> None:
    spec = load_pipeline_text(MINIMAL)
    assert spec.path == "<string>"
    assert spec.group_id == "p"
    assert spec.kafka == {}
    assert spec.checkpoint == CheckpointSpec()
    assert spec.operators == ()
    assert spec.sources == (SourceSpec(name="in", topic="in"),)
    assert spec.sinks == (SinkSpec(name="out", topic="out", inputs=(PortRef("in"),)),)


def test_load_pipeline_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "flights.yaml"
    path.write_text(FULL, encoding="utf-8")
    spec = load_pipeline(path)
    assert spec.path == str(path)
    assert spec.name == "flights-hourly"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_pipeline(tmp_path / "nope.yaml")


def test_shorthands_and_other_window_types() -> None:
    text = MINIMAL.replace("  - topic: in\n", "  - topic: in\n    event_time: ts\n")
    text += textwrap.dedent(
        """\
        operators:
          - key_by: origin
          - key_by: {python: "udfs:key", partitions: 2}
          - map: {python: "udfs:shape"}
          - id: slide
            window: {type: sliding, size: 1h, slide: 10m, aggregate: {n: count}}
          - id: sess
            window: {type: session, gap: 3h, aggregate: {n: {sum: 1}}}
        """
    )
    spec = load_pipeline_text(text)
    assert spec.sources[0].time == TimeSpec(kind="event", field="ts", unit="ms")
    ops = spec.operators
    # a key_by's default id comes from its key, not its position: it names a topic
    assert ops[0] == KeyBySpec(id="key_by-origin", expr="origin", inputs=(PortRef("in"),))
    assert ops[1] == KeyBySpec(
        id="key_by-udfs.key", python="udfs:key", partitions=2, inputs=(PortRef("key_by-origin"),)
    )
    assert ops[2] == MapSpec(id="map-2", python="udfs:shape", inputs=(PortRef("key_by-udfs.key"),))
    assert isinstance(ops[3], WindowSpec)
    assert (ops[3].type, ops[3].size_ms, ops[3].slide_ms) == ("sliding", 3_600_000, 600_000)
    assert isinstance(ops[4], WindowSpec)
    assert (ops[4].type, ops[4].gap_ms) == ("session", 10_800_000)
    assert ops[4].aggregations == (AggregationSpec(name="n", kind="sum", expr="1"),)


def test_integer_durations_are_milliseconds() -> None:
    text = MINIMAL + "checkpoint: {interval: 250}\n"
    assert load_pipeline_text(text).checkpoint.interval_ms == 250


# --- invalid files: one issue each, with line, key path and hint -----------------------------


def test_unknown_top_level_key_suggests_the_closest() -> None:
    issue = only_issue(MINIMAL + "operatrs: []\n")
    assert (issue.file, issue.line, issue.key_path) == ("p.yaml", 6, "operatrs")
    assert issue.message == "unknown key 'operatrs'"
    assert issue.hint == "did you mean 'operators'?"


def test_unknown_top_level_key_without_close_match_lists_the_keys() -> None:
    issue = only_issue(MINIMAL + "colour: red\n")
    assert issue.line == 6
    assert issue.hint.startswith("expected one of: pipeline, group, kafka")


def test_unknown_operator() -> None:
    issue = only_issue(with_operators("  - filter: x\n  - windw: {}\n"))
    assert (issue.line, issue.key_path) == (8, "operators[1].windw")
    assert issue.message == "unknown operator 'windw'"
    assert "did you mean 'window'?" in issue.hint
    assert "expected one of: filter, map, flat_map, key_by, window" in issue.hint


def test_misspelled_window_key_gets_a_suggestion() -> None:
    ops = """\
      - id: hourly
        window:
          type: tumbling
          size: 1h
          sise: 1h
          aggregate: {n: count}
    """
    issue = only_issue(with_operators(ops))
    assert (issue.line, issue.key_path) == (11, "operators[0].window.sise")
    assert issue.message == "unknown key 'sise'"
    assert issue.hint == "did you mean 'size'?"


def test_bad_duration() -> None:
    ops = """\
      - id: hourly
        window:
          type: tumbling
          size: 1 hour
          aggregate: {n: count}
    """
    issue = only_issue(with_operators(ops))
    assert (issue.line, issue.key_path) == (10, "operators[0].window.size")
    assert "invalid duration" in issue.message
    assert issue.hint == "write 1h (a duration is " + DURATION_HINT.removeprefix("write ") + ")"


def test_missing_window_id() -> None:
    ops = """\
      - filter: x
      - window: {type: tumbling, size: 1h, aggregate: {n: count}}
    """
    issue = only_issue(with_operators(ops))
    assert (issue.line, issue.key_path) == (8, "operators[1]")
    assert "needs an 'id'" in issue.message
    assert "id:" in issue.hint


def test_missing_aggregate() -> None:
    ops = """\
      - id: hourly
        window:
          type: tumbling
          size: 1h
    """
    issue = only_issue(with_operators(ops))
    assert (issue.line, issue.key_path) == (8, "operators[0].window")
    assert issue.message == "missing required key 'aggregate'"
    assert "aggregate:" in issue.hint


def test_empty_aggregate() -> None:
    ops = """\
      - id: hourly
        window:
          type: tumbling
          size: 1h
          aggregate: {}
    """
    issue = only_issue(with_operators(ops))
    assert (issue.line, issue.key_path) == (11, "operators[0].window.aggregate")
    assert "at least one aggregation" in issue.message


def test_invalid_yaml_syntax_reports_the_line() -> None:
    text = "pipeline: p\nsources:\n  - topic: in\n    name: x: y\nsinks: []\n"
    issue = only_issue(text)
    assert issue.line == 4
    assert issue.message.startswith("invalid YAML")
    assert issue.hint


def test_duplicate_yaml_key_reports_the_second_line() -> None:
    issue = only_issue(MINIMAL + "pipeline: q\n")
    assert issue.line == 6
    assert "duplicate key" in issue.message


def test_duplicate_operator_ids() -> None:
    ops = """\
      - filter: a
        id: f
      - filter: b
        id: f
    """
    issue = only_issue(with_operators(ops))
    assert (issue.line, issue.key_path) == (10, "operators[1].id")
    assert issue.message == "duplicate operator id 'f'"
    assert "line 8" in issue.hint


def test_explicit_id_may_clash_with_a_default_id() -> None:
    issue = only_issue(with_operators("  - filter: a\n  - filter: b\n    id: filter-0\n"))
    assert (issue.line, issue.key_path) == (9, "operators[1].id")


def test_invalid_operator_id() -> None:
    issue = only_issue(with_operators("  - filter: a\n    id: my filter\n"))
    assert (issue.line, issue.key_path) == (8, "operators[0].id")
    assert "letters, digits" in issue.hint


def test_multiple_issues_are_reported_at_once_in_line_order() -> None:
    text = """\
    pipeline: p
    colour: red
    sources:
      - topic: in
        format: jsn
    operators:
      - id: w
        window: {type: tumbling, size: 5x, aggregate: {n: count}}
    sinks:
      - topic: out
        partitions: 0
    """
    issues = issues_of(text)
    got = [(i.line, i.key_path) for i in issues]
    assert got == [
        (2, "colour"),
        (5, "sources[0].format"),
        (8, "operators[0].window.size"),
        (11, "sinks[0].partitions"),
    ]
    assert issues[1].hint == "did you mean 'json'?"
    assert "positive integer" in issues[3].message
    assert str(ConfigError(issues)).count("p.yaml:") == 4


def test_missing_required_top_level_keys() -> None:
    issues = issues_of("pipeline: p\n")
    assert {i.message for i in issues} == {
        "missing required key 'sources'",
        "missing required key 'sinks'",
    }
    assert all(i.line == 1 for i in issues)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_the_root_must_be_a_mapping(text: str) -> None:
    issue = only_issue(text)
    assert "a pipeline file must be a mapping" in issue.message


def test_gap_on_a_tumbling_window() -> None:
    ops = "  - id: w\n    window: {type: tumbling, size: 1h, gap: 3h, aggregate: {n: count}}\n"
    issue = only_issue(with_operators(ops))
    assert issue.key_path == "operators[0].window.gap"
    assert issue.message == "'gap' is for session windows, not tumbling windows"
    assert "type: session" in issue.hint


def test_sliding_window_needs_slide_not_larger_than_size() -> None:
    ops = """\
      - id: a
        window: {type: sliding, size: 1h, aggregate: {n: count}}
      - id: b
        window: {type: sliding, size: 1h, slide: 2h, aggregate: {n: count}}
    """
    first, second = issues_of(with_operators(ops))
    assert (first.line, first.key_path, first.message) == (
        8,
        "operators[0].window",
        "a sliding window needs 'slide'",
    )
    assert (second.line, second.key_path) == (10, "operators[1].window.slide")
    assert second.hint == "use slide <= size"


def test_offset_must_be_smaller_than_the_period() -> None:
    ops = "  - id: w\n    window: {type: tumbling, size: 1h, offset: 1h, aggregate: {n: count}}\n"
    issue = only_issue(with_operators(ops))
    assert issue.key_path == "operators[0].window.offset"


def test_aggregation_names_must_not_collide_with_window_fields() -> None:
    ops = "  - id: w\n    window: {type: session, gap: 1m, aggregate: {window_start: count}}\n"
    issue = only_issue(with_operators(ops))
    assert issue.key_path == "operators[0].window.aggregate.window_start"
    assert "collides" in issue.message


def test_bare_aggregation_kind_needs_an_expression() -> None:
    ops = "  - id: w\n    window: {type: session, gap: 1m, aggregate: {total: sum}}\n"
    issue = only_issue(with_operators(ops))
    assert issue.key_path == "operators[0].window.aggregate.total"
    assert issue.hint == "write {sum: field}"


def test_unknown_aggregation_kind() -> None:
    ops = "  - id: w\n    window: {type: session, gap: 1m, aggregate: {m: {mean: x}}}\n"
    issue = only_issue(with_operators(ops))
    assert issue.key_path == "operators[0].window.aggregate.m.mean"
    assert issue.message == "unknown aggregation 'mean'"


def test_with_several_sources_a_sink_must_say_what_it_writes() -> None:
    text = MINIMAL.replace("  - topic: in\n", "  - topic: in\n  - topic: other\n")
    issue = only_issue(text)
    assert (issue.line, issue.key_path) == (6, "sinks[0]")
    assert issue.message == "this sink needs 'from:': there are several sources"
    assert "from: <node id>" in issue.hint


def test_dead_letter_needs_a_topic() -> None:
    text = MINIMAL.replace("  - topic: in\n", "  - topic: in\n    on_error: dead_letter\n")
    issue = only_issue(text)
    assert (issue.line, issue.key_path) == (4, "sources[0].on_error")
    assert "dead_letter_topic" in issue.hint


def test_operator_with_two_kinds() -> None:
    issue = only_issue(with_operators("  - filter: a\n    map: {select: [a]}\n"))
    assert issue.key_path == "operators[0].map"
    assert "split" in issue.hint


def test_invalid_python_reference() -> None:
    issue = only_issue(with_operators("  - filter: {python: my_udfs.keep}\n"))
    assert issue.key_path == "operators[0].filter.python"
    assert "module:function" in issue.hint


def test_invalid_expression_is_reported_at_load_time() -> None:
    pytest.importorskip("kstream.expr.compiler")
    issue = only_issue(with_operators("  - map: {fields: {h: 'dep_delay /'}}\n"))
    assert (issue.line, issue.key_path) == (7, "operators[0].map.fields.h")
    assert issue.message.startswith("invalid expression")


# --- spec_to_dict and fingerprint -------------------------------------------------------------


def test_spec_to_dict_masks_secrets_and_is_json() -> None:
    text = MINIMAL + textwrap.dedent(
        """\
        kafka:
          bootstrap.servers: localhost:9092
          sasl.password: hunter2
          ssl.key.password: pem-pass
          sasl.jaas.config: secret-config
          sasl.oauthbearer.client.secret: s3
          some.token: t
        """
    )
    view = spec_to_dict(load_pipeline_text(text))
    assert view["kafka"] == {
        "bootstrap.servers": "localhost:9092",
        "sasl.password": "***",
        "ssl.key.password": "***",
        "sasl.jaas.config": "***",
        "sasl.oauthbearer.client.secret": "***",
        "some.token": "***",
    }
    assert "hunter2" not in json.dumps(view)


def test_spec_to_dict_operators_carry_their_kind() -> None:
    view = spec_to_dict(load_pipeline_text(FULL))
    kinds = [op["kind"] for op in view["operators"]]
    assert kinds == ["filter", "map", "key_by", "window", "filter"]
    assert view["operators"][1]["fields"] == {"delay_h": "dep_delay / 60"}
    assert view["operators"][3]["aggregations"][0] == {
        "name": "flights",
        "kind": "count",
        "expr": None,
        "python": None,
    }
    assert json.loads(json.dumps(view)) == view


def test_fingerprint_follows_state_layout_only() -> None:
    base = fingerprint(load_pipeline_text(FULL))
    assert len(base) == 64
    assert fingerprint(load_pipeline_text(FULL)) == base
    changed_kafka = FULL.replace("linger.ms: 5", "linger.ms: 50")
    assert fingerprint(load_pipeline_text(changed_kafka)) == base
    changed_filter = FULL.replace("dep_time is not None", "dep_time > 0")
    assert fingerprint(load_pipeline_text(changed_filter)) == base
    changed_window = FULL.replace("size: 1h", "size: 2h")
    assert fingerprint(load_pipeline_text(changed_window)) != base
    changed_name = FULL.replace("pipeline: flights-hourly", "pipeline: other")
    assert fingerprint(load_pipeline_text(changed_name)) != base
    changed_topic = FULL.replace("  - topic: flights\n", "  - topic: flights2\n")
    assert fingerprint(load_pipeline_text(changed_topic)) != base


def test_a_key_by_id_does_not_depend_on_position() -> None:
    def repartition_ids(ops: str) -> list[str]:
        text = f"pipeline: p\nsources: [{{topic: t}}]\noperators:\n{ops}sinks: [{{topic: o}}]\n"
        return [op.id for op in load_pipeline_text(text).operators if isinstance(op, KeyBySpec)]

    plain = repartition_ids("  - key_by: \"origin + '-' + dest\"\n")
    inserted = repartition_ids('  - filter: "x > 1"\n  - key_by: "origin + \'-\' + dest"\n')
    assert plain == inserted == ["key_by-origin-dest"]


def test_two_key_bys_on_one_key_need_explicit_ids() -> None:
    text = "pipeline: p\nsources: [{topic: t}]\noperators:\n  - key_by: a\n  - key_by: a\n"
    with pytest.raises(ConfigError) as err:
        load_pipeline_text(text + "sinks: [{topic: o}]\n")
    (issue,) = err.value.issues
    assert issue.line == 5 and "duplicate operator id 'key_by-a' (derived from its key)" in str(
        issue
    )
    assert "add an explicit 'id: ...'" in str(issue)


def test_metrics_port_is_read_and_a_bad_one_named_with_its_line() -> None:
    assert load_pipeline_text(MINIMAL).metrics_port is None
    assert load_pipeline_text(MINIMAL + "metrics: {port: 9108}\n").metrics_port == 9108
    issue = only_issue(MINIMAL + "metrics:\n  port: 70000\n")
    assert issue.line == 7 and "past 65535" in issue.message and "9108" in issue.hint
    typo = issues_of(MINIMAL + "metrics: {prot: 9108}\n")
    assert [i.line for i in typo] == [6, 6] and "did you mean 'port'?" in typo[0].hint
