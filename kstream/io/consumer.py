"""Consumer-side primitives: offsets (commit, committed, end), pause, resume and seek,
reading a task's changelog partitions to their end (restore), the group's members, a reader for
one-partition control topics and one for every partition of a topic (broadcast tables).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from kstream.errors import (
    BrokerError,
)
from kstream.io.clients import (
    CONSUMER_ONLY,
    OFFSET_BEGINNING,
    PARTITION_EOF,
    PRODUCER_ONLY,
    common_config,
    consumer_config,
    is_transient,
    new_consumer,
    translate,
)


def commit_offsets(consumer: Consumer, positions: list[tuple[str, int, int]]) -> None:
    """Synchronously commit ``(topic, partition, next offset)`` for the group (at-least-once)."""
    tps = [TopicPartition(t, p, o) for t, p, o in positions]
    try:
        consumer.commit(offsets=tps, asynchronous=False)
    except KafkaException as exc:
        raise translate(exc, "commit offsets") from exc


def committed_offsets(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    timeout_s: float = 10.0,
    retry_for_s: float = 0.0,
) -> dict[int, int | None]:
    """The group's committed next offset per partition (None when nothing is committed).

    A timed-out or transport-failed request (broker unreachable or stalled) is retried with
    exponential backoff (0.5 s doubling, at most 5 s) for up to ``retry_for_s`` seconds.

    Raises:
        BrokerError: the broker did not answer within ``retry_for_s``, or refused the request.
    """
    deadline = time.monotonic() + retry_for_s
    backoff_s = 0.5
    while True:
        try:
            result = consumer.committed(
                [TopicPartition(topic, p) for p in partitions], timeout=timeout_s
            )
            return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in result}
        except KafkaException as exc:
            if not is_transient(exc) or time.monotonic() + backoff_s > deadline:
                raise translate(exc, f"read committed offsets of {topic}") from exc
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)


def end_offsets(
    consumer: Consumer, topic: str, partitions: list[int], timeout_s: float = 10.0
) -> dict[int, int]:
    """High watermark per partition as reported by the broker (may under-report on Tansu)."""
    out: dict[int, int] = {}
    for p in partitions:
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        except KafkaException as exc:
            raise translate(exc, f"read end offsets of {topic}") from exc
        out[p] = high
    return out


def cached_end_offsets(
    consumer: Consumer, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The end offset of each ``(topic, partition)`` as last seen in a fetch response of
    ``consumer`` (no request to the broker: it never blocks). A partition not fetched yet is
    left out. Under ``read_committed`` this is the last stable offset; Tansu may report a little
    less than what is readable (see :func:`probe_end_offsets`)."""
    out: dict[tuple[str, int], int] = {}
    for topic, p in partitions:
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
        except KafkaException:
            continue
        if high is not None and high >= 0:
            out[(topic, p)] = high
    return out


#: Receives the records of one topic read in one fetch, in offset order.
OnRecords = Callable[[str, list[tuple[bytes, bytes | None]]], None]


def read_partitions_to_end(
    bootstrap: str,
    settings: Mapping[str, Any],
    topics: Sequence[str],
    partition: int,
    timeout_s: float = 30.0,
) -> dict[str, list[tuple[bytes, bytes | None]]]:
    """Every ``(key, value)`` of partition ``partition`` of each of ``topics``, from the
    beginning to its end, held in memory (see :func:`stream_partitions_to_end`).

    Returns:
        Per topic its records in offset order.

    Raises:
        BrokerError: as :func:`stream_partitions_to_end`.
    """
    out: dict[str, list[tuple[bytes, bytes | None]]] = {t: [] for t in topics}
    stream_partitions_to_end(
        bootstrap, settings, topics, partition, lambda t, rs: out[t].extend(rs), timeout_s
    )
    return out


