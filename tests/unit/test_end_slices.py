"""The end of input in slices (kstream.runtime.ending): the same results, in the same order per
key, as all at once; a checkpoint between two slices resumes exactly (nothing twice, nothing
missing), through the broker-free driver with in-memory stores.

Time: 240 keys, one record each at 0..239 ms; the watermark stays below every window end, so
everything fires at the end of input, when event time jumps to +infinity::

    records  k0@0 k1@1 ... k239@239 | end of input
    fires                           | global: 240 keys   tumbling 10 ms: 240 windows
"""

from __future__ import annotations

from typing import Any

import pytest

from kstream.testing import OutputRecord, PipelineDriver

KEYS = 240
WINDOWS = {
    "global-final": "{type: global, emit: final, aggregate: {n: count}}",
    "global-early": "{type: global, trigger: {count: 3}, aggregate: {n: count}}",
    "tumbling": "{type: tumbling, size: 10, aggregate: {n: count}}",
    "session": "{type: session, gap: 5, aggregate: {n: count}}",
}


def pipeline(window: str, downstream: bool) -> str:
    """Source ``in`` -> window ``w`` -> (``downstream``: a repartition by the result's ``n``) ->
    sink ``out``."""
    rekey = "  - {id: by-n, key_by: n}\n" if downstream else ""
    return (
        "pipeline: t\n"
        "sources:\n"
        "  - topic: in\n"
        "    event_time: ts\n"
        "    watermark: {max_out_of_orderness: 100000d, max_future_skew: 100000d}\n"
        "operators:\n"
        f"  - id: w\n    window: {window}\n"
        f"{rekey}"
        "sinks:\n"
        "  - topic: out\n"
    )


def send_all(driver: PipelineDriver, partitions: int) -> None:
    for i in range(KEYS):
        key = f"k{i:03d}"
        value = {"ts": i, "k": key}
        driver.send("in", value, key=key, partition=i % partitions)
        if i % 4 == 0:  # a second element for some keys (the early trigger counts 3)
            driver.send("in", value, key=key, partition=i % partitions)


def by_key(records: list[OutputRecord]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = {}
    for r in records:
        out.setdefault(r.value["key"], []).append((r.value, r.timestamp_ms))
    return out


@pytest.mark.parametrize("window", list(WINDOWS.values()), ids=list(WINDOWS))
@pytest.mark.parametrize("downstream", [False, True])
def test_slices_give_what_one_step_gives(window: str, downstream: bool) -> None:
    drivers = {}
    for end_slice in (None, 7):
        driver = PipelineDriver.from_yaml(
            pipeline(window, downstream), partitions=2, end_slice=end_slice
        )
        send_all(driver, 2)
        driver.end_of_input()
        drivers[end_slice] = driver
    whole, sliced = drivers[None].output("out"), drivers[7].output("out")
    assert len(whole) >= KEYS
    assert by_key(sliced) == by_key(whole)
    assert all(task.finished and task.ending is None for task in drivers[7]._all_tasks)


def test_timers_fire_at_most_a_slice_each_step() -> None:
    driver = PipelineDriver.from_yaml(pipeline(WINDOWS["tumbling"], False), end_slice=50)
    send_all(driver, 1)
    task = driver.tasks[("in", 0)]
    task.end_of_input()  # the first slice
    assert len(driver.output("out")) == 50
    assert not task.finished and task.watermark < 2**63 - 1
    assert not task.drain_end()
    assert len(driver.output("out")) == 100
    while not task.drain_end():
        pass
    assert len(driver.output("out")) == KEYS and task.watermark == 2**63 - 1


def snapshot(task: Any) -> tuple[dict[str, Any], dict[str, list[tuple[bytes, bytes]]]]:
    """The task's checkpoint: its meta and its stores as RocksDB holds them."""
    stores = {
        name: sorted((k, v) for k, v in changes if v is not None)
        for name, changes in task.state_changes().items()
    }
    return task.meta(), stores


@pytest.mark.parametrize("window", list(WINDOWS.values()), ids=list(WINDOWS))
def test_a_checkpoint_between_slices_resumes_exactly(window: str) -> None:
    """A checkpoint after the third slice; the fourth is lost (a crash aborts its outputs);
    the restored task emits from the fourth slice on: with the outputs up to the checkpoint,
    exactly the uninterrupted run's, in its order."""
    text = pipeline(window, False)
    whole = PipelineDriver.from_yaml(text, end_slice=11)
    send_all(whole, 1)
    whole.end_of_input()
    expected = [(r.value, r.timestamp_ms) for r in whole.output("out")]

    crashed = PipelineDriver.from_yaml(text, end_slice=11)
    send_all(crashed, 1)
    task = crashed.tasks[("in", 0)]
    task.end_of_input()
    task.drain_end()
    task.drain_end()
    meta, stores = snapshot(task)
    committed = [(r.value, r.timestamp_ms) for r in crashed.output("out")]
    task.drain_end()  # outputs of an aborted transaction
    assert meta["ending"] == {"node": "w", "cursor": meta["ending"]["cursor"]}

    resumed = PipelineDriver.from_yaml(text, end_slice=11)
    resumed.tasks[("in", 0)].restore(meta, stores)
    resumed.end_of_input()
    after = [(r.value, r.timestamp_ms) for r in resumed.output("out")]
    assert len(committed) == 33 or "early" in window
    assert committed + after == expected


TWO_INPUTS = """
pipeline: t
sources:
  - {id: a, topic: a, event_time: ts}
  - {id: b, topic: b, event_time: ts}
operators:
  - id: g
    from: a
    window: {type: global, emit: final, aggregate: {n: count}}
  - id: u
    union: [g, b]
sinks:
  - {topic: out, from: u}
"""


def results_of_g(driver: PipelineDriver) -> list[str]:
    return [r.value["key"] for r in driver.output("out") if "n" in r.value]


@pytest.mark.parametrize("restored", [False, True])
def test_a_node_whose_inputs_ended_first_fires_once(restored: bool) -> None:
    """A task with two inputs: ``g`` (fed by ``a`` only) fires when ``a`` ends; when ``b``
    ends later — in the same run, or after a restore from a checkpoint taken in between —
    ``g`` is at +infinity already and emits nothing more."""
    driver = PipelineDriver.from_yaml(TWO_INPUTS, end_slice=2)
    for i in range(5):
        driver.send("a", {"ts": i}, key=f"k{i}")
        driver.send("b", {"ts": i}, key=f"k{i}")
    driver.end_input("a")
    assert sorted(results_of_g(driver)) == [f"k{i}" for i in range(5)]
    if restored:
        meta, stores = snapshot(driver.tasks[("a", 0)])
        driver = PipelineDriver.from_yaml(TWO_INPUTS, end_slice=2)
        driver.tasks[("a", 0)].restore(meta, stores)
        assert meta["nodes"]["g"] == 2**63 - 1
    driver.end_input("b")
    assert results_of_g(driver) == ([] if restored else [f"k{i}" for i in range(5)])
    assert driver.tasks[("a", 0)].finished
