"""Consumer-group administration (``kstream reset``): the live members of a group, deleting the
group, committing offsets under its id without joining it, and the offsets of partitions at
their beginning, their end and at a time.

Offsets are next-offset positions (the offset of the next record to read); times are epoch
milliseconds. ``KafkaException`` is translated into :class:`~kstream.errors.BrokerError` here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from kstream.errors import BrokerError
from kstream.io.clients import (
    CONSUMER_ONLY,
    PRODUCER_ONLY,
    common_config,
    consumer_config,
    new_consumer,
    translate,
)
from kstream.pipeline.view import remember_secrets

#: ``(topic, partition)``
TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True)
class GroupMember:
    """A live member of a consumer group, as the group coordinator describes it."""

    member_id: str
    client_id: str
    host: str

    def __str__(self) -> str:
        """``client.id@host``, as ``kstream status`` names an owner."""
        return f"{self.client_id}@{self.host}"


class GroupDeletion(Enum):
    """The outcome of :meth:`GroupAdmin.delete_group`."""

    DELETED = "deleted"
    #: the broker knows no such group (nothing committed, no member)
    ABSENT = "absent"
    #: the broker refused: the group has live members (Kafka's ``NON_EMPTY_GROUP``)
    NOT_EMPTY = "not empty"


class GroupAdmin:
    """Operations on consumer group ``group``: an ``AdminClient`` and a ``Consumer`` whose
    ``group.id`` is ``group`` that never subscribes, so it never joins the group (Kafka accepts
    its offset commits only while the group has no member).

    Every method raises :class:`BrokerError` when the broker is unreachable within
    ``timeout_s`` seconds or refuses the request; call :meth:`close` when done.
    """

    def __init__(
        self, bootstrap: str, settings: Mapping[str, Any], group: str, timeout_s: float = 10.0
    ) -> None:
        remember_secrets(settings)
        conf = common_config(settings, CONSUMER_ONLY | PRODUCER_ONLY)
        conf["bootstrap.servers"] = bootstrap
        conf.setdefault("log_level", 0)
        self.bootstrap, self.group, self.timeout_s = bootstrap, group, timeout_s
        self._admin = AdminClient(conf)
        consumer_conf = consumer_config(bootstrap, group, settings)
        consumer_conf.pop("group.instance.id", None)  # a static id would stand for a member
        # offsets of the whole log, as kafka-consumer-groups shows them (not the stable ones)
        consumer_conf["isolation.level"] = "read_uncommitted"
        if "log_level" not in settings:  # failures reach the caller as BrokerError, not logs
            consumer_conf["log_level"] = 0
        self._consumer = new_consumer(consumer_conf)

    def members(self) -> list[GroupMember]:
        """The group's live members (empty when the group has none or does not exist)."""
        future = self._admin.describe_consumer_groups([self.group], request_timeout=self.timeout_s)
        try:
            description = future[self.group].result(timeout=self.timeout_s)
        except KafkaException as exc:
            if _code(exc) == KafkaError.GROUP_ID_NOT_FOUND:
                return []
            raise translate(exc, f"describe consumer group {self.group}") from exc
        except TimeoutError as exc:
            raise self._timeout(f"describe consumer group {self.group}") from exc
        return [GroupMember(m.member_id, m.client_id, m.host) for m in description.members or []]

    def delete_group(self) -> GroupDeletion:
        """Delete the group and its committed offsets. A group with live members is not deleted
        (:attr:`GroupDeletion.NOT_EMPTY`): the broker's guard against a job started after a
        check of the members."""
        future = self._admin.delete_consumer_groups([self.group], request_timeout=self.timeout_s)
        try:
            future[self.group].result(timeout=self.timeout_s)
        except KafkaException as exc:
            if _code(exc) == KafkaError.GROUP_ID_NOT_FOUND:
                return GroupDeletion.ABSENT
            if _code(exc) == KafkaError.NON_EMPTY_GROUP:
                return GroupDeletion.NOT_EMPTY
            raise translate(exc, f"delete consumer group {self.group}") from exc
        except TimeoutError as exc:
            raise self._timeout(f"delete consumer group {self.group}") from exc
        return GroupDeletion.DELETED

    def committed(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int | None]:
        """The group's committed offset of each partition (None: nothing committed)."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        if not tps:
            return {}
        try:
            result = self._consumer.committed(tps, timeout=self.timeout_s)
        except KafkaException as exc:
            raise translate(exc, f"read the committed offsets of group {self.group}") from exc
        return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in result}

    def offset_ranges(
        self, partitions: Iterable[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, tuple[int, int]]:
        """``(start, end)`` of each partition: the offset of its first record still in the log
        (Kafka's log start offset; ``--to-earliest``) and the offset after its last one."""
        out: dict[TopicPartitionKey, tuple[int, int]] = {}
        for topic, p in partitions:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=self.timeout_s
                )
            except KafkaException as exc:
                raise translate(exc, f"read the offsets of {topic}[{p}]") from exc
            out[(topic, p)] = (low, high)
        return out

    def offsets_for_time(
        self, partitions: Iterable[TopicPartitionKey], time_ms: int
    ) -> dict[TopicPartitionKey, int]:
        """Per partition, the offset of its first record whose timestamp is at or after
        ``time_ms`` (epoch ms); a partition without such a record gets its end offset."""
        keys = list(partitions)
        if not keys:
            return {}
        try:
            found = self._consumer.offsets_for_times(
                [TopicPartition(t, p, time_ms) for t, p in keys], timeout=self.timeout_s
            )
        except KafkaException as exc:
            raise translate(exc, f"look up offsets at {time_ms} ms") from exc
        out: dict[TopicPartitionKey, int] = {}
        for tp in found:
            if tp.error is not None:
                raise BrokerError(
                    f"look up offsets of {tp.topic}[{tp.partition}]: {tp.error.str()}"
                )
            out[(tp.topic, tp.partition)] = tp.offset
        past_end = [k for k, offset in out.items() if offset < 0]
        ends = self.offset_ranges(past_end)
        out.update((k, ends[k][1]) for k in past_end)
        return out

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Commit ``offsets`` for the group, synchronously, without joining it. Kafka refuses
        the commit while the group has live members."""
        tps = [TopicPartition(t, p, offset) for (t, p), offset in sorted(offsets.items())]
        if not tps:
            return
        try:
            result = self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            raise translate(exc, f"commit offsets for group {self.group}") from exc
        for tp in result or []:
            if tp.error is not None:
                raise BrokerError(
                    f"commit offsets for group {self.group}: {tp.topic}[{tp.partition}]: "
                    f"{tp.error.str()}"
                )

    def close(self) -> None:
        """Close the consumer (it never joined the group, so the group is left as it is)."""
        self._consumer.close()

    def _timeout(self, what: str) -> BrokerError:
        return BrokerError(
            f"{what}: no answer from Kafka at {self.bootstrap} within {self.timeout_s:g} s; "
            "is the broker running?"
        )


def _code(exc: KafkaException) -> int | None:
    err = exc.args[0] if exc.args else None
    return err.code() if isinstance(err, KafkaError) else None