def stream_partitions_to_end(
    bootstrap: str,
    settings: Mapping[str, Any],
    topics: Sequence[str],
    partition: int,
    on_records: OnRecords,
    timeout_s: float = 30.0,
) -> None:
    """Hand every ``(key, value)`` of partition ``partition`` of each of ``topics``, from the
    beginning to its end, to ``on_records`` batch by batch (nothing is accumulated), read with
    one consumer and ``isolation.level=read_committed`` (a task's changelogs on restore: one
    connection and one fetch session for all of them). A missing topic reads as empty.

    Raises:
        BrokerError: a fetch fails, or ``timeout_s`` seconds pass without a record while some
            partition has not reached its end.
    """
    conf = consumer_config(bootstrap, "kstream-restore", settings)
    conf.update({"enable.partition.eof": True, "isolation.level": "read_committed"})
    consumer = new_consumer(conf)
    try:
        pending = _existing_topics(consumer, topics, timeout_s)
        if pending:
            consumer.assign([TopicPartition(t, partition, OFFSET_BEGINNING) for t in pending])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batch: dict[str, list[tuple[bytes, bytes | None]]] = {}
            for msg in consumer.consume(10_000, 0.5):
                topic, err = str(msg.topic()), msg.error()
                if err is None:
                    batch.setdefault(topic, []).append((msg.key() or b"", msg.value()))
                elif err.code() in (PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    pending.discard(topic)
                else:
                    raise BrokerError(f"restore from {topic}[{partition}]: {err.str()}")
            for topic, records in batch.items():
                on_records(topic, records)
            if batch:  # progress: the timeout is for a stalled read, not a long one
                deadline = time.monotonic() + timeout_s
        if pending:
            raise BrokerError(
                f"restore from {', '.join(sorted(pending))} [partition {partition}] did not "
                f"reach the end ({timeout_s} s without a record)"
            )
    finally:
        consumer.close()


def _existing_topics(consumer: Consumer, topics: Sequence[str], timeout_s: float) -> set[str]:
    """Those of ``topics`` the cluster has (one metadata request).

    Raises:
        BrokerError: the metadata cannot be read.
    """
    try:
        metadata = consumer.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise translate(exc, "read topic metadata") from exc
    known = metadata.topics
    return {t for t in topics if t in known and known[t].error is None}


def pause(consumer: Consumer, partitions: list[tuple[str, int]]) -> None:
    """Stop fetching the given assigned ``(topic, partition)`` pairs until :func:`resume`."""
    if partitions:
        consumer.pause([TopicPartition(t, p) for t, p in partitions])


def resume(consumer: Consumer, partitions: list[tuple[str, int]]) -> None:
    """Fetch the given paused ``(topic, partition)`` pairs again."""
    if partitions:
        consumer.resume([TopicPartition(t, p) for t, p in partitions])


def seek(consumer: Consumer, topic: str, partition: int, offset: int | None) -> None:
    """Move the consumer's position of an assigned partition (beginning when None)."""
    target = OFFSET_BEGINNING if offset is None else offset
    try:
        consumer.seek(TopicPartition(topic, partition, target))
    except KafkaException as exc:
        raise translate(exc, f"seek {topic}[{partition}] to {target}") from exc


def group_members(
    bootstrap: str, settings: Mapping[str, Any], group: str, timeout_s: float = 2.0
) -> dict[tuple[str, int], str]:
    """Owner (``client.id@host``) of each assigned topic-partition of a consumer group; empty
    when the group has no members or the broker cannot describe it."""
    conf = common_config(settings, CONSUMER_ONLY | PRODUCER_ONLY)
    conf["bootstrap.servers"] = bootstrap
    # the client must outlive the request: one dropped right after the call never completes it
    admin = AdminClient(conf)
    try:
        future = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group]
        description = future.result(timeout=timeout_s)
    except (KafkaException, ValueError, TimeoutError):
        return {}
    owners: dict[tuple[str, int], str] = {}
    for member in description.members or []:
        for tp in member.assignment.topic_partitions if member.assignment else []:
            owners[(tp.topic, tp.partition)] = f"{member.client_id}@{member.host}"
    return owners


class TopicReader:
    """Reads every record of a one-partition topic from the beginning, without a group
    (control messages). ``poll()`` returns the JSON values decoded since the last call."""

    def __init__(self, bootstrap: str, settings: Mapping[str, Any], topic: str) -> None:
        conf = consumer_config(bootstrap, "kstream-control", settings)
        conf.update({"enable.partition.eof": False, "isolation.level": "read_uncommitted"})
        self._consumer = new_consumer(conf)
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

    def poll(self, timeout_s: float = 0.0) -> list[Any]:
        import orjson

        out = []
        for msg in self._consumer.consume(100, timeout_s):
            raw = msg.value()
            if msg.error() is None and raw:
                try:
                    out.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    continue
        return out

    def close(self) -> None:
        self._consumer.close()


class PartitionsReader:
    """Reads every partition of ``topic`` from the beginning and on, without a consumer group
    (each process its own copy: a broadcast table). Committed records only; the end of each
    partition is signalled once per arrival there (:func:`kafka.is_partition_eof`).

    Raises:
        BrokerError: the client cannot be created.
    """

    def __init__(
        self, bootstrap: str, settings: Mapping[str, Any], topic: str, partitions: int
    ) -> None:
        conf = consumer_config(bootstrap, "kstream-broadcast", settings)
        conf.update({"enable.partition.eof": True, "isolation.level": "read_committed"})
        self._consumer = new_consumer(conf)
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        )

    def consume(self, limit: int = 10_000, timeout_s: float = 0.0) -> list[Any]:
        """The messages fetched since the last call: records, end-of-partition events and
        errors (``msg.error()``), in offset order per partition."""
        try:
            return list(self._consumer.consume(limit, timeout_s))
        except KafkaException as exc:
            raise translate(exc, "read a broadcast table") from exc

    def close(self) -> None:
        self._consumer.close()


def probe_end_offsets(
    bootstrap: str,
    settings: Mapping[str, Any],
    topic: str,
    partitions: list[int],
    quiet_s: float = 0.5,
    timeout_s: float = 30.0,
) -> dict[int, int]:
    """The real end offset (last readable offset + 1) of each partition.

    The broker's reported high watermark can be lower than what is readable (Tansu
    reports about the base offset of the last batch), and its end-of-partition signal follows
    that number, so neither alone bounds a bounded run. This reads each partition from the
    reported high watermark until nothing more arrives for ``quiet_s`` seconds.
    """
    conf = consumer_config(bootstrap, "kstream-probe", settings)
    conf.update({"enable.partition.eof": False, "isolation.level": "read_uncommitted"})
    consumer = new_consumer(conf)
    try:
        reported = end_offsets(consumer, topic, partitions)
        ends = dict(reported)
        consumer.assign([TopicPartition(topic, p, max(reported[p] - 1, 0)) for p in partitions])
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s and time.monotonic() < deadline:
            msgs = consumer.consume(10_000, 0.1)
            for msg in msgs:
                part, offset = msg.partition(), msg.offset()
                if msg.error() is None and part is not None and offset is not None:
                    ends[part] = max(ends[part], offset + 1)
            if msgs:
                quiet_since = time.monotonic()
        return ends
    finally:
        consumer.close()
