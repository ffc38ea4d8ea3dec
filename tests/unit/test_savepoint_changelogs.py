"""A savepoint assembled from the changelog topics (a job spread over machines, issue 13) holds
exactly what the local state of the same checkpoints holds: per key the latest changelog value,
deleted keys left out, each task's metadata from its task changelog; and it is refused when a
checkpoint comes from another pipeline version or is not at the group's committed offsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import savepoint_kit as kit

from kstream.errors import SavepointError
from kstream.graph.plan import Plan, build_plan, task_changelog_topic
from kstream.pipeline.view import fingerprint
from kstream.savepoint import TaskSnapshot, snapshot_local
from kstream.savepoint.changelog_snapshot import assemble, behind_committed, changelog_checkpoint
from kstream.state.store import META_KEY, TaskStore, task_dir
from kstream.testing import PipelineDriver

Logs = dict[tuple[str, int], list[tuple[bytes, bytes | None]]]


class Job:
    """The test pipeline run in memory for two checkpoints; each checkpoint goes to the local
    task directories (``TaskStore.apply``) and, as a checkpoint produces it, to fake changelog
    partitions (``logs``: ``(topic, partition) -> records in offset order``)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.driver = PipelineDriver(kit.spec(), partitions=2)
        self.plan: Plan = self.driver.plan
        self.logs: Logs = {}
        self.deleted = 0
        self.sent = 0
        self.reads: list[tuple[list[str], int]] = []

    def checkpoint(self, records: int, checkpoint_id: int) -> None:
        for _ in range(records):
            i, key = self.sent, kit.KEYS[self.sent % len(kit.KEYS)]
            value = {"user": key, "amount": i, "ts": 1_000 * i}
            self.driver.send("sp-events", value, key=key, partition=i % 2)
            self.sent += 1
        for (topic, partition), task in self.driver.tasks.items():
            stage = self.plan.stage_of_topic(topic)
            meta = task.meta()
            meta.update(checkpoint_id=checkpoint_id, fingerprint=fingerprint(self.plan.spec))
            changes = task.state_changes()
            for ref in stage.stores:
                for key, value in changes.get(ref.column_family, ()):
                    self.logs.setdefault((ref.changelog(self.plan.prefix), partition), []).append(
                        (key, value)
                    )
                    self.deleted += value is None
            meta_log = (task_changelog_topic(self.plan.prefix, stage.id), partition)
            self.logs.setdefault(meta_log, []).append((META_KEY, orjson.dumps(meta)))
            path = task_dir(self.state_dir, self.plan.prefix, stage.id, partition)
            store = TaskStore(path, [ref.column_family for ref in stage.stores])
            try:
                store.apply(changes, meta)
            finally:
                store.close()

    def read(self, topics: list[str], partition: int) -> dict[str, list[Any]]:
        self.reads.append((list(topics), partition))
        return {t: self.logs.get((t, partition), []) for t in topics}

    def positions(self) -> dict[tuple[str, int], int | None]:
        """The committed offsets after the last checkpoint: each task's positions."""
        return {
            (t, p): task.positions.get(t)
            for (_, p), task in self.driver.tasks.items()
            for t in task.stage.input_topics
        }

    def assemble(self, committed: dict[tuple[str, int], int | None] | None = None) -> Any:
        offsets = self.positions() if committed is None else committed
        self.reads = []
        return assemble(
            self.plan,
            {s.id: 2 for s in self.plan.stages},
            self.read,
            offsets,
        )


@pytest.fixture
def job(tmp_path: Path) -> Job:
    job = Job(tmp_path)
    job.checkpoint(120, 1)
    job.checkpoint(91, 2)
    return job


def test_the_changelogs_hold_what_the_local_state_holds(job: Job) -> None:
    assert job.deleted > 0, "the second checkpoint deletes entries of the first"
    tasks, entries = job.assemble()
    local_tasks, local_entries = snapshot_local(kit.spec(), job.state_dir)
    assert [t.task_id for t in tasks] == ["sp-events:0", "sp-events:1", "by-key:0", "by-key:1"]
    assert tasks == local_tasks
    assert entries == local_entries
    assert {t.meta["checkpoint_id"] for t in tasks} == {2}
    assert sum(len(rows) for stores in entries.values() for rows in stores.values()) > 0


