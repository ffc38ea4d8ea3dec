"""The only module that imports confluent-kafka.

It builds clients with kstream's defaults, translates ``KafkaException`` into
:class:`~kstream.errors.BrokerError` once, and offers the few batch primitives the rest of the
code needs (admin, batch consume, produce). Other modules receive client objects from here and
never import the library.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from kstream.errors import (
    BrokerError,
    KStreamError,
    RecordError,
    TaskMigratedError,
    TransactionError,
    UsageError,
)
from kstream.io.deadline import DeadlineExceeded, call_with_deadline
from kstream.pipeline.view import redact, remember_secrets
from kstream.time.timestamps import H_TIME, MAX_FUTURE_TS_MS

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
_CONSUMER_ONLY = {k for k in CONSUMER_DEFAULTS if k != "log_level"} | {
    "group.id",
    "group.instance.id",
}
_PRODUCER_ONLY = {k for k in PRODUCER_DEFAULTS if k != "log_level"} | {
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "acks",
}

#: Seconds a transactional call may run past its own timeout before its producer is abandoned.
CALL_GRACE_S = 10.0

PARTITION_EOF = KafkaError._PARTITION_EOF
OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_INVALID = -1001


def _common(settings: Mapping[str, Any], excluded: set[str]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in excluded}


def consumer_config(bootstrap: str, group: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Consumer configuration: kstream defaults, then the user's ``kafka:`` settings on top."""
    remember_secrets(settings)
    conf = dict(CONSUMER_DEFAULTS)
    conf.update(_common(settings, _PRODUCER_ONLY))
    conf["bootstrap.servers"] = bootstrap
    conf["group.id"] = group
    return conf


