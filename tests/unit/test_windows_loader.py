"""The window YAML keys added for count windows, the global aggregation and triggers."""

from __future__ import annotations

import pytest
from windowkit import pipeline_yaml

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec


def window(body: str) -> WindowSpec:
    spec = load_pipeline_text(pipeline_yaml(body)).operators[-1]
    assert isinstance(spec, WindowSpec)
    return spec


def issues(body: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(pipeline_yaml(body))
    return [(i.key_path, i.message) for i in info.value.issues]


def test_count_window_sizes_are_element_counts() -> None:
    spec = window("{type: count, size: 100, slide: 10, aggregate: {n: count}}")
    assert (spec.type, spec.count_size, spec.count_slide, spec.size_ms) == ("count", 100, 10, None)
    assert window("{type: count, size: 5, aggregate: {n: count}}").count_slide == 5


def test_count_window_rejects_durations_and_time_keys() -> None:
    found = issues(
        "{type: count, size: 10s, allowed_lateness: 1s, trigger: {count: 2}, aggregate: {n: count}}"
    )
    assert (
        "operators[0].window.size",
        "a count window's size is a number of elements, got a string ('10s')",
    ) in found
    assert (
        "operators[0].window.allowed_lateness",
        "'allowed_lateness' is for tumbling, sliding, cumulate and session windows, not count "
        "windows",
    ) in found
    assert (
        "operators[0].window.trigger",
        "'trigger' is for tumbling, sliding, cumulate, session and global windows, not count "
        "windows",
    ) in found


def test_count_window_slide_may_exceed_size_as_in_flink() -> None:
    spec = window("{type: count, size: 2, slide: 3, aggregate: {n: count}}")
    assert (spec.count_size, spec.count_slide) == (2, 3)
    assert issues("{type: count, size: 2, slide: 0, aggregate: {n: count}}") == [
        (
            "operators[0].window.slide",
            "a count window's slide is a number of elements, got a number (0)",
        )
    ]


def test_global_defaults_to_update_and_takes_a_trigger() -> None:
    spec = window("{type: global, aggregate: {n: count}}")
    assert (spec.type, spec.emit, spec.trigger_every_ms, spec.trigger_count) == (
        "global",
        "update",
        None,
        None,
    )
    spec = window("{type: global, emit: final, trigger: {every: 10s}, aggregate: {n: count}}")
    assert (spec.emit, spec.trigger_every_ms) == ("final", 10_000)


def test_global_rejects_window_geometry() -> None:
    found = issues("{type: global, size: 1h, late_topic: late, aggregate: {n: count}}")
    assert [path for path, _ in found] == [
        "operators[0].window.size",
        "operators[0].window.late_topic",
    ]


def test_triggers() -> None:
    assert (
        window(
            "{type: tumbling, size: 1h, trigger: {count: 50}, aggregate: {n: count}}"
        ).trigger_count
        == 50
    )
    assert (
        window(
            "{type: session, gap: 1h, trigger: {every: 30s}, aggregate: {n: count}}"
        ).trigger_every_ms
        == 30_000
    )


@pytest.mark.parametrize(
    ("trigger", "path", "message"),
    [
        (
            "{every: 10s, count: 5}",
            "operators[0].window.trigger",
            "a trigger needs exactly one of 'every' and 'count'",
        ),
        ("{}", "operators[0].window.trigger", "a trigger needs exactly one of 'every' and 'count'"),
        (
            "{count: 0}",
            "operators[0].window.trigger.count",
            "expected a positive integer, got a number (0)",
        ),
        (
            "{every: soon}",
            "operators[0].window.trigger.every",
            "invalid duration a string ('soon')",
        ),
        ("{evry: 10s}", "operators[0].window.trigger.evry", "unknown key 'evry'"),
    ],
)
def test_invalid_triggers(trigger: str, path: str, message: str) -> None:
    found = issues(f"{{type: tumbling, size: 1h, trigger: {trigger}, aggregate: {{n: count}}}}")
    assert found == [(path, message)]
