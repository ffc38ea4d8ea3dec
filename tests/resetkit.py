"""A broker-free stand-in for the Kafka side of ``kstream reset``
(:class:`kstream.runtime.reset.ResetBroker`), recording every change it is asked to make."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kstream.io.kafka import GroupDeletion, GroupMember

TopicPartitionKey = tuple[str, int]


@dataclass
class FakeBroker:
    """Topics with partition counts, the group's members and committed offsets, and each
    partition's ``(start, end)``; ``changes`` lists what was changed, in order."""

    topics_: dict[str, int] = field(default_factory=dict)
    members_: list[GroupMember] = field(default_factory=list)
    committed_: dict[TopicPartitionKey, int] = field(default_factory=dict)
    ranges: dict[TopicPartitionKey, tuple[int, int]] = field(default_factory=dict)
    at_time: dict[TopicPartitionKey, int] = field(default_factory=dict)
    #: the answer of delete_group
    deletion: GroupDeletion = GroupDeletion.DELETED
    #: how many topics() calls still list deleted topics
    slow_deletes: int = 0
    changes: list[tuple[str, object]] = field(default_factory=list)
    #: the group of each connection made to it (set by the test's connect)
    groups: list[str] = field(default_factory=list)
    closed: bool = False
    _deleted: set[str] = field(default_factory=set)

    def topics(self) -> dict[str, int]:
        if self.slow_deletes > 0:
            self.slow_deletes -= 1
            return dict(self.topics_)
        return {t: n for t, n in self.topics_.items() if t not in self._deleted}

    def delete_topics(self, names: list[str]) -> None:
        self.changes.append(("delete_topics", list(names)))
        self._deleted.update(names)

    def members(self) -> list[GroupMember]:
        return list(self.members_)

    def delete_group(self) -> GroupDeletion:
        if self.deletion is GroupDeletion.DELETED:
            self.changes.append(("delete_group", None))
            self.committed_.clear()
        return self.deletion

    def committed(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int | None]:
        return {k: self.committed_.get(k) for k in partitions}

    def offset_ranges(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, tuple[int, int]]:
        return {k: self.ranges.get(k, (0, 100)) for k in partitions}

    def offsets_for_time(
        self, partitions: Iterable[TopicPartitionKey], time_ms: int
    ) -> dict[TopicPartitionKey, int]:
        return {k: self.at_time.get(k, self.ranges.get(k, (0, 100))[1]) for k in partitions}

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        self.changes.append(("commit", dict(offsets)))
        self.committed_.update(offsets)

    def close(self) -> None:
        self.closed = True


@contextmanager
def locked_by_another_process(task_dir: Path) -> Iterator[None]:
    """Hold ``task_dir/db/LOCK`` the way RocksDB does (a POSIX lock) from a child process (a
    lock of this process would not show: POSIX locks are per process)."""
    lock = task_dir / "db" / "LOCK"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    code = (
        "import fcntl, sys\n"
        f"fh = open({str(lock)!r}, 'a+b')\n"
        f"fcntl.lockf(fh, {fcntl.LOCK_EX})\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        yield
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)
