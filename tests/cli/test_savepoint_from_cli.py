"""``kstream savepoint create --from local|changelog|auto``: where the committed state is read
(no broker: the quiesce, the partition counts and the changelog read are replaced)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import savepoint_kit as kit
from click.testing import CliRunner, Result
from kstream_cli.main import cli

from kstream.runtime.control import Quiesced
from kstream.savepoint import open_savepoint, snapshot_local
from kstream.state.store import SnapshotRef, snapshot_path


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args), obj={})


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(pipeline file, state dir)`` holding one checkpoint of the test pipeline's 4 tasks."""
    root = tmp_path_factory.mktemp("job")
    pipeline = root / "sp-test.yaml"
    pipeline.write_text(kit.PIPELINE)
    kit.write_state(kit.run(), root / "state")
    return pipeline, root / "state"


class Broker:
    """What the command asks of Kafka: the quiesce's answer, the topics' partition counts, the
    group's committed offsets and the changelog snapshot (which returns the job's local
    state)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, state: Path, acks: Quiesced) -> None:
        self.partitions = {"sp-events": 2, "sp-test.by-key.repartition": 2}
        self.changelog_calls: list[dict[str, Any]] = []
        self.quiesced = 0
        self.holds_tasks = True
        self.committed: dict[tuple[str, int], int | None] = {}
        test = self

        class Admin:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def topics(self) -> dict[str, int]:
                return dict(test.partitions)

        def quiesce(*args: Any, **kwargs: Any) -> Quiesced:
            self.quiesced += 1
            return acks

        def snapshot_changelogs(spec: Any, bootstrap: str, **kwargs: Any) -> Any:
            self.changelog_calls.append({"bootstrap": bootstrap, **kwargs})
            kwargs["progress"]("reading the changelogs of task sp-events:0")
            return snapshot_local(spec, state) if self.holds_tasks else ([], {})

        def group_offsets(*args: Any) -> dict[tuple[str, int], int | None]:
            return self.committed

        monkeypatch.setattr("kstream.io.kafka.Admin", Admin)
        monkeypatch.setattr("kstream_cli.savepoint_cmd.group_offsets", group_offsets)
        monkeypatch.setattr("kstream.runtime.control.quiesce", quiesce)
        monkeypatch.setattr("kstream_cli.savepoint_cmd.snapshot_changelogs", snapshot_changelogs)


def create(pipeline: Path, state: Path, target: Path, *extra: str) -> Result:
    return invoke(
        "savepoint", "create", str(pipeline), "--state-dir", str(state), "--dir", str(target),
        "--bootstrap-servers", "h:1", *extra,
    )  # fmt: skip


def remote_snapshots(state_dir: Path, request: str) -> dict[str, SnapshotRef]:
    """Acknowledged snapshots written by processes with another state dir (on this machine)."""
    refs = {}
    for task in ["sp-events:0", "sp-events:1", "by-key:0", "by-key:1"]:
        path = snapshot_path(state_dir, "sp-test", request, task)
        (path / "db").mkdir(parents=True)
        refs[task] = SnapshotRef(task, str(path), 1, 1)
    return refs


def test_auto_reads_the_changelogs_when_the_tasks_ran_in_other_state_dirs(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    acks = Quiesced("r1", acks=2, snapshots=remote_snapshots(tmp_path / "other", "r1"))
    broker = Broker(monkeypatch, state, acks)
    result = create(pipeline, tmp_path / "empty", tmp_path / "sp", "--stop")
    assert result.exit_code == 0, result.output
    assert (
        "reading the state from the changelog topics: 4 of 4 tasks of the job are not in the "
        f"local state dir {tmp_path / 'empty'}"
    ) in result.output
    assert broker.changelog_calls == [
        {
            "bootstrap": "h:1",
            "group": None,
            "partitions": {"sp-events": 2, "by-key": 2},
            "progress": broker.changelog_calls[0]["progress"],
        }
    ]
    assert "read 4 tasks, 3 operators, 20 entries, 5 timers" in result.output
    assert len(open_savepoint(tmp_path / "sp").tasks()) == 4
    # the snapshots the other processes wrote on this machine are deleted, their state kept
    assert list((tmp_path / "other" / "sp-test" / ".snapshots").iterdir()) == []


def test_auto_reads_the_local_state_dir_when_it_holds_every_task(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    result = create(pipeline, state, tmp_path / "sp")
    assert result.exit_code == 0, result.output
    assert f"reading the state from the local state dir {state}: it holds every task" in (
        result.output
    )
    assert broker.quiesced == 1 and broker.changelog_calls == []


def test_auto_reads_the_changelogs_when_a_task_has_no_local_directory(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    broker.partitions["sp-events"] = 3
    result = create(pipeline, state, tmp_path / "sp")
    assert result.exit_code == 0, result.output
    assert "changelog topics: 1 of 5 tasks of the job are not in the local state dir" in (
        result.output
    )
    assert "no checkpoint in the changelog topics for task(s) sp-events:2" in result.output
    assert len(broker.changelog_calls) == 1


def test_auto_reads_the_changelogs_when_a_local_checkpoint_is_stale(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task ran on another machine after its checkpoint here (the group is further)."""
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    broker.committed = {("sp-events", 0): 76, ("sp-events", 1): 75 + 40}
    result = create(pipeline, state, tmp_path / "sp")
    assert result.exit_code == 0, result.output
    assert (
        f"reading the state from the changelog topics: the checkpoint of task(s) sp-events:1 in "
        f"the local state dir {state} is behind the group's committed offsets"
    ) in result.output
    assert len(broker.changelog_calls) == 1


def test_auto_keeps_a_local_checkpoint_ahead_of_the_committed_offsets(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost offset commit (seen on Tansu): the local checkpoint is committed work."""
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    broker.committed = {("sp-events", 0): 70, ("sp-events", 1): None}
    result = create(pipeline, state, tmp_path / "sp")
    assert result.exit_code == 0, result.output
    assert "it holds every task of the job" in result.output
    assert broker.changelog_calls == []


def test_from_local_keeps_reading_the_state_dir(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    broker.partitions["sp-events"] = 3
    result = create(pipeline, state, tmp_path / "sp", "--from", "local")
    assert result.exit_code == 0, result.output
    assert "reading the state from" not in result.output
    assert "no local state for task(s) sp-events:2" in result.output
    assert broker.changelog_calls == []


def test_from_changelog_without_quiesce(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    result = create(pipeline, tmp_path, tmp_path / "sp", "--from", "changelog", "--no-quiesce")
    assert result.exit_code == 0, result.output
    assert "reading the state from the changelog topics (--from changelog)" in result.output
    assert broker.quiesced == 0 and len(broker.changelog_calls) == 1
    assert broker.changelog_calls[0]["partitions"] == {"sp-events": 2, "by-key": 2}


def test_auto_without_quiesce_reads_the_state_dir(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    result = create(pipeline, state, tmp_path / "sp", "--no-quiesce")
    assert result.exit_code == 0, result.output
    assert f"reading the state from the local state dir {state} (--no-quiesce)" in result.output
    assert broker.changelog_calls == []


def test_an_empty_changelog_is_refused(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, state = job
    broker = Broker(monkeypatch, state, Quiesced())
    broker.holds_tasks = False
    result = create(pipeline, tmp_path, tmp_path / "sp", "--from", "changelog")
    assert result.exit_code == 4
    assert (
        "error: no committed checkpoint of job sp-test in its changelog topics; run the "
        "pipeline (at least one checkpoint) or pass the right --group"
    ) in result.output
    assert not (tmp_path / "sp").exists()