def test_each_task_reads_all_its_changelogs_in_one_call(job: Job) -> None:
    job.assemble()
    assert job.reads[2] == (
        ["sp-test.by-key.task.changelog", "sp-test.per-minute.changelog",
         "sp-test.per-minute.timers.changelog", "sp-test.totals.changelog"],
        0,
    )  # fmt: skip
    assert len(job.reads) == 4


def test_the_latest_value_wins_and_a_tombstone_deletes() -> None:
    plan = build_plan(kit.spec())
    stage = plan.stages[1]
    logs = {
        "sp-test.by-key.task.changelog": [(META_KEY, b'{"position": 1}'), (META_KEY, b"{}")],
        "sp-test.totals.changelog": [(b"b", b"1"), (b"a", b"1"), (b"b", None), (b"a", b"2")],
        "sp-test.per-minute.changelog": [(b"x", b"1"), (b"x", None), (b"x", b"3")],
    }
    meta, entries = changelog_checkpoint(logs, plan.prefix, stage)
    assert meta == {}
    assert entries == {
        "op.per-minute": [(b"x", b"3")],
        "op.per-minute.timers": [],
        "op.totals": [(b"a", b"2")],
    }


def test_a_checkpoint_of_another_pipeline_version_is_refused(job: Job) -> None:
    topic = ("sp-test.by-key.task.changelog", 1)
    meta = orjson.loads(job.logs[topic][-1][1] or b"")
    job.logs[topic].append((META_KEY, orjson.dumps({**meta, "fingerprint": "0" * 64})))
    with pytest.raises(SavepointError, match=r"task by-key:1: .*another version of pipeline"):
        job.assemble()


def test_a_checkpoint_behind_the_committed_offsets_is_refused(job: Job) -> None:
    committed = job.positions()
    position = committed[("sp-events", 0)]
    assert position is not None
    committed[("sp-events", 0)] = position + 4
    with pytest.raises(SavepointError) as info:
        job.assemble(committed)
    message = str(info.value)
    assert message.startswith("task sp-events:0: its checkpoint in sp-test.sp-events.task.")
    assert "the job is still running and was not quiesced" in message
    assert f"is at position {position}, but group sp-test committed {position + 4}" in message


def test_committed_offsets_without_a_checkpoint_are_refused(job: Job) -> None:
    del job.logs[("sp-test.by-key.task.changelog", 0)]
    with pytest.raises(SavepointError, match=r"task by-key:0: .* holds no checkpoint of it"):
        job.assemble()


def test_a_task_without_checkpoint_or_offsets_is_left_out(job: Job) -> None:
    del job.logs[("sp-test.by-key.task.changelog", 0)]
    committed = {k: v for k, v in job.positions().items() if k[1] != 0 or k[0] == "sp-events"}
    tasks, entries = job.assemble(committed)
    assert [t.task_id for t in tasks] == ["sp-events:0", "sp-events:1", "by-key:1"]
    assert {e.partition for e in entries["totals"][""] if e.stage == "by-key"} == {1}


def test_a_checkpoint_behind_the_committed_offsets_is_stale() -> None:
    """Used by ``savepoint create --from auto`` on a local state dir: behind in any input is
    stale (the task ran elsewhere since); ahead is a lost offset commit, and not stale."""
    one = TaskSnapshot("s", 0, ("a", "b"), {"inputs": {"a": {"position": 5}, "b": {}}})
    two = TaskSnapshot("s", 1, ("a", "b"), {"inputs": {"a": {"position": 9}}})
    assert behind_committed([one, two], {}) == []
    assert behind_committed([one, two], {("a", 0): 4, ("a", 1): 10}) == ["s:1"]
    assert behind_committed([one, two], {("b", 0): 1, ("b", 1): None}) == ["s:0"]
