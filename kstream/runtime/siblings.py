"""The sibling processes of one ``kstream run --processes N``: they join the consumer group
together, and a bounded run's processes leave it together.

Every child of the supervisor (:mod:`kstream.runtime.supervisor`) gets the supervisor's work
directory, its number (1..N) and N. Through marker files there:

- **start**: a child that is ready to subscribe writes ``ready-<n>`` and waits (at most
  :data:`START_WAIT_S`) until every sibling has written its own, so their JoinGroup requests
  reach the coordinator together. Otherwise the first child is assigned every partition, starts
  its tasks, and gives half of them back (a checkpoint and a restore each) at the rebalance the
  second one's join causes a heartbeat later (``heartbeat.interval.ms``), with no record read
  meanwhile by the one waiting in the join. Joins a few milliseconds apart still make two
  generations on a broker whose ``group.initial.rebalance.delay.ms`` is 0; Kafka's default is
  3 s, the local broker of :mod:`kstream.tools` waits 100 ms.
- **end of a bounded run**: a child whose tasks have all finished writes ``done-<n>`` and keeps
  polling (its tasks stay assigned, the group stays stable) until every sibling wrote its own;
  then they all leave. A child that left alone would make the group rebalance the unfinished
  tasks of the others (each revoked, checkpointed and restored again) while they are the run's
  critical path. A child given unfinished partitions again (a sibling died and the group moved
  its tasks) removes its marker until they are done.

A restarted child finds its siblings' ``ready`` markers and does not wait. Nothing here decides
results: with or without the markers, the group protocol owns which process reads what.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("kstream.runtime.siblings")

#: seconds a child waits for its siblings before it subscribes anyway
START_WAIT_S = 30.0
#: seconds between two looks at the markers while waiting at the start
POLL_S = 0.005


@dataclass
class Siblings:
    """One child's view of its siblings' markers (see the module).

    Args:
        directory: the supervisor's work directory, shared by the children.
        number: this child's number, 1..count.
        count: how many children the supervisor runs.
    """

    directory: Path
    number: int
    count: int
    _done: bool = field(default=False, init=False)

    @classmethod
    def parse(cls, value: str) -> Siblings:
        """From :meth:`encode`'s text ``"<number> <count> <directory>"``.

        Raises:
            ValueError: a malformed text.
        """
        number, count, directory = value.split(" ", 2)
        return cls(Path(directory), int(number), int(count))

    def encode(self) -> str:
        """The text :meth:`parse` reads (an environment variable's value)."""
        return f"{self.number} {self.count} {self.directory}"

    def _marker(self, kind: str, number: int) -> Path:
        return self.directory / f"{kind}-{number}"

    def _all(self, kind: str) -> bool:
        return all(self._marker(kind, n).exists() for n in range(1, self.count + 1))

    def rendezvous(self, timeout_s: float = START_WAIT_S) -> bool:
        """Say this child is ready to join the group and wait until every sibling is (at most
        ``timeout_s`` seconds). A marker of an earlier life of this child is cleared first.
        Returns whether all were ready in time."""
        self._marker("done", self.number).unlink(missing_ok=True)
        self._done = False
        self._marker("ready", self.number).touch()
        deadline = time.monotonic() + timeout_s
        while not self._all("ready"):
            if time.monotonic() > deadline:
                log.warning(
                    "siblings not ready to join the group after %.0f s; joining without them",
                    timeout_s,
                )
                return False
            time.sleep(POLL_S)
        return True

    def all_done(self, done: bool) -> bool:
        """Record whether this child's bounded work is done (its marker follows ``done``) and
        return whether every sibling's is too (False while this one's is not)."""
        if done != self._done:
            marker = self._marker("done", self.number)
            if done:
                marker.touch()
            else:
                marker.unlink(missing_ok=True)
            self._done = done
        return done and self._all("done")


def siblings_from(value: str | None) -> Siblings | None:
    """The :class:`Siblings` an environment variable's ``value`` describes (None: not a child
    of ``--processes``, or a malformed value, which is logged)."""
    if not value:
        return None
    try:
        return Siblings.parse(value)
    except ValueError:
        log.warning("ignoring a malformed siblings description %r", value)
        return None


__all__ = ["START_WAIT_S", "Siblings", "siblings_from"]
