"""A task restore keeps the process in its consumer group (kstream.runtime.membership): while
the main loop waits for a restore, the keep-alive polls the group consumer with every running
task's partitions paused, keeps what such a poll returns for the loop, and resumes the running
tasks afterwards; a task revoked during its own restore is dropped, not run.

Measured on Apache Kafka (docs/fault-tolerance.md): a changelog restore of 1,000,000 entries
(15 s) with ``max.poll.interval.ms`` 6000 made the member leave its group without this, and not
with it."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from kstream.runtime.membership import GroupMembership


class FakeConsumer:
    """Records pause/resume/consume calls of confluent-kafka's Consumer."""

    def __init__(self, returned: list[Any] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.returned = returned or []

    def pause(self, tps: list[Any]) -> None:
        self.calls.append(("pause", sorted((tp.topic, tp.partition) for tp in tps)))

    def resume(self, tps: list[Any]) -> None:
        self.calls.append(("resume", sorted((tp.topic, tp.partition) for tp in tps)))

    def consume(self, num: int, timeout: float) -> list[Any]:
        self.calls.append(("consume", timeout))
        out, self.returned = self.returned, []
        return out


class Member(GroupMembership):
    """The mixin with the runner's attributes it uses, and an activation that restores a task
    while calling the keep-alive (as a changelog read does between batches)."""

    def __init__(self, consumer: FakeConsumer, revoke_during_restore: bool = False) -> None:
        self._consumer = consumer
        self.tasks: dict[tuple[str, int], Any] = {("s", 0): "running-0", ("s", 1): "running-1"}
        self._assigned = {("s", 0): {"in"}, ("s", 1): {"in"}, ("s", 2): {"in"}}
        self._pending = {("s", 2): (time.monotonic() - 5.0, 0.0)}
        self._held = {("in", 1)}
        self._throttled: set[tuple[str, int]] = set()
        self._quiet = None
        self._deferred: list[Any] = []
        self.revoke_during_restore = revoke_during_restore
        self.discarded: list[Any] = []

    def _input_tps(self, key: tuple[str, int]) -> list[tuple[str, int]]:
        return [("in", key[1])]

    def _complete(self, key: tuple[str, int]) -> bool:
        return True

    def _activate(self, stage_id: str, partition: int, lock_wait_s: float = 20.0) -> Any:
        for _batch in range(3):
            self._keep_alive()
        if self.revoke_during_restore:  # what _on_revoke does for a pending task
            self._pending.pop((stage_id, partition))
        return SimpleNamespace(task=SimpleNamespace(id=f"{stage_id}:{partition}", positions={}))


def test_a_restore_polls_with_running_tasks_paused_and_resumes_them(monkeypatch: Any) -> None:
    consumer = FakeConsumer(returned=["a record fetched before the pause"])
    member = Member(consumer)
    monkeypatch.setattr("kstream.runtime.membership.kafka.seek", lambda *a: None)
    member._restore_pending()
    assert sorted(consumer.calls[:2]) == [("pause", [("in", 0)]), ("pause", [("in", 1)])]
    assert [c for c in consumer.calls if c[0] == "consume"] == [("consume", 0)] * 3
    # running task 0 resumes; task 1 stays paused (held by the test hook); the restored task
    # 2 is resumed as every restored task is
    assert ("resume", [("in", 0)]) in consumer.calls
    assert ("resume", [("in", 1)]) not in consumer.calls
    assert consumer.calls[-1] == ("resume", [("in", 2)])
    assert member._deferred == ["a record fetched before the pause"]
    assert member._quiet is None and ("s", 2) in member.tasks and not member._pending


def test_a_task_revoked_during_its_restore_is_dropped(monkeypatch: Any) -> None:
    member = Member(FakeConsumer(), revoke_during_restore=True)
    discarded: list[Any] = []
    monkeypatch.setattr("kstream.runtime.membership._discard", discarded.append)
    member._restore_pending()
    assert ("s", 2) not in member.tasks and len(discarded) == 1
