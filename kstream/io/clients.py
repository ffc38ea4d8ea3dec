"""Kafka clients with kstream's defaults (consumer and producer configuration, client
construction) and the message and error helpers: ``KafkaException`` is translated into
:class:`~kstream.errors.BrokerError` here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from kstream.errors import (
    BrokerError,
)
from kstream.pipeline.view import redact, remember_secrets

#: Consumer defaults. ``fetch.queue.backoff.ms`` 10 (default 1000) is a tenfold throughput gain
#: on Tansu; the short poll interval and session timeout make group joins take ~3 s
#: there instead of ~23 s (DESIGN.md section 5). Users override any key in the pipeline's
#: ``kafka:`` section.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "fetch.queue.backoff.ms": 10,
    # a smaller prefetch queue: same throughput, ~40 MB less resident memory per process
    "queued.max.messages.kbytes": 8_192,
    "queued.min.messages": 10_000,
    "max.poll.interval.ms": 10_000,
    "session.timeout.ms": 6_000,
    "heartbeat.interval.ms": 1_000,
    "isolation.level": "read_committed",
    "partition.assignment.strategy": "range",
    "log_level": 3,
}


#: Producer defaults: batching for throughput, idempotence for ordering without duplicates.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "compression.type": "none",
    "log_level": 3,
}


#: Keys that belong to one client kind only; dropped from the other's configuration.
CONSUMER_ONLY = {k for k in CONSUMER_DEFAULTS if k != "log_level"} | {
    "group.id",
    "group.instance.id",
}


PRODUCER_ONLY = {k for k in PRODUCER_DEFAULTS if k != "log_level"} | {
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "acks",
}


PARTITION_EOF = KafkaError._PARTITION_EOF


OFFSET_BEGINNING = -2


OFFSET_END = -1


OFFSET_INVALID = -1001


def common_config(settings: Mapping[str, Any], excluded: set[str]) -> dict[str, Any]:
    """``settings`` without the keys in ``excluded`` (those of the other client kind)."""
    return {k: v for k, v in settings.items() if k not in excluded}


def consumer_config(bootstrap: str, group: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Consumer configuration: kstream defaults, then the user's ``kafka:`` settings on top."""
    remember_secrets(settings)
    conf = dict(CONSUMER_DEFAULTS)
    conf.update(common_config(settings, PRODUCER_ONLY))
    conf["bootstrap.servers"] = bootstrap
    conf["group.id"] = group
    return conf


def producer_config(bootstrap: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Producer configuration: kstream defaults, then the user's ``kafka:`` settings on top."""
    remember_secrets(settings)
    conf = dict(PRODUCER_DEFAULTS)
    conf.update(common_config(settings, CONSUMER_ONLY))
    conf["bootstrap.servers"] = bootstrap
    return conf


def new_consumer(conf: Mapping[str, Any]) -> Consumer:
    """A confluent-kafka ``Consumer``; raises :class:`BrokerError` on an invalid configuration."""
    try:
        return Consumer(dict(conf))
    except (KafkaException, ValueError, TypeError) as exc:
        raise BrokerError(redact(f"invalid consumer configuration: {exc}", conf)) from exc


def new_producer(conf: Mapping[str, Any]) -> Producer:
    """A confluent-kafka ``Producer``; raises :class:`BrokerError` on an invalid configuration."""
    try:
        return Producer(dict(conf))
    except (KafkaException, ValueError, TypeError) as exc:
        raise BrokerError(redact(f"invalid producer configuration: {exc}", conf)) from exc


def topic_partition(topic: str, partition: int, offset: int = OFFSET_INVALID) -> TopicPartition:
    """A confluent-kafka ``TopicPartition`` (so callers need not import the library)."""
    return TopicPartition(topic, partition, offset)


def is_partition_eof(msg: Message) -> bool:
    """True when ``msg`` is the end-of-partition event, not a record."""
    err = msg.error()
    return err is not None and err.code() == PARTITION_EOF


def message_error(msg: Message) -> BrokerError | None:
    """A :class:`BrokerError` for a consumer error event (``None`` for records and EOF)."""
    err = msg.error()
    if err is None or err.code() == PARTITION_EOF:
        return None
    return BrokerError(f"consumer error on {msg.topic()}[{msg.partition()}]: {err.str()}")


def translate(exc: KafkaException, what: str) -> BrokerError:
    """Translate a ``KafkaException`` raised while doing ``what`` into a :class:`BrokerError`
    (secret setting values are masked, see :func:`kstream.pipeline.view.redact`)."""
    err = exc.args[0] if exc.args else None
    text = err.str() if isinstance(err, KafkaError) else str(exc)
    return BrokerError(redact(f"{what}: {text}"))


KafkaLibraryError = KafkaException


def message_timestamp_ms(msg: Message) -> int | None:
    """The record's timestamp in epoch milliseconds (create or log-append time), ``None`` when
    the broker reports none."""
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    kind, ts = msg.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE else int(ts)


def message_headers(msg: Message) -> list[tuple[str, bytes | None]]:
    """The record's headers as ``(name, value)`` pairs in order (empty list when none)."""
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode("utf-8") if isinstance(v, str) else v) for k, v in pairs]


def is_transient(exc: KafkaException) -> bool:
    """A failure worth retrying: a timeout, a lost connection or a broker-declared retriable."""
    err = exc.args[0] if exc.args else None
    if not isinstance(err, KafkaError):
        return False
    return bool(err.retriable()) or err.code() in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT)


#: Errors meaning another owner took the task: a newer producer epoch for the transactional
#: id, or a newer consumer group generation for the offsets (KIP-447).
_FENCED_CODES = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
    }
)


def is_fenced(exc: KafkaException) -> bool:
    """Another owner took the task (:data:`_FENCED_CODES`)."""
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and err.code() in _FENCED_CODES


def is_too_large(exc: KafkaException) -> bool:
    """A record larger than the broker or producer accepts."""
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE
