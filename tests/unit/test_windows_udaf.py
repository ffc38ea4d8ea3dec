"""User-defined aggregations (``{python: module:Class}``) and aggregation errors, through the
PipelineDriver: the initialize / add / merge / result contract, session merging, and bad
records routed by the source's error policy without touching window state."""

from __future__ import annotations

import shutil
import textwrap
import uuid
from pathlib import Path

import pytest

from kstream.errors import ExpressionError
from kstream.testing import PipelineDriver

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_pipeline(tmp_path: Path, window: str, module: str, source_extra: str = "") -> Path:
    """A pipeline file next to a copy of ``examples/flight_aggregates.py`` named ``module``."""
    shutil.copy(EXAMPLES / "flight_aggregates.py", tmp_path / f"{module}.py")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "pipeline: t\n"
        "sources:\n"
        "  - topic: in\n"
        "    event_time: ts\n"
        "    watermark: {max_out_of_orderness: 100000d}\n"
        f"{source_extra}"
        "operators:\n"
        "  - id: w\n"
        f"    window: {window}\n"
        "sinks:\n"
        "  - topic: out\n"
    )
    return path


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_user_aggregate_in_tumbling_windows(tmp_path: Path) -> None:
    mod = unique("aggs")
    window = (
        f"{{type: tumbling, size: 10, aggregate: {{n: count, "
        f"median: {{python: '{mod}:MedianDelay'}}, hist: {{python: '{mod}:DelayHistogram'}}}}}}"
    )
    driver = PipelineDriver.from_yaml(write_pipeline(tmp_path, window, mod))
    for ts, delay in ((1, 5), (2, -3), (3, None), (4, 90), (12, 20)):
        driver.send("in", {"ts": ts, "dep_delay": delay}, key="JFK")
    driver.end_of_input()
    values = [r.value for r in driver.output("out")]
    assert [(v["n"], v["median"], v["hist"]) for v in values] == [
        (4, 5, {"0-15": 1, "early": 1, "60+": 1}),
        (1, 20, {"15-60": 1}),
    ]


def test_user_aggregate_merges_when_a_late_element_bridges_two_sessions(tmp_path: Path) -> None:
    mod = unique("aggs")
    window = (
        f"{{type: session, gap: 10, allowed_lateness: 100, "
        f"aggregate: {{median: {{python: '{mod}:MedianDelay'}}, "
        f"hist: {{python: '{mod}:DelayHistogram'}}}}}}"
    )
    driver = PipelineDriver.from_yaml(write_pipeline(tmp_path, window, mod))
    driver.send("in", {"ts": 0, "dep_delay": 10}, key="k")
    driver.send("in", {"ts": 15, "dep_delay": 30}, key="k")
    driver.watermark("in", 30)
    driver.send("in", {"ts": 7, "dep_delay": 20}, key="k")  # bridges [0,10) and [15,25)
    last = driver.output("out")[-1].value
    assert (last["window_start"], last["window_end"], last["median"]) == (0, 25, 20)
    assert last["hist"] == {"0-15": 1, "15-60": 2}


def test_a_failing_user_add_is_a_bad_record_and_leaves_the_window_untouched(
    tmp_path: Path,
) -> None:
    mod = unique("fragile")
    (tmp_path / f"{mod}.py").write_text(
        textwrap.dedent("""\
        class Fragile:
            def initialize(self):
                return 0
            def add(self, acc, record):
                if record["v"] < 0:
                    raise ValueError("negative")
                return acc + record["v"]
            def merge(self, a, b):
                return a + b
            def result(self, acc):
                return acc
        """)
    )
    path = write_pipeline(
        tmp_path,
        f"{{type: tumbling, size: 10, aggregate: {{n: count, s: {{python: '{mod}:Fragile'}}}}}}",
        unique("unused"),
        source_extra="    on_error: dead_letter\n    dead_letter_topic: bad\n",
    )
    driver = PipelineDriver.from_yaml(path)
    for v in (1, -1, 2):
        driver.send("in", {"ts": 1, "v": v}, key="k")
    driver.end_of_input()
    assert [(r.value["n"], r.value["s"]) for r in driver.output("out")] == [(2, 3)]
    (bad,) = driver.topic("bad")
    assert bad.headers["kstream.error.stage"] == "aggregate"
    assert "negative" in bad.headers["kstream.error.message"]


def test_a_non_numeric_sum_is_a_bad_record_and_leaves_the_window_untouched() -> None:
    text = textwrap.dedent("""\
        pipeline: t
        sources:
          - topic: in
            event_time: ts
            on_error: skip
        operators:
          - id: w
            window: {type: tumbling, size: 10, aggregate: {n: count, s: {sum: v}}}
        sinks:
          - topic: out
        """)
    driver = PipelineDriver.from_yaml(text)
    for v in (1, "x", 2):
        driver.send("in", {"ts": 1, "v": v}, key="k")
    driver.end_of_input()
    assert [(r.value["n"], r.value["s"]) for r in driver.output("out")] == [(2, 3)]
    assert driver.tasks[("in", 0)].counters["skipped"] == 1


def test_a_user_aggregate_without_merge_is_rejected_when_the_pipeline_is_built(
    tmp_path: Path,
) -> None:
    mod = unique("nomerge")
    (tmp_path / f"{mod}.py").write_text(
        textwrap.dedent("""\
        class NoMerge:
            def initialize(self):
                return 0
            def add(self, acc, record):
                return acc + 1
            def result(self, acc):
                return acc
        """)
    )
    window = f"{{type: tumbling, size: 10, aggregate: {{s: {{python: '{mod}:NoMerge'}}}}}}"
    with pytest.raises(ExpressionError, match="no method merge"):
        PipelineDriver.from_yaml(write_pipeline(tmp_path, window, unique("unused")))
