"""Decoding saved windows (``Savepoint.windows``), operator summaries, and the restore rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import savepoint_kit as kit

from kstream.errors import SavepointError
from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import (
    Savepoint,
    aggregator_for,
    check_restore,
    open_savepoint,
    snapshot_local,
    summarize,
    write_savepoint,
)


@pytest.fixture(scope="module")
def driver() -> kit.PipelineDriver:
    return kit.run()


@pytest.fixture(scope="module")
def sp(tmp_path_factory: pytest.TempPathFactory, driver: kit.PipelineDriver) -> Savepoint:
    root = tmp_path_factory.mktemp("view")
    kit.write_state(driver, root / "state")
    tasks, entries = snapshot_local(kit.spec(), root / "state")
    write_savepoint(root / "sp", kit.spec(), tasks, entries)
    return open_savepoint(root / "sp")


def _sorted(rows: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows)


@pytest.mark.parametrize("op_id", ["pairs", "per-minute", "totals"])
def test_windows_decode_to_what_the_operators_hold(
    sp: Savepoint, driver: kit.PipelineDriver, op_id: str
) -> None:
    expected = kit.expected_windows(driver, op_id)
    assert expected, "the test pipeline should leave open windows"
    assert _sorted(list(sp.windows(op_id))) == _sorted(expected)


def test_window_rows_have_the_documented_shape(sp: Savepoint) -> None:
    row = next(sp.windows("per-minute"))
    assert list(row) == ["key", "window_start", "window_end", "batches", "amount", "starts"]
    assert row["window_end"] - row["window_start"] == 60_000
    assert list(next(sp.windows("totals"))) == ["key", "windows", "best", "spread"]
    pair = next(sp.windows("pairs"))
    assert pair["window_end"] - pair["window_start"] == 2


def test_windows_of_one_key(sp: Savepoint) -> None:
    rows = list(sp.windows("per-minute", key="u3"))
    assert rows and {r["key"] for r in rows} == {"u3"}
    assert list(sp.windows("per-minute", key="nobody")) == []


def test_python_aggregate_without_its_module_shows_the_raw_accumulator(sp: Savepoint) -> None:
    definition = sp.manifest.operators["totals"].definition
    missing = {
        **definition,
        "aggregations": [
            {**a, "python": "no_such_module_xyz:Spread"} if a["kind"] == "python" else a
            for a in definition["aggregations"]
        ],
    }
    agg = aggregator_for(missing)
    assert agg.result([3, 10, [5, 9]]) == {"windows": 3, "best": 10, "spread": [5, 9]}
    assert aggregator_for(definition).result([3, 10, [5, 9]])["spread"] == 4


def test_an_entry_that_does_not_fit_its_definition(sp: Savepoint) -> None:
    definition = sp.manifest.operators["per-minute"].definition
    narrower = {**definition, "aggregations": definition["aggregations"][:1]}
    from kstream.savepoint.view import decode_windows

    with pytest.raises(SavepointError, match="does not fit the stored definition"):
        list(decode_windows(narrower, sp.entries("per-minute")))


def test_summaries(sp: Savepoint, driver: kit.PipelineDriver) -> None:
    info = sp.manifest.operators["pairs"]
    summary = summarize(info.definition, info.stage, info.bytes, sp.entries("pairs"))
    assert (summary.id, summary.type, summary.stage) == ("pairs", "count", "sp-events")
    assert summary.entries == info.entries == 10  # 5 keys x 2 source partitions
    assert summary.keys == 5
    assert summary.windows == len(kit.expected_windows(driver, "pairs"))
    minute = sp.manifest.operators["per-minute"]
    timers = sp.entries("per-minute", "timers")
    minute_summary = summarize(minute.definition, "by-key", 0, sp.entries("per-minute"), timers)
    assert minute_summary.windows == minute.entries == minute_summary.timers > 0


def test_keys_in_several_tasks(sp: Savepoint) -> None:
    assert len(sp.keys_in_several_tasks("pairs")) == 5  # the source is not keyed by user
    assert sp.keys_in_several_tasks("per-minute") == []


def _variant(old: str, new: str) -> Any:
    assert old in kit.PIPELINE
    return load_pipeline_text(kit.PIPELINE.replace(old, new))


def test_restore_rules_accept_the_same_pipeline_and_harmless_changes(sp: Savepoint) -> None:
    assert check_restore(sp.manifest, kit.spec()) == []
    harmless = _variant("emit: update", "emit: changelog")
    assert check_restore(sp.manifest, harmless) == []
    grown = _variant(
        "sinks:", "  - id: extra\n    window: {type: global, aggregate: {n: count}}\nsinks:"
    )
    assert check_restore(sp.manifest, grown) == ["operator extra: new, starts empty"]


def test_restore_rules_refuse_changed_definitions(sp: Savepoint) -> None:
    with pytest.raises(SavepointError, match=r"operator per-minute: its definition changed \(size"):
        check_restore(sp.manifest, _variant("size: 1m", "size: 2m"))
    with pytest.raises(SavepointError, match="definition changed \\(aggregations\\)"):
        check_restore(sp.manifest, _variant("batches: count", "batches: {count: amount}"))
    with pytest.raises(SavepointError, match="the key_by before it changed"):
        check_restore(sp.manifest, _variant("key_by: key", "key_by: user"))
    # the source's id defaults to its topic: another topic is another source
    with pytest.raises(SavepointError, match=r"source sp-events .* not in the pipeline"):
        check_restore(sp.manifest, _variant("topic: sp-events", "topic: other-events"))
    renamed = "id: sp-events\n    topic: other-events"
    with pytest.raises(SavepointError, match=r"the source topic changed \(sp-events -> other"):
        check_restore(sp.manifest, _variant("topic: sp-events", renamed))
    # a count window's saved windows hold `size` elements, or `min(size, slide)` discarding
    discarding = "window: {type: count, size: 2, accumulation: discarding,"
    with pytest.raises(SavepointError, match=r"operator pairs: .*\(accumulation\)"):
        check_restore(sp.manifest, _variant("window: {type: count, size: 2,", discarding))


def test_switching_a_time_window_to_discarding_keeps_its_state(sp: Savepoint) -> None:
    variant = _variant("      size: 1m\n", "      size: 1m\n      accumulation: discarding\n")
    assert check_restore(sp.manifest, variant) == []


def test_restore_rules_for_removed_operators(sp: Savepoint) -> None:
    text = kit.PIPELINE.replace(
        "  - id: pairs\n    window: {type: count, size: 2, aggregate: {total: {sum: amount}}}\n", ""
    )
    assert text != kit.PIPELINE
    spec = load_pipeline_text(text)
    with pytest.raises(SavepointError, match="operator pairs is in the savepoint but not in"):
        check_restore(sp.manifest, spec)
    notes = check_restore(sp.manifest, spec, allow_non_restored_state=True)
    assert notes == ["operator pairs: not in the pipeline, its state is skipped"]


def test_reading_api_example_from_the_docs(sp: Savepoint, tmp_path: Path) -> None:
    from kstream.savepoint import open_savepoint as public_open

    again = public_open(sp.directory)
    rows = [w for w in again.windows("per-minute", key="u0")]
    assert rows[0]["key"] == "u0" and "batches" in rows[0]