def producer_config(bootstrap: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Producer configuration: kstream defaults, then the user's ``kafka:`` settings on top."""
    remember_secrets(settings)
    conf = dict(PRODUCER_DEFAULTS)
    conf.update(_common(settings, _CONSUMER_ONLY))
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


@dataclass(frozen=True)
class TopicConfig:
    """A topic to create: partition count and explicit retention (Tansu needs them explicit)."""

    name: str
    partitions: int
    compacted: bool = False


class Admin:
    """Topic administration over confluent-kafka's ``AdminClient``.

    All methods raise :class:`BrokerError` when the broker is unreachable within ``timeout_s``.
    """

    def __init__(
        self, bootstrap: str, settings: Mapping[str, Any] | None = None, timeout_s: float = 10.0
    ) -> None:
        remember_secrets(settings)
        conf = _common(settings or {}, _CONSUMER_ONLY | _PRODUCER_ONLY)
        conf["bootstrap.servers"] = bootstrap
        conf.setdefault("log_level", 0)
        conf.setdefault("allow.auto.create.topics", False)
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._client = AdminClient(conf)

    def partitions(self, topic: str) -> int | None:
        """Partition count of ``topic``, or ``None`` when it does not exist."""
        meta = self._metadata(topic)
        info = meta.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            return None
        return len(info.partitions)

    def topics(self) -> dict[str, int]:
        """Every topic with its partition count."""
        meta = self._metadata(None)
        return {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}

    def _metadata(self, topic: str | None) -> Any:
        try:
            return self._client.list_topics(topic=topic, timeout=self.timeout_s)
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach Kafka at {self.bootstrap} ({exc.args[0].str()}); "
                "is the broker running? start one with `kstream broker`"
            ) from exc

    def ensure_topics(self, wanted: Iterable[TopicConfig]) -> list[str]:
        """Create each missing topic; return the names created. Existing topics are kept as is."""
        existing = self.topics()
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        new = [NewTopic(t.name, t.partitions, 1, config=_topic_settings(t)) for t in missing]
        futures = self._client.create_topics(new, operation_timeout=self.timeout_s)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BrokerError(f"cannot create topic {name}: {exc.args[0].str()}") from exc
        self._wait_visible([t.name for t in missing])
        return [t.name for t in missing]

    def _wait_visible(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            existing = self.topics()
            if all(n in existing for n in names):
                return
            time.sleep(0.05)
        raise BrokerError(f"topics not visible after creation: {names}")

    def delete_topics(self, names: list[str]) -> None:
        """Delete topics (missing ones are ignored)."""
        if not names:
            return
        for future in self._client.delete_topics(names, operation_timeout=self.timeout_s).values():
            with contextlib.suppress(KafkaException):
                future.result()


def _topic_settings(topic: TopicConfig) -> dict[str, str]:
    if topic.compacted:
        return {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
    return {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


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


class TaskProducer:
    """The producer of one task (transactional under exactly-once) with a fast ``emit``.

    ``emit(topic, key, value, ts, headers, partition)`` produces one record with Kafka timestamp
    ``ts`` (epoch ms). A time Kafka cannot store as a timestamp (zero or negative, or more
    than :data:`MAX_FUTURE_TS_MS` ahead of the wall clock) is written as the produce time, with
    the exact time in the header ``kstream.ts`` (read back by
    :func:`kstream.time.timestamps.record_time_ms`).

    Args:
        conf: producer configuration (from :func:`producer_config`).
        transactional_id: deterministic per (pipeline, stage, partition); None for at-least-once.
        timeout_s: timeout of each transactional call.

    Every method raises :class:`~kstream.errors.TransactionError` when the broker fences, aborts
    or times out the transaction. ``emit`` raises :class:`~kstream.errors.RecordError` (stage
    ``produce``) for a record larger than ``message.max.bytes`` (librdkafka refuses it before
    it joins the transaction), so the error policy of the operator or sink applies.
    """

    def __init__(
        self, conf: Mapping[str, Any], transactional_id: str | None, timeout_s: float = 30.0
    ) -> None:
        conf = dict(conf)
        conf["partitioner"] = "murmur2_random"
        if transactional_id is not None:
            conf["transactional.id"] = transactional_id
            conf.setdefault("transaction.timeout.ms", 60_000)
        else:
            conf["enable.idempotence"] = True
        self.transactional = transactional_id is not None
        self.timeout_s = timeout_s
        #: set when a call hung past its deadline: the producer is never used again
        self.abandoned = False
        self.max_bytes = int(conf.get("message.max.bytes", 1_000_000))
        self._producer = new_producer(conf)
        self.emit = self._make_emit()

    def _make_emit(self) -> Any:
        produce, poll = self._producer.produce, self._producer.poll
        transactional = self.transactional
        ceiling = [time.time_ns() // 1_000_000 + MAX_FUTURE_TS_MS]

        def emit(
            topic: str,
            key: bytes | None,
            value: bytes | None,
            ts: int,
            headers: list[tuple[str, str | bytes | None]] | None,
            partition: int | None,
        ) -> None:
            if not 0 < ts < ceiling[0]:
                ceiling[0] = time.time_ns() // 1_000_000 + MAX_FUTURE_TS_MS
                if not 0 < ts < ceiling[0]:
                    # not a valid Kafka timestamp (0 would mean "now" to the client): the
                    # record gets the produce time and its exact time travels in a header
                    headers = [*(headers or ()), (H_TIME, str(ts).encode())]
                    ts = 0
            while True:
                try:
                    if partition is None:
                        produce(topic, value, key, timestamp=ts, headers=headers)
                    else:
                        produce(topic, value, key, partition, timestamp=ts, headers=headers)
                    return
                except BufferError:
                    poll(0.05)
                except KafkaException as exc:
                    if _too_large(exc):
                        raise self._too_large_error(topic, key, value) from exc
                    error = translate(exc, f"produce to {topic}")
                    if transactional:
                        error_class = TaskMigratedError if _fenced(exc) else TransactionError
                        raise error_class(str(error)) from exc
                    raise error from exc

        return emit

    def _too_large_error(self, topic: str, key: bytes | None, value: bytes | None) -> RecordError:
        size = len(key or b"") + len(value or b"")
        return RecordError(
            "produce",
            f"a record of {size} bytes for {topic} is larger than the producer's "
            f"message.max.bytes ({self.max_bytes})",
        )

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` bounded by :data:`CALL_GRACE_S` past the call's own timeout: a call
        that does not return by then abandons this producer (every later call fails at once)
        and raises, so the caller rewinds with a new producer, which fences this one."""
        if self.abandoned:
            raise TransactionError(f"{what}: the producer was abandoned after a hung call")
        try:
            return call_with_deadline(fn, *args, deadline_s=self.timeout_s + CALL_GRACE_S)
        except DeadlineExceeded as exc:
            self.abandoned = True
            raise TransactionError(
                f"{what} did not return within {self.timeout_s + CALL_GRACE_S:g} s "
                "(the client hung); its producer is abandoned"
            ) from exc
        except KafkaException as exc:
            error_class = TaskMigratedError if _fenced(exc) else TransactionError
            raise error_class(f"{what}: {translate(exc, what)}") from exc

    def init(self) -> None:
        """``init_transactions``: fences any previous incarnation and aborts its open txn."""
        if self.transactional:
            self._call("init_transactions", self._producer.init_transactions, self.timeout_s)

    def begin(self) -> None:
        """Begin a transaction (no-op without transactions)."""
        if self.transactional:
            self._call("begin_transaction", self._producer.begin_transaction)

    def send_offsets(self, positions: list[tuple[str, int, int]], consumer: Consumer) -> None:
        """Add input positions ``(topic, partition, next offset)`` to the transaction."""
        tps = [TopicPartition(t, p, o) for t, p, o in positions]
        meta = consumer.consumer_group_metadata()
        self._call(
            "send_offsets_to_transaction",
            self._producer.send_offsets_to_transaction,
            tps,
            meta,
            self.timeout_s,
        )

    def commit(self) -> None:
        """Commit the transaction (or flush and check deliveries without transactions)."""
        if self.transactional:
            self._call("commit_transaction", self._producer.commit_transaction, self.timeout_s)
        else:
            self.flush()

    def abort(self) -> None:
        """Abort the open transaction; errors are ignored (the producer is being replaced)."""
        if self.transactional and not self.abandoned:
            with contextlib.suppress(KStreamError):
                self._call("abort_transaction", self._producer.abort_transaction, self.timeout_s)

    def flush(self) -> None:
        """Deliver everything produced so far.

        Raises:
            TransactionError: records still undelivered after ``timeout_s``, or a hung flush.
        """
        remaining = self._call("flush", self._producer.flush, self.timeout_s)
        if remaining:
            raise TransactionError(f"{remaining} records not delivered within {self.timeout_s} s")

    def poll(self) -> None:
        """Serve delivery callbacks."""
        self._producer.poll(0)

    def flush_quietly(self, timeout_s: float = 5.0) -> None:
        """Best-effort flush before the producer is dropped (errors ignored, at most
        ``timeout_s`` + :data:`CALL_GRACE_S` seconds)."""
        if self.abandoned:
            return
        with contextlib.suppress(KafkaException, DeadlineExceeded):
            call_with_deadline(self._producer.flush, timeout_s, deadline_s=timeout_s + CALL_GRACE_S)


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
            if not _transient(exc) or time.monotonic() + backoff_s > deadline:
                raise translate(exc, f"read committed offsets of {topic}") from exc
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)


def _transient(exc: KafkaException) -> bool:
    """A failure worth retrying: a timeout, a lost connection or a broker-declared retriable."""
    err = exc.args[0] if exc.args else None
    if not isinstance(err, KafkaError):
        return False
    return bool(err.retriable()) or err.code() in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT)


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


def read_partition_to_end(
    bootstrap: str, settings: Mapping[str, Any], topic: str, partition: int, timeout_s: float = 30.0
) -> list[tuple[bytes, bytes | None]]:
    """Every ``(key, value)`` of one partition from the beginning to its end, read with
    ``isolation.level=read_committed`` (changelog restore). A missing topic reads as empty."""
    conf = consumer_config(bootstrap, "kstream-restore", settings)
    conf.update({"enable.partition.eof": True, "isolation.level": "read_committed"})
    consumer = new_consumer(conf)
    out: list[tuple[bytes, bytes | None]] = []
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                err = msg.error()
                if err is None:
                    out.append((msg.key() or b"", msg.value()))
                elif err.code() == PARTITION_EOF or err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    return out
                else:
                    raise BrokerError(f"restore from {topic}[{partition}]: {err.str()}")
        raise BrokerError(
            f"restore from {topic}[{partition}] did not reach the end in {timeout_s} s"
        )
    finally:
        consumer.close()


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
    conf = _common(settings, _CONSUMER_ONLY | _PRODUCER_ONLY)
    conf["bootstrap.servers"] = bootstrap
    try:
        future = AdminClient(conf).describe_consumer_groups([group], request_timeout=timeout_s)[
            group
        ]
        description = future.result(timeout=timeout_s)
    except (KafkaException, ValueError, TimeoutError):
        return {}
    owners: dict[tuple[str, int], str] = {}
    for member in description.members or []:
        for tp in member.assignment.topic_partitions if member.assignment else []:
            owners[(tp.topic, tp.partition)] = f"{member.client_id}@{member.host}"
    return owners


def assignment_offsets(
    partitions: list[Any], offsets: Mapping[tuple[str, int], int | None]
) -> list[Any]:
    """Set each assigned ``TopicPartition``'s start offset (beginning when None)."""
    for tp in partitions:
        offset = offsets.get((tp.topic, tp.partition))
        tp.offset = OFFSET_BEGINNING if offset is None else offset
    return partitions


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


def _fenced(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and err.code() in _FENCED_CODES


def _too_large(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE


# -- schema registry -------------------------------------------------------------------------


class SchemaRegistry:
    """A Confluent schema registry, through confluent-kafka's ``SchemaRegistryClient``.

    Args:
        settings: the client's configuration: ``url`` and e.g. ``basic.auth.user.info``. A
            ``mock://NAME`` URL gives the library's in-memory registry; :func:`schema_registry`
            hands every user in a process the same instance per settings, so a mock registry
            is shared by ``produce``, ``run`` and ``tail`` running in one process.

    Raises:
        BrokerError: invalid settings (at construction), or the registry cannot be reached or
            refuses a request (see each method).
    """

    def __init__(self, settings: Mapping[str, str]) -> None:
        remember_secrets(settings)
        self.url = redact(str(settings.get("url", "")), settings)
        self._schema, client_class, self._error = _registry_api()
        try:
            self._client = client_class.new_client(dict(settings))
        except Exception as exc:  # ValueError, TypeError for bad settings
            raise BrokerError(redact(f"schema registry {self.url}: {exc}", settings)) from exc

    def schema(self, schema_id: int) -> tuple[str, list[str]]:
        """The Avro schema registered under ``schema_id`` as JSON text, and the texts of the
        schemas it references (dependencies first).

        Raises:
            RecordError: (``deserialize``) no schema has this id.
            BrokerError: the registry cannot be reached or fails.
        """
        try:
            found = self._client.get_schema(schema_id)
        except self._error as exc:
            if exc.http_status_code == 404:
                raise RecordError(
                    "deserialize", f"unknown schema id {schema_id} (not in the schema registry)"
                ) from exc
            raise self._failure(f"get schema {schema_id}", exc) from exc
        except Exception as exc:  # connection errors from the HTTP client
            raise self._failure(f"get schema {schema_id}", exc) from exc
        return str(found.schema_str), self._references(found, set())

    def _references(self, schema: Any, seen: set[str]) -> list[str]:
        texts: list[str] = []
        for ref in schema.references or []:
            if ref.subject in seen:
                continue
            seen.add(ref.subject)
            try:
                registered = self._client.get_version(ref.subject, ref.version)
            except Exception as exc:
                raise self._failure(f"get reference {ref.subject}", exc) from exc
            texts += self._references(registered.schema, seen)
            texts.append(str(registered.schema.schema_str))
        return texts

    def register(self, subject: str, schema_text: str) -> int:
        """Register an Avro schema under ``subject`` (an existing identical one keeps its id).

        Raises:
            BrokerError: the registry cannot be reached or refuses the schema (incompatible).
        """
        try:
            return int(self._client.register_schema(subject, self._schema(schema_text, "AVRO")))
        except Exception as exc:
            raise self._failure(f"register a schema under {subject}", exc) from exc

    def _failure(self, what: str, exc: Exception) -> BrokerError:
        return BrokerError(redact(f"schema registry {self.url}: cannot {what}: {exc}"))


def _registry_api() -> tuple[Any, Any, Any]:
    """``(Schema, SchemaRegistryClient, SchemaRegistryError)``, imported on first use (slow).

    The client's authlib dependency warns about its own httpx module when imported, after
    installing an "always" filter for its warnings: noise for our users, silenced by a filter
    placed in front of it.

    Raises:
        UsageError: confluent-kafka's ``schemaregistry`` extra is not installed.
    """
    try:
        with warnings.catch_warnings():
            import authlib.deprecate  # noqa: F401  (installs authlib's filter first)

            warnings.filterwarnings("ignore", message="The httpx module is deprecated")
            from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
            from confluent_kafka.schema_registry.error import SchemaRegistryError
    except ImportError as exc:
        raise UsageError(
            f"a schema registry needs confluent-kafka's schemaregistry extra ({exc}); "
            "pip install 'confluent-kafka[schemaregistry]'"
        ) from exc
    return Schema, SchemaRegistryClient, SchemaRegistryError


_REGISTRIES: dict[tuple[tuple[str, str], ...], SchemaRegistry] = {}


def schema_registry(settings: Mapping[str, str]) -> SchemaRegistry:
    """The process's :class:`SchemaRegistry` for ``settings`` (one per distinct settings).

    Raises:
        BrokerError: invalid settings.
    """
    key = tuple(sorted((str(k), str(v)) for k, v in settings.items()))
    registry = _REGISTRIES.get(key)
    if registry is None:
        registry = _REGISTRIES[key] = SchemaRegistry(settings)
    return registry


def produce_json(bootstrap: str, settings: Mapping[str, Any], topic: str, value: Any) -> None:
    """Produce one JSON record and wait for its delivery (control messages)."""
    import orjson

    producer = new_producer(producer_config(bootstrap, settings))
    try:
        producer.produce(topic, orjson.dumps(value))
        if producer.flush(10):
            raise BrokerError(f"control message to {topic} not delivered")
    except KafkaException as exc:
        raise translate(exc, f"produce to {topic}") from exc


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
